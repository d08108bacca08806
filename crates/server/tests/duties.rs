//! The duties issue 23 put on a screen, over HTTP against a real store:
//! renaming a camera, the written request before a share is approved
//! (R7.2), purge runs and the next one (R6.1), a hot list searched by
//! plate, a search's total count and its export as a tracked CSV
//! download (R6.3).

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{api, Api, NOW};

const DAY: i64 = 86_400_000;

fn purpose() -> Value {
    json!({"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"})
}

/// Registers camera `cam-1` and sends it `n` reads of `plate`, a minute
/// apart from `at`, in batches the ingest accepts.
async fn seed(api: &Api, plate: &str, n: usize, at: i64) {
    let key = api.camera_key("cam-1").await;
    let mut i = 0;
    while i < n {
        let batch: Vec<Value> = (i..n.min(i + 5_000))
            .map(|k| {
                json!({
                    "id": format!("00000000-0000-4000-8000-{k:012}"),
                    "plate": plate, "state": "CA",
                    "ts": platekeeper_core::read::format_time_ms(at + k as i64 * 1_000),
                    "lat": 37.8044, "lon": -122.2712,
                })
            })
            .collect();
        let sent = batch.len();
        let (s, v) = api.post_reads(&key, json!(batch)).await;
        assert_eq!(
            (s, v["accepted"].as_u64()),
            (StatusCode::OK, Some(sent as u64)),
            "{v}"
        );
        i += sent;
    }
}

