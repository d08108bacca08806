//! Accountability end to end through the API (SPEC R4, R5): enrolment,
//! two factors, lockout, the role × endpoint matrix, lifecycle rules with a
//! moved clock, purpose refusals, and a tamper-evident log.

mod support;

use axum::http::StatusCode;
use platekeeper_core::account::DAY_MS;
use platekeeper_core::Role;
use platekeeper_store::credentials::totp_code;
use serde_json::{json, Value};
use support::{api, Api, PASSWORD};

fn purpose() -> Value {
    json!({"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"})
}

fn search_body() -> Value {
    json!({"plate": "7ABC123", "purpose": purpose()})
}

async fn search(api: &Api, token: &str) -> (StatusCode, Value) {
    api.call("POST", "/api/v1/search", Some(token), Some(search_body()))
        .await
}

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// `POST path` as the administrator.
async fn admin_post(api: &Api, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    api.call("POST", path, Some(&api.admin), body).await
}

#[tokio::test]
async fn a_new_officer_enrols_from_a_one_time_password() {
    let api = api().await;
    let (s, v) = api
        .call("POST", "/api/v1/users", Some(&api.admin), Some(json!({"username": "jdoe", "name": "Jo Doe", "role": "officer", "title": "Officer"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let otp = v["one_time_password"].as_str().unwrap().to_string();
    // Credentials are never shown to administrators afterwards.
    let (_, listed) = api
        .call("GET", "/api/v1/users/jdoe", Some(&api.admin), None)
        .await;
    assert!(!listed.to_string().contains(&otp));
    assert_eq!(listed["status"], "enrolling");

    let (s, v) = api
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "jdoe", "password": otp})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next"], json!(["change_password", "enroll_totp"]));
    let token = v["token"].as_str().unwrap().to_string();
    // An enrolment session reaches no data.
    let (s, v) = search(&api, &token).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "enrolment_required")
    );

    let (s, v) = api
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&token),
            Some(json!({"current": otp, "new": "short"})),
        )
        .await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "weak_password")
    );
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&token),
            Some(json!({"current": "wrong", "new": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&token),
            Some(json!({"current": otp, "new": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api
        .call("POST", "/api/v1/me/totp", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(v["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    // The QR code is drawn here, so the secret never leaves the server
    // for a QR service (issue 7).
    let svg = v["qr_svg"].as_str().unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"),
        "{svg:.80}"
    );
    assert!(
        !svg.contains(&secret),
        "the secret is drawn, not written, in the code"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/me/totp/confirm",
            Some(&token),
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code")
    );
    let code = totp_code(&secret, (api.now() / 1000) as u64).unwrap();
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/me/totp/confirm",
            Some(&token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Enrolled but untrained and unapproved: sign-in says what is missing.
    api.advance(30_000);
    let signin = |api: &Api| {
        let code = totp_code(&secret, (api.now() / 1000) as u64).unwrap();
        json!({"username": "jdoe", "password": PASSWORD, "totp": code})
    };
    let (s, v) = api
        .call("POST", "/api/v1/session", None, Some(signin(&api)))
        .await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required"),
        "{v}"
    );
    let today = platekeeper_core::read::format_time_ms(api.now())[..10].to_string();
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/users/jdoe/training",
            Some(&api.admin),
            Some(json!({"course": "ALPR 101", "completed_on": today, "expires_on": platekeeper_core::read::format_time_ms(api.now() + 300 * DAY_MS)[..10]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    api.advance(30_000);
    let (s, v) = api
        .call("POST", "/api/v1/session", None, Some(signin(&api)))
        .await;
    assert_eq!((s, code_of(&v)), (StatusCode::FORBIDDEN, "approval_lapsed"));
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/users/jdoe/approval",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    api.advance(30_000);
    let (s, v) = api
        .call("POST", "/api/v1/session", None, Some(signin(&api)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next"], json!([]));
    let token = v["token"].as_str().unwrap().to_string();
    let (s, v) = search(&api, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The same code cannot be used twice.
    let (s, _) = api
        .call("POST", "/api/v1/session", None, Some(signin(&api)))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Signing out ends the session.
    let (s, _) = api
        .call("DELETE", "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = search(&api, &token).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_session")
    );
}

#[tokio::test]
async fn brute_force_locks_the_account_until_unlocked() {
    let api = api().await;
    for i in 1..=5 {
        api.advance(30_000);
        let (s, v) = api
            .call("POST", "/api/v1/session", None, Some(json!({"username": "officer1", "password": format!("guess {i}"), "totp": api.code("officer1")})))
            .await;
        let want = if i < 5 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::LOCKED
        };
        assert_eq!(s, want, "attempt {i}: {v}");
    }
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!((s, code_of(&v)), (StatusCode::LOCKED, "account_locked"));
    // The open session of a locked account stops too.
    let (s, _) = search(&api, &api.officer).await;
    assert_eq!(s, StatusCode::LOCKED);
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/users/officer1/unlock",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::OK);
    // Guessing the current password through a stolen session counts too.
    let token = api.sign_in_ok("officer1").await;
    for _ in 0..4 {
        let (s, _) = api
            .call(
                "POST",
                "/api/v1/me/password",
                Some(&token),
                Some(json!({"current": "guess", "new": "another long password"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&token),
            Some(json!({"current": "guess", "new": "another long password"})),
        )
        .await;
    assert_eq!(s, StatusCode::LOCKED);
    api.call(
        "POST",
        "/api/v1/users/officer1/unlock",
        Some(&api.admin),
        None,
    )
    .await;
    // Unknown users look the same as wrong passwords.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
}

#[tokio::test]
async fn every_data_endpoint_needs_a_token() {
    let api = api().await;
    for (method, path) in [
        ("POST", "/api/v1/search"),
        (
            "GET",
            "/api/v1/reads/00000000-0000-4000-8000-000000000001/image?access_id=1",
        ),
        ("POST", "/api/v1/cameras"),
        ("GET", "/api/v1/cameras"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit/log"),
        ("GET", "/api/v1/audit/verify"),
        ("GET", "/api/v1/policy"),
        ("PUT", "/api/v1/policy"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/users/officer1/training"),
    ] {
        let (s, v) = api.call(method, path, None, Some(json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
        let (s, _) = api
            .call(method, path, Some("pks_forged"), Some(json!({})))
            .await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a forged token"
        );
    }
}

#[tokio::test]
async fn the_role_table_decides_every_endpoint() {
    let mut api = api().await;
    let roles = [
        Role::Officer,
        Role::Dispatcher,
        Role::Cso,
        Role::Analyst,
        Role::Administrator,
        Role::Auditor,
        Role::Vendor,
    ];
    let mut tokens = Vec::new();
    for role in roles {
        let name = format!("u-{}", role.as_str());
        api.ready_user(&name, role).await;
        tokens.push((role, api.sign_in_ok(&name).await));
    }
    // (method, path, body, roles allowed)
    let cases: Vec<(&str, &str, Value, &[Role])> = vec![
        (
            "POST",
            "/api/v1/search",
            search_body(),
            &[
                Role::Officer,
                Role::Dispatcher,
                Role::Cso,
                Role::Analyst,
                Role::Administrator,
            ],
        ),
        (
            "GET",
            "/api/v1/cameras",
            Value::Null,
            &[
                Role::Officer,
                Role::Dispatcher,
                Role::Cso,
                Role::Analyst,
                Role::Administrator,
                Role::Vendor,
            ],
        ),
        (
            "POST",
            "/api/v1/cameras",
            json!({"id": "c-x", "name": "x", "kind": "mobile"}),
            &[Role::Administrator],
        ),
        ("GET", "/api/v1/users", Value::Null, &[Role::Administrator]),
        (
            "POST",
            "/api/v1/users",
            json!({"username": "made", "name": "x", "role": "officer"}),
            &[Role::Administrator],
        ),
        (
            "GET",
            "/api/v1/audit/log",
            Value::Null,
            &[Role::Administrator, Role::Auditor],
        ),
        (
            "GET",
            "/api/v1/audit/verify",
            Value::Null,
            &[Role::Administrator, Role::Auditor],
        ),
        (
            "PUT",
            "/api/v1/policy",
            serde_json::to_value(api.store.policy()).unwrap(),
            &[Role::Administrator],
        ),
        (
            "GET",
            "/api/v1/policy",
            Value::Null,
            &[
                Role::Officer,
                Role::Dispatcher,
                Role::Cso,
                Role::Analyst,
                Role::Administrator,
                Role::Auditor,
                Role::Vendor,
            ],
        ),
    ];
    for (method, path, body, allowed) in &cases {
        for (i, (role, token)) in tokens.iter().enumerate() {
            let mut body = body.clone();
            // Creations need fresh names per role.
            if let Some(id) = body.get_mut("id") {
                *id = json!(format!("cam-{i}"));
            }
            if let Some(u) = body.get_mut("username") {
                *u = json!(format!("made-{i}"));
            }
            let body = (!body.is_null()).then_some(body);
            let (s, v) = api.call(method, path, Some(token), body).await;
            if allowed.contains(role) {
                assert!(s.is_success(), "{} {method} {path}: {s} {v}", role.as_str());
            } else {
                assert_eq!(
                    (s, code_of(&v)),
                    (StatusCode::FORBIDDEN, "role_forbidden"),
                    "{} {method} {path}",
                    role.as_str()
                );
            }
        }
    }
}

#[tokio::test]
async fn lifecycle_rules_hold_with_a_moving_clock() {
    let api = api().await;
    let (s, _) = search(&api, &api.officer).await;
    assert_eq!(s, StatusCode::OK);
    // Training recorded 5 days before the start expires 360 days after it:
    // a session opened just before keeps working until then, and no longer
    // (the rule is applied on every request, not only at sign-in).
    api.advance(360 * DAY_MS - 3 * 3_600_000);
    let token = api.sign_in_ok("officer1").await;
    let (s, _) = search(&api, &token).await;
    assert_eq!(s, StatusCode::OK);
    api.advance(4 * 3_600_000);
    let (s, v) = search(&api, &token).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required"),
        "{v}"
    );

    // Approval lapses after its period even with training renewed.
    let mut api = support::api().await;
    api.ready_user("ana", Role::Analyst).await;
    let admin = platekeeper_store::Actor {
        username: "capt".into(),
        affiliation: "Test PD".into(),
        role: None,
        client: None,
    };
    api.store
        .record_training(
            "ana",
            platekeeper_core::account::Training {
                course: "long".into(),
                completed_ms: api.now(),
                expires_ms: api.now() + 900 * DAY_MS,
                recorded_ms: api.now(),
            },
            &admin,
            api.now(),
        )
        .unwrap();
    api.sign_in_ok("ana").await;
    api.advance(361 * DAY_MS);
    let token = api.sign_in("ana").await;
    assert_eq!(
        (token.0, code_of(&token.1)),
        (StatusCode::FORBIDDEN, "approval_lapsed")
    );

    // Twelve months unused suspends the account, at sign-in and by the daily job.
    let api = support::api().await;
    api.advance(366 * DAY_MS);
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "account_suspended"),
        "{v}"
    );
    let suspended = api.store.suspend_inactive(365, api.now()).unwrap();
    assert!(suspended.contains(&"capt".to_string()), "{suspended:?}");
    // Reactivation needs new training before plate data.
    api.store.reactivate("officer1", &admin, api.now()).unwrap();
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required"),
        "{v}"
    );
    // Training taken the day of the reactivation counts.
    let day_start = api.now() - api.now().rem_euclid(DAY_MS);
    api.store
        .record_training(
            "officer1",
            platekeeper_core::account::Training {
                course: "refresher".into(),
                completed_ms: day_start,
                expires_ms: day_start + 300 * DAY_MS,
                recorded_ms: api.now(),
            },
            &admin,
            api.now(),
        )
        .unwrap();
    // (The old approval ran out during the year away: renew it.)
    api.store
        .record_approval("officer1", api.now() + 300 * DAY_MS, &admin, api.now())
        .unwrap();
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A role change ends access until re-approved and retrained; the
    // session in use stops at once.
    let api = support::api().await;
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/users/officer1/role",
            Some(&api.admin),
            Some(json!({"role": "vendor"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = search(&api, &api.officer).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the role change ended the session"
    );
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/users/officer1/role",
            Some(&api.admin),
            Some(json!({"role": "officer"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required")
    );
}

#[tokio::test]
async fn suspended_and_deleted_accounts_lose_their_sessions_but_not_their_log() {
    let api = api().await;
    let (s, _) = search(&api, &api.officer).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/users/officer1/suspend",
            Some(&api.admin),
            Some(json!({"reason": "investigation of misuse"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = search(&api, &api.officer).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "suspension ends sessions");
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "account_suspended")
    );

    let mut api = support::api().await;
    api.ready_user("leaver", Role::Dispatcher).await;
    let token = api.sign_in_ok("leaver").await;
    let (s, _) = search(&api, &token).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .call("DELETE", "/api/v1/users/leaver", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = search(&api, &token).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_session")
    );
    let (s, _) = api.sign_in("leaver").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, log) = api
        .call(
            "GET",
            "/api/v1/audit/log?username=leaver",
            Some(&api.admin),
            None,
        )
        .await;
    let kinds: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"search"), "{kinds:?}");
    // The name is never given to someone else.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(&api.admin),
            Some(json!({"username": "leaver", "name": "New", "role": "officer"})),
        )
        .await;
    assert_eq!((s, code_of(&v)), (StatusCode::CONFLICT, "user_exists"));
}

#[tokio::test]
async fn purposes_are_checked_and_refusals_recorded() {
    let api = api().await;
    let cases = [
        (
            json!({"case_number": "", "offense": "211 PC", "reason": "suspect Lee"}),
            "purpose_insufficient",
            "missing_case_number",
        ),
        (
            json!({"case_number": "abc", "offense": "211 PC", "reason": "suspect Lee"}),
            "purpose_insufficient",
            "case_number_format",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "investigation"}),
            "purpose_insufficient",
            "generic_reason",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "suspect DOB 04/12/1988"}),
            "purpose_contains_pii",
            "personal_information",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "suspect SSN 123-45-6789"}),
            "purpose_contains_pii",
            "personal_information",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "suspect DL B1234567"}),
            "purpose_contains_pii",
            "personal_information",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "CII A12345678"}),
            "purpose_contains_pii",
            "personal_information",
        ),
        (
            json!({"case_number": "26-1", "offense": "jaywalking", "reason": "suspect Lee"}),
            "purpose_offense_not_listed",
            "offense_not_listed",
        ),
        (
            json!({"case_number": "26-1", "offense": "211 PC", "reason": "immigration status check"}),
            "purpose_immigration_enforcement",
            "immigration_enforcement",
        ),
    ];
    let before = api.store.access_count().unwrap();
    for (purpose, code, detail) in cases {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/search",
                Some(&api.officer),
                Some(json!({"plate": "7ABC123", "purpose": purpose})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{purpose}: {v}");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["detail"].as_str()),
            (Some(code), Some(detail)),
            "{purpose}"
        );
    }
    assert_eq!(
        api.store.access_count().unwrap(),
        before,
        "refusals are not accesses"
    );
    let (_, log) = api
        .call(
            "GET",
            "/api/v1/audit/log?username=officer1",
            Some(&api.admin),
            None,
        )
        .await;
    let refused = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["category"] == "refused")
        .count();
    assert_eq!(refused, 9, "each refusal is recorded for the audit");
}

#[tokio::test]
async fn searches_are_logged_before_results_with_who_what_and_why() {
    let api = api().await;
    let (s, v) = search(&api, &api.officer).await;
    assert_eq!(s, StatusCode::OK);
    let id = v["access_id"].as_i64().unwrap();
    let (_, log) = api
        .call("GET", "/api/v1/audit/log?limit=10", Some(&api.admin), None)
        .await;
    let entries = log["entries"].as_array().unwrap();
    let access = entries.iter().find(|e| e["seq"] == id).unwrap();
    assert_eq!(access["username"], "officer1");
    assert_eq!(access["kind"], "search");
    assert_eq!(access["details"]["plate"], "7ABC123");
    assert_eq!(access["purpose"]["case_number"], "26-004211");
    assert_eq!(access["client"], "127.0.0.1");
    // Issue 28: one entry holds the query and what it returned; no
    // second "result" entry follows.
    assert_eq!(access["details"]["result_count"], 0);
    assert_eq!(access["details"]["reads"], json!([]));
    assert!(!entries.iter().any(|e| e["kind"] == "result"));
    let (s, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["entries"].as_i64().unwrap() > 10);
}

/// Changes the log behind the API's back (see [`support::tamper`]).
fn tamper(api: &Api, sql: &str) {
    support::tamper(api.store.dir(), sql);
}

async fn verify(api: &Api) -> Value {
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    v
}

#[tokio::test]
async fn tampering_with_the_log_is_detected_and_located() {
    for (sql, bad, words) in [
        ("UPDATE log SET details = '{\"plate\":\"0000000\"}' WHERE seq = 5", 5, "altered"),
        ("DELETE FROM log WHERE seq = 4", 4, "missing"),
        (
            "UPDATE log SET seq = -1 WHERE seq = 3; UPDATE log SET seq = 3 WHERE seq = 6; UPDATE log SET seq = 6 WHERE seq = -1;",
            3,
            "does not follow",
        ),
        ("INSERT INTO log SELECT 1000, ts, category, kind, username, affiliation, role, client, details, purpose, prev, hash FROM log WHERE seq = 2; \
          UPDATE log SET seq = -(seq + 1) WHERE seq >= 4 AND seq < 1000; UPDATE log SET seq = -seq WHERE seq < 0; \
          UPDATE log SET seq = 4 WHERE seq = 1000;", 4, "does not follow"),
    ] {
        let api = api().await;
        assert_eq!(verify(&api).await["ok"], true);
        tamper(&api, sql);
        let v = verify(&api).await;
        assert_eq!(v["ok"], false, "{sql}");
        assert_eq!(v["first_bad"], bad, "{sql}: {v}");
        assert!(v["problem"].as_str().unwrap().contains(words), "{sql}: {v}");
    }
    // Cutting off the newest entries leaves a valid chain; the head kept
    // outside the database catches it.
    let api = api().await;
    let (_, before) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    let n = before["entries"].as_i64().unwrap();
    tamper(&api, &format!("DELETE FROM log WHERE seq > {}", n - 3));
    let v = verify(&api).await;
    assert_eq!(v["ok"], false);
    assert!(
        v["problem"]
            .as_str()
            .unwrap()
            .contains("removed from the end"),
        "{v}"
    );
}

#[tokio::test]
async fn the_access_log_filters_by_category_kind_case_and_time() {
    // R4.3: an auditor finds every access for one case, or one kind of
    // entry, in a time window.
    let mut api = api().await;
    api.ready_user("ofc", Role::Officer).await;
    let token = api.sign_in_ok("ofc").await;
    for case in ["26-000111", "26-000222", "26-000111"] {
        let body = json!({"plate": "7ABC123", "purpose": {"case_number": case, "offense": "211 PC", "reason": "vehicle seen leaving the robbery"}});
        let (s, v) = api
            .call("POST", "/api/v1/search", Some(&token), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let admin = api.admin.clone();
    let get = |q: &str| {
        let path = format!("/api/v1/audit/log?{q}");
        let api = &api;
        let admin = admin.clone();
        async move { api.call("GET", &path, Some(&admin), None).await }
    };

    let (s, v) = get("case_number=26-000111").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e["purpose"]["case_number"] == "26-000111"),
        "{v}"
    );
    let searches = entries.iter().filter(|e| e["kind"] == "search").count();
    assert_eq!(searches, 2);

    let (_, v) = get("category=access&kind=search&username=ofc").await;
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{v}");
    assert!(entries
        .iter()
        .all(|e| e["category"] == "access" && e["kind"] == "search"));

    let (_, v) = get("kind=signed_in").await;
    assert!(v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] == "signed_in"));
    assert!(!v["entries"].as_array().unwrap().is_empty());

    // A window after everything: nothing. A window around now: the searches.
    let later = platekeeper_core::read::format_time_ms(api.now() + DAY_MS);
    let (_, v) = get(&format!("from={later}")).await;
    assert_eq!(v["entries"], json!([]));
    let before = platekeeper_core::read::format_time_ms(api.now() - DAY_MS);
    let (_, v) = get(&format!("from={before}&to={later}&kind=search")).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 3);

    // Bad filters are named.
    let (s, v) = get("from=yesterday").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("from"),
        "{v}"
    );
    let long = "x".repeat(500);
    let (s, v) = get(&format!("case_number={long}")).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_filter")
    );
}

