//! Issue 22, findings 5, 6, 7 and 9, through the API: the policy cannot
//! be reset or weakened by accident; requalification compares instants;
//! failed sign-ins are throttled by address and an administrator's lock
//! lifts by itself; guessable passwords are refused, saying why.

mod support;

use axum::http::StatusCode;
use platekeeper_core::account::{Training, DAY_MS};
use platekeeper_core::Role;
use platekeeper_store::Actor;
use serde_json::{json, Value};
use support::{api, Api, PASSWORD};

const H: i64 = 3_600_000;

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn message_of(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// `PUT /api/v1/policy` as the administrator.
async fn put_policy(api: &Api, body: Value) -> (StatusCode, Value) {
    api.call("PUT", "/api/v1/policy", Some(&api.admin), Some(body))
        .await
}

async fn policy(api: &Api) -> Value {
    let (s, v) = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn admin() -> Actor {
    Actor {
        username: "capt".into(),
        affiliation: "Test PD".into(),
        role: Some("administrator".into()),
        client: None,
    }
}

async fn search(api: &Api, token: &str) -> (StatusCode, Value) {
    let body = json!({"plate": "7ABC123", "purpose": {"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"}});
    api.call("POST", "/api/v1/search", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn an_empty_put_no_longer_resets_the_policy() {
    // Finding 5: `PUT {}` used to reset every setting to its default.
    let api = api().await;
    let mut before = policy(&api).await;
    before["administrator_name"] = json!("Dana Reyes");
    before["administrator_title"] = json!("Captain");
    let (s, v) = put_policy(&api, before.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, v) = put_policy(&api, json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(code_of(&v), "invalid_policy");
    assert_eq!(v["error"]["detail"], "missing_fields");
    for field in ["administrator_name", "retention", "accounts"] {
        assert!(message_of(&v).contains(field), "{v}");
    }
    // One field left out of a section is named with its path.
    let mut partial = before.clone();
    partial["retention"]
        .as_object_mut()
        .unwrap()
        .remove("access_log_days");
    let (s, v) = put_policy(&api, partial).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message_of(&v).contains("retention.access_log_days"), "{v}");
    // A misspelt field is refused, not ignored.
    let mut typo = before.clone();
    typo["retention"]["reads_dayz"] = json!(30);
    let (s, v) = put_policy(&api, typo).await;
    assert_eq!(
        (s, v["error"]["detail"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_fields"))
    );
    assert!(message_of(&v).contains("retention.reads_dayz"), "{v}");
    // Nothing changed.
    assert_eq!(policy(&api).await, before);
    // GET → PUT round-trips.
    let (s, v) = put_policy(&api, before.clone()).await;
    assert_eq!((s, &v), (StatusCode::OK, &before));
}

#[tokio::test]
async fn a_weakening_needs_a_confirmation_naming_it_and_is_reported() {
    let api = api().await;
    let mut p = policy(&api).await;
    p["retention"]["access_log_days"] = json!(400);
    p["accounts"]["lockout_attempts"] = json!(8);
    p["agency_name"] = json!("Oakland Police Department");
    let (s, v) = put_policy(&api, p.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(code_of(&v), "confirmation_required");
    let fields: Vec<&str> = v["error"]["weakenings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["accounts.lockout_attempts", "retention.access_log_days"]
    );
    assert_eq!(v["error"]["weakenings"][1]["old"], 730);
    assert_eq!(v["error"]["weakenings"][1]["new"], 400);
    assert!(message_of(&v).contains("confirm_weakening"), "{v}");
    assert_eq!(
        policy(&api).await["agency_name"],
        "Agency",
        "nothing applied"
    );
    // Confirming one of two is not enough.
    p["confirm_weakening"] = json!(["retention.access_log_days"]);
    let (s, _) = put_policy(&api, p.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT);
    p["confirm_weakening"] = json!(["retention.access_log_days", "accounts.lockout_attempts"]);
    let (s, v) = put_policy(&api, p.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("confirm_weakening").is_none());
    assert_eq!(v["retention"]["access_log_days"], 400);

    // Logged with each field's old and new value.
    let (_, log) = api
        .call(
            "GET",
            "/api/v1/audit/log?kind=policy_changed",
            Some(&api.admin),
            None,
        )
        .await;
    let d = &log["entries"][0]["details"];
    let changes = d["changes"].as_array().unwrap();
    assert!(
        changes.contains(&json!({"field": "retention.access_log_days", "old": 730, "new": 400})),
        "{d}"
    );
    assert!(
        changes.contains(
            &json!({"field": "agency_name", "old": "Agency", "new": "Oakland Police Department"})
        ),
        "{d}"
    );
    assert_eq!(d["weakenings"].as_array().unwrap().len(), 2);

    // A partial change is a PATCH: what it does not name stays.
    let patch = json!({"retention": {"reads_days": 200, "images_days": 200}});
    let (s, v) = api
        .call("PATCH", "/api/v1/policy", Some(&api.admin), Some(patch))
        .await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::CONFLICT, "confirmation_required")
    );
    let patch = json!({"retention": {"reads_days": 200, "images_days": 200},
        "confirm_weakening": ["retention.reads_days", "retention.images_days"]});
    let (s, v) = api
        .call("PATCH", "/api/v1/policy", Some(&api.admin), Some(patch))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["retention"]["reads_days"], 200);
    assert_eq!(v["retention"]["access_log_days"], 400);
    assert_eq!(v["agency_name"], "Oakland Police Department");
    // A stricter change needs no confirmation; unknown fields are named.
    let (s, v) = api
        .call(
            "PATCH",
            "/api/v1/policy",
            Some(&api.admin),
            Some(json!({"accounts": {"lockout_attempts": 4}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .call(
            "PATCH",
            "/api/v1/policy",
            Some(&api.admin),
            Some(json!({"acounts": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message_of(&v).contains("acounts"), "{v}");
    // Only the administrator changes the policy.
    let (s, _) = api
        .call(
            "PATCH",
            "/api/v1/policy",
            Some(&api.officer),
            Some(json!({"agency_name": "X"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The audit report lists the changes with old and new values.
    let (s, r) = api
        .call(
            "GET",
            "/api/v1/audit/report?period=2026Q4",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["policy_changes"]["count"], 3, "{r}");
    let first = &r["policy_changes"]["items"][0]["detail"];
    assert_eq!(first["weakenings"][0]["field"], "accounts.lockout_attempts");
    assert!(first.get("policy").is_none());
}

#[tokio::test]
async fn a_role_change_voids_training_and_approval_given_earlier_the_same_day() {
    // Finding 6: an officer made vendor and back searched plates at once,
    // because training and approval given earlier that day still counted.
    let mut api = api().await;
    api.ready_user("adm2", Role::Administrator).await;
    // About 10:00 UTC on the test day: fresh training and approval.
    api.advance(9 * H);
    let day = api.now() - api.now().rem_euclid(DAY_MS);
    for user in ["officer1", "adm2"] {
        api.store
            .record_training(
                user,
                Training {
                    course: "ALPR refresher".into(),
                    completed_ms: day,
                    expires_ms: day + 300 * DAY_MS,
                    recorded_ms: api.now(),
                },
                &admin(),
                api.now(),
            )
            .unwrap();
        api.store
            .record_approval(user, api.now() + 300 * DAY_MS, &admin(), api.now())
            .unwrap();
    }
    api.advance(H);
    for role in ["vendor", "officer"] {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/users/officer1/role",
                Some(&api.admin),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required"),
        "{v}"
    );
    // The same for an administrator, through their open session.
    let adm2 = api.sign_in_ok("adm2").await;
    assert_eq!(search(&api, &adm2).await.0, StatusCode::OK);
    for role in ["vendor", "administrator"] {
        api.call(
            "POST",
            "/api/v1/users/adm2/role",
            Some(&api.admin),
            Some(json!({"role": role})),
        )
        .await;
    }
    let adm2 = api.sign_in_ok("adm2").await;
    let (s, v) = search(&api, &adm2).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "training_required"),
        "{v}"
    );

    // Training recorded after the change (completed today) and a new
    // approval bring the officer back.
    let today = platekeeper_core::read::format_time_ms(api.now())[..10].to_string();
    let until = platekeeper_core::read::format_time_ms(api.now() + 200 * DAY_MS)[..10].to_string();
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/users/officer1/training",
            Some(&api.admin),
            Some(json!({"course": "ALPR", "completed_on": today, "expires_on": until})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, "approval_lapsed"),
        "{v}"
    );
    api.call(
        "POST",
        "/api/v1/users/officer1/approval",
        Some(&api.admin),
        None,
    )
    .await;
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn an_administrators_lock_lifts_by_itself_and_is_logged_and_shown() {
    // Finding 7: five bad sign-ins locked every administrator for good.
    let mut api = api().await;
    api.ready_user("adm2", Role::Administrator).await;
    let adm2 = api.sign_in_ok("adm2").await;
    for i in 1..=5 {
        api.advance(30_000);
        let (s, v) = api
            .call("POST", "/api/v1/session", None, Some(json!({"username": "capt", "password": format!("guess {i}"), "totp": api.code("capt")})))
            .await;
        assert_eq!(
            s,
            if i < 5 {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::LOCKED
            },
            "{v}"
        );
        if i == 5 {
            assert!(message_of(&v).contains("unlocks by itself"), "{v}");
        }
    }
    let (_, u) = api
        .call("GET", "/api/v1/users/capt", Some(&adm2), None)
        .await;
    assert_eq!(u["status"], "locked");
    assert_eq!(
        u["locked_until"],
        platekeeper_core::read::format_time_ms(api.now() + 15 * 60_000)
    );
    let (s, _) = api.sign_in("capt").await;
    assert_eq!(s, StatusCode::LOCKED);
    // Fifteen minutes on, the lock has lifted by itself (the upkeep job
    // records it; a sign-in would too).
    api.advance(15 * 60_000);
    assert_eq!(api.store.lift_expired_locks(api.now()).unwrap(), ["capt"]);
    let entries = api.store.log_entries(None, None, 5).unwrap();
    let e = entries
        .iter()
        .find(|e| e.kind == "account_unlocked")
        .unwrap();
    assert_eq!(e.username, "system:lockout-expiry");
    assert!(e.details.contains("\"user\":\"capt\""), "{}", e.details);
    let (_, u) = api
        .call("GET", "/api/v1/users/capt", Some(&adm2), None)
        .await;
    assert_eq!(
        (u["status"].as_str(), u["locked_until"].as_str()),
        (Some("active"), None)
    );
    let (s, v) = api.sign_in("capt").await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Other people's locks stay until an administrator lifts them (R4.6),
    // unless the agency sets a time.
    for i in 1..=5 {
        api.advance(30_000);
        api.call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "officer1", "password": format!("guess {i}")})),
        )
        .await;
    }
    api.advance(DAY_MS);
    assert!(api.store.lift_expired_locks(api.now()).unwrap().is_empty());
    let (s, _) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::LOCKED);
    let adm2 = api.sign_in_ok("adm2").await;
    let (_, u) = api
        .call("GET", "/api/v1/users/officer1", Some(&adm2), None)
        .await;
    assert_eq!(
        (u["status"].as_str(), u["locked_until"].as_str()),
        (Some("locked"), None)
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_by_address_without_counting_toward_the_lock() {
    let api = api().await;
    let attacker = [203, 0, 113, 7];
    let guess =
        |n: usize| json!({"username": "capt", "password": format!("guess {n}"), "totp": "000000"});
    for n in 1..=4 {
        let (s, v, _) = api.sign_in_from(attacker, guess(n)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    // The fourth failure starts a 2 s wait: attempts during it are refused
    // before any password is checked, and count toward nothing.
    for n in 5..=40 {
        let (s, v, retry) = api.sign_in_from(attacker, guess(n)).await;
        assert_eq!(
            (s, code_of(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            "{v}"
        );
        assert_eq!(retry.as_deref(), Some("2"));
    }
    let capt = api.store.account("capt").unwrap().unwrap();
    assert_eq!((capt.failed_logins, capt.locked), (4, false));
    // Even the right password waits out the back-off from that address…
    let right = json!({"username": "capt", "password": PASSWORD, "totp": api.code("capt")});
    let (s, _, retry) = api.sign_in_from(attacker, right.clone()).await;
    assert_eq!(
        (s, retry.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("2"))
    );
    // …while the administrator, elsewhere, signs in at once: the account
    // was never locked.
    let (s, v, _) = api.sign_in_from([198, 51, 100, 20], right).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Trying a few passwords on many accounts from one address (spraying)
    // is throttled too, after 20 failures.
    let sprayer = [192, 0, 2, 99];
    for n in 0..20 {
        let (s, _, _) = api
            .sign_in_from(
                sprayer,
                json!({"username": format!("user{n}"), "password": "Summer2026!"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    api.sign_in_from(
        sprayer,
        json!({"username": "user20", "password": "Summer2026!"}),
    )
    .await;
    let (s, _, retry) = api
        .sign_in_from(
            sprayer,
            json!({"username": "user21", "password": "Summer2026!"}),
        )
        .await;
    assert_eq!(
        (s, retry.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("1"))
    );

    // Nobody makes the server read a large body without an account.
    let big = json!({"username": "capt", "password": "x".repeat(100_000)});
    let (s, v, _) = api.sign_in_from([192, 0, 2, 100], big).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        "{v}"
    );
}

async fn set_password(api: &Api, token: &str, new: &str) -> (StatusCode, Value) {
    api.call(
        "POST",
        "/api/v1/me/password",
        Some(token),
        Some(json!({"current": PASSWORD, "new": new})),
    )
    .await
}

#[tokio::test]
async fn guessable_passwords_are_refused_saying_why() {
    // Finding 9: `aaaaaaaaaaaa` and `Password1234` were accepted.
    let api = api().await;
    for (password, why) in [
        ("aaaaaaaaaaaa", "repeated_characters"),
        ("Password1234", "common_password"),
        ("my officer1 password", "contains_username"),
        (";lkjhgfdsa;lkj", "keyboard_pattern"),
    ] {
        let (s, v) = set_password(&api, &api.officer, password).await;
        assert_eq!(
            (s, code_of(&v), v["error"]["detail"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "weak_password", Some(why)),
            "{password}: {v}"
        );
        assert!(
            message_of(&v).contains("guess") || why == "contains_username",
            "{v}"
        );
    }
    // The person's name (here "Test officer1") counts as a guess; so does
    // the agency's.
    let (s, v) = set_password(&api, &api.admin, "danareyes1234").await;
    assert_eq!(
        (s, v["error"]["detail"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contains_name")),
        "{v}"
    );
    // A few unrelated words pass.
    let (s, v) = set_password(&api, &api.officer, "orbit mosaic heron lantern").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
}

/// Issue 23 item 4: signing in on a second device with the code just used
/// on the first is explained ("already used", when the next comes) and
/// does not count towards the lock; the first device's next request is
/// told it ended because of that sign-in, and when.
#[tokio::test]
async fn a_second_sign_in_with_the_same_code_is_explained_and_ends_the_first_session_visibly() {
    let api = api().await;
    let first = api.sign_in_ok("officer1").await;
    // The same code again, still inside its 30 seconds (here: 5 s later).
    api.advance(5_000);
    let again = json!({"username": "officer1", "password": PASSWORD, "totp": api.code("officer1")});
    for _ in 0..6 {
        let (s, v) = api
            .call("POST", "/api/v1/session", None, Some(again.clone()))
            .await;
        assert_eq!(
            (s, code_of(&v)),
            (StatusCode::UNAUTHORIZED, "code_already_used"),
            "{v}"
        );
        assert!(message_of(&v).contains("wait for the next code"), "{v}");
    }
    let account = api.store.account("officer1").unwrap().unwrap();
    assert_eq!(account.failed_logins, 0, "a used code is not a wrong code");
    assert!(!account.locked, "six of them lock nothing");
    // A wrong code still counts.
    let wrong = json!({"username": "officer1", "password": PASSWORD, "totp": "000000"});
    let (s, v) = api.call("POST", "/api/v1/session", None, Some(wrong)).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert_eq!(
        api.store
            .account("officer1")
            .unwrap()
            .unwrap()
            .failed_logins,
        1
    );

    // The next code signs in on the second device and ends the first
    // session; the first device is told so, with the time.
    let (s, second) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let (s, v) = api.call("GET", "/api/v1/me", Some(&first), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, "signed_in_elsewhere"),
        "{v}"
    );
    assert_eq!(
        v["error"]["at"],
        platekeeper_core::read::format_time_ms(api.now()),
        "when the other sign-in happened"
    );
    // Signing out is not "elsewhere".
    let token = second["token"].as_str().unwrap();
    api.call("DELETE", "/api/v1/session", Some(token), None)
        .await;
    let (_, v) = api.call("GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(code_of(&v), "invalid_session", "{v}");
}
