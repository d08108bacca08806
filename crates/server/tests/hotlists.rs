//! Hot lists and alerts over HTTP against a real store (SPEC R3.1–R3.5,
//! R4.3): lists, entries, imports, matching at ingest, SSE delivery,
//! dispositions, re-sending, expiry and the audit trail.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use platekeeper_core::Role;
use serde_json::{json, Value};
use support::{api, Api, NOW};

const DAY: i64 = 86_400_000;
const WAIT: Duration = Duration::from_secs(5);

impl Api {
    async fn new_list(&self, name: &str, kind: &str, fuzzy: bool) -> i64 {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/hotlists",
                Some(&self.admin),
                Some(json!({"name": name, "kind": kind, "retention_days": 60, "fuzzy": fuzzy})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    async fn add(&self, list: i64, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/api/v1/hotlists/{list}/entries"),
            Some(token),
            Some(body),
        )
        .await
    }

    async fn import(&self, list: i64, query: &str, body: &[u8]) -> (StatusCode, Value) {
        self.upload(list, query, &self.admin, "text/plain", body)
            .await
    }

    async fn upload(
        &self,
        list: i64,
        query: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let req = Request::post(format!("/api/v1/hotlists/{list}/import?{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_vec()))
            .unwrap();
        let (s, v, _) = self.send(req).await;
        (s, v)
    }

    async fn ingest(&self, key: &str, reads: Value) -> Value {
        let (s, v) = self.post_reads(key, reads).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

/// Alerts read straight from the store in a test, under a logged access.
fn alerts(api: &Api) -> Vec<platekeeper_store::Alert> {
    let access = platekeeper_store::Access::new(platekeeper_store::AccessRequest {
        username: "test".into(),
        affiliation: "Test PD".into(),
        kind: platekeeper_store::AccessKind::AlertView,
        query: json!({"test": true}),
        purpose: platekeeper_core::Purpose::new("T-1", "test", "test of alerts").unwrap(),
        client: None,
        role: None,
    });
    let found = api.store.alerts(&access, i64::MAX, 10, false).unwrap();
    api.store
        .release(access, found, api.now())
        .unwrap()
        .into_value()
}

fn read(n: u32, plate: &str, state: &str) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "plate": plate,
        "state": state,
        "ts": platekeeper_core::read::format_time_ms(NOW - 30_000),
    })
}

fn expires(days: i64) -> String {
    platekeeper_core::read::format_time_ms(NOW + days * DAY)
}

#[tokio::test]
async fn reads_hitting_a_list_alert_every_connected_officer_at_once() {
    let api = api().await;
    let stolen = api.new_list("SVS daily", "stolen_vehicle", false).await;
    let misread = api.new_list("Homicide 26-114", "agency", true).await;
    for (list, plate, state) in [
        (stolen, "7ABC123", Some("CA")),
        (stolen, "4GH*", None),
        (misread, "8OB1234", None),
    ] {
        let (s, v) = api
            .add(
                list,
                &api.admin,
                json!({"plate": plate, "state": state, "reason": "stolen 10851 VC",
                       "case_number": "26-0042", "expires_at": expires(10)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let mut officer = api.open_stream("/api/v1/alerts/stream", &api.officer).await;
    let mut admin = api.open_stream("/api/v1/alerts/stream", &api.admin).await;
    assert_eq!(api.alerts.connected(), 2);

    let key = api.camera_key("cam-hot").await;
    let report = api
        .ingest(
            &key,
            json!([
                read(1, "7ABC123", "CA"),
                read(2, "7ABC123", "NV"), // other state: no hit
                read(3, "4GHJ772", "CA"), // partial entry
                read(4, "B08I234", "CA"), // a misread of 8OB1234
                read(5, "1XYZ999", "CA"),
            ]),
        )
        .await;
    assert_eq!(report["accepted"], 5);

    let mut plates = Vec::new();
    for _ in 0..3 {
        let (event, alert) = officer.next(WAIT).await.expect("an alert");
        assert_eq!(event, "alert");
        assert!(alert["verify_notice"].as_str().unwrap().contains("CLETS"));
        assert_eq!(alert["camera"], "cam-hot");
        plates.push(alert["plate"].as_str().unwrap().to_string());
        let (_, same) = admin.next(WAIT).await.expect("the administrator too");
        assert_eq!(same["id"], alert["id"]);
    }
    plates.sort();
    assert_eq!(plates, ["4GHJ772", "7ABC123", "B08I234"]);
    assert!(officer.next(Duration::from_millis(300)).await.is_none());

    // A re-sent batch raises no second alert.
    api.ingest(&key, json!([read(1, "7ABC123", "CA")])).await;
    assert!(officer.next(Duration::from_millis(300)).await.is_none());

    // The record, its read (an access), and closing it. Each look is one
    // entry naming the reads it showed, in one commit (issue 28).
    let mark = api.mark();
    let (s, list) = api
        .call("GET", "/api/v1/alerts?open=true", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (entries, commits) = api.since(mark);
    assert_eq!((entries.len(), commits), (1, 1));
    let logged: Value = serde_json::from_str(&entries[0].details).unwrap();
    assert_eq!(logged["result_count"], 3);
    assert_eq!(
        logged["reads"].as_array().unwrap()[0],
        list["alerts"][0]["read_id"]
    );
    let listing = api
        .store
        .access_record(list["access_id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(listing.kind, "alert_view", "listing alerts is an access");
    let list = list["alerts"].clone();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let id = list[0]["id"].as_i64().unwrap();
    let (s, opened) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/read"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{opened}");
    assert_eq!(opened["read"]["plate"], list[0]["plate"]);
    let (entries, commits) = api.since(mark);
    assert_eq!((entries.len(), commits), (2, 2));
    let logged: Value = serde_json::from_str(&entries[1].details).unwrap();
    assert_eq!(logged["reads"], json!([list[0]["read_id"]]));
    let access = api
        .store
        .access_record(opened["access_id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(access.kind, "alert_view");
    assert_eq!(access.username, "officer1");

    let disp_path = format!("/api/v1/alerts/{id}/disposition");
    let disp = |body: Value| api.call("POST", &disp_path, Some(&api.officer), Some(body));
    let (s, v) = disp(json!({"disposition": "arrested"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_disposition")
        )
    );
    let (s, v) = disp(json!({"disposition": "other"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_note"))
    );
    // Issue 23 item 3: the field choices; a dismissal must say why.
    let (s, v) = disp(json!({"disposition": "dismissed", "note": ""})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_note")),
        "{v}"
    );
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    let menu: Vec<&str> = settings["dispositions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        menu,
        [
            "confirmed",
            "wrong_state",
            "misread",
            "not_wanted",
            "dismissed",
            "other"
        ]
    );
    let (s, v) = disp(json!({"disposition": "misread", "note": "plate was 7ABC128"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["disposition"], "misread");
    assert_eq!(v["acknowledged_by"], "officer1");
    let (s, v) = disp(json!({"disposition": "confirmed"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("alert_closed"))
    );

    // Deliveries are logged per person, off the delivery path.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let delivered = api
        .store
        .log_entries(None, None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "alert_delivered")
        .map(|e| e.username)
        .collect::<Vec<_>>();
    assert_eq!(delivered.iter().filter(|u| *u == "officer1").count(), 3);
    assert_eq!(delivered.iter().filter(|u| *u == "capt").count(), 3);
    assert!(api.log_kinds().contains(&"alert_disposition".to_string()));
    assert!(api.store.verify_log().unwrap().ok);
}

#[tokio::test]
async fn who_may_see_and_change_hot_lists() {
    let mut api = api().await;
    api.ready_user("dana", Role::Auditor).await;
    let auditor = api.sign_in_ok("dana").await;
    // Officers may not create lists; auditors see neither lists nor alerts.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/hotlists",
            Some(&api.officer),
            Some(json!({"name": "x", "kind": "agency", "retention_days": 30})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_forbidden"))
    );
    let list = api.new_list("Agency list", "agency", false).await;
    let (s, _) = api
        .call("GET", "/api/v1/hotlists", Some(&api.officer), None)
        .await;
    assert_eq!(s, StatusCode::OK, "officers see which lists exist");
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/hotlists/{list}/entries"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "but not their plates");
    let (s, _) = api
        .call("GET", "/api/v1/alerts", Some(&auditor), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = api
        .send(
            Request::get("/api/v1/alerts/stream")
                .header(header::AUTHORIZATION, format!("Bearer {auditor}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.call("GET", "/api/v1/alerts/stream", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Bad list definitions.
    for (body, code) in [
        (
            json!({"name": "y", "kind": "gang", "retention_days": 30}),
            "invalid_kind",
        ),
        (
            json!({"name": "y", "kind": "agency", "retention_days": 0}),
            "invalid_hotlist",
        ),
        (
            json!({"name": "y", "kind": "agency", "retention_days": 5000}),
            "invalid_hotlist",
        ),
        (
            json!({"name": "", "kind": "agency", "retention_days": 30}),
            "invalid_hotlist",
        ),
        (
            json!({"name": "Agency list", "kind": "agency", "retention_days": 30}),
            "hotlist_exists",
        ),
        (json!({"name": "y", "kind": "agency"}), "invalid_body"),
    ] {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/hotlists",
                Some(&api.admin),
                Some(body.clone()),
            )
            .await;
        assert!(s.is_client_error(), "{body}: {s}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
}

#[tokio::test]
async fn entries_that_match_too_much_or_live_too_long_are_refused() {
    let mut api = api().await;
    api.ready_user("ana", Role::Analyst).await;
    let analyst = api.sign_in_ok("ana").await;
    let list = api.new_list("Warrants", "warrant", false).await;
    let entry = |plate: &str, days: i64| json!({"plate": plate, "reason": "felony warrant", "expires_at": expires(days)});
    for broad in ["*", "??*", "7*", "*AB*", "7?B", "A-?-*"] {
        let (s, v) = api.add(list, &analyst, entry(broad, 5)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{broad}");
        assert_eq!(v["error"]["code"], "entry_too_broad", "{broad}: {v}");
    }
    for (body, code) in [
        (entry("7AB;--", 5), "invalid_plate"),
        (entry("7ABC123", 31), "expiry_too_far"),
        (entry("7ABC123", -1), "entry_expired"),
        (
            json!({"plate": "7ABC123", "reason": " ", "expires_at": expires(5)}),
            "invalid_reason",
        ),
        (
            json!({"plate": "7ABC123", "reason": "x", "state": "QQ", "expires_at": expires(5)}),
            "invalid_state",
        ),
        (
            json!({"plate": "7ABC123", "reason": "x", "expires_at": "next week"}),
            "invalid_timestamp",
        ),
        (
            json!({"plate": "7ABC123", "reason": "x".repeat(501), "expires_at": expires(5)}),
            "invalid_reason",
        ),
    ] {
        let (s, v) = api.add(list, &analyst, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // The ALPR Administrator may override the 30-day limit.
    let (s, v) = api.add(list, &api.admin, entry("7ABC123", 45)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // No expiry given: the longest allowed.
    let (s, v) = api
        .add(
            list,
            &analyst,
            json!({"plate": "6TRJ244", "reason": "felony warrant"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["expires_at_ms"], api.now() + 30 * DAY);
    let (s, _) = api.add(9_999, &analyst, entry("7ABC123", 5)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Entries every read must be checked against are capped.
    let loose: String = std::iter::once("plate\n".to_string())
        .chain((0..2_001u32).map(|i| {
            let letter = char::from(b'A' + (i / 10 % 26) as u8);
            format!("{}?{letter}?{}?{}\n", i % 10, i / 260 % 10, i / 2_600)
        }))
        .collect();
    let (s, v) = api
        .import(list, "format=csv&source=loose", loose.as_bytes())
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_hotlist")),
        "{v}"
    );
    // An import cannot get round the 30-day limit either.
    let (s, v) = api
        .upload(
            list,
            "format=csv&source=tips",
            &analyst,
            "text/csv",
            b"plate,reason,expires_at\n5LONG99,tip,2099-01-01\n",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, page) = api
        .call(
            "GET",
            &format!("/api/v1/hotlists/{list}/entries"),
            Some(&analyst),
            None,
        )
        .await;
    let long = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["plate"] == "5LONG99")
        .unwrap()
        .clone();
    assert_eq!(long["expires_at_ms"], api.now() + 30 * DAY);
}

const DOJ: &str = "SVS 20261117 CALIFORNIA DOJ STOLEN VEHICLE SYSTEM\n\
7ABC123 CA0120261101\n\
6TRJ244 CA1920261030\n\
?       CA0120261101\n\
4GHJ772 NV  20261015\n\
TOTAL RECORDS: 4\n";

#[tokio::test]
async fn imports_report_every_line_and_replace_their_source_at_once() {
    let api = api().await;
    let list = api.new_list("DOJ SVS", "stolen_vehicle", false).await;
    let (s, v) = api
        .import(list, "format=doj&source=svs", DOJ.as_bytes())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["added"].as_u64(),
            v["removed"].as_u64(),
            v["invalid"].as_u64()
        ),
        (Some(3), Some(0), Some(1))
    );
    assert_eq!(v["problems"][0]["line"], 4);

    // The next day's file: one recovered, one new; the hand entry stays.
    api.add(
        list,
        &api.admin,
        json!({"plate": "5XYZ001", "reason": "tip", "expires_at": expires(3)}),
    )
    .await;
    let next = "SVS 20261118\n7ABC123 CA0120261101\n8DEF456 CA0120261117\n4GHJ772 NV  20261015\nTOTAL RECORD 3\n";
    let (s, v) = api
        .import(list, "format=doj&source=svs", next.as_bytes())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["added"].as_u64(),
            v["removed"].as_u64(),
            v["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    let (_, entries) = api
        .call(
            "GET",
            &format!("/api/v1/hotlists/{list}/entries"),
            Some(&api.admin),
            None,
        )
        .await;
    let mut plates: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["plate"].as_str().unwrap())
        .collect();
    plates.sort();
    assert_eq!(plates, ["4GHJ772", "5XYZ001", "7ABC123", "8DEF456"]);

    // A cut-off file changes nothing.
    let cut = "SVS 20261119\n7ABC123 CA0120261101\n";
    let (s, v) = api
        .import(list, "format=doj&source=svs", cut.as_bytes())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "import_refused");
    assert_eq!(api.store.hotlist(list).unwrap().unwrap().entries, 4);

    // CSV and NCIC, with hostile lines among good ones.
    let csv = "plate,state,reason,case_number,make\n1ABC234,CA,armed robbery,26-1,HOND\n\"broken,CA\n\u{0}\u{0},CA,x,,\n2BCD345,CA,,,\n";
    let (s, v) = api
        .import(list, "format=csv&source=local", csv.as_bytes())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], 2, "{v}");
    assert_eq!(v["invalid"], 2, "{v}");
    let mut junk = vec![0xFFu8, 0xFE, b'\n'];
    junk.extend(std::iter::repeat_n(b'A', 100_000));
    let (s, v) = api.import(list, "format=ncic&source=ncic", &junk).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only bad lines: refused, {v}"
    );
    assert_eq!(
        (
            v["report"]["added"].as_u64(),
            v["report"]["invalid"].as_u64()
        ),
        (Some(0), Some(2))
    );
    // A file that would remove most of a large source is refused unless
    // the administrator says so.
    let big: String = std::iter::once("plate\n".to_string())
        .chain((0..120).map(|i| format!("9BIG{i:03}\n")))
        .collect();
    let (s, v) = api
        .import(list, "format=csv&source=big", big.as_bytes())
        .await;
    assert_eq!((s, v["added"].as_u64()), (StatusCode::OK, Some(120)), "{v}");
    let small = "plate\n9BIG000\n9BIG001\n";
    let (s, v) = api
        .import(list, "format=csv&source=big", small.as_bytes())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("replace_all"));
    let (s, v) = api
        .import(
            list,
            "format=csv&source=big&replace_all=true",
            small.as_bytes(),
        )
        .await;
    assert_eq!(
        (s, v["removed"].as_u64(), v["unchanged"].as_u64()),
        (StatusCode::OK, Some(118), Some(2)),
        "{v}"
    );
    // A form upload, format told from the file name.
    let form = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"svs_20261120.txt\"\r\nContent-Type: text/plain\r\n\r\nSVS 20261120\n3QRS789 CA0120261119\nTOTAL RECORD 1\n\r\n--XyZ--\r\n";
    let multipart = "multipart/form-data; boundary=XyZ";
    let (s, v) = api
        .upload(list, "source=svs2", &api.admin, multipart, form.as_bytes())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["format"].as_str(), v["added"].as_u64()),
        (Some("doj"), Some(1))
    );
    let (s, v) = api
        .upload(list, "", &api.admin, multipart, b"--XyZ--\r\n")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_upload"))
    );
    // No format named: a CSV header tells.
    let (s, v) = api
        .import(list, "source=sniffed", b"plate,reason\n9ZZZ999,test\n")
        .await;
    assert_eq!(
        (s, v["format"].as_str()),
        (StatusCode::OK, Some("csv")),
        "{v}"
    );
    for (q, code) in [
        ("format=xml", "invalid_format"),
        ("format=csv&source=manual", "invalid_hotlist"),
        ("format=csv&source=a%20b", "invalid_hotlist"),
    ] {
        let (s, v) = api.import(list, q, b"plate\n7ABC123\n").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(v["error"]["code"], code, "{q}");
    }
    let (s, _) = api.import(9_999, "format=csv", b"plate\n7ABC123\n").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let kinds = api.log_kinds();
    for k in [
        "hotlist_created",
        "hotlist_imported",
        "hotlist_import_refused",
        "hotlist_entry_added",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} not logged");
    }
}

#[tokio::test]
async fn expired_entries_stop_matching_and_the_daily_job_removes_them() {
    let api = api().await;
    let list = api.new_list("Short", "stolen_plate", false).await;
    let (_, e) = api
        .add(
            list,
            &api.admin,
            json!({"plate": "7ABC123", "reason": "stolen plate", "expires_at": expires(2)}),
        )
        .await;
    let entry = e["id"].as_i64().unwrap();
    api.add(
        list,
        &api.admin,
        json!({"plate": "6TRJ244", "reason": "stolen plate", "expires_at": expires(20)}),
    )
    .await;
    assert_eq!(api.store.hot_entry_count(), 2);
    let key = api.camera_key("cam-exp").await;
    api.advance(3 * DAY);
    let mut r = read(1, "7ABC123", "CA");
    r["ts"] = json!(platekeeper_core::read::format_time_ms(api.now() - 1_000));
    api.ingest(&key, json!([r])).await;
    assert!(alerts(&api).is_empty(), "expired entries never alert");
    let purge = api.store.purge_hotlists(api.now()).unwrap();
    assert_eq!(purge.entries_removed, 1);
    assert!(api.store.hot_entry(entry).unwrap().is_none());
    assert_eq!(api.store.hot_entry_count(), 1);
    // Past the list's retention (60 days) the rest goes, then the list.
    api.advance(61 * DAY);
    let purge = api.store.purge_hotlists(api.now()).unwrap();
    assert_eq!(purge.entries_removed, 1);
    assert_eq!(purge.lists_removed, ["Short"]);
    assert!(api.store.hotlist(list).unwrap().is_none());
    assert_eq!(
        api.store.purge_hotlists(api.now()).unwrap(),
        Default::default()
    );
    assert!(api.log_kinds().contains(&"hotlist_purged".to_string()));
}

#[tokio::test]
async fn unacknowledged_alerts_are_sent_again() {
    let api = api().await;
    let list = api.new_list("Amber", "amber", false).await;
    api.add(
        list,
        &api.admin,
        json!({"plate": "7ABC123", "reason": "AMBER alert", "expires_at": expires(1)}),
    )
    .await;
    let key = api.camera_key("cam-amber").await;
    api.ingest(&key, json!([read(9, "7ABC123", "CA")])).await;
    let first = alerts(&api);
    assert_eq!(first.len(), 1);
    let id = first[0].id;
    assert!(api
        .store
        .alerts_to_resend(api.now() + 30_000, 60_000, 10)
        .unwrap()
        .is_empty());
    let again = api
        .store
        .alerts_to_resend(api.now() + 61_000, 60_000, 10)
        .unwrap();
    assert_eq!((again.len(), again[0].sent_count), (1, 2));
    // The officer opens it (only someone who saw it acknowledges it).
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/alerts/{id}"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(api
        .store
        .alerts_to_resend(api.now() + 600_000, 60_000, 10)
        .unwrap()
        .is_empty());
    let (s, _) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/alerts/424242/ack",
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Hits from long ago are not re-sent (after a restart, say).
    api.ingest(&key, json!([read(10, "7ABC123", "CA")])).await;
    let later = api.now() + 11 * 60_000;
    assert!(api
        .store
        .alerts_to_resend(later, 60_000, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        api.store
            .alerts_to_resend(api.now() + 61_000, 60_000, 10)
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn streams_that_disconnect_leave_nothing_behind() {
    use platekeeper_server::alerts::MAX_STREAMS_PER_PERSON;
    let api = api().await;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_PERSON {
        streams.push(api.open_stream("/api/v1/alerts/stream", &api.officer).await);
    }
    streams.push(api.open_stream("/api/v1/alerts/stream", &api.admin).await);
    assert_eq!(api.alerts.connected(), MAX_STREAMS_PER_PERSON + 1);
    // Issue 22 finding 12: streams per person are capped.
    let (st, v) = api
        .call("GET", "/api/v1/alerts/stream", Some(&api.officer), None)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_streams"))
    );

    // One alert on every stream is logged once per person, not per stream.
    let list = api.new_list("SVS daily", "stolen_vehicle", false).await;
    let (s, v) = api
        .add(
            list,
            &api.admin,
            json!({"plate": "7ABC123", "reason": "stolen 10851 VC", "case_number": "26-0042", "expires_at": expires(10)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = api.camera_key("cam-hot").await;
    api.ingest(&key, json!([read(1, "7ABC123", "CA")])).await;
    for s in streams.iter_mut() {
        let (event, _) = s.next(WAIT).await.expect("the alert on every stream");
        assert_eq!(event, "alert");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let delivered: Vec<String> = api
        .store
        .log_entries(None, None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "alert_delivered")
        .map(|e| e.username)
        .collect();
    assert_eq!(
        delivered.iter().filter(|u| *u == "officer1").count(),
        1,
        "{delivered:?}"
    );
    assert_eq!(
        delivered.iter().filter(|u| *u == "capt").count(),
        1,
        "{delivered:?}"
    );

    streams.truncate(2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(api.alerts.connected(), 2);
    // A closed stream frees its place for the same person.
    streams.push(api.open_stream("/api/v1/alerts/stream", &api.officer).await);
    drop(streams);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(api.alerts.connected(), 0);
    // A stream ends when its session does.
    let mut s = api
        .open_stream("/api/v1/alerts/stream?near_m=500", &api.officer)
        .await;
    let (st, _) = api
        .call("DELETE", "/api/v1/session", Some(&api.officer), None)
        .await;
    assert!(st.is_success());
    // (The test hub re-checks sessions every 200 ms; servers every 30 s.)
    let (event, data) = s.next(WAIT).await.expect("an end event");
    assert_eq!(
        (event.as_str(), data["reason"].as_str()),
        ("end", Some("session_ended"))
    );
    assert!(s.next(Duration::from_millis(200)).await.is_none());
    let (st, v) = api
        .call(
            "GET",
            "/api/v1/alerts/stream?near_m=-3",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_near"))
    );
}

#[tokio::test]
async fn a_stream_ends_when_its_holder_loses_the_right_to_plate_data() {
    // R5.2/R5.3: an approval that lapses during a session stops alerts at
    // once, though the session itself is still valid.
    let mut api = api().await;
    let until = api.now() + 60_000;
    api.ready_user_until("pat", Role::Officer, until).await;
    let token = api.sign_in_ok("pat").await;
    let mut s = api.open_stream("/api/v1/alerts/stream", &token).await;
    assert!(
        s.next(Duration::from_millis(500)).await.is_none(),
        "open while approved"
    );
    api.advance(120_000);
    let (event, data) = s.next(WAIT).await.expect("an end event");
    assert_eq!(
        (event.as_str(), data["reason"].as_str()),
        ("end", Some("session_ended"))
    );
    let (st, v) = api.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "the session itself lives on: {v}");
}

/// Found by the sweep after issue 22 finding 1: anyone with the alerts
/// right could acknowledge or close any alert by walking its id, without
/// having seen it (a disposition is final and stops the re-sends).
#[tokio::test]
async fn only_someone_who_saw_an_alert_acknowledges_or_closes_it() {
    let mut api = api().await;
    api.ready_user("disp1", Role::Dispatcher).await;
    let dispatcher = api.sign_in_ok("disp1").await;
    let list = api.new_list("SVS daily", "stolen_vehicle", false).await;
    let (s, v) = api
        .add(
            list,
            &api.admin,
            json!({"plate": "7ABC123", "reason": "stolen 10851 VC", "case_number": "26-0042", "expires_at": expires(10)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut officer = api.open_stream("/api/v1/alerts/stream", &api.officer).await;
    let key = api.camera_key("cam-hot").await;
    api.ingest(&key, json!([read(1, "7ABC123", "CA")])).await;
    let (_, alert) = officer.next(WAIT).await.expect("an alert");
    let id = alert["id"].as_i64().unwrap();
    let close = json!({"disposition": "not_wanted", "note": "x"});
    for (path, body) in [
        (format!("/api/v1/alerts/{id}/ack"), None),
        (
            format!("/api/v1/alerts/{id}/disposition"),
            Some(close.clone()),
        ),
    ] {
        let (s, v) = api.call("POST", &path, Some(&dispatcher), body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("alert_not_seen")),
            "{path}: {v}"
        );
    }
    let (s, _) = api
        .call("POST", "/api/v1/alerts/999999/ack", Some(&dispatcher), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The officer it reached may; the dispatcher may once they open it.
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&api.officer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = api
        .call(
            "GET",
            &format!("/api/v1/alerts/{id}"),
            Some(&dispatcher),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/disposition"),
            Some(&dispatcher),
            Some(json!({"disposition": "confirmed", "note": "verified through CLETS"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_large_list_is_searched_by_plate() {
    // Issue 23 item 8: a search box for lists of 100,000 entries.
    let api = api().await;
    let list = api
        .new_list("Stolen vehicles", "stolen_vehicle", false)
        .await;
    let expires = platekeeper_core::read::format_time_ms(api.now() + 20 * DAY);
    for plate in ["7ABC123", "5XYZ987", "4KX?9*", "8ABC999"] {
        let (s, v) = api
            .add(
                list,
                &api.admin,
                json!({"plate": plate, "reason": "stolen", "expires_at": expires}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let find = |q: &str| {
        let api = &api;
        let path = format!("/api/v1/hotlists/{list}/entries?{q}");
        async move { api.call("GET", &path, Some(&api.admin), None).await }
    };
    let plates = |v: &Value| -> Vec<String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["plate"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = find("plate=abc").await;
    assert_eq!(
        (s, plates(&v)),
        (
            StatusCode::OK,
            vec!["7ABC123".to_string(), "8ABC999".to_string()]
        ),
        "{v}"
    );
    let (_, v) = find("plate=9&limit=1").await;
    assert_eq!(plates(&v), ["5XYZ987"]);
    let (_, v) = find(&format!(
        "plate=9&limit=1&cursor={}",
        v["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(plates(&v), ["4KX?9*"], "pages go on within the filter");
    let (_, v) = find("plate=KX").await;
    assert_eq!(
        plates(&v),
        ["4KX?9*"],
        "a pattern entry is found by its letters"
    );
    let (_, v) = find("plate=NONE1").await;
    assert_eq!(plates(&v), Vec::<String>::new());
    for bad in [
        "plate=%27%20OR%201%3D1",
        "plate=AB%25",
        "plate=ABCDEFGHIJK",
        "plate=",
        "plate=%3F",
    ] {
        let (s, v) = find(bad).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_plate")),
            "{bad}: {v}"
        );
    }
    let (_, v) = find("").await;
    assert_eq!(plates(&v).len(), 4, "no filter: every entry");
}

/// `near_m`: someone who asked for alerts near them gets the hits within
/// that distance of their last position and not the others; a position
/// sent through another node of a cluster (so only in the store) counts
/// as well when it is the newest (issue 26).
#[tokio::test]
async fn alerts_near_me_follow_the_position_sent_through_any_node() {
    let api = api().await;
    let list = api.new_list("SVS daily", "stolen_vehicle", false).await;
    for plate in ["7NEAR01", "7FAR001", "7NEAR02"] {
        let (s, v) = api
            .add(
                list,
                &api.admin,
                json!({"plate": plate, "reason": "stolen 10851 VC", "expires_at": expires(10)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/me/position",
            Some(&api.officer),
            Some(json!({"lat": 37.8044, "lon": -122.2712})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let mut near = api
        .open_stream("/api/v1/alerts/stream?near_m=2000", &api.officer)
        .await;
    let mut everything = api.open_stream("/api/v1/alerts/stream", &api.admin).await;
    let key = api.camera_key("cam-near").await;
    let at = |n: u32, plate: &str, lat: f64, lon: f64| {
        let mut r = read(n, plate, "CA");
        r["lat"] = json!(lat);
        r["lon"] = json!(lon);
        r
    };
    api.ingest(
        &key,
        json!([
            at(1, "7FAR001", 34.0522, -118.2437), // Los Angeles
            at(2, "7NEAR01", 37.8050, -122.2700), // Oakland, 130 m away
        ]),
    )
    .await;
    let (_, got) = near.next(WAIT).await.expect("the near hit");
    assert_eq!(got["plate"], "7NEAR01", "the far hit is not sent: {got}");
    for _ in 0..2 {
        everything
            .next(WAIT)
            .await
            .expect("all hits without near_m");
    }
    // The officer drives south; the car's position goes through another
    // node, so this node's own copy is older than the store's.
    let la = platekeeper_core::GeoPoint::new(34.0522, -118.2437).unwrap();
    api.store
        .set_position("officer1", la, api.now() + 1_000)
        .unwrap();
    api.advance(2_000);
    drop(near);
    let mut near = api
        .open_stream("/api/v1/alerts/stream?near_m=2000", &api.officer)
        .await;
    api.ingest(&key, json!([at(3, "7NEAR02", 34.0530, -118.2440)]))
        .await;
    let (_, got) = near
        .next(WAIT)
        .await
        .expect("the hit near the new position");
    assert_eq!(got["plate"], "7NEAR02", "{got}");
    // Out of range input is refused and changes nothing.
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/me/position",
            Some(&api.officer),
            Some(json!({"lat": 95.0, "lon": 0.0})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_position"))
    );
    assert_eq!(
        api.store.position("officer1", 0).unwrap().map(|p| p.0),
        Some(la)
    );
}