/// Found by issue 22's sweep of records reached by id: an administrator
/// could record their own training, reactivate their own (or any
/// unsuspended) account, and a reactivation brought back an approval that
/// a role change had voided — an analyst made administrator could so skip
/// the new approval the role change demands.
#[tokio::test]
async fn no_one_certifies_or_reactivates_themselves_and_reactivation_keeps_a_role_change_void() {
    let mut api = api().await;
    // With a second administrator, nobody records their own training.
    api.ready_user("adm2", Role::Administrator).await;
    let today = platekeeper_core::read::format_time_ms(api.now());
    let training =
        json!({"course": "ALPR", "completed_on": &today[..10], "expires_on": "2027-11-01"});
    let (s, v) = admin_post(&api, "/api/v1/users/capt/training", Some(training.clone())).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_certification")),
        "{v}"
    );
    let (s, v) = admin_post(&api, "/api/v1/users/capt/reactivate", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_reactivation")),
        "{v}"
    );
    let (s, v) = admin_post(&api, "/api/v1/users/officer1/reactivate", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_suspended")),
        "{v}"
    );

    // A role change voids the approval; suspending and reactivating does
    // not bring it back.
    api.advance(60_000);
    let (s, v) = admin_post(
        &api,
        "/api/v1/users/officer1/role",
        Some(json!({"role": "analyst"})),
    )
    .await;
    assert!(s.is_success(), "{v}");
    let (_, v) = api
        .call("GET", "/api/v1/users/officer1", Some(&api.admin), None)
        .await;
    assert_eq!(v["approval_current"], false, "{v}");
    let (s, _) = admin_post(
        &api,
        "/api/v1/users/officer1/suspend",
        Some(json!({"reason": "leave"})),
    )
    .await;
    assert!(s.is_success());
    api.advance(60_000);
    let (s, v) = admin_post(&api, "/api/v1/users/officer1/reactivate", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, v) = api
        .call("GET", "/api/v1/users/officer1", Some(&api.admin), None)
        .await;
    assert_eq!(
        v["approval_current"], false,
        "the voided approval stays void: {v}"
    );
    assert_eq!(v["status"], "active", "{v}");
}
