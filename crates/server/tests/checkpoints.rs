//! Signed checkpoints of the audit log over the API (SPEC R4.5; issue 22
//! finding 2): published to auditors, the public and in every report;
//! the proof against a saved one; the alarmed start and its
//! acknowledgment.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use platekeeper_core::checkpoint::OnTamper;
use platekeeper_server::{router, AppState};
use platekeeper_store::Store;
use serde_json::json;
use support::{api, Api, LIMIT};

/// Reopens the API's store as the server would at its next start.
fn restart(api: &mut Api, on_tamper: Option<OnTamper>) -> Result<(), String> {
    let dir = api.store.dir().to_path_buf();
    let store = Store::open_with(&dir, support::store_options(&dir, on_tamper, api.now()))
        .map_err(|e| e.to_string())?;
    let store = Arc::new(store);
    let c = api.clock.clone();
    api.app = router(
        AppState {
            alerts: api.alerts.clone(),
            store: store.clone(),
            clock: Arc::new(move || c.load(std::sync::atomic::Ordering::SeqCst)),
            recognition: Default::default(),
            ops: Default::default(),
            devices: Default::default(),
            passkey_rp: Default::default(),
        },
        LIMIT,
    );
    api.store = store;
    Ok(())
}

#[tokio::test]
async fn checkpoints_are_published_and_prove_the_log() {
    let api = api().await;
    let (s, v) = api
        .call("GET", "/api/v1/audit/checkpoint", Some(&api.admin), None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_checkpoint"))
    );
    let (s, _) = api
        .call("POST", "/api/v1/audit/checkpoint", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "officers do not sign the log");
    let (s, signed) = api
        .call("POST", "/api/v1/audit/checkpoint", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{signed}");
    for field in [
        "entries",
        "head",
        "time",
        "signature",
        "public_key",
        "store_id",
    ] {
        assert!(!signed[field].is_null(), "{field}: {signed}");
    }
    assert_eq!(
        signed["time"],
        platekeeper_core::read::format_time_ms(api.now())
    );
    let (_, latest) = api
        .call("GET", "/api/v1/audit/checkpoint", Some(&api.admin), None)
        .await;
    assert_eq!(latest, signed);

    // The public page carries it, in JSON and HTML.
    let (s, public) = api
        .call("GET", "/transparency?format=json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(public["checkpoint"], signed);
    let (_, _, html) = api
        .send(
            axum::http::Request::get("/transparency?lang=es")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("Punto de control") && html.contains(signed["public_key"].as_str().unwrap())
    );

    // Every audit report carries a fresh one (the report's own entry
    // comes after it), in JSON, CSV and HTML.
    let (s, report) = api
        .call(
            "GET",
            "/api/v1/audit/report?period=2026",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let in_report = &report["log_checkpoint"];
    assert!(in_report["entries"].as_i64().unwrap() >= signed["entries"].as_i64().unwrap());
    assert_eq!(in_report["public_key"], signed["public_key"]);
    for format in ["csv", "html"] {
        let (_, _, body) = api
            .send(
                axum::http::Request::get(format!(
                    "/api/v1/audit/report?period=2026&format={format}"
                ))
                .header("authorization", format!("Bearer {}", api.admin))
                .body(axum::body::Body::empty())
                .unwrap(),
            )
            .await;
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains(signed["public_key"].as_str().unwrap()),
            "{format}"
        );
    }

    // The proof, from the checkpoint itself, the public page's JSON or a
    // report.
    for doc in [signed.clone(), public.clone(), report.clone()] {
        let (s, p) = api
            .call("POST", "/api/v1/audit/verify", Some(&api.admin), Some(doc))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(p["ok"], true, "{p}");
    }
    let mut forged = signed.clone();
    forged["entries"] = json!(signed["entries"].as_i64().unwrap() - 1);
    let (_, p) = api
        .call(
            "POST",
            "/api/v1/audit/verify",
            Some(&api.admin),
            Some(forged),
        )
        .await;
    assert_eq!(p["ok"], false);
    assert!(
        p["problem"]
            .as_str()
            .unwrap()
            .contains("not validly signed"),
        "{p}"
    );
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/audit/verify",
            Some(&api.admin),
            Some(json!({"entries": 3})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );

    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["alarm"].is_null());
    assert_eq!(v["checkpoint"]["public_key"], signed["public_key"]);

    let (_, doc) = api.call("GET", "/api/openapi.json", None, None).await;
    for (path, method) in [
        ("/api/v1/audit/checkpoint", "get"),
        ("/api/v1/audit/checkpoint", "post"),
        ("/api/v1/audit/verify", "get"),
        ("/api/v1/audit/verify", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from OpenAPI"
        );
    }

    // A consistent rewrite with every checkpoint on the machine removed:
    // the plain check passes, the saved checkpoint does not.
    support::rewrite_log(api.store.dir(), None, true);
    support::tamper(api.store.dir(), "DELETE FROM checkpoints");
    if !support::on_postgres() {
        std::fs::remove_file(api.store.dir().join("log-checkpoint.json")).unwrap();
    }
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], true, "undetectable without a checkpoint: {v}");
    let (_, p) = api
        .call(
            "POST",
            "/api/v1/audit/verify",
            Some(&api.admin),
            Some(signed.clone()),
        )
        .await;
    assert_eq!(p["ok"], false);
    assert!(p["problem"].as_str().unwrap().contains("rewritten"), "{p}");
}

