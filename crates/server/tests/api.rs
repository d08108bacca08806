//! The HTTP API in-process against a real store in a temporary folder
//! (SPEC R1.1–R1.5, R2, R4.3, R10.3, R10.4). Each test drives the router
//! exactly as a client would, request by request.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use support::{api, Api, LIMIT, NOW};

impl Api {
    /// Who a request is sent as when a test does not say: the
    /// administrator for administration, the officer for searches.
    fn default_token(&self, path: &str) -> String {
        if path.starts_with("/api/v1/cameras") || path.starts_with("/api/v1/users") {
            self.admin.clone()
        } else {
            self.officer.clone()
        }
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.post_raw(path, key, body.to_string().into_bytes())
            .await
    }

    /// `key`: a camera's key for ingest; `None` sends the default person's
    /// session token.
    async fn post_raw(&self, path: &str, key: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let token = key
            .map(String::from)
            .unwrap_or_else(|| self.default_token(path));
        let b = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let (s, v, _) = self.send(b.body(Body::from(body)).unwrap()).await;
        (s, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value, Vec<u8>) {
        let token = self.default_token(path);
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn camera(&self, id: &str, kind: &str, pos: Option<(f64, f64)>) -> String {
        let mut body = json!({"id": id, "name": format!("Camera {id}"), "kind": kind});
        if let Some((lat, lon)) = pos {
            body["lat"] = json!(lat);
            body["lon"] = json!(lon);
        }
        let (s, v) = self.post("/api/v1/cameras", None, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }
}

fn ts(offset_ms: i64) -> String {
    platekeeper_core::read::format_time_ms(NOW + offset_ms)
}

fn good_read(id: &str, plate: &str) -> Value {
    json!({"id": id, "plate": plate, "state": "CA", "ts": ts(-60_000), "lat": 37.8044, "lon": -122.2712, "confidence": 91.5})
}

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn purpose() -> Value {
    json!({"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"})
}

fn jpeg(fill: u8, len: usize) -> String {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.resize(len, fill);
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn cameras_are_registered_once_with_a_key_shown_once() {
    let api = api().await;
    let key = api.camera("cam-1", "fixed", Some((37.8, -122.27))).await;
    assert!(key.starts_with("pkc_") && key.len() > 60);
    let (s, v) = api
        .post(
            "/api/v1/cameras",
            None,
            &json!({"id": "cam-1", "name": "again", "kind": "fixed"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("camera_exists"))
    );
    for (body, code) in [
        (
            json!({"id": "c2", "name": "x", "kind": "drone"}),
            "invalid_camera",
        ),
        (
            json!({"id": "c 2; DROP TABLE", "name": "x", "kind": "fixed"}),
            "invalid_camera",
        ),
        (
            json!({"id": "c3", "name": "x", "kind": "fixed", "lat": 91, "lon": 0}),
            "invalid_coordinates",
        ),
        (
            json!({"id": "c4", "name": "x", "kind": "fixed", "lat": 37.0}),
            "invalid_coordinates",
        ),
        (
            json!({"id": "c5", "name": "", "kind": "fixed"}),
            "invalid_camera",
        ),
    ] {
        let (s, v) = api.post("/api/v1/cameras", None, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(v["error"]["code"], code, "{body}");
    }
    api.camera("cam-2", "mobile", None).await;
    api.camera("cam-3", "mobile", None).await;
    let (_, list, _) = api.get("/api/v1/cameras?limit=2").await;
    assert_eq!(list["cameras"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("pkc_"), "keys are never listed");
    let cursor = list["next_cursor"].as_str().unwrap().to_string();
    let (_, rest, _) = api
        .get(&format!("/api/v1/cameras?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["cameras"][0]["id"], "cam-3");
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=5000", "cursor=x", "limit=-1"] {
        let (s, v, _) = api.get(&format!("/api/v1/cameras?{bad}")).await;
        assert!(
            s.is_client_error() && v["error"]["code"].is_string(),
            "{bad}: {s} {v}"
        );
    }
}

#[tokio::test]
async fn a_batch_is_stored_once_and_resending_never_duplicates() {
    let api = api().await;
    let key = api
        .camera("cam-1", "fixed", Some((37.8044, -122.2712)))
        .await;
    let batch = json!({"reads": [good_read(&uuid(1), "7ABC123"), good_read(&uuid(2), "7abc-124")]});
    let (s, v) = api.post("/api/v1/reads", Some(&key), &batch).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"accepted": 2, "duplicates": 0, "rejected": []}));
    let (s, v) = api.post("/api/v1/reads", Some(&key), &batch).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"accepted": 0, "duplicates": 2, "rejected": []}));
    assert_eq!(api.store.read_count().unwrap(), 2);
}

#[tokio::test]
async fn one_bad_read_never_loses_the_good_ones() {
    let api = api().await;
    let key = api.camera("car-7", "mobile", None).await;
    let mut reads = vec![good_read(&uuid(100), "GOOD001")];
    let mut bad = |patch: Value| {
        let mut r = good_read(&uuid(reads.len() as u32 + 100), "BAD0001");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                r.as_object_mut().unwrap().remove(k);
            } else {
                r[k] = v.clone();
            }
        }
        reads.push(r);
    };
    bad(json!({"plate": "7AB$123"}));
    bad(json!({"plate": "🚗🚗"}));
    bad(json!({"plate": "'; DROP TABLE reads; --"}));
    bad(json!({"plate": "ABCDEFGHIJK"}));
    bad(json!({"plate": null}));
    bad(json!({"lat": 95.0}));
    bad(json!({"lon": -181.0}));
    bad(json!({"lat": null, "lon": null}));
    bad(json!({"ts": ts(10 * 60_000)}));
    bad(json!({"ts": "1999-12-31T23:59:59Z"}));
    bad(json!({"ts": "last tuesday"}));
    bad(json!({"id": "not-a-uuid"}));
    bad(json!({"state": "XX"}));
    bad(json!({"confidence": 250}));
    bad(json!({"heading": -5}));
    bad(json!({"lat": "north"}));
    bad(json!({"vehicle_image": jpeg(1, 2 * 1024 * 1024 + 10)}));
    bad(
        json!({"plate_image": base64::engine::general_purpose::STANDARD.encode(b"GIF89a not a jpeg")}),
    );
    bad(json!({"plate_image": "@@@ not base64 @@@"}));
    reads.push(json!("a string, not a read"));
    reads.push(good_read(&uuid(999), "GOOD002"));
    let n = reads.len();
    let (s, v) = api
        .post("/api/v1/reads", Some(&key), &json!({"reads": reads}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2);
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), n - 2);
    let codes: Vec<&str> = rejected
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "invalid_plate",
            "invalid_plate",
            "invalid_plate",
            "invalid_plate",
            "missing_field",
            "invalid_coordinates",
            "invalid_coordinates",
            "missing_field",
            "timestamp_in_future",
            "timestamp_too_old",
            "invalid_timestamp",
            "invalid_id",
            "invalid_state",
            "invalid_confidence",
            "invalid_heading",
            "invalid_type",
            "image_too_large",
            "image_not_jpeg_or_png",
            "invalid_image_encoding",
            "invalid_read",
        ]
    );
    for r in rejected {
        let field = r["field"].as_str().unwrap();
        assert!(
            r["message"].as_str().unwrap().contains(field) || field == "read",
            "{r}"
        );
    }
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(api.store.read_count().unwrap(), 2);
}

