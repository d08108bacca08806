//! Passkeys as the second factor (issue 24 item 4; SPEC R4.2, R11.4):
//! registered by their owner, used to sign in, required by the policy for
//! a role, removed by the administrator for someone who lost them — each
//! logged; replayed, forged and foreign answers refused and counted.

#[path = "support/softkey.rs"]
mod softkey;
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use platekeeper_server::passkeys::RelyingParty;
use platekeeper_server::{router, AppState};
use serde_json::{json, Value};
use softkey::SoftKey;
use support::{api, Api, LIMIT, PASSWORD};

const ORIGIN: &str = "https://alpr.test-agency.gov";
const RP_ID: &str = "alpr.test-agency.gov";

/// The test API with passkeys bound to [`ORIGIN`].
async fn with_passkeys() -> Api {
    let mut api = api().await;
    let state = AppState {
        passkey_rp: Arc::new(RelyingParty {
            public_url: Some(ORIGIN.parse().unwrap()),
        }),
        ..api.state.clone()
    };
    api.app = router(state.clone(), LIMIT);
    api.state = state;
    api
}

/// Registers a passkey for the holder of `token`; the passkey's answer.
async fn register(api: &Api, token: &str, key: &SoftKey, name: &str) -> (StatusCode, Value) {
    let (s, start) = api
        .call("POST", "/api/v1/me/passkeys/options", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    assert_eq!(start["options"]["publicKey"]["rp"]["id"], RP_ID);
    let credential = key.create(&start["options"], ORIGIN);
    api.call(
        "POST",
        "/api/v1/me/passkeys",
        Some(token),
        Some(
            json!({"challenge_id": start["challenge_id"], "name": name, "credential": credential}),
        ),
    )
    .await
}

/// Step 1 of a passkey sign-in.
async fn options(api: &Api, user: &str, password: &str) -> (StatusCode, Value) {
    api.call(
        "POST",
        "/api/v1/session/passkey",
        None,
        Some(json!({"username": user, "password": password})),
    )
    .await
}

fn answer_body(user: &str, challenge: &Value, credential: Value) -> Value {
    json!({"username": user, "password": PASSWORD, "passkey": {"challenge_id": challenge, "credential": credential}})
}

/// Signs in as `user` with the password and a passkey's answer to
/// `challenge`.
async fn sign_in_answering(
    api: &Api,
    user: &str,
    challenge: &Value,
    credential: Value,
) -> (StatusCode, Value) {
    let body = answer_body(user, challenge, credential);
    api.call("POST", "/api/v1/session", None, Some(body)).await
}

async fn failed_logins(api: &Api, user: &str) -> u32 {
    api.store.account(user).unwrap().unwrap().failed_logins
}

#[tokio::test]
async fn a_passkey_is_registered_and_signs_in_and_a_replay_is_refused() {
    let mut api = with_passkeys().await;
    let start_of_test = api.mark();
    let officer = api.officer.clone();
    let mut key = SoftKey::new();
    let (s, added) = register(&api, &officer, &key, "patrol laptop").await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    assert_eq!(added["name"], "patrol laptop");
    let (_, list) = api
        .call("GET", "/api/v1/me/passkeys", Some(&officer), None)
        .await;
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["required"], false);
    assert!(api.log_kinds().contains(&"passkey_registered".to_string()));

    // A wrong password gets no challenge, and counts.
    let (s, v) = options(&api, "officer1", "not the password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(failed_logins(&api, "officer1").await, 1);

    let (s, start) = options(&api, "officer1", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let answer = key.get(&start["options"], ORIGIN, RP_ID);
    let body = answer_body("officer1", &start["challenge_id"], answer);
    let mark = api.mark();
    let (s, session) = api
        .call("POST", "/api/v1/session", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["next"], json!([]));
    assert_eq!(failed_logins(&api, "officer1").await, 0);
    let (entries, _) = api.since(mark);
    let signed = entries.iter().find(|e| e.kind == "signed_in").unwrap();
    assert!(
        signed.details.contains("\"factor\":\"passkey\""),
        "{}",
        signed.details
    );
    // The session works.
    let token = session["token"].as_str().unwrap();
    let (s, me) = api.call("GET", "/api/v1/me", Some(token), None).await;
    assert_eq!((s, me["passkeys"].clone()), (StatusCode::OK, json!(1)));

    // The same answer again: its challenge is gone. Refused and counted.
    let (s, v) = api.call("POST", "/api/v1/session", None, Some(body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "invalid_credentials");
    assert_eq!(failed_logins(&api, "officer1").await, 1);

    // A forged signature, and an answer from another key, are refused.
    let (_, start) = options(&api, "officer1", PASSWORD).await;
    let mut forged = key.get(&start["options"], ORIGIN, RP_ID);
    forged["response"]["signature"] = json!(softkey::b64(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]));
    let (s, _) = sign_in_answering(&api, "officer1", &start["challenge_id"], forged).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, start) = options(&api, "officer1", PASSWORD).await;
    let stranger = SoftKey::new().get(&start["options"], ORIGIN, RP_ID);
    let (s, _) = sign_in_answering(&api, "officer1", &start["challenge_id"], stranger).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        failed_logins(&api, "officer1").await,
        3,
        "the replay, the forgery, the stranger"
    );
    // A right answer clears the count (five in a row would lock).
    let (_, start) = options(&api, "officer1", PASSWORD).await;
    let answer = key.get(&start["options"], ORIGIN, RP_ID);
    let (s, v) = sign_in_answering(&api, "officer1", &start["challenge_id"], answer).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(failed_logins(&api, "officer1").await, 0);
    // An answer made for a look-alike site (another origin) is refused:
    // what a phishing page would relay.
    let (_, start) = options(&api, "officer1", PASSWORD).await;
    let phished = key.get(
        &start["options"],
        "https://alpr-test-agency.gov.example",
        RP_ID,
    );
    let (s, _) = sign_in_answering(&api, "officer1", &start["challenge_id"], phished).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Someone else's challenge cannot be used for this person.
    api.ready_user("officer2", platekeeper_core::Role::Officer)
        .await;
    let (_, start) = options(&api, "officer1", PASSWORD).await;
    let answer = key.get(&start["options"], ORIGIN, RP_ID);
    let (s, v) = sign_in_answering(&api, "officer2", &start["challenge_id"], answer).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let reasons: Vec<String> = api
        .since(start_of_test)
        .0
        .into_iter()
        .filter(|e| e.kind == "sign_in_failed")
        .map(|e| e.details)
        .collect();
    assert!(
        reasons.iter().any(|d| d.contains("passkey not accepted")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_role_held_to_passkeys_refuses_codes_and_the_administrator_recovers_it() {
    let api = with_passkeys().await;
    let start_of_test = api.mark();
    let admin = api.admin.clone();
    let (_, mut policy) = api.call("GET", "/api/v1/policy", Some(&admin), None).await;
    policy["accounts"]["passkey_roles"] = json!(["officer"]);
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&admin), Some(policy.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Without a passkey yet: the code still lets the officer in, to add
    // one, and nothing else.
    let token = api.sign_in_ok("officer1").await;
    let (_, me) = api.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me["next"], json!(["enroll_passkey"]), "{me}");
    assert_eq!(me["passkey_required"], true);
    let search = json!({"plate": "7ABC123", "purpose": {"case_number": "26-000123", "offense": "211 PC", "reason": "robbery suspect vehicle"}});
    let (s, v) = api
        .call("POST", "/api/v1/search", Some(&token), Some(search.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let key = SoftKey::new();
    let (s, v) = register(&api, &token, &key, "phone").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = api
        .call("POST", "/api/v1/search", Some(&token), Some(search))
        .await;
    assert_eq!(s, StatusCode::OK);
    // The last passkey cannot be removed while one is required.
    let id = v["id"].as_i64().unwrap();
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/api/v1/me/passkeys/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("last_passkey"))
    );

    // Now a code is refused (not counted: both secrets were right).
    let (s, v) = api.sign_in("officer1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "passkey_required");
    assert_eq!(failed_logins(&api, "officer1").await, 0);
    // Other roles keep their codes.
    assert_eq!(api.sign_in("capt").await.0, StatusCode::OK);
    let admin = api.sign_in_ok("capt").await;

    // Lost phone: the administrator removes the passkeys, with a reason.
    let (s, _) = api
        .call(
            "DELETE",
            "/api/v1/users/officer1/passkeys",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a reason is required");
    let (s, v) = api
        .call(
            "DELETE",
            "/api/v1/users/officer1/passkeys?reason=lost%20phone%2C%20identity%20checked",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, v["removed"].clone()), (StatusCode::OK, json!(1)), "{v}");
    let (s, _) = api
        .call(
            "DELETE",
            "/api/v1/users/officer1/passkeys?reason=again",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an officer cannot reset passkeys");
    let reset = api
        .since(start_of_test)
        .0
        .into_iter()
        .find(|e| e.kind == "passkeys_reset")
        .unwrap();
    assert!(reset.details.contains("lost phone"), "{}", reset.details);
    // The code works again, for adding a new passkey.
    let token = api.sign_in_ok("officer1").await;
    let (_, me) = api.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me["next"], json!(["enroll_passkey"]));

    // Taking the role off the list is a weakening to confirm.
    policy["accounts"]["passkey_roles"] = json!([]);
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&admin), Some(policy))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("accounts.passkey_roles"), "{v}");
}