/// Issue 22 finding 2: the tail cut off with the head file rewritten to
/// match; at the next start the log no longer extends its checkpoint. By
/// default the store refuses to open; alarmed, the administrator and
/// auditors see it until one of them acknowledges it.
#[tokio::test]
async fn an_alarmed_start_is_shown_until_acknowledged() {
    let mut api = api().await;
    api.ready_user("audit1", platekeeper_core::Role::Auditor)
        .await;
    let auditor = api.sign_in_ok("audit1").await;
    let (_, signed) = api
        .call("POST", "/api/v1/audit/checkpoint", Some(&api.admin), None)
        .await;
    let n = signed["entries"].as_i64().unwrap();
    support::rewrite_log(api.store.dir(), Some(n - 2), false);

    let err = restart(&mut api, None).unwrap_err();
    assert!(
        err.contains(&format!("the log ends at entry {}", n - 2)),
        "{err}"
    );
    restart(&mut api, Some(OnTamper::Alarm)).unwrap();

    let (s, v, _) = api
        .send(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str(), v["log_alarm"].as_bool()),
        (StatusCode::OK, Some("log_alarm"), Some(true))
    );
    for token in [&api.admin, &auditor] {
        let (_, v) = api
            .call("GET", "/api/v1/audit/verify", Some(token), None)
            .await;
        assert_eq!(v["ok"], false, "{v}");
        assert!(
            v["alarm"]["problem"]
                .as_str()
                .unwrap()
                .contains("entries were removed"),
            "{v}"
        );
        // The full walk finds it too (the kept checkpoint is past the end).
        assert!(
            v["problem"].as_str().unwrap().contains("vouches for"),
            "{v}"
        );
    }
    let (_, log) = api
        .call(
            "GET",
            "/api/v1/audit/log?kind=log_tamper_detected",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");

    let (s, e) = api
        .call("POST", "/api/v1/audit/checkpoint", Some(&auditor), None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("log_alarm")),
        "{e}"
    );
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/audit/checkpoint",
            Some(&auditor),
            Some(json!({"acknowledge_alarm": " "})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_acknowledgment")
        )
    );
    let (s, e) = api
        .call(
            "POST",
            "/api/v1/audit/checkpoint",
            Some(&auditor),
            Some(json!({"acknowledge": "x"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {e}"
    );
    // A report made while alarmed says so, and carries the last good
    // checkpoint rather than a new one.
    let (_, report) = api
        .call(
            "GET",
            "/api/v1/audit/report?period=2026",
            Some(&auditor),
            None,
        )
        .await;
    assert!(report["log_alarm"]
        .as_str()
        .unwrap()
        .contains("entries were removed"));
    assert_eq!(report["log_checkpoint"], signed);

    let (s, c) = api
        .call(
            "POST",
            "/api/v1/audit/checkpoint",
            Some(&auditor),
            Some(json!({"acknowledge_alarm": "two sign-in entries lost in a disk restore; ticket 4411"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["alarm"].is_null());
    assert_eq!(v["checkpoint"], c);
    let (_, v, _) = api
        .send(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(v["status"], "ok");
    let (_, log) = api
        .call(
            "GET",
            "/api/v1/audit/log?kind=log_alarm_acknowledged",
            Some(&api.admin),
            None,
        )
        .await;
    let ack = &log["entries"][0];
    assert_eq!(ack["username"], "audit1");
    assert!(ack["details"]["note"]
        .as_str()
        .unwrap()
        .contains("ticket 4411"));
    // The next start is clean.
    restart(&mut api, None).unwrap();
}

/// A key replaced (here deleted; the server makes a new one) leaves the
/// chain itself intact: the verification then reports the alarm as its
/// problem, so an intact chain never reads as "ok" while alarmed.
#[tokio::test]
async fn a_replaced_key_alarms_even_though_the_chain_is_intact() {
    let mut api = api().await;
    let (s, _) = api
        .call("POST", "/api/v1/audit/checkpoint", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    std::fs::remove_file(
        api.store
            .dir()
            .join(platekeeper_store::checkpoint::KEY_FILE),
    )
    .unwrap();
    let err = restart(&mut api, None).unwrap_err();
    assert!(err.contains("the key was replaced"), "{err}");
    restart(&mut api, Some(OnTamper::Alarm)).unwrap();
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad"], v["alarm"]["entry"], "{v}");
    let problem = v["problem"].as_str().unwrap();
    assert!(
        problem.contains("started alarmed") && problem.contains("the key was replaced"),
        "{v}"
    );
}