#[tokio::test]
async fn a_batch_of_only_bad_reads_is_a_422_naming_the_first_problem() {
    let api = api().await;
    let key = api.camera("cam-1", "fixed", Some((37.8, -122.27))).await;
    let (s, v) = api
        .post(
            "/api/v1/reads",
            Some(&key),
            &json!({"reads": [{"id": uuid(1), "plate": "??", "ts": ts(0)}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_plate");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("reads[0]."));
    assert_eq!(v["rejected"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_bodies_and_credentials_get_clear_errors() {
    let api = api().await;
    let key = api.camera("cam-1", "fixed", Some((37.8, -122.27))).await;
    let body = json!({"reads": [good_read(&uuid(1), "7ABC123")]});
    let (s, v) = api
        .call("POST", "/api/v1/reads", None, Some(body.clone()))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_credentials"))
    );
    let (s, v) = api.post("/api/v1/reads", Some("pkc_wrong"), &body).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_camera_key"))
    );
    let (s, v) = api
        .post_raw("/api/v1/reads", Some(&key), b"{\"reads\": [".to_vec())
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (s, v) = api
        .post("/api/v1/reads", Some(&key), &json!({"read": []}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, v) = api
        .post_raw("/api/v1/reads", Some(&key), deep.into_bytes())
        .await;
    assert!(s.is_client_error(), "{s} {v}");
    let huge = vec![b' '; LIMIT + 10];
    let (s, v) = api.post_raw("/api/v1/reads", Some(&key), huge).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    let (s, v) = api
        .post("/api/v1/reads", Some(&key), &json!({"reads": many}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("batch_too_large"))
    );
    let req = Request::post("/api/v1/reads")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (s, v, _) = api.send(req).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    assert_eq!(api.store.read_count().unwrap(), 0);
}

#[tokio::test]
async fn openalpr_webhooks_are_ingested_idempotently() {
    let api = api().await;
    let key = api
        .camera("agent-1", "fixed", Some((37.8044, -122.2712)))
        .await;
    let results = json!({
        "version": 2, "data_type": "alpr_results", "epoch_time": NOW - 30_000,
        "img_width": 1920, "img_height": 1080, "processing_time_ms": 80.2,
        "uuid": "AGENTUID-1234-1795000000000", "camera_id": 1234, "agent_uid": "AGENTUID",
        "results": [
            {"plate": "5ZLC197", "confidence": 91.4, "region": "us-ca", "region_confidence": 88, "plate_index": 0,
             "coordinates": [{"x": 1, "y": 2}], "candidates": [{"plate": "5ZLC197", "confidence": 91.4}]},
            {"plate": "8XYZ001", "confidence": 80.0, "region": "us", "plate_index": 1}
        ]
    });
    let (s, v) = api
        .post("/api/v1/ingest/openalpr", Some(&key), &results)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2);
    let (_, v) = api
        .post("/api/v1/ingest/openalpr", Some(&key), &results)
        .await;
    assert_eq!(v["duplicates"], 2);
    let group = json!({
        "data_type": "alpr_group", "version": 2, "epoch_start": NOW - 20_000, "epoch_end": NOW - 19_000,
        "camera_id": 1234, "agent_uid": "AGENTUID", "best_plate_number": "6ABC777", "best_confidence": 94.2,
        "best_region": "ca", "best_uuid": "AGENTUID-1234-1794999980000", "travel_direction": 271.5,
        "gps_latitude": 37.81, "gps_longitude": -122.26, "vehicle_crop_jpeg": jpeg(3, 500),
        "best_plate": {"plate": "6ABC777", "confidence": 94.2, "plate_crop_jpeg": jpeg(4, 200)}
    });
    let (s, v) = api
        .post("/api/v1/ingest/openalpr", Some(&key), &group)
        .await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (s, v) = api
        .post(
            "/api/v1/ingest/openalpr",
            Some(&key),
            &json!({"data_type": "heartbeat"}),
        )
        .await;
    assert_eq!((s, v["accepted"].as_u64()), (StatusCode::OK, Some(0)));
    let (s, v) = api
        .post(
            "/api/v1/ingest/openalpr",
            Some(&key),
            &json!({"data_type": "alpr_alert"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("unsupported_data_type")
        )
    );
    let (s, v) = api
        .post(
            "/api/v1/ingest/openalpr",
            Some(&key),
            &json!({"data_type": "alpr_results", "results": []}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("missing_field"))
    );

    for (body, status, code) in [
        (
            json!({"data_type": "alpr_results", "epoch_time": "yesterday", "results": []}),
            422,
            "invalid_type",
        ),
        (json!({"data_type": 5}), 422, "invalid_type"),
        (json!([1, 2, 3]), 422, "invalid_body"),
        (
            json!({"data_type": "alpr_results", "epoch_time": NOW, "results": "none"}),
            422,
            "missing_field",
        ),
        (
            json!({"data_type": "alpr_group", "best_plate_number": "7ABC123"}),
            422,
            "missing_field",
        ),
        (
            json!({"data_type": "alpr_group", "epoch_start": NOW, "best_plate_number": "7ABC123",
                "vehicle_crop_jpeg": "!!!"}),
            422,
            "invalid_image_encoding",
        ),
        (
            json!({"data_type": "alpr_results", "epoch_time": NOW, "uuid": "u",
                "results": vec![json!({"plate": "7ABC123"}); 10_001]}),
            413,
            "batch_too_large",
        ),
    ] {
        let (s, v) = api.post("/api/v1/ingest/openalpr", Some(&key), &body).await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str()),
            (status, Some(code)),
            "{v}"
        );
    }
    // A frame whose plates are all unreadable is refused as a whole.
    let bad = json!({"data_type": "alpr_results", "epoch_time": NOW, "uuid": "u2", "results": [{"plate": "!!"}]});
    let (s, v) = api.post("/api/v1/ingest/openalpr", Some(&key), &bad).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (422, Some("invalid_plate"))
    );

    // The group read kept its own GPS position, heading and images.
    let (s, v) = api
        .post(
            "/api/v1/search",
            None,
            &json!({"plate": "6ABC777", "purpose": purpose()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = &v["results"][0];
    assert_eq!(
        (r["lat"].as_f64(), r["heading"].as_u64()),
        (Some(37.81), Some(271))
    );
    let (s, _, bytes) = api.get(r["image_url"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bytes.len(), 500);
    let (s, _, bytes) = api.get(r["plate_image_url"].as_str().unwrap()).await;
    assert_eq!((s, bytes.len()), (StatusCode::OK, 200));
    // An unknown region is dropped, not a reason to lose the read.
    let (_, v) = api
        .post(
            "/api/v1/search",
            None,
            &json!({"plate": "8XYZ001", "purpose": purpose()}),
        )
        .await;
    assert_eq!(v["results"][0]["state"], Value::Null);
}

async fn seeded() -> (Api, String) {
    let api = api().await;
    let key = api
        .camera("cam-1", "fixed", Some((37.8044, -122.2712)))
        .await;
    let mobile = api.camera("car-7", "mobile", None).await;
    let reads: Vec<Value> = ["7ABC123", "7ABX129", "8ABC123", "14KX221", "7A8C123"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut r = good_read(&uuid(i as u32), p);
            r["ts"] = json!(ts(-(i as i64 + 1) * 600_000));
            r
        })
        .collect();
    let (s, _) = api
        .post("/api/v1/reads", Some(&key), &json!({"reads": reads}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let far = json!({"id": uuid(50), "plate": "FAR0001", "ts": ts(-300_000), "lat": 37.9, "lon": -122.27});
    let (s, _) = api
        .post("/api/v1/reads", Some(&mobile), &json!({"reads": [far]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    (api, key)
}

fn result_plates(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["plate"].as_str().unwrap().to_string())
        .collect();
    p.sort();
    p
}

#[tokio::test]
async fn search_by_plate_pattern_misread_and_area() {
    let (api, _) = seeded().await;
    let search = |body: Value| {
        let api = &api;
        async move {
            let mut body = body;
            body["purpose"] = purpose();
            api.post("/api/v1/search", None, &body).await
        }
    };
    let (s, v) = search(json!({"plate": "7ABC123"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(result_plates(&v), ["7ABC123"]);
    let r = &v["results"][0];
    for field in [
        "read_id",
        "plate",
        "state",
        "ts",
        "lat",
        "lon",
        "camera",
        "confidence",
    ] {
        assert!(!r[field].is_null(), "{field} missing in {r}");
    }
    assert!(v["access_id"].as_i64().unwrap() > 0);
    assert_eq!(
        result_plates(&search(json!({"plate": "7AB?12*"})).await.1),
        ["7ABC123", "7ABX129"]
    );
    assert_eq!(
        result_plates(&search(json!({"plate": "*4KX*"})).await.1),
        ["14KX221"]
    );
    assert_eq!(
        result_plates(&search(json!({"plate": "7ABC123", "fuzzy": true})).await.1),
        ["7A8C123", "7ABC123"]
    );
    let near = json!({"near": {"lat": 37.8044, "lon": -122.2712, "radius_m": 500}, "from": ts(-3_600_000), "to": ts(0)});
    assert_eq!(result_plates(&search(near).await.1).len(), 5);
    let poly = json!({"polygon": [{"lat": 37.89, "lon": -122.28}, {"lat": 37.89, "lon": -122.26}, {"lat": 37.91, "lon": -122.26}],
                      "from": ts(-3_600_000), "to": ts(0)});
    assert_eq!(result_plates(&search(poly).await.1), ["FAR0001"]);
    let (_, v) = search(json!({"plate": "7ABC123", "from": ts(-60_000), "to": ts(0)})).await;
    assert!(result_plates(&v).is_empty(), "outside the window");
    let (_, v) =
        search(json!({"plate": "*AB*", "camera": "car-7", "from": ts(-86_400_000), "to": ts(0)}))
            .await;
    assert!(result_plates(&v).is_empty());
    let (_, v) = search(json!({"plate": "*AB*", "state": "NV"})).await;
    assert!(result_plates(&v).is_empty());
    // Paging: one result per page, following cursors.
    let mut body = json!({"plate": "*ABC*", "limit": 1});
    let mut seen = Vec::new();
    loop {
        let (_, v) = search(body.clone()).await;
        seen.extend(result_plates(&v));
        match v["next_cursor"].as_str() {
            Some(c) => body["cursor"] = json!(c),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["7ABC123", "8ABC123"]);
}

#[tokio::test]
async fn searches_are_refused_without_a_purpose_or_with_bad_input() {
    let (api, _) = seeded().await;
    let before = api.store.access_count().unwrap();
    let cases = [
        (json!({"plate": "7ABC123"}), "purpose_insufficient"),
        (
            json!({"plate": "7ABC123", "purpose": {"case_number": "", "offense": "211", "reason": "x"}}),
            "purpose_insufficient",
        ),
        (
            json!({"plate": "7A$", "purpose": purpose()}),
            "invalid_plate",
        ),
        (
            json!({"plate": "*A*", "purpose": purpose()}),
            "invalid_plate_pattern",
        ),
        (
            json!({"plate": "7ABC123", "from": "yesterday", "purpose": purpose()}),
            "invalid_timestamp",
        ),
        (
            json!({"near": {"lat": 37.8, "lon": -122.2, "radius_m": 500}, "purpose": purpose()}),
            "query_too_broad",
        ),
        (
            json!({"near": {"lat": 97.8, "lon": -122.2, "radius_m": 500}, "purpose": purpose()}),
            "invalid_area",
        ),
        (
            json!({"near": {"lat": 37.8, "lon": -122.2, "radius_m": -1}, "purpose": purpose()}),
            "invalid_area",
        ),
        (
            json!({"polygon": [{"lat": 1, "lon": 1}], "purpose": purpose()}),
            "invalid_area",
        ),
        (json!({"purpose": purpose()}), "query_too_broad"),
        (
            json!({"plate": "7ABC123", "camera": "nope", "purpose": purpose()}),
            "unknown_camera",
        ),
        (
            json!({"plate": "7ABC123", "state": "ZZ", "purpose": purpose()}),
            "invalid_state",
        ),
        (
            json!({"plate": "*AB*", "camera": "cam-1", "purpose": purpose()}),
            "query_too_broad",
        ),
        (
            json!({"plate": "7ABC123", "limit": 0, "purpose": purpose()}),
            "invalid_limit",
        ),
        (
            json!({"plate": "7ABC123", "limit": 1001, "purpose": purpose()}),
            "invalid_limit",
        ),
    ];
    for (body, code) in cases {
        let (s, v) = api.post("/api/v1/search", None, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(v["error"]["code"], code, "{body}");
    }
    let (s, v) = api
        .post(
            "/api/v1/search",
            None,
            &json!({"plate": "7ABC123", "cursor": "garbage", "purpose": purpose()}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    // Refused before any data is touched: none of these opened an access.
    assert_eq!(api.store.access_count().unwrap(), before);
}

#[tokio::test]
async fn every_search_and_image_view_is_logged_first() {
    let (api, _) = seeded().await;
    let before = api.store.access_count().unwrap();
    let (_, v) = api
        .post(
            "/api/v1/search",
            None,
            &json!({"plate": "7ABC123", "purpose": purpose()}),
        )
        .await;
    let id = v["access_id"].as_i64().unwrap();
    assert_eq!(api.store.access_count().unwrap(), before + 1);
    let rec = api.store.access_record(id).unwrap().unwrap();
    assert_eq!(rec.kind, "search");
    assert_eq!(rec.purpose.case_number, "26-004211");
    // No image on this read; an unknown access, an access that did not
    // return the read, and a missing access are refused.
    let read_id = v["results"][0]["read_id"].as_str().unwrap().to_string();
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_string);
    let (s, v2, _) = api
        .get(&format!("/api/v1/reads/{read_id}/image?access_id={id}"))
        .await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::NOT_FOUND, Some("no_image".into()))
    );
    // Issue 28: a look that found nothing returned nothing and is no
    // access; only the search above is.
    assert_eq!(api.store.access_count().unwrap(), before + 1);
    let (s, v2, _) = api
        .get(&format!("/api/v1/reads/{read_id}/image?access_id=999999"))
        .await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::NOT_FOUND, Some("unknown_access".into()))
    );
    let (_, other) = api
        .post(
            "/api/v1/search",
            None,
            &json!({"plate": "8ABC123", "purpose": purpose()}),
        )
        .await;
    let other_id = other["access_id"].as_i64().unwrap();
    let (s, v2, _) = api
        .get(&format!(
            "/api/v1/reads/{read_id}/image?access_id={other_id}"
        ))
        .await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::NOT_FOUND, Some("not_in_access".into()))
    );
    let (s, v2, _) = api.get(&format!("/api/v1/reads/{read_id}/image")).await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::BAD_REQUEST, Some("missing_access".into()))
    );
    let (s, v2, _) = api
        .get(&format!("/api/v1/reads/{read_id}/image?access_id=abc"))
        .await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::BAD_REQUEST, Some("invalid_query".into()))
    );
    let (s, v2, _) = api.get("/api/v1/reads/not-a-uuid/image?access_id=1").await;
    assert_eq!(
        (s, code(&v2)),
        (StatusCode::BAD_REQUEST, Some("invalid_id".into()))
    );
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let (api, _) = seeded().await;
    let (s, v, _) = api.get("/healthz").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert_eq!(v["distinct_plates"], 6);
    platekeeper_server::ops::register_metrics();
    let key = api.camera("cam-m", "fixed", Some((37.8, -122.27))).await;
    let _ = api
        .post(
            "/api/v1/reads",
            Some(&key),
            &json!({"reads": [good_read(&uuid(77), "MET0001")]}),
        )
        .await;
    // /metrics needs its token (issue 22 finding 10; see operations.rs).
    let (s, v, _) = api.get("/metrics").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("metrics_disabled"))
    );
    let mut state = api.state.clone();
    state.ops.metrics =
        platekeeper_server::ops::MetricsAccess::token("metrics-token-0123456789").unwrap();
    let resp = tower::ServiceExt::oneshot(
        platekeeper_server::router(state, LIMIT),
        Request::get("/metrics")
            .header(header::AUTHORIZATION, "Bearer metrics-token-0123456789")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("platekeeper_reads_accepted_total"), "{text}");
    assert!(text.contains("platekeeper_distinct_plates"));
    // Issue 28: how far logged changes share their commits.
    assert!(
        text.contains("platekeeper_log_commits") && text.contains("platekeeper_log_changes"),
        "{text}"
    );
    let (s, v, _) = api.get("/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/reads",
        "/api/v1/ingest/openalpr",
        "/api/v1/cameras",
        "/api/v1/search",
        "/api/v1/reads/{id}/image",
        "/healthz",
        "/metrics",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
}

/// A picture from the vision crate's own generated test set.
fn vision_picture(name: &str) -> String {
    let path = format!("{}/../vision/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap())
}

#[tokio::test]
async fn picture_only_reads_are_read_by_the_server() {
    // R9.1, R1.2 (issue 6): no plate text, a picture → the server reads it;
    // the recognizer's confidence is stored; unreadable pictures are refused
    // one by one, the good reads in the batch kept.
    let api = api().await;
    let key = api
        .camera("cam-pic", "fixed", Some((37.8044, -122.2712)))
        .await;
    let picture_only = |n: u32, field: &str, picture: String| {
        let mut r = good_read(&uuid(n), "");
        let o = r.as_object_mut().unwrap();
        o.remove("plate");
        o.remove("state");
        o.remove("confidence");
        o.insert(field.to_string(), json!(picture));
        r
    };
    let mut grey = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]))
        .write_to(&mut grey, image::ImageFormat::Png)
        .unwrap();
    let grey = base64::engine::general_purpose::STANDARD.encode(grey.into_inner());
    let reads = json!({"reads": [
        picture_only(1, "vehicle_image", vision_picture("scene_6TRW918.jpg")),
        picture_only(2, "plate_image", vision_picture("crop_7ABC123.png")),
        picture_only(3, "vehicle_image", grey),
        picture_only(4, "vehicle_image", jpeg(7, 4000)),
        good_read(&uuid(5), "GOOD005"),
    ]});
    let (s, v) = api.post("/api/v1/reads", Some(&key), &reads).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 3, "{v}");
    let rejected: Vec<(u64, &str, &str)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "no_plate_found", "vehicle_image"),
            (3, "invalid_image", "vehicle_image")
        ]
    );
    for (plate, state) in [("6TRW918", "CA"), ("7ABC123", "CA")] {
        let (s, v) = api
            .post(
                "/api/v1/search",
                None,
                &json!({"plate": plate, "purpose": purpose()}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(result_plates(&v), [plate], "{v}");
        let r = &v["results"][0];
        assert_eq!(r["state"], state, "the layout's state guess is kept");
        let c = r["confidence"].as_f64().unwrap();
        assert!(c > 0.0 && c <= 100.0, "recognizer confidence stored: {c}");
    }
}

/// Issue 22 finding 8: camera keys could be neither rotated nor revoked.
/// A rotation keeps the old key for the grace period the administrator
/// sets; a revocation stops every key of the camera at once.
#[tokio::test]
async fn camera_keys_are_rotated_with_a_grace_period_and_revoked_at_once() {
    let mut api = api().await;
    let old = api
        .camera("cam-1", "fixed", Some((37.8044, -122.2712)))
        .await;
    let other = api.camera("cam-2", "mobile", None).await;
    let send = |n: u32| json!({"reads": [good_read(&uuid(n), "7ABC123")]});

    // Only the administrator rotates and revokes, and names a real camera.
    api.ready_user("an1", platekeeper_core::Role::Analyst).await;
    let analyst = api.sign_in_ok("an1").await;
    let (s, _) = api
        .call("POST", "/api/v1/cameras/cam-1/rotate", Some(&analyst), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api
        .post("/api/v1/cameras/nope/rotate", None, &json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_camera"))
    );
    for bad in [
        json!({"grace_minutes": -1}),
        json!({"grace_minutes": 10081}),
        json!({"grace_minutes": "soon"}),
        json!({"grace": 5}),
    ] {
        let (s, v) = api.post("/api/v1/cameras/cam-1/rotate", None, &bad).await;
        assert!(s.is_client_error(), "{bad}: {s} {v}");
        assert!(v["error"]["message"].is_string());
    }

    // A rotation: both keys work during the grace period, then only the new.
    let (s, v) = api
        .post(
            "/api/v1/cameras/cam-1/rotate",
            None,
            &json!({"grace_minutes": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["api_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        v["old_key_valid_until"],
        platekeeper_core::read::format_time_ms(api.now() + 30 * 60_000)
    );
    let (s, _) = api.post("/api/v1/reads", Some(&old), &send(1)).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the old key works during the grace period"
    );
    let (s, _) = api.post("/api/v1/reads", Some(&new), &send(2)).await;
    assert_eq!(s, StatusCode::OK);
    api.advance(30 * 60_000);
    let (s, v) = api.post("/api/v1/reads", Some(&old), &send(3)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_camera_key"))
    );
    let (s, _) = api.post("/api/v1/reads", Some(&new), &send(4)).await;
    assert_eq!(s, StatusCode::OK);

    // A rotation with no grace stops the old key at once (and the body
    // may be left out: 60 minutes).
    let (_, v) = api
        .post(
            "/api/v1/cameras/cam-1/rotate",
            None,
            &json!({"grace_minutes": 0}),
        )
        .await;
    let newer = v["api_key"].as_str().unwrap().to_string();
    assert!(v["old_key_valid_until"].is_null(), "{v}");
    let (s, _) = api.post("/api/v1/reads", Some(&new), &send(5)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A revocation: the camera's every key is refused at once, others not.
    let (_, v) = api
        .post_raw("/api/v1/cameras/cam-1/rotate", None, Vec::new())
        .await;
    let newest = v["api_key"].as_str().unwrap().to_string();
    let (s, v) = api
        .post("/api/v1/cameras/cam-1/revoke", None, &json!({"reason": ""}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required: {v}"
    );
    let (s, v) = api
        .post(
            "/api/v1/cameras/cam-1/revoke",
            None,
            &json!({"reason": "unit stolen"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string());
    for key in [&newer, &newest] {
        let (s, _) = api.post("/api/v1/reads", Some(key), &send(6)).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "revoked during the grace period too"
        );
    }
    let (s, _) = api.post("/api/v1/reads", Some(&other), &send(7)).await;
    assert_eq!(s, StatusCode::OK, "other cameras are untouched");
    let (s, _) = api
        .post(
            "/api/v1/cameras/cam-1/revoke",
            None,
            &json!({"reason": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list, _) = api.get("/api/v1/cameras").await;
    assert!(list["cameras"][0]["revoked_at"].is_string(), "{list}");

    // Revocation survives a restart (it is in the store, not only in memory).
    let reopened = support::open_store(api._dir.path());
    assert!(reopened.authenticate_camera(&newest, api.now()).is_none());
    assert!(reopened.authenticate_camera(&other, api.now()).is_some());
    drop(reopened);

    // A rotation brings the camera back, with the new key only.
    let (_, v) = api
        .post(
            "/api/v1/cameras/cam-1/rotate",
            None,
            &json!({"grace_minutes": 60}),
        )
        .await;
    let back = v["api_key"].as_str().unwrap().to_string();
    assert!(
        v["old_key_valid_until"].is_null(),
        "a revoked key is not revived: {v}"
    );
    let (s, _) = api.post("/api/v1/reads", Some(&newest), &send(8)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api.post("/api/v1/reads", Some(&back), &send(9)).await;
    assert_eq!(s, StatusCode::OK);
    let kinds = api.log_kinds();
    assert_eq!(
        kinds.iter().filter(|k| *k == "camera_key_rotated").count(),
        4
    );
    assert_eq!(kinds.iter().filter(|k| *k == "camera_revoked").count(), 1);
}