#[tokio::test]
async fn a_camera_is_renamed_but_never_moved() {
    let mut api = api().await;
    api.camera_key("cam-1").await;
    api.ready_user("analyst1", platekeeper_core::Role::Analyst)
        .await;
    let analyst = api.sign_in_ok("analyst1").await;
    let patch = |token: String, id: &'static str, body: Value| {
        let api = &api;
        async move {
            api.call(
                "PATCH",
                &format!("/api/v1/cameras/{id}"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let admin = api.admin.clone();
    let (s, v) = patch(
        admin.clone(),
        "cam-1",
        json!({"name": "  Broadway & 14th  "}),
    )
    .await;
    assert_eq!(
        (s, v["name"].as_str()),
        (StatusCode::OK, Some("Broadway & 14th")),
        "{v}"
    );
    let (_, list) = api.call("GET", "/api/v1/cameras", Some(&admin), None).await;
    assert_eq!(list["cameras"][0]["name"], "Broadway & 14th");
    let (entries, _) = {
        let mark = api.mark();
        patch(
            admin.clone(),
            "cam-1",
            json!({"name": "Broadway at 14th St"}),
        )
        .await;
        api.since(mark)
    };
    assert_eq!(entries.len(), 1);
    let details: Value = serde_json::from_str(&entries[0].details).unwrap();
    assert_eq!(entries[0].kind, "camera_renamed");
    assert_eq!(
        (details["old_name"].as_str(), details["name"].as_str()),
        (Some("Broadway & 14th"), Some("Broadway at 14th St"))
    );

    // Its place is what its reads are placed at: not editable.
    let (s, v) = patch(
        admin.clone(),
        "cam-1",
        json!({"name": "x", "lat": 1.0, "lon": 2.0}),
    )
    .await;
    assert!(s.is_client_error(), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("lat"),
        "{v}"
    );
    let (s, v) = patch(admin.clone(), "nope", json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_camera"))
    );
    for bad in ["", "   ", "tab\there", &"n".repeat(201)] {
        let (s, v) = patch(admin.clone(), "cam-1", json!({ "name": bad })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {v}");
    }
    let (s, _) = patch(admin.clone(), "cam-1", json!("not an object")).await;
    assert!(s.is_client_error());
    let (s, _) = patch(analyst, "cam-1", json!({"name": "mine now"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, list) = api.call("GET", "/api/v1/cameras", Some(&admin), None).await;
    assert_eq!(
        list["cameras"][0]["name"], "Broadway at 14th St",
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn a_share_is_approved_only_with_its_written_request_on_file() {
    // R7.2: the written request is reviewed and kept on file.
    let api = api().await;
    let (_, agency) = api
        .call(
            "POST",
            "/api/v1/agencies",
            Some(&api.admin),
            Some(json!({"name": "Oakland Police Department", "kind": "ca_public", "state": "CA"})),
        )
        .await;
    let (s, req) = api
        .call(
            "POST",
            "/api/v1/sharing/requests",
            Some(&api.admin),
            Some(json!({
                "agency_id": agency["id"], "requester_name": "Det. Ana Ruiz",
                "purpose": "Carjacking, their case 26-1234", "query": {"plate": "7ABC120"},
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    assert!(req["document_sha256"].is_null());
    let id = req["id"].as_i64().unwrap();
    let approve_path = format!("/api/v1/sharing/requests/{id}/approve");
    let approve = || api.call("POST", &approve_path, Some(&api.admin), None);
    let (s, v) = approve().await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("document_required")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("attach"),
        "{v}"
    );

    let attach = |id: i64, body: Value| {
        let api = &api;
        async move {
            api.call(
                "PUT",
                &format!("/api/v1/sharing/requests/{id}/document"),
                Some(&api.admin),
                Some(body),
            )
            .await
        }
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (body, code) in [
        (
            json!({"name": "r.pdf", "media_type": "application/pdf", "content_base64": "@@not base64@@"}),
            "invalid_document",
        ),
        (
            json!({"name": "r.pdf", "media_type": "application/pdf", "content_base64": ""}),
            "invalid_document",
        ),
        (
            json!({"name": "", "media_type": "application/pdf", "content_base64": b64(b"%PDF")}),
            "invalid_text",
        ),
        (
            json!({"name": "r.pdf", "media_type": "application/pdf", "content_base64": b64(&vec![0u8; 10 * 1024 * 1024 + 1])}),
            "invalid_document",
        ),
    ] {
        let oversized = body["content_base64"].as_str().unwrap().len() > 1 << 20;
        let (s, v) = attach(id, body).await;
        if oversized {
            // Past the server's body limit, or the store's 10 MB.
            assert!(
                [
                    StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::UNPROCESSABLE_ENTITY
                ]
                .contains(&s),
                "{v}"
            );
            continue;
        }
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        if code != "invalid_text" {
            assert_eq!(v["error"]["code"], code, "{v}");
        }
    }
    let (s, v) = attach(
        id + 99,
        json!({"name": "r.pdf", "media_type": "application/pdf", "content_base64": b64(b"%PDF")}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = approve().await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the refusals attached nothing: {v}"
    );

    let letter = b"%PDF-1.4 signed written request from OPD";
    let mark = api.mark();
    let (s, v) = attach(id, json!({"name": "opd-request.pdf", "media_type": "application/pdf", "content_base64": b64(letter)})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(letter));
    assert_eq!(v["document_sha256"], sha.as_str());
    let (entries, _) = api.since(mark);
    assert_eq!(
        entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["sharing_document_attached"]
    );
    let (s, v, bytes) = api
        .send(
            Request::get(format!("/api/v1/sharing/requests/{id}/document"))
                .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!((s, bytes.as_slice()), (StatusCode::OK, &letter[..]), "{v}");

    let (s, v) = approve().await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    // What was decided on stays as it was.
    let (s, v) = attach(id, json!({"name": "other.pdf", "media_type": "application/pdf", "content_base64": b64(b"%PDF other")})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_decided")),
        "{v}"
    );
    let (_, v) = api
        .call(
            "GET",
            &format!("/api/v1/sharing/requests/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(v["document_sha256"], sha.as_str());
    let (s, _) = api
        .call("PUT", &format!("/api/v1/sharing/requests/{id}/document"), Some(&api.officer),
              Some(json!({"name": "r.pdf", "media_type": "application/pdf", "content_base64": b64(b"%PDF")})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_purge_page_shows_past_runs_the_next_one_and_what_is_due() {
    let api = api().await;
    seed(&api, "7ABC120", 3, NOW - 400 * DAY).await;
    seed_more(&api, NOW - DAY).await;
    let (s, v) = api
        .call("GET", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["runs"], json!([]));
    assert_eq!(v["due"]["dry_run"], true);
    let reads = v["due"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "reads")
        .unwrap()
        .clone();
    assert_eq!(reads["count"], 3, "{v}");
    let midnight = (NOW / DAY + 1) * DAY;
    assert_eq!(
        v["next_run_after"],
        platekeeper_core::read::format_time_ms(midnight).as_str()
    );
    assert_eq!(
        v["next_run_before"],
        platekeeper_core::read::format_time_ms(midnight + 3_600_000).as_str()
    );
    // Looking changed nothing.
    let (s, v) = api
        .call("GET", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(
        (s, v["runs"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );

    let (s, run) = api
        .call("POST", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    let (_, v) = api
        .call("GET", "/api/v1/purge", Some(&api.admin), None)
        .await;
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(
        (runs[0]["by"].as_str(), runs[0]["seq"].as_i64()),
        (Some("capt"), run["log_seq"].as_i64())
    );
    assert_eq!(runs[0]["details"]["classes"][0]["count"], 3);
    let due_reads = v["due"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "reads")
        .unwrap()["count"]
        .clone();
    assert_eq!(due_reads, 0, "nothing left due");
    let (s, _) = api
        .call("GET", "/api/v1/purge", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// Reads within retention beside the old ones, so a purge leaves some.
async fn seed_more(api: &Api, at: i64) {
    let key = api.camera_key("cam-2").await;
    let read = json!([{"id": "00000000-0000-4000-9000-000000000001", "plate": "5XYZ999",
        "ts": platekeeper_core::read::format_time_ms(at), "lat": 37.8, "lon": -122.27}]);
    let (s, v) = api.post_reads(&key, read).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_search_gives_its_total_and_exports_as_a_tracked_csv_download() {
    let mut api = api().await;
    api.ready_user("disp1", platekeeper_core::Role::Dispatcher)
        .await;
    let dispatcher = api.sign_in_ok("disp1").await;
    seed(&api, "7ABC120", 150, NOW - DAY).await;
    let search = |body: Value| {
        let api = &api;
        async move {
            api.call("POST", "/api/v1/search", Some(&api.officer), Some(body))
                .await
        }
    };
    let (s, v) = search(json!({"plate": "7ABC120", "limit": 100, "purpose": purpose()})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 100);
    assert_eq!(
        v["total"],
        json!({"count": 150, "at_least": false}),
        "not \"100 reads\""
    );
    let (_, next) = search(
        json!({"plate": "7ABC120", "limit": 100, "cursor": v["next_cursor"], "purpose": purpose()}),
    )
    .await;
    assert_eq!(next["results"].as_array().unwrap().len(), 50);
    assert!(next["total"].is_null(), "a later page does not count again");
    let (_, small) = search(json!({"plate": "7ABC120", "limit": 1000, "purpose": purpose()})).await;
    assert_eq!(small["total"]["count"], 150);
    let (_, none) = search(json!({"plate": "1NOPE11", "purpose": purpose()})).await;
    assert_eq!(none["total"], json!({"count": 0, "at_least": false}));
    // The count keeps every condition of the search: state, camera, a
    // pattern, and an area (counted read by read).
    for (extra, want) in [
        (json!({"state": "NV"}), 0),
        (json!({"state": "CA", "camera": "cam-1"}), 150),
        (json!({"plate": "7ABC1*"}), 150),
        (json!({"camera": "cam-9"}), -1),
        (
            json!({"plate": null, "near": {"lat": 37.8044, "lon": -122.2712, "radius_m": 200},
                "from": platekeeper_core::read::format_time_ms(NOW - 2 * DAY),
                "to": platekeeper_core::read::format_time_ms(NOW)}),
            150,
        ),
    ] {
        let mut body = json!({"plate": "7ABC120", "limit": 20, "purpose": purpose()});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = search(body.clone()).await;
        if want < 0 {
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_camera")),
                "{v}"
            );
            continue;
        }
        assert_eq!(s, StatusCode::OK, "{body}: {v}");
        assert_eq!(
            v["total"],
            json!({"count": want, "at_least": false}),
            "{body}"
        );
    }
    // A finished day is sealed (its plate index built, the in-memory one
    // dropped): counted from that index, the same; a pattern's plates in
    // one statement. Two more plates under the pattern, on the same day.
    let key = api.camera_key("cam-3").await;
    let more: Vec<Value> = (0..7)
        .map(|k| json!({"id": format!("00000000-0000-4000-a000-{k:012}"), "plate": if k < 3 { "7ABC199" } else { "7ABC188" },
                        "state": "CA", "ts": platekeeper_core::read::format_time_ms(NOW - DAY + 500_000 + k)}))
        .collect();
    assert_eq!(api.post_reads(&key, json!(more)).await.0, StatusCode::OK);
    assert!(!api
        .store
        .seal_finished_days(NOW + 2 * DAY)
        .unwrap()
        .is_empty());
    for (body, want) in [
        (
            json!({"plate": "7ABC120", "limit": 20, "purpose": purpose()}),
            150,
        ),
        (
            json!({"plate": "7ABC1*", "limit": 20, "purpose": purpose()}),
            157,
        ),
        (
            json!({"plate": "7ABC1*", "camera": "cam-3", "from": platekeeper_core::read::format_time_ms(NOW - 2 * DAY),
                "to": platekeeper_core::read::format_time_ms(NOW), "limit": 2, "purpose": purpose()}),
            7,
        ),
        (
            json!({"plate": "7ABC120", "camera": "cam-1", "state": "CA", "limit": 20, "purpose": purpose()}),
            150,
        ),
    ] {
        let (_, v) = search(body).await;
        assert_eq!(v["total"], json!({"count": want, "at_least": false}), "{v}");
    }

    // The export: a link as for every download, then one fetch.
    let target = json!({"search_export": {"search": {"plate": "7ABC120", "limit": 5, "purpose": purpose()}}});
    let mark = api.mark();
    let (s, link) = api
        .call(
            "POST",
            "/api/v1/download-links",
            Some(&api.officer),
            Some(target.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    assert_eq!(
        api.since(mark).0.len(),
        0,
        "making the link exports nothing"
    );
    let mark = api.mark();
    let res = api
        .respond(
            Request::get(link["url"].as_str().unwrap())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        h("content-type").starts_with("text/csv"),
        "{}",
        h("content-type")
    );
    assert!(
        h("content-disposition").contains("search-officer1-"),
        "{}",
        h("content-disposition")
    );
    let download_id = h("x-download-id");
    let destroy_by = h("x-destroy-by");
    assert!(!destroy_by.is_empty());
    let csv =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("read_id,plate,state,ts,lat,lon,camera"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 151, "every match, not the page's 5");
    assert!(lines[1..].iter().all(|l| l.contains(",7ABC120,CA,")));
    let (entries, commits) = api.since(mark);
    assert_eq!(commits, 1, "the access and the download in one commit");
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.category.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("access", "export"), ("admin", "search_exported")],
        "{entries:?}"
    );
    let access: Value = serde_json::from_str(&entries[0].details).unwrap();
    assert_eq!(access["result_count"], 150);
    assert_eq!(access["reads"].as_array().unwrap().len(), 150);
    let recorded: Value = serde_json::from_str(&entries[1].details).unwrap();
    assert_eq!(recorded["download_id"].to_string(), download_id);
    assert_eq!(recorded["access"], entries[0].seq);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(csv.as_bytes()));
    assert_eq!(recorded["sha256"], sha.as_str());
    let (_, downloads) = api
        .call("GET", "/api/v1/downloads", Some(&api.admin), None)
        .await;
    let d = &downloads["downloads"][0];
    assert_eq!(
        (
            d["kind"].as_str(),
            d["username"].as_str(),
            d["reads"].as_i64()
        ),
        (Some("search_export"), Some("officer1"), Some(150))
    );
    assert_eq!(d["destroy_by"], destroy_by.as_str());
    let again = api
        .respond(
            Request::get(link["url"].as_str().unwrap())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "a link is good once");

    // Refused before anything is found: a generic purpose, no export
    // right, a query that is not one.
    let mark = api.mark();
    let (s, v) = api
        .call("POST", "/api/v1/download-links", Some(&api.officer),
              Some(json!({"search_export": {"search": {"plate": "7ABC120", "purpose": {"case_number": "26-1", "offense": "211 PC", "reason": "investigation"}}}})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("purpose_insufficient")
        ),
        "{v}"
    );
    for bad in [
        json!({"plate": 7}),
        json!("7ABC120"),
        json!({"plate": "7ABC120", "purpose": purpose(), "near": {"lat": 999, "lon": 0, "radius_m": 5}}),
    ] {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/download-links",
                Some(&api.officer),
                Some(json!({"search_export": {"search": bad}})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/download-links",
            Some(&dispatcher),
            Some(target),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        api.since(mark).0.iter().all(|e| e.category != "access"),
        "no refusal is an access"
    );
}

#[tokio::test]
async fn a_total_past_ten_thousand_says_at_least() {
    let api = api().await;
    seed(
        &api,
        "7ABC120",
        platekeeper_store::MAX_TOTAL_COUNT + 5,
        NOW - DAY,
    )
    .await;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/search",
            Some(&api.officer),
            Some(json!({"plate": "7ABC120", "limit": 10, "purpose": purpose()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["total"],
        json!({"count": platekeeper_store::MAX_TOTAL_COUNT, "at_least": true})
    );
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
}
