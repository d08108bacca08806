//! What operators rely on when things go wrong (issue 22): `/metrics`
//! only for the holder of its token or on its own listener (finding 10),
//! a full data disk answered with 507 and reported by `/healthz`
//! (finding 11), and one camera's pictures unable to make the others'
//! wait (finding 14).

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use platekeeper_server::ops::{MetricsAccess, Ops, Storage};
use platekeeper_server::recognition::{Recognition, RecognitionLimits};
use platekeeper_server::{router, AppState, Config};
use serde_json::{json, Value};
use support::{api, Api, LIMIT, NOW};
use tower::ServiceExt;

async fn send(app: &Router, mut req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, v)
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn post_reads(key: &str, reads: Value) -> Request<Body> {
    Request::post("/api/v1/reads")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "reads": reads }).to_string()))
        .unwrap()
}

fn with_ops(api: &Api, ops: Ops) -> Router {
    router(
        AppState {
            ops,
            ..api.state.clone()
        },
        LIMIT,
    )
}

fn read(n: u32, plate: &str) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "plate": plate,
        "state": "CA",
        "ts": platekeeper_core::read::format_time_ms(NOW - 30_000),
    })
}

const TOKEN: &str = "metrics-token-0123456789";

#[tokio::test]
async fn metrics_answer_only_with_the_token_or_on_their_own_listener() {
    // Issue 22 finding 10.
    let api = api().await;
    platekeeper_server::ops::register_metrics();
    let (s, _, v) = send(&api.app, get("/metrics", None)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("metrics_disabled")),
        "off unless configured"
    );

    let mut config = Config::new(api._dir.path(), "127.0.0.1:0".parse().unwrap());
    config.metrics_token = Some("too-short".into());
    assert!(config.metrics_access().is_err(), "a short token is refused");
    config.metrics_token = Some(TOKEN.into());
    let (main, own) = config.metrics_access().unwrap();
    let app = with_ops(
        &api,
        Ops {
            metrics: main,
            ..Ops::default()
        },
    );
    for token in [
        None,
        Some("metrics-token-0123456780"),
        Some(api.admin.as_str()),
    ] {
        let (s, _, v) = send(&app, get("/metrics", token)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_metrics_token")),
            "{token:?}"
        );
    }
    let (s, headers, v) = send(&app, get("/metrics", Some(TOKEN))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        v.as_str().unwrap().contains("platekeeper_distinct_plates"),
        "{v}"
    );
    assert!(
        v.as_str().unwrap().contains("platekeeper_node_info{node="),
        "the node is named: {v}"
    );
    assert!(matches!(own, MetricsAccess::Off), "no metrics listener");

    // A metrics listener: the main address answers 404, the listener
    // answers (with the token, when one is also set).
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    config.metrics_token = None;
    let (main, own) = config.metrics_access().unwrap();
    let app = with_ops(
        &api,
        Ops {
            metrics: main,
            ..Ops::default()
        },
    );
    let (s, _, _) = send(&app, get("/metrics", Some(TOKEN))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut state = api.state.clone();
    state.ops.metrics = own;
    let listener = platekeeper_server::ops::metrics_router(state);
    let (s, _, _) = send(&listener, get("/metrics", None)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(&listener, get("/healthz", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "only /metrics there");
}

#[tokio::test]
async fn a_full_disk_is_answered_507_and_reported_by_the_health_check() {
    // Issue 22 finding 11. A floor above the disk's free space stands for
    // a full disk: the code path is the one a full disk takes (the real
    // free space, read with statvfs, under the floor). SQLITE_FULL and
    // ENOSPC themselves are mapped in the store's and error's unit tests.
    let api = api().await;
    let key = api.camera_key("cam-disk").await;
    let full = with_ops(
        &api,
        Ops {
            storage: Arc::new(Storage::new(api._dir.path(), u64::MAX)),
            ..Ops::default()
        },
    );
    let (s, headers, v) = send(&full, post_reads(&key, json!([read(1, "8DSK001")]))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("storage_full")),
        "{v}"
    );
    assert_eq!(headers[header::RETRY_AFTER], "60");
    let (s, _, v) = send(&full, get("/healthz", None)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["problems"][0]["code"], "storage_full", "{v}");
    assert!(v["storage_free_bytes"].as_u64().is_some(), "{v}");

    // Nothing was stored; with room again the same batch goes in.
    let roomy = with_ops(
        &api,
        Ops {
            storage: Arc::new(Storage::new(api._dir.path(), 1024)),
            ..Ops::default()
        },
    );
    let (s, _, v) = send(&roomy, get("/healthz", None)).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{v}"
    );
    // Which database, and whether it takes writes (issue 26).
    let backend = if support::on_postgres() {
        "postgres"
    } else {
        "embedded"
    };
    assert_eq!(v["database"]["backend"], backend, "{v}");
    assert_eq!(v["database"]["primary"], true, "{v}");
    assert_eq!(
        v["database"]["server"].is_string(),
        support::on_postgres(),
        "{v}"
    );
    let (s, _, v) = send(&roomy, post_reads(&key, json!([read(1, "8DSK001")]))).await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(1)), "{v}");
}

