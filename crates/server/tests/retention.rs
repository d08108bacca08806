//! Retention, legal holds, evidence, sharing, corrections, audit reports
//! and the public page over HTTP against a real store (SPEC R6, R7, R8).

mod support;

use std::io::{Read, Write};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use platekeeper_core::Role;
use serde_json::{json, Value};
use support::{api, Api, NOW};

const DAY: i64 = 86_400_000;

fn purpose() -> Value {
    json!({"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"})
}

fn jpeg(fill: u8) -> String {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.resize(600, fill);
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl Api {
    async fn seed(&self, at: i64) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/cameras",
                Some(&self.admin),
                Some(json!({"id": "cam-1", "name": "Broadway", "kind": "fixed", "lat": 37.8044, "lon": -122.2712})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let key = v["api_key"].as_str().unwrap().to_string();
        let reads: Vec<Value> = (0..4)
            .map(|i| {
                json!({
                    "id": format!("00000000-0000-4000-8000-{i:012}"),
                    "plate": format!("7ABC12{i}"),
                    "state": "CA",
                    "ts": platekeeper_core::read::format_time_ms(at + i * 60_000),
                    "vehicle_image": jpeg(i as u8 + 1),
                })
            })
            .collect();
        let (s, v) = self.post_reads(&key, json!(reads)).await;
        assert_eq!(
            (s, v["accepted"].as_u64()),
            (StatusCode::OK, Some(4)),
            "{v}"
        );
        key
    }

    /// Searches one plate as `token` and returns the read ids found.
    async fn find(&self, token: &str, plate: &str) -> Vec<String> {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/search",
                Some(token),
                Some(json!({"plate": plate, "purpose": purpose()})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["read_id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn bytes(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Vec<u8>) {
        let (s, _, b) = self
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (s, b)
    }

    async fn set_retention(&self, retention: Value) {
        let mut policy = self
            .call("GET", "/api/v1/policy", Some(&self.admin), None)
            .await
            .1;
        let mut confirm = Vec::new();
        for (k, v) in retention.as_object().unwrap() {
            policy["retention"][k] = v.clone();
            confirm.push(format!("retention.{k}"));
        }
        // Shortening retention is a weakening to confirm (issue 22 finding 5).
        policy["confirm_weakening"] = json!(confirm);
        let (s, v) = self
            .call("PUT", "/api/v1/policy", Some(&self.admin), Some(policy))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn resign(&mut self) {
        self.admin = self.sign_in_ok("capt").await;
        self.officer = self.sign_in_ok("officer1").await;
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn verify(bytes: &[u8]) -> platekeeper_store::PackageCheck {
    platekeeper_store::evidence::verify(std::io::Cursor::new(bytes))
}

/// Rewrites a package with one file's content changed (and valid CRCs,
/// as a careful forger would leave them).
fn tampered(bytes: &[u8], name: &str, change: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let mut content = Vec::new();
        f.read_to_end(&mut content).unwrap();
        if f.name() == name {
            change(&mut content);
        }
        out.start_file(f.name(), opts).unwrap();
        out.write_all(&content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[tokio::test]
async fn purge_removes_reads_and_images_past_retention_but_keeps_held_ones_until_lifted() {
    let mut api = api().await;
    api.seed(NOW - 2 * DAY).await;
    let held = api.find(&api.officer, "7ABC120").await;
    assert_eq!(held.len(), 1);
    api.find(&api.officer, "7ABC121").await;

    // A hold names only reads the person was shown (R6.2).
    let (s, v) = api
        .call("POST", "/api/v1/holds", Some(&api.officer),
              Some(json!({"case_number": "26-004211", "read_ids": ["00000000-0000-4000-8000-000000000003"]})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_reads")),
        "{v}"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&api.officer),
            Some(json!({"case_number": "", "read_ids": held})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, hold) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&api.officer),
            Some(json!({"case_number": "26-004211", "read_ids": held})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["reads"], 1);
    let hold_id = hold["id"].as_i64().unwrap();

    api.set_retention(json!({"reads_days": 30, "images_days": 30}))
        .await;
    // Shortening retention below its bounds is refused by name.
    let mut bad = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await
        .1;
    bad["retention"]["reads_days"] = json!(5);
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&api.admin), Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retention.reads_days"),
        "{v}"
    );

    let dir = api.store.dir().to_path_buf();
    assert_eq!(support::pictures_stored(&dir).0, 4);
    api.advance(40 * DAY);
    api.resign().await;

    // A dry run changes nothing.
    let (s, dry) = api
        .call("POST", "/api/v1/purge?dry_run=true", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(dry["classes"][0]["count"], 4, "{dry}");
    assert_eq!(dry["plates_forgotten"], 4, "{dry}");
    assert_eq!(api.store.read_count().unwrap(), 4);
    // Officers may not purge.
    let (s, _) = api
        .call("POST", "/api/v1/purge", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, report) = api
        .call("POST", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["classes"][0]["class"], "reads");
    assert_eq!(report["classes"][0]["count"], 4, "{report}");
    assert_eq!(report["classes"][1]["count"], 4, "{report}");
    assert_eq!(report["held_reads_kept"], 1);
    // Their plates are gone from the dictionary too: no pattern search
    // matches or counts them (the held copy is reached through its hold).
    assert_eq!(report["plates_forgotten"], 4, "{report}");
    assert_eq!(api.store.distinct_plates(), 0);
    // Gone from the database and from the image folder…
    assert_eq!(api.store.read_count().unwrap(), 0);
    assert_eq!(support::read_days_stored(&dir), 0);
    assert_eq!(
        support::pictures_stored(&dir),
        (0, 1),
        "only the held picture stays"
    );
    // …the held read stays, and its evidence still exports whole.
    let (s, zip) = api
        .bytes(
            "POST",
            "/api/v1/evidence",
            &api.officer,
            json!({"hold_id": hold_id}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&zip));
    let check = verify(&zip);
    assert!(check.ok, "{check:?}");
    assert_eq!(check.reads, Some(1));
    assert_eq!(
        check.files, 4,
        "reads.json, reads.csv, one image and custody.json in the manifest"
    );
    // …and it can still be seen, with its picture, under a search access
    // for the hold's case (R6.2), by people with plate-data rights only.
    let (s, v) = api
        .call(
            "GET",
            &format!("/api/v1/holds/{hold_id}/reads"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["results"][0]["plate"], "7ABC120");
    assert_eq!(v["plates_matched"], 1);
    let url = v["results"][0]["image_url"].as_str().unwrap().to_string();
    let (s, _, picture) = api
        .send(
            Request::get(&url)
                .header(header::AUTHORIZATION, format!("Bearer {}", api.officer))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&picture));
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&picture),
        jpeg(1),
        "the held copy of the picture"
    );
    let view = api
        .store
        .log_entries(None, None, 10_000)
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind == "search")
        .unwrap();
    assert!(
        view.purpose.as_deref().unwrap().contains("26-004211"),
        "{view:?}"
    );
    let (s, _) = api
        .call("GET", "/api/v1/holds/999/reads", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let kinds = api.log_kinds();
    assert!(kinds.iter().any(|k| k == "purge"), "{kinds:?}");

    // Lifting needs a reason; once lifted, the next run lets it go.
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/holds/{hold_id}"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/api/v1/holds/{hold_id}?reason=case%20closed"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["lifted_at_ms"].is_i64());
    let (_, report) = api
        .call("POST", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(report["classes"][0]["count"], 1, "{report}");
    assert_eq!(report["held_reads_kept"], 0);
    assert_eq!(support::pictures_stored(&dir), (0, 0));
    let (_, v) = api
        .call(
            "GET",
            &format!("/api/v1/holds/{hold_id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(v["reads"], 0);
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test]
async fn a_late_read_for_a_purged_day_is_refused() {
    let mut api = api().await;
    let key = api.seed(NOW - 2 * DAY).await;
    api.set_retention(json!({"reads_days": 30, "images_days": 30}))
        .await;
    api.advance(40 * DAY);
    api.resign().await;
    let (s, _) = api
        .call("POST", "/api/v1/purge", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let late = json!([{"id": "00000000-0000-4000-8000-0000000000aa", "plate": "5LATE01",
        "ts": platekeeper_core::read::format_time_ms(NOW - 2 * DAY)}]);
    let (s, v) = api.post_reads(&key, late).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["rejected"][0]["code"], "past_retention", "{v}");
    assert_eq!(support::read_days_stored(api.store.dir()), 0);
}

#[tokio::test]
async fn evidence_packages_verify_and_tampering_is_found() {
    let api = api().await;
    api.seed(NOW - DAY).await;
    let ids = [
        api.find(&api.officer, "7ABC120").await,
        api.find(&api.officer, "7ABC122").await,
    ]
    .concat();
    let (s, hold) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&api.officer),
            Some(json!({"case_number": "26-004211", "read_ids": ids})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    let hold_id = hold["id"].as_i64().unwrap();

    // Its reads page in time order, each page a logged search access.
    let page = |cursor: &str| format!("/api/v1/holds/{hold_id}/reads?limit=1{cursor}");
    let (s, first) = api.call("GET", &page(""), Some(&api.officer), None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["results"][0]["plate"], "7ABC120");
    assert_eq!(first["plates_matched"], 2, "over the whole hold");
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = api
        .call(
            "GET",
            &page(&format!("&cursor={cursor}")),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(second["results"][0]["plate"], "7ABC122");
    assert!(second["next_cursor"].is_null(), "{second}");
    assert_ne!(first["access_id"], second["access_id"]);
    for bad in ["&cursor=-1", "&cursor=x", "&limit=0", "&limit=5000"] {
        let (s, v) = api
            .call(
                "GET",
                &format!("/api/v1/holds/{hold_id}/reads?{}", &bad[1..]),
                Some(&api.officer),
                None,
            )
            .await;
        assert!(s.is_client_error(), "{bad}: {s} {v}");
        assert!(v["error"]["message"].is_string(), "{bad}: {v}");
    }

    // No export without plate-data rights, and none of a hold that is not.
    let mut api = api;
    api.ready_user("aud", Role::Auditor).await;
    let auditor = api.sign_in_ok("aud").await;
    let (s, _) = api
        .bytes(
            "POST",
            "/api/v1/evidence",
            &auditor,
            json!({"hold_id": hold_id}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/holds/{hold_id}/reads"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an auditor sees holds, not reads");
    let (s, _) = api
        .bytes(
            "POST",
            "/api/v1/evidence",
            &api.officer,
            json!({"hold_id": 999}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!api.log_kinds().iter().any(|k| k == "evidence_exported"));

    // The package is streamed from a spool file: its length and digest
    // are in the headers, and the spool leaves no named file behind.
    let resp = api
        .respond(
            Request::post("/api/v1/evidence")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.officer))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"hold_id": hold_id}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let head = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (length, sha256) = (head("content-length"), head("x-package-sha256"));
    let zip = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    assert_eq!(length, zip.len().to_string());
    assert_eq!(sha256, {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&zip))
    });
    assert!(api.store.dir().join("exports").is_dir());
    let spool = files_under(&api.store.dir().join("exports"));
    assert!(spool.is_empty(), "{spool:?}");
    let check = verify(&zip);
    assert!(check.ok, "{check:?}");
    assert_eq!(check.reads, Some(2));
    let custody = check.custody.unwrap();
    assert_eq!(custody["case_number"], "26-004211");
    assert_eq!(custody["exported_by"]["username"], "officer1");
    assert_eq!(custody["hold"]["id"], hold_id);
    // The export was an access under the hold's case, then a download.
    let entries = api.store.log_entries(None, None, 10_000).unwrap();
    let export = entries
        .iter()
        .find(|e| e.kind == "export")
        .expect("an export access");
    assert!(export.purpose.as_deref().unwrap().contains("26-004211"));
    let recorded = entries
        .iter()
        .find(|e| e.kind == "evidence_exported")
        .unwrap();
    assert!(recorded.seq > export.seq);

    // Tampering: an altered image, an altered record, an added file, a
    // removed one, and bytes that are not a zip at all.
    let image = zip::ZipArchive::new(std::io::Cursor::new(&zip))
        .unwrap()
        .file_names()
        .find(|n| n.starts_with("images/"))
        .unwrap()
        .to_string();
    let bad = verify(&tampered(&zip, &image, |b| b[10] ^= 1));
    assert!(
        !bad.ok && bad.problems[0].contains("was altered"),
        "{bad:?}"
    );
    let bad = verify(&tampered(&zip, "reads.csv", |b| {
        b.extend_from_slice(b"x,7XYZ999\n")
    }));
    assert!(
        !bad.ok && bad.problems.iter().any(|p| p.contains("reads.csv")),
        "{bad:?}"
    );
    let mut flipped = zip.clone();
    let at = flipped.windows(7).position(|w| w == b"7ABC120").unwrap();
    flipped[at] = b'8';
    assert!(
        !verify(&flipped).ok,
        "a byte flipped in place fails (CRC or digest)"
    );
    assert!(!verify(b"not a zip").ok);
    assert!(!verify(&zip[..zip.len() / 2]).ok);

    // The download is tracked with a destroy-by date; overdue ones are
    // listed until their destruction is recorded.
    let (_, v) = api
        .call("GET", "/api/v1/downloads", Some(&api.admin), None)
        .await;
    assert_eq!(v["downloads"][0]["kind"], "evidence", "{v}");
    assert_eq!(v["overdue"], 0);
    let id = v["downloads"][0]["id"].as_i64().unwrap();
    api.advance(31 * DAY);
    api.admin = api.sign_in_ok("capt").await;
    let (_, v) = api
        .call(
            "GET",
            "/api/v1/downloads?overdue=true",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(v["downloads"].as_array().unwrap().len(), 1, "{v}");
    let (s, _) = api
        .call(
            "POST",
            &format!("/api/v1/downloads/{id}/destroyed"),
            Some(&api.admin),
            Some(json!({"note": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/downloads/{id}/destroyed"),
            Some(&api.admin),
            Some(json!({"note": "USB drive wiped by Sgt. Lee"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = api
        .call(
            "GET",
            "/api/v1/downloads?overdue=true",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(v["downloads"].as_array().unwrap().len(), 0);
}

async fn link_for(api: &Api, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    api.call("POST", "/api/v1/download-links", token, Some(body))
        .await
}

async fn fetch(api: &Api, url: String) -> axum::response::Response {
    api.respond(Request::get(&url).body(Body::empty()).unwrap())
        .await
}

/// A download link lets a browser save a package by plain navigation:
/// good once, for two minutes, while the session that asked for it lives;
/// the export is logged and tracked when the link is fetched (R6.3).
#[tokio::test]
async fn an_evidence_download_link_is_good_once_for_its_session() {
    let mut api = api().await;
    api.seed(NOW - DAY).await;
    let ids = api.find(&api.officer, "7ABC120").await;
    let (_, hold) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&api.officer),
            Some(json!({"case_number": "26-004211", "read_ids": ids})),
        )
        .await;
    let hold_id = hold["id"].as_i64().unwrap();
    let evidence = json!({"evidence": {"hold_id": hold_id}});
    // Refusals come back when the link is asked for.
    let (s, _) = link_for(&api, None, evidence.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for bad in [
        json!({"evidence": {}}),
        json!({"nope": 1}),
        json!({"evidence": {"hold_id": "1"}}),
        json!({"evidence": {"hold_id": 1, "extra": true}}),
        json!([]),
    ] {
        let (s, v) = link_for(&api, Some(&api.officer), bad.clone()).await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
            "{bad}: {s} {v}"
        );
    }
    let (s, v) = link_for(
        &api,
        Some(&api.officer),
        json!({"evidence": {"hold_id": 999}}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_hold"))
    );
    api.ready_user("aud", Role::Auditor).await;
    let auditor = api.sign_in_ok("aud").await;
    let (s, _) = link_for(&api, Some(&auditor), evidence.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = link_for(
        &api,
        Some(&api.officer),
        json!({"sharing_export": {"request_id": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "officers do not share: {v}");

    // Fetched without credentials, it is the package, logged as the
    // officer's export; a second fetch finds nothing.
    let (s, link) = link_for(&api, Some(&api.officer), evidence.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/api/v1/download-links/pkl_"), "{url}");
    assert!(link["expires_at"].as_str().is_some());
    // Only the address that asked for a link may fetch it (issue 22's
    // sweep: a fetch from elsewhere was logged as the requester's); the
    // try spends it.
    let (_, elsewhere) = link_for(&api, Some(&api.officer), evidence.clone()).await;
    let mut req = Request::get(elsewhere["url"].as_str().unwrap())
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 2],
            40000,
        ))));
    let resp = tower::ServiceExt::oneshot(api.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = fetch(&api, elsewhere["url"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "spent by the try");
    // A probe (HEAD) neither spends the link nor exports anything.
    let head = api
        .respond(Request::head(&url).body(Body::empty()).unwrap())
        .await;
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = fetch(&api, url.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/zip");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(headers.contains_key("x-download-id"));
    let zip = resp.into_body().collect().await.unwrap().to_bytes();
    let check = verify(&zip);
    assert!(check.ok && check.reads == Some(1), "{check:?}");
    let exported = || {
        api.log_kinds()
            .iter()
            .filter(|k| *k == "evidence_exported")
            .count()
    };
    assert_eq!(exported(), 1, "the export is logged when fetched");
    let (_, downloads) = api
        .call("GET", "/api/v1/downloads", Some(&api.admin), None)
        .await;
    assert_eq!(
        downloads["downloads"].as_array().unwrap().len(),
        1,
        "{downloads}"
    );
    assert_eq!(
        downloads["downloads"][0]["username"], "officer1",
        "{downloads}"
    );
    let again = fetch(&api, url).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Hostile or broken links find nothing, and cost no link.
    for bad in [
        "pkl_zz",
        "../../etc/passwd",
        "%00",
        &"a".repeat(10_000),
        &format!("pkl_{}", "0".repeat(64)),
        &format!("pks_{}", "0".repeat(64)),
    ] {
        let resp = fetch(&api, format!("/api/v1/download-links/{bad}")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    // A link expires after two minutes…
    let (_, link) = link_for(&api, Some(&api.officer), evidence.clone()).await;
    api.advance(121_000);
    let resp = fetch(&api, link["url"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(exported(), 1, "nothing left through the unused links");
    // …and ends with its session.
    let (_, link) = link_for(&api, Some(&api.officer), evidence.clone()).await;
    let (s, _) = api
        .call("DELETE", "/api/v1/session", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let resp = fetch(&api, link["url"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A session may hold a few links at a time, no more.
    api.officer = api.sign_in_ok("officer1").await;
    for _ in 0..4 {
        let (s, _) = link_for(&api, Some(&api.officer), evidence.clone()).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, v) = link_for(&api, Some(&api.officer), evidence).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_links"))
    );
}

#[tokio::test]
async fn sharing_is_refused_outside_california_public_agencies() {
    let api = api().await;
    let camera = api.seed(NOW - DAY).await;
    let agency = |name: &str, kind: &str, state: &str| {
        let api = &api;
        let body = json!({"name": name, "kind": kind, "state": state});
        async move {
            let (s, v) = api
                .call("POST", "/api/v1/agencies", Some(&api.admin), Some(body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_i64().unwrap()
        }
    };
    let request = |agency_id: i64| {
        let api = &api;
        async move {
            let (s, v) = api
                .call("POST", "/api/v1/sharing/requests", Some(&api.admin), Some(json!({
                    "agency_id": agency_id, "requester_name": "Det. Ana Ruiz",
                    "purpose": "Carjacking investigation, their case 26-1234",
                    "query": {"plate": "7ABC120"},
                    "document": {"name": "request.pdf", "media_type": "application/pdf",
                                 "content_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 written request")},
                })))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_i64().unwrap()
        }
    };
    for (name, kind, state) in [
        ("FBI San Francisco", "federal", "CA"),
        ("Reno Police Department", "out_of_state", "NV"),
        ("Acme Repossession LLC", "private", "CA"),
        ("Las Vegas Metro (misfiled)", "ca_public", "NV"),
    ] {
        let id = request(agency(name, kind, state).await).await;
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/sharing/requests/{id}/approve"),
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {v}");
        assert_eq!(v["error"]["code"], "sharing_refused");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1798.90.55(b)"),
            "{v}"
        );
        let (s, _) = api
            .call(
                "GET",
                &format!("/api/v1/sharing/requests/{id}/export"),
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: export refused too");
        let (s, v) = link_for(
            &api,
            Some(&api.admin),
            json!({"sharing_export": {"request_id": id}}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("sharing_refused")),
            "{name}: and a link to it"
        );
        let (s, _) = api
            .call(
                "POST",
                "/api/v1/sharing/transfers",
                Some(&api.admin),
                Some(json!({"request_id": id, "method": "email", "description": "sent by e-mail"})),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "{name}: hand-recorded transfer refused"
        );
    }
    assert_eq!(
        api.log_kinds()
            .iter()
            .filter(|k| *k == "sharing_refused")
            .count(),
        16,
        "approval, export, link and transfer, for each of four"
    );

    // A California public agency: approved, exported, on the register.
    let oakland = agency("Oakland Police Department", "ca_public", "CA").await;
    let id = request(oakland).await;
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/sharing/requests/{id}/export"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "not before approval");
    let (s, v) = link_for(
        &api,
        Some(&api.admin),
        json!({"sharing_export": {"request_id": id}}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("request_not_approved")),
        "a link is refused as the export would be"
    );
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/sharing/requests/{id}/approve"),
            Some(&api.admin),
            Some(json!({"note": "ok per Lt. Chan"})),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    let (s, _) = api
        .call(
            "POST",
            &format!("/api/v1/sharing/requests/{id}/approve"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, zip) = api
        .send(
            Request::get(format!("/api/v1/sharing/requests/{id}/export"))
                .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let check = verify(&zip);
    assert!(check.ok, "{check:?}");
    assert_eq!(check.reads, Some(1));
    assert_eq!(
        check.custody.unwrap()["recipient"]["agency"],
        "Oakland Police Department"
    );
    // The same export through a download link, as the interface saves it.
    let (s, link) = link_for(
        &api,
        Some(&api.admin),
        json!({"sharing_export": {"request_id": id}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let resp = fetch(&api, link["url"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let zip = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(verify(&zip).ok);
    // A read of the plate made after the approval is not in a later
    // export: what was approved is what existed then (issue 22's sweep).
    api.advance(3_600_000);
    let late = json!([{"id": "00000000-0000-4000-8000-000000000777", "plate": "7ABC120",
        "state": "CA", "ts": platekeeper_core::read::format_time_ms(api.now() - 60_000)}]);
    let (s, v) = api.post_reads(&camera, late).await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (s, _, zip) = api
        .send(
            Request::get(format!("/api/v1/sharing/requests/{id}/export"))
                .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(verify(&zip).reads, Some(1), "the later read is not sent");
    let (s, _) = api
        .call("POST", "/api/v1/sharing/transfers", Some(&api.admin),
              Some(json!({"request_id": id, "method": "email", "description": "follow-up photo to det. ruiz@oaklandca.gov", "reads": 1})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, reg) = api
        .call("GET", "/api/v1/sharing/register", Some(&api.admin), None)
        .await;
    let line = reg["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["agency"]["name"] == "Oakland Police Department")
        .unwrap();
    assert_eq!(line["transfers"].as_array().unwrap().len(), 4, "{line}");
    assert_eq!(line["reads_shared"], 4);
    let (_, v) = api
        .call(
            "GET",
            &format!("/api/v1/sharing/requests/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(v["status"], "fulfilled");
    // The written request is kept on file.
    let (s, _, doc) = api
        .send(
            Request::get(format!("/api/v1/sharing/requests/{id}/document"))
                .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, doc.as_slice()),
        (StatusCode::OK, &b"%PDF-1.4 written request"[..])
    );

    // Bad input is named.
    for (body, code) in [
        (
            json!({"name": "X", "kind": "ngo", "state": "CA"}),
            "invalid_kind",
        ),
        (
            json!({"name": "X", "kind": "ca_public", "state": "California"}),
            "invalid_state",
        ),
        (
            json!({"name": "", "kind": "ca_public", "state": "CA"}),
            "invalid_field",
        ),
    ] {
        let (s, v) = api
            .call("POST", "/api/v1/agencies", Some(&api.admin), Some(body))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{v}"
        );
    }
    let (s, v) = api
        .call("POST", "/api/v1/sharing/requests", Some(&api.admin), Some(json!({
            "agency_id": oakland, "requester_name": "x", "purpose": "y", "query": {"plate": "7AB*"}})))
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a partial plate is a valid query: {v}"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/sharing/requests",
            Some(&api.admin),
            Some(json!({
            "agency_id": oakland, "requester_name": "x", "purpose": "y", "query": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/agencies",
            Some(&api.officer),
            Some(json!({"name": "Y", "kind": "ca_public", "state": "CA"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A public-records request is logged and routed, never answered.
    let (s, v) = api
        .call("POST", "/api/v1/records-requests", Some(&api.admin), Some(json!({
            "requester": "J. Smith", "organisation": "Daily Planet", "description": "all reads of 7ABC120"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["note"].as_str().unwrap().contains("not released"));
    assert!(!v.to_string().contains("results"));
    assert!(api
        .log_kinds()
        .iter()
        .any(|k| k == "records_request_routed"));
}

#[tokio::test]
async fn a_misread_is_corrected_with_the_original_kept() {
    let mut api = api().await;
    api.seed(NOW - 3_600_000).await;
    api.ready_user("ana", Role::Analyst).await;
    let analyst = api.sign_in_ok("ana").await;
    let id = api.find(&analyst, "7ABC121").await.remove(0);
    // Officers may not correct; a read never shown may not be corrected.
    let (s, _) = api
        .call(
            "POST",
            &format!("/api/v1/reads/{id}/correction"),
            Some(&api.officer),
            Some(json!({"plate": "7A8C121", "reason": "image shows 8"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/reads/00000000-0000-4000-8000-000000000003/correction",
            Some(&analyst),
            Some(json!({"plate": "7A8C123", "reason": "image shows 8"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Naming someone else's access tells nothing of what it returned
    // (issue 22's sweep: the two answers differed, an oracle).
    let (_, admins) = api
        .call(
            "POST",
            "/api/v1/search",
            Some(&api.admin),
            Some(json!({"plate": "7ABC12*", "purpose": purpose()})),
        )
        .await;
    let theirs = admins["access_id"].as_i64().unwrap();
    let mut answers = Vec::new();
    for read in [id.as_str(), "00000000-0000-4000-8000-000000000099"] {
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/reads/{read}/correction"),
                Some(&analyst),
                Some(json!({"plate": "7A8C121", "reason": "image shows 8", "access_id": theirs})),
            )
            .await;
        answers.push((s, v["error"]["code"].clone()));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::NOT_FOUND);
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/reads/{id}/correction"),
            Some(&analyst),
            Some(json!({"plate": "7A8C121", "reason": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/reads/{id}/correction"),
            Some(&analyst),
            Some(
                json!({"plate": "7A8C121", "state": "NV", "reason": "image shows 8, Nevada plate"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["old_plate"].as_str(), v["new_plate"].as_str()),
        (Some("7ABC121"), Some("7A8C121"))
    );
    assert_eq!(api.find(&analyst, "7A8C121").await, vec![id.clone()]);
    assert!(api.find(&analyst, "7ABC121").await.is_empty());
    let (_, v) = api
        .call("GET", "/api/v1/corrections", Some(&api.admin), None)
        .await;
    assert_eq!(v["corrections"][0]["old_plate"], "7ABC121");
    assert_eq!(v["corrections"][0]["corrected_by"], "ana");
    assert_eq!(v["corrections"][0]["old_state"], "CA");
    assert!(api.log_kinds().iter().any(|k| k == "read_corrected"));

    // The old plate had no other read: a pattern search no longer counts
    // or names it (R8.2). One that still has reads stays.
    let matched = |v: &Value| v["plates_matched"].as_u64().unwrap();
    let pattern = |p: &'static str| {
        let api = &api;
        let analyst = analyst.clone();
        async move {
            let (s, v) = api
                .call(
                    "POST",
                    "/api/v1/search",
                    Some(&analyst),
                    Some(json!({"plate": p, "purpose": purpose()})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    assert_eq!(matched(&pattern("7ABC12*").await), 3, "120, 122, 123");
    assert_eq!(matched(&pattern("7A?C121").await), 1, "7A8C121 only");
    let correct = |id: String, plate: &'static str| {
        let api = &api;
        let analyst = analyst.clone();
        async move {
            let (s, v) = api
                .call(
                    "POST",
                    &format!("/api/v1/reads/{id}/correction"),
                    Some(&analyst),
                    Some(json!({"plate": plate, "reason": "checked against the picture"})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
    };
    let second = api.find(&analyst, "7ABC122").await.remove(0);
    correct(second.clone(), "7ABC123").await;
    assert_eq!(matched(&pattern("7ABC12*").await), 2, "120, 123");
    let third = api
        .find(&analyst, "7ABC123")
        .await
        .into_iter()
        .find(|r| *r != second)
        .unwrap();
    correct(third, "7ABC124").await;
    let v = pattern("7ABC12*").await;
    assert_eq!(matched(&v), 3, "123 keeps its other read: {v}");
    assert_eq!(api.find(&analyst, "7ABC123").await, vec![second]);
}

#[tokio::test]
async fn the_audit_report_covers_a_quarter_in_three_formats() {
    let mut api = api().await;
    api.seed(NOW - DAY).await;
    api.find(&api.officer, "7ABC120").await;
    // A refused purpose is a finding.
    let (s, _) = api
        .call("POST", "/api/v1/search", Some(&api.officer),
              Some(json!({"plate": "7ABC120", "purpose": {"case_number": "26-1", "offense": "211 PC", "reason": "investigation"}})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let quarter = {
        let t = time::OffsetDateTime::from_unix_timestamp(NOW / 1000).unwrap();
        format!("{}Q{}", t.year(), (u8::from(t.month()) - 1) / 3 + 1)
    };
    let (s, v) = api
        .call(
            "GET",
            &format!("/api/v1/audit/report?period={quarter}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["accesses"].as_u64().unwrap() >= 1);
    assert_eq!(v["purposes_short"]["count"], 1, "{v}");
    let officer = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "officer1")
        .unwrap();
    assert_eq!(officer["accesses"], 1);
    assert_eq!(officer["refused"], 1);
    assert_eq!(v["purge_compliance"]["compliant"], true);
    api.ready_user("aud", Role::Auditor).await;
    let auditor = api.sign_in_ok("aud").await;
    for (format, needle) in [
        ("csv", "section,seq,ts,username,kind,detail"),
        ("html", "<h2>Accesses by user</h2>"),
    ] {
        let (s, _, body) = api
            .send(
                Request::get(format!(
                    "/api/v1/audit/report?period={quarter}&format={format}"
                ))
                .header(header::AUTHORIZATION, format!("Bearer {auditor}"))
                .body(Body::empty())
                .unwrap(),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains(needle), "{format}");
    }
    for bad in ["2026Q5", "last-year", ""] {
        let (s, v) = api
            .call(
                "GET",
                &format!("/api/v1/audit/report?period={bad}"),
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_period")),
            "{bad}"
        );
    }
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/audit/report?period={quarter}"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = api
        .call("GET", "/api/v1/audit/reports", Some(&api.admin), None)
        .await;
    assert_eq!(
        v["reports"].as_array().unwrap().len(),
        3,
        "each report is kept"
    );
    assert_eq!(
        api.log_kinds()
            .iter()
            .filter(|k| *k == "audit_report_generated")
            .count(),
        3
    );
}

#[tokio::test]
async fn the_transparency_page_is_public_and_has_no_plate_data() {
    let api = api().await;
    api.seed(NOW - DAY).await;
    api.find(&api.officer, "7ABC120").await;
    let mut policy = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await
        .1;
    policy["administrator_name"] = json!("Dana Reyes");
    policy["administrator_title"] = json!("Captain");
    policy["public_policy_markdown"] =
        json!("# ALPR Policy\n\nReads are kept **30 days**.\n\n<script>x()</script>");
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&api.admin), Some(policy))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, html) = api
        .send(Request::get("/transparency").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Dana Reyes") && html.contains("Captain"));
    assert!(html.contains("<strong>30 days</strong>"));
    assert!(!html.contains("<script>"));
    assert!(!html.contains("7ABC12"), "no plate on the public page");
    let (s, v) = api
        .call("GET", "/transparency?format=json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["figures"]["reads_kept"], 4, "{v}");
    assert_eq!(v["figures"]["searches_this_month"], 1, "{v}");
    assert!(!v.to_string().contains("7ABC12"));

    // In Spanish by request or by the browser's languages; the policy
    // text stays as the agency wrote it.
    let page = |uri: &str, accept: Option<&str>| {
        let mut req = Request::get(uri);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT_LANGUAGE, a);
        }
        let api = &api;
        let req = req.body(Body::empty()).unwrap();
        async move {
            let resp = api.respond(req).await;
            let status = resp.status();
            let lang = resp
                .headers()
                .get(header::CONTENT_LANGUAGE)
                .map(|v| v.to_str().unwrap().to_string());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, lang, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (s, lang, es) = page("/transparency", Some("es-MX,es;q=0.9,en;q=0.5")).await;
    assert_eq!((s, lang.as_deref()), (StatusCode::OK, Some("es")));
    assert!(es.contains("<html lang=\"es\">"), "{es}");
    assert!(es.contains("Lecturas conservadas") && es.contains("Administrador de ALPR"));
    assert!(
        es.contains("<strong>30 days</strong>"),
        "the agency's text as posted"
    );
    assert!(!es.contains("Reads kept") && !es.contains("7ABC12") && !es.contains("<script>"));
    assert!(
        es.contains("href=\"?lang=en\""),
        "a link to the English page"
    );
    let (_, lang, en) = page("/transparency?lang=en", Some("es")).await;
    assert_eq!(lang.as_deref(), Some("en"));
    assert!(en.contains("Reads kept") && en.contains("href=\"?lang=es\""));
    let (_, _, es) = page("/transparency?lang=es", None).await;
    assert!(es.contains("Búsquedas este mes"));
    // A language the page is not written in: the English page with a
    // note, never a JSON error (issue 23 item 10).
    let (s, lang, body) = page("/transparency?lang=fr", Some("es")).await;
    assert_eq!((s, lang.as_deref()), (StatusCode::OK, Some("en")));
    assert!(body.contains("not written in “fr”"), "{body}");
    assert!(body.contains("Reads kept") && !body.contains("invalid_lang"));
    let (_, _, body) = page("/transparency?lang=%3Cscript%3E", None).await;
    assert!(!body.contains("<script>"), "{body}");
    // Times as people write them, with their zone.
    assert!(
        body.contains(" UTC</p>") || body.contains(" UTC. "),
        "{body}"
    );
}

/// Issue 22 finding 1 (R4.8, R6.2): a hold belongs to the officer who
/// placed it. Another officer could open, export and lift it by its
/// sequential id, logged under the maker's purpose; dispatchers and CSOs,
/// who may not list holds, could read any by id.
#[tokio::test]
async fn a_hold_is_seen_exported_and_lifted_only_by_its_maker_those_it_is_shared_with_and_the_administrator(
) {
    let mut api = api().await;
    api.seed(NOW - DAY).await;
    let ids = api.find(&api.officer, "7ABC120").await;
    let (s, hold) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&api.officer),
            Some(json!({"case_number": "26-004211", "read_ids": ids})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    let id = hold["id"].as_i64().unwrap();
    assert_eq!(hold["shared_with"], json!([]));
    for (name, role) in [
        ("officer2", Role::Officer),
        ("disp1", Role::Dispatcher),
        ("cso1", Role::Cso),
    ] {
        api.ready_user(name, role).await;
    }
    let other = api.sign_in_ok("officer2").await;
    let reads = format!("/api/v1/holds/{id}/reads");
    let their_purpose = json!({"case_number": "26-004211", "offense": "211 PC", "reason": "second detective on the robbery"});
    let with_purpose = format!(
        "{reads}?case_number=26-004211&offense=211%20PC&reason=second%20detective%20on%20the%20robbery"
    );

    // A stranger gets what an unknown id gets, on every route.
    let unknown = api
        .call("GET", "/api/v1/holds/999999", Some(&other), None)
        .await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    for (method, path, body) in [
        ("GET", format!("/api/v1/holds/{id}"), None),
        ("GET", reads.clone(), None),
        ("GET", with_purpose.clone(), None),
        (
            "POST",
            "/api/v1/evidence".to_string(),
            Some(json!({"hold_id": id, "purpose": their_purpose})),
        ),
        (
            "POST",
            "/api/v1/download-links".to_string(),
            Some(json!({"evidence": {"hold_id": id, "purpose": their_purpose}})),
        ),
        (
            "DELETE",
            format!("/api/v1/holds/{id}?reason=case%20closed"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/holds/{id}/members"),
            Some(json!({"username": "officer2"})),
        ),
    ] {
        let (s, v) = api.call(method, &path, Some(&other), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "unknown_hold", "{method} {path}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("does not exist"),
            "the same words as for an unknown id: {v}"
        );
    }
    let (_, list) = api.call("GET", "/api/v1/holds", Some(&other), None).await;
    assert_eq!(list["holds"], json!([]), "{list}");
    let refused = api
        .store
        .log_entries(None, None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "hold_forbidden")
        .count();
    assert_eq!(refused, 7, "every refused attempt is logged");
    assert!(!api.log_kinds().iter().any(|k| k == "hold_lifted"));

    // Roles that may not hold reads are refused by role, whatever the id.
    for name in ["disp1", "cso1"] {
        let token = api.sign_in_ok(name).await;
        for path in [reads.clone(), with_purpose.clone(), "/api/v1/holds".into()] {
            let (s, v) = api.call("GET", &path, Some(&token), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{name} {path}: {v}");
        }
    }

    // Shared with a colleague on the case (not with a dispatcher).
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/holds/{id}/members"),
            Some(&api.officer),
            Some(json!({"username": "disp1"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("role_cannot_hold")),
        "{v}"
    );
    for bad in ["nobody", "", "x\u{0}y", &"a".repeat(10_000)] {
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/holds/{id}/members"),
                Some(&api.officer),
                Some(json!({"username": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/holds/{id}/members"),
            Some(&api.officer),
            Some(json!({"username": "officer2"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["shared_with"], json!(["officer2"]));
    let (_, list) = api.call("GET", "/api/v1/holds", Some(&other), None).await;
    assert_eq!(list["holds"][0]["id"], id, "{list}");

    // The colleague states their own purpose, for the hold's case.
    let (s, v) = api.call("GET", &reads, Some(&other), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("purpose_insufficient")
        ),
        "{v}"
    );
    let (s, v) = api
        .call(
            "GET",
            &format!("{reads}?case_number=26-999999&offense=211%20PC&reason=another%20case"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("purpose_case_mismatch")
        ),
        "{v}"
    );
    let (s, v) = api.call("GET", &with_purpose, Some(&other), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let access = api
        .store
        .access_record(v["access_id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(access.username, "officer2");
    assert_eq!(
        access.purpose.reason, "second detective on the robbery",
        "logged under the requester's own purpose, never the maker's"
    );
    let (s, _) = api
        .bytes(
            "POST",
            "/api/v1/evidence",
            &other,
            json!({"hold_id": id, "purpose": their_purpose}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/download-links",
            Some(&other),
            Some(json!({"evidence": {"hold_id": id}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a link needs the purpose too: {v}"
    );
    // …but may not lift it or share it further.
    for (method, path, body) in [
        (
            "DELETE",
            format!("/api/v1/holds/{id}?reason=case%20closed"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/holds/{id}/members"),
            Some(json!({"username": "capt"})),
        ),
    ] {
        let (s, v) = api.call(method, &path, Some(&other), body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("hold_forbidden")),
            "{v}"
        );
    }

    // The maker takes it back; the administrator may lift any hold.
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/api/v1/holds/{id}/members/officer2"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(
        (s, v["shared_with"].clone()),
        (StatusCode::OK, json!([])),
        "{v}"
    );
    let (s, _) = api.call("GET", &with_purpose, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/api/v1/holds/{id}?reason=case%20closed"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["lifted_by"], "capt");
    assert!(api.store.verify_log().unwrap().ok);
}

/// The details of an entry, as JSON.
fn details(e: &platekeeper_store::LogEntry) -> Value {
    serde_json::from_str(&e.details).unwrap()
}

/// Issue 28 (SPEC R4.3): each access to plate data — a search, a
/// picture, placing a hold, a page of a hold, an evidence export, a
/// correction — is one log entry naming who, why, what was asked and
/// every read it returned, in one durable commit together with the
/// record of any change it makes. A look that finds nothing is no access.
#[tokio::test]
async fn every_access_is_one_entry_in_one_commit() {
    let mut api = api().await;
    api.seed(NOW - DAY).await;
    api.ready_user("ana", Role::Analyst).await;
    let analyst = api.sign_in_ok("ana").await;
    let kinds = |entries: &[platekeeper_store::LogEntry]| -> Vec<String> {
        entries.iter().map(|e| e.kind.clone()).collect()
    };

    // A search: one entry with the query, the count and the reads.
    let mark = api.mark();
    let (s, found) = api
        .call(
            "POST",
            "/api/v1/search",
            Some(&analyst),
            Some(json!({"plate": "7ABC12*", "purpose": purpose()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    let (entries, commits) = api.since(mark);
    assert_eq!((kinds(&entries), commits), (vec!["search".into()], 1));
    let search = &entries[0];
    assert_eq!(search.seq, found["access_id"].as_i64().unwrap());
    assert_eq!(search.username, "ana");
    assert!(search.purpose.as_deref().unwrap().contains("26-004211"));
    let d = details(search);
    assert_eq!(d["plate"], "7ABC12*");
    assert_eq!(d["result_count"], 4);
    let returned: Vec<String> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["read_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(d["reads"], json!(returned), "every read returned, in order");

    // A picture of one of them.
    let mark = api.mark();
    let (s, _, bytes) = api
        .send(
            Request::get(found["results"][0]["image_url"].as_str().unwrap())
                .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(bytes.starts_with(&[0xFF, 0xD8]));
    let (entries, commits) = api.since(mark);
    assert_eq!((kinds(&entries), commits), (vec!["image_view".into()], 1));
    assert_eq!(details(&entries[0])["reads"], json!([returned[0]]));

    // Asking for a picture the read does not have finds nothing: no
    // entry, no commit (the refusal is the 404).
    let mark = api.mark();
    let plate_url = format!(
        "/api/v1/reads/{}/image?access_id={}&kind=plate",
        returned[0], search.seq
    );
    let (s, v, _) = api
        .send(
            Request::get(plate_url.as_str())
                .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_image"))
    );
    assert_eq!(api.since(mark), (vec![], 0));

    // Placing a hold: the access and the hold's record, one commit.
    let mark = api.mark();
    let (s, hold) = api
        .call(
            "POST",
            "/api/v1/holds",
            Some(&analyst),
            Some(json!({"case_number": "26-004211", "read_ids": &returned[..2]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    let (entries, commits) = api.since(mark);
    assert_eq!(
        (kinds(&entries), commits),
        (vec!["hold".into(), "hold_placed".into()], 1)
    );
    assert_eq!(details(&entries[0])["result_count"], 2);
    assert_eq!(details(&entries[1])["access"], entries[0].seq);
    assert_eq!(hold["access_id"], entries[0].seq);
    let hold_id = hold["id"].as_i64().unwrap();

    // A page of the hold.
    let mark = api.mark();
    let (s, page) = api
        .call(
            "GET",
            &format!("/api/v1/holds/{hold_id}/reads"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (entries, commits) = api.since(mark);
    assert_eq!((kinds(&entries), commits), (vec!["search".into()], 1));
    assert_eq!(details(&entries[0])["result_count"], 2);
    assert_eq!(page["access_id"], entries[0].seq);

    // The evidence export: the access names every read in the package,
    // and the export's record names the package, in one commit.
    let mark = api.mark();
    let resp = api
        .respond(
            Request::post("/api/v1/evidence")
                .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"hold_id": hold_id}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sha = resp.headers()["x-package-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let (entries, commits) = api.since(mark);
    assert_eq!(
        (kinds(&entries), commits),
        (vec!["export".into(), "evidence_exported".into()], 1)
    );
    assert_eq!(details(&entries[0])["result_count"], 2);
    assert_eq!(details(&entries[1])["access"], entries[0].seq);
    assert_eq!(details(&entries[1])["sha256"], sha);

    // A correction: the access and the correction's record.
    let mark = api.mark();
    let (s, c) = api
        .call(
            "POST",
            &format!("/api/v1/reads/{}/correction", returned[3]),
            Some(&analyst),
            Some(json!({"plate": "7A8C123", "reason": "the picture shows an 8"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (entries, commits) = api.since(mark);
    assert_eq!(
        (kinds(&entries), commits),
        (vec!["correction".into(), "read_corrected".into()], 1)
    );
    assert_eq!(details(&entries[0])["reads"], json!([returned[3]]));
    assert_eq!(details(&entries[1])["access"], entries[0].seq);
    let (_, v) = api
        .call("GET", "/api/v1/audit/verify", Some(&api.admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}