#[tokio::test]
async fn hostile_passkey_requests_are_refused_by_name() {
    let mut api = with_passkeys().await;
    let officer = api.officer.clone();
    // Malformed answers.
    let (_, start) = api
        .call("POST", "/api/v1/me/passkeys/options", Some(&officer), None)
        .await;
    for credential in [
        json!({}),
        json!("x"),
        json!({"id": "AA", "rawId": "!!", "type": "public-key", "response": {}}),
    ] {
        let (s, v) = api
            .call("POST", "/api/v1/me/passkeys", Some(&officer),
                Some(json!({"challenge_id": start["challenge_id"], "name": "x", "credential": credential})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    // A good answer to an unknown, huge or used challenge.
    let key = SoftKey::new();
    let (_, start) = api
        .call("POST", "/api/v1/me/passkeys/options", Some(&officer), None)
        .await;
    let credential = key.create(&start["options"], ORIGIN);
    for challenge in [json!("0".repeat(32)), json!("z".repeat(100_000))] {
        let (s, v) = api
            .call("POST", "/api/v1/me/passkeys", Some(&officer),
                Some(json!({"challenge_id": challenge, "name": "x", "credential": credential.clone()})))
            .await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::PAYLOAD_TOO_LARGE,
            "{s} {v}"
        );
    }
    // A name of control characters only.
    let (s, v) = api
        .call("POST", "/api/v1/me/passkeys", Some(&officer),
            Some(json!({"challenge_id": start["challenge_id"], "name": "\u{7}\u{0}", "credential": credential})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // An oversized body.
    let big = format!("{{\"challenge_id\": \"{}\"}}", "a".repeat(100 * 1024));
    let req = Request::post("/api/v1/me/passkeys")
        .header(header::AUTHORIZATION, format!("Bearer {officer}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (s, _, _) = api.send(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Another person's passkey id is as absent as none.
    let admin = api.admin.clone();
    let (s, added) = register(&api, &admin, &SoftKey::new(), "desk").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/me/passkeys/{}", added["id"]),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No passkey: step 1 says so, after the password.
    let (s, v) = options(&api, "officer1", PASSWORD).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("no_passkey"))
    );
    // A code and a passkey at once.
    let (s, _) = api
        .call("POST", "/api/v1/session", None,
            Some(json!({"username": "officer1", "password": PASSWORD, "totp": "123456", "passkey": {"challenge_id": "x", "credential": {}}})))
        .await;
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY, "{s}");
    // Without --public-url, a server reached by another name has no passkeys.
    api = api_without_rp(api);
    let req = Request::post("/api/v1/me/passkeys/options")
        .header(header::AUTHORIZATION, format!("Bearer {officer}"))
        .header(header::HOST, "alpr.agency.example")
        .body(Body::empty())
        .unwrap();
    let (s, v, _) = api.send(req).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("passkeys_unavailable"))
    );
    assert!(v.to_string().contains("--public-url"), "{v}");
    // On localhost it works (the demo, a workstation).
    let req = Request::post("/api/v1/me/passkeys/options")
        .header(header::AUTHORIZATION, format!("Bearer {officer}"))
        .header(header::HOST, "localhost:8080")
        .body(Body::empty())
        .unwrap();
    let (s, v, _) = api.send(req).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["options"]["publicKey"]["rp"]["id"], "localhost");
}

fn api_without_rp(mut api: Api) -> Api {
    let state = AppState {
        passkey_rp: Default::default(),
        ..api.state.clone()
    };
    api.app = router(state.clone(), LIMIT);
    api.state = state;
    api
}