/// A picture from the vision crate's own test set, base64.
fn picture(name: &str) -> String {
    let path = format!("{}/../vision/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn picture_only(n: u32, field: &str, name: &str) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "ts": platekeeper_core::read::format_time_ms(NOW - 30_000),
        field: picture(name),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_camera_flooding_pictures_cannot_make_another_wait() {
    // Issue 22 finding 14: at most 2 pictures of a camera waiting or being
    // read, one picture read at a time in all.
    let api = api().await;
    let recognition = Recognition::new(RecognitionLimits {
        per_camera: 2,
        workers: 1,
    });
    let app = router(
        AppState {
            recognition: recognition.clone(),
            ..api.state.clone()
        },
        LIMIT,
    );
    let flood = api.camera_key("cam-flood").await;
    let other = api.camera_key("cam-other").await;
    let flood_num = api
        .store
        .authenticate_camera(&flood, api.now())
        .unwrap()
        .num;

    // The flooding camera's first batch takes both its places.
    let first = tokio::spawn({
        let (app, flood) = (app.clone(), flood.clone());
        async move {
            let reads = json!([
                picture_only(1, "vehicle_image", "scene_6TRW918.jpg"),
                picture_only(2, "vehicle_image", "scene_6TRW918.jpg"),
            ]);
            send(&app, post_reads(&flood, reads)).await
        }
    });
    let started = std::time::Instant::now();
    while recognition.in_progress() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "reading began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(recognition.pending(flood_num), 2);

    // More of its pictures are refused at once, not queued: with a text
    // read beside them, that read is stored and the pictures refused one
    // by one; alone, the batch gets 429 with Retry-After.
    let reads = json!([
        picture_only(3, "plate_image", "crop_8KXM402.png"),
        read(4, "7TXT004"),
    ]);
    let (s, headers, v) = send(&app, post_reads(&flood, reads)).await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(1)), "{v}");
    assert_eq!(v["rejected"][0]["code"], "recognition_busy", "{v}");
    assert_eq!(v["rejected"][0]["field"], "plate_image", "{v}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (s, headers, v) = send(
        &app,
        post_reads(
            &flood,
            json!([picture_only(5, "plate_image", "crop_DRV5521.png")]),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("recognition_busy")),
        "{v}"
    );
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    assert!(
        !first.is_finished(),
        "refused without waiting for the flood"
    );

    // Another camera's picture waits for at most the one being read, not
    // for the flooding camera's queue.
    let (s, _, v) = send(
        &app,
        post_reads(
            &other,
            json!([picture_only(6, "plate_image", "crop_7ABC123.png")]),
        ),
    )
    .await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(1)), "{v}");
    assert!(
        !first.is_finished(),
        "the other camera was served before the flood's second picture"
    );
    let (s, _, v) = first.await.unwrap();
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(2)), "{v}");
    assert_eq!(recognition.pending(flood_num), 0, "places given back");
    assert_eq!(recognition.in_progress(), 0);
}

/// R10.1 / issue 25: the database goes away under a camera's upload. The
/// camera is told 503 `database_unavailable` with `Retry-After` — never a
/// 2xx for a read that was not committed — and the same batch sent again
/// once the connections are renewed is stored, once. (PostgreSQL only:
/// the embedded store has no connection to lose.)
#[tokio::test]
async fn a_lost_database_answers_503_with_retry_after_and_the_resend_is_stored_once() {
    if !support::on_postgres() {
        return;
    }
    let api = support::api().await;
    let key = api.camera_key("cam-db").await;
    let reads = serde_json::json!([{
        "id": "00000000-0000-4000-8000-0000000000d1",
        "plate": "8DBL055",
        "ts": platekeeper_core::read::format_time_ms(api.now() - 60_000)
    }]);
    // The camera's registration told every node (this one too) to reload
    // its cameras; that reload is let happen first, so the next request
    // is the one that meets the dead connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api.store.camera("cam-db").is_some());
    support::drop_connections(api.store.dir());
    let mut refused = 0;
    let accepted = loop {
        let res = api
            .respond(
                axum::http::Request::post("/api/v1/reads")
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(
                        serde_json::json!({ "reads": reads }).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        let status = res.status();
        let retry = res.headers().get("retry-after").cloned();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if status.is_success() {
            break v;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["error"]["code"], "database_unavailable", "{v}");
        assert_eq!(retry.as_ref().and_then(|h| h.to_str().ok()), Some("5"));
        refused += 1;
        assert!(refused <= 16, "the pool keeps lending dead connections");
    };
    assert!(refused >= 1, "the dropped connection was not noticed");
    assert_eq!(accepted["accepted"], 1, "{accepted}");
    // Sent once more: a duplicate, not a second copy.
    let (s, v) = api.post_reads(&key, reads).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(api.store.read_count().unwrap(), 1);
}
