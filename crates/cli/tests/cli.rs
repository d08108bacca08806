//! The `platekeeper` binary end to end: a real server process on
//! 127.0.0.1, killed mid-ingest (SPEC R1.3), the CSV import (R1.4), the
//! demo and the benchmark's output contract.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

#[test]
fn acknowledged_reads_survive_a_kill_and_nothing_half_written_appears() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_create(dir.path());
    let server = Server::serve(dir.path());
    let url = server.url.clone();
    let token = admin_session(&url, &admin);
    let key = create_camera(&url, &token, "cam-kill");
    let start = now_ms() - 3_600_000;
    // Every read sent, by id → plate; the ids the server acknowledged.
    let sent: Arc<Mutex<std::collections::HashMap<String, String>>> = Arc::default();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sent, acked, stop, url, key) = (
            sent.clone(),
            acked.clone(),
            stop.clone(),
            url.clone(),
            key.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let reads: Vec<Value> = (0..200)
                    .map(|_| {
                        n += 1;
                        let id = format!("00000000-0000-4000-8000-{n:012}");
                        let plate = format!("K{n:06}");
                        sent.lock().unwrap().insert(id.clone(), plate.clone());
                        json!({"id": id, "plate": plate, "state": "CA", "ts": ts(start + n as i64 * 7), "lat": 37.8044, "lon": -122.2712})
                    })
                    .collect();
                let ids: Vec<String> = reads
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string())
                    .collect();
                match post(
                    &format!("{url}/api/v1/reads"),
                    Some(&key),
                    &json!({"reads": reads}),
                ) {
                    Ok(v) if v["accepted"] == 200 => acked.lock().unwrap().extend(ids),
                    Ok(v) => panic!("unexpected answer {v}"),
                    Err(_) => break, // the server is gone: nothing more is acknowledged
                }
            }
        })
    };
    // Let it ingest for a while, then kill -9 in the middle of the stream.
    let t = Instant::now();
    while acked.lock().unwrap().len() < 4_000 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 1_000,
        "the server acknowledged reads before the kill"
    );

    let server = Server::serve(dir.path());
    // Sessions survive a restart; the kill did not end this one.
    let stored = all_reads(&server.url, &token, "cam-kill", start - 1_000, now_ms());
    let sent = sent.lock().unwrap();
    let mut stored_ids = std::collections::HashSet::new();
    for r in &stored {
        let id = r["read_id"].as_str().unwrap();
        // Nothing half-written: every stored read is one that was sent,
        // whole, with its own plate.
        assert_eq!(sent.get(id).map(String::as_str), r["plate"].as_str(), "{r}");
        assert_eq!(r["state"], "CA");
        assert!(stored_ids.insert(id.to_string()), "read {id} appears twice");
    }
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged reads lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // Re-sending everything after the restart stores nothing twice.
    let again: Vec<Value> = acked
        .iter()
        .take(500)
        .map(|id| {
            let n: i64 = id[24..].parse().unwrap();
            json!({"id": id, "plate": sent[id], "state": "CA", "ts": ts(start + n * 7), "lat": 37.8044, "lon": -122.2712})
        })
        .collect();
    let v = post(
        &format!("{}/api/v1/reads", server.url),
        Some(&key),
        &json!({"reads": again}),
    )
    .unwrap();
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(500))
    );
    server.kill();
}

/// Issue 22 finding 7: `admin unlock` lifts an administrator's lock while
/// the server runs, through the server (the log's chain stays whole,
/// checked beside the running server), logged as done by the command
/// line's OS user.
#[test]
fn admin_unlock_works_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let admin = admin_create(&data);
    let server = Server::serve(&data);
    let url = server.url.clone();
    let token = admin_session(&url, &admin);
    let (user, _, secret) = &admin;
    let attempt = |password: &str| {
        post(
            &format!("{url}/api/v1/session"),
            None,
            &json!({"username": user, "password": password, "totp": code(secret, 0)}),
        )
    };
    // Five wrong passwords lock the account. The fifth waits out the
    // address's back-off (2 s after the fourth): a throttled attempt
    // would not count.
    for i in 1..=5 {
        if i == 5 {
            std::thread::sleep(Duration::from_millis(2_100));
        }
        let err = attempt(&format!("wrong guess {i}")).unwrap_err();
        assert_eq!(err.0, if i < 5 { 401 } else { 423 }, "attempt {i}: {err:?}");
    }
    assert!(
        err_message(&attempt("wrong again")).contains("try again in"),
        "throttled"
    );
    let (ok, out, err) = run(&["admin", "unlock", "--data", data_s, "--username", user]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("capt is unlocked"), "{out}");
    // The log, checked beside the running server, is one unbroken chain.
    let (ok, out, err) = run(&["audit", "verify", "--data", data_s]);
    assert!(ok, "{out}{err}");
    let entries = ureq::get(&format!("{url}/api/v1/audit/log?kind=account_unlocked"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_json::<Value>().map_err(|e| e.to_string()));
    // (A lock stops the session's requests only while it holds.)
    let entries = entries.expect("audit log");
    let e = &entries["entries"][0];
    assert!(
        e["username"].as_str().unwrap().starts_with("cli:"),
        "{entries}"
    );
    assert_eq!(e["details"]["user"], "capt");
    // An unknown account is refused by name, exit 1.
    let (ok, _, err) = run(&["admin", "unlock", "--data", data_s, "--username", "nobody"]);
    assert!(!ok);
    assert!(err.contains("nobody"), "{err}");
    server.kill();
}

fn err_message(r: &Result<Value, (u16, Value)>) -> String {
    match r {
        Err((_, v)) => v["error"]["message"].as_str().unwrap_or("").to_string(),
        Ok(v) => v.to_string(),
    }
}

#[test]
fn csv_import_reports_bad_lines_and_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = admin_create(&data);
    let server = Server::serve(&data);
    let token = admin_session(&server.url, &admin);
    create_camera(&server.url, &token, "cam-csv");
    // The data folder belongs to one process at a time.
    let csv = dir.path().join("reads.csv");
    std::fs::write(&csv, "id,plate,state,ts,lat,lon,camera,confidence\n").unwrap();
    let (ok, _, err) = run(&[
        "import",
        "reads",
        csv.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("in use"), "{err}");
    server.kill();

    let t = now_ms() - 600_000;
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "id,plate,state,ts,lat,lon,camera,confidence").unwrap();
    writeln!(
        f,
        "0b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10,7ABC123,CA,{},37.8044,-122.2712,cam-csv,90",
        ts(t)
    )
    .unwrap(); // line 2
    writeln!(f, ",7ABC 124,CA,{},37.81,-122.27,cam-csv,", ts(t + 1)).unwrap(); // 3: no id
    writeln!(f, ",7AB$124,CA,{},37.81,-122.27,cam-csv,", ts(t + 2)).unwrap(); // 4: bad plate
    writeln!(f, ",7ABC125,CA,not-a-time,37.81,-122.27,cam-csv,").unwrap(); // 5
    writeln!(f, ",7ABC126,CA,{},137.81,-122.27,cam-csv,", ts(t + 3)).unwrap(); // 6
    writeln!(f, ",7ABC127,CA,{},37.81,-122.27,nobody,", ts(t + 4)).unwrap(); // 7
    writeln!(f, ",7ABC128,CA,{}", ts(t + 5)).unwrap(); // 8: short row
    writeln!(
        f,
        ",\"7ABC\"\"129\",CA,{},37.81,-122.27,cam-csv,",
        ts(t + 6)
    )
    .unwrap(); // 9: quote in plate
    writeln!(f, ",8XYZ001,CA,{},37.81,-122.27,cam-csv,eighty", ts(t + 7)).unwrap(); // 10
    writeln!(f, ",8XYZ002,CA,{},,,cam-csv,75", ts(t + 8)).unwrap(); // 11: camera's position
    drop(f);
    let args = [
        "import",
        "reads",
        csv.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"accepted": 3, "duplicates": 0, "rejected": 7}),
        "{err}"
    );
    for (line, code) in [
        (4, "invalid_plate"),
        (5, "invalid_timestamp"),
        (6, "invalid_coordinates"),
        (7, "unknown_camera"),
        (8, "wrong_column_count"),
        (9, "invalid_plate"),
        (10, "invalid_number"),
    ] {
        assert!(
            err.contains(&format!("line {line}: ")) && err.contains(code),
            "line {line} {code} in {err}"
        );
    }
    let (ok, out, _) = run(&args);
    assert!(ok);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last, json!({"accepted": 0, "duplicates": 3, "rejected": 7}));

    std::fs::write(&csv, "plate,ts\n7ABC123,2026-01-01T00:00:00Z\n").unwrap();
    let (ok, _, err) = run(&args);
    assert!(
        !ok && err.contains("line 1") && err.contains("header"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "import",
        "reads",
        "/nonexistent.csv",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("/nonexistent.csv"), "{err}");
}

#[test]
fn audit_verify_checks_the_chain_offline() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_create(dir.path());
    let server = Server::serve(dir.path());
    let token = admin_session(&server.url, &admin);
    create_camera(&server.url, &token, "cam-a");
    let _ = all_reads(&server.url, &token, "cam-a", now_ms() - 3_600_000, now_ms());
    // Read-only: it runs while the server holds the folder.
    let data = dir.path().to_str().unwrap();
    let (ok, out, err) = run(&["audit", "verify", "--data", data]);
    assert!(ok, "{out} {err}");
    assert!(out.contains("audit log intact"), "{out}");
    server.kill();
    let conn = rusqlite::Connection::open(dir.path().join("platekeeper.db")).unwrap();
    conn.execute("UPDATE log SET username = 'someone-else' WHERE seq = 3", [])
        .unwrap();
    let (ok, out, err) = run(&["audit", "verify", "--data", data]);
    assert!(!ok, "{out}");
    assert!(err.contains("entry 3") && err.contains("altered"), "{err}");
    // Without a store there is nothing to verify.
    let (ok, _, err) = run(&["audit", "verify", "--data", "/nonexistent"]);
    assert!(!ok && err.contains("/nonexistent"), "{err}");
}

/// `platekeeper serve` that must refuse to start: its exit and stderr
/// (killed, and the test failed, if it is still running after a minute).
fn serve_refused(data: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start platekeeper");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "{err}");
            return err;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the server started over a tampered log");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rewrites the log of a stopped data folder consistently: entry 2's
/// details changed, every hash recomputed, the head file rewritten — what
/// an insider with the machine can do.
fn rewrite_log(data: &Path) {
    let conn = rusqlite::Connection::open(data.join("platekeeper.db")).unwrap();
    let mut log = platekeeper_store::log::read_entries(&conn).unwrap();
    log[1].details = "{\"rewritten\":true}".into();
    platekeeper_store::log::forge(&conn, data, log).unwrap();
}

/// Issue 22 finding 2, end to end: the server signs checkpoints and
/// publishes them; `audit verify --checkpoint` proves a consistent rewrite
/// that plain `audit verify` cannot see; the server refuses to start over
/// a log that does not extend its last checkpoint (or starts alarmed when
/// told), and over a deleted log. (Fails without the fix: no checkpoint
/// endpoint; the deleted log verified as "intact: 0 entries" and the
/// server started a new chain.)
#[test]
fn checkpoints_prove_a_rewrite_and_a_deleted_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let admin = admin_create(data);
    let key = dir.path().join("elsewhere").join("signing.key");
    let key_arg = key.to_str().unwrap();
    let server = Server::start(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--checkpoint-key",
        key_arg,
    ]);
    let token = admin_session(&server.url, &admin);
    let checkpoint: Value = ureq::get(&format!("{}/api/v1/audit/checkpoint", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    for field in [
        "entries",
        "head",
        "time",
        "signature",
        "public_key",
        "store_id",
    ] {
        assert!(!checkpoint[field].is_null(), "{field}: {checkpoint}");
    }
    let public: Value = ureq::get(&format!("{}/transparency?format=json", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(
        public["checkpoint"], checkpoint,
        "published for anyone to keep"
    );
    server.kill();
    assert!(
        key.exists() && !data.join("checkpoint.key").exists(),
        "the key is kept where it was told"
    );

    let saved = dir.path().join("saved-checkpoint.json");
    std::fs::write(&saved, checkpoint.to_string()).unwrap();
    let saved_public = dir.path().join("transparency.json");
    std::fs::write(&saved_public, public.to_string()).unwrap();
    let d = data.to_str().unwrap();
    for file in [&saved, &saved_public] {
        let (ok, out, err) = run(&[
            "audit",
            "verify",
            "--data",
            d,
            "--checkpoint",
            file.to_str().unwrap(),
        ]);
        assert!(ok, "{out} {err}");
        assert!(out.contains("extends the checkpoint"), "{out}");
        assert!(
            out.contains(checkpoint["public_key"].as_str().unwrap()),
            "the key is shown to compare: {out}"
        );
    }

    // A consistent rewrite: the checkpoints kept in the folder catch it,
    // and the server will not start over it…
    rewrite_log(data);
    let (ok, _, err) = run(&["audit", "verify", "--data", d]);
    assert!(!ok && err.contains("differs"), "{err}");
    let err = serve_refused(data, &["--checkpoint-key", key_arg]);
    assert!(
        err.contains("failed its check") && err.contains("--on-tamper alarm"),
        "{err}"
    );
    // …unless told to start alarmed, which every monitor sees.
    let server = Server::start(&[
        "serve",
        "--data",
        d,
        "--listen",
        "127.0.0.1:0",
        "--checkpoint-key",
        key_arg,
        "--on-tamper",
        "alarm",
    ]);
    let health: Value = ureq::get(&format!("{}/healthz", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["status"], "log_alarm", "{health}");
    server.kill();

    // With every checkpoint on the machine removed as well, only the copy
    // kept elsewhere shows the rewrite.
    let conn = rusqlite::Connection::open(data.join("platekeeper.db")).unwrap();
    conn.execute("DELETE FROM checkpoints", []).unwrap();
    drop(conn);
    std::fs::remove_file(data.join("log-checkpoint.json")).unwrap();
    let (ok, out, err) = run(&["audit", "verify", "--data", d]);
    assert!(ok, "undetectable without a checkpoint: {out} {err}");
    let (ok, _, err) = run(&[
        "audit",
        "verify",
        "--data",
        d,
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("differs") && err.contains("rewritten"),
        "{err}"
    );

    // The whole log deleted, with its head file: refused, and verify fails.
    let conn = rusqlite::Connection::open(data.join("platekeeper.db")).unwrap();
    conn.execute("DELETE FROM log", []).unwrap();
    drop(conn);
    std::fs::remove_file(data.join("log-head.json")).unwrap();
    let (ok, _, err) = run(&["audit", "verify", "--data", d]);
    assert!(!ok && err.contains("holds no entries"), "{err}");
    let err = serve_refused(data, &["--checkpoint-key", key_arg, "--on-tamper", "alarm"]);
    assert!(
        err.contains("audit log is missing") && err.contains("backup"),
        "{err}"
    );
    // A bad value is named.
    let (ok, _, err) = run(&["serve", "--data", d, "--on-tamper", "ignore"]);
    assert!(!ok && err.contains("ignore"), "{err}");
    let (ok, _, err) = run(&[
        "audit",
        "verify",
        "--data",
        d,
        "--checkpoint",
        "/nonexistent.json",
    ]);
    assert!(!ok && err.contains("/nonexistent.json"), "{err}");
}

#[test]
fn bench_prints_its_figures_as_json_last() {
    let (ok, out, err) = run(&["bench", "--reads", "20000", "--json", "--queries", "10"]);
    assert!(ok, "{err}");
    let figures: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(figures["reads"], 20000);
    for key in [
        "ingest_reads_per_s",
        "exact_p50_ms",
        "exact_p99_ms",
        "wildcard_p99_ms",
        "substring_p99_ms",
        "fuzzy_p99_ms",
        "canvass_p99_ms",
        "bytes_per_read",
        "peak_rss_mb",
    ] {
        assert!(
            figures[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {figures}"
        );
    }
}

#[test]
fn bench_reuses_a_kept_store_for_queries_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let data = data.to_str().unwrap();
    let (ok, _, err) = run(&[
        "bench",
        "--reads",
        "20000",
        "--json",
        "--queries",
        "10",
        "--data",
        data,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "bench",
        "--reuse",
        "--data",
        data,
        "--json",
        "--queries",
        "10",
        "--only",
        "exact,canvass",
    ]);
    assert!(ok, "{err}");
    let figures: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        figures["reads"], 20000,
        "the kept store is whole: {figures}"
    );
    assert!(figures["exact_p99_ms"].as_f64().is_some_and(|v| v > 0.0));
    assert!(figures.get("wildcard_p99_ms").is_none(), "{figures}");
    assert!(figures.get("ingest_reads_per_s").is_none(), "{figures}");
    // A folder no bench built, and an unknown kind, are refused by name.
    let (ok, _, err) = run(&["bench", "--reuse", "--data", dir.path().to_str().unwrap()]);
    assert!(!ok && err.contains("bench-sample.tsv"), "{err}");
    let (ok, _, err) = run(&["bench", "--reuse", "--data", data, "--only", "slow"]);
    assert!(!ok && err.contains("\"slow\""), "{err}");
}

/// R6.2: the evidence bench holds and exports real reads with pictures,
/// and its package has every picture.
#[test]
fn evidence_bench_exports_a_hold_with_its_pictures() {
    let (ok, out, err) = run(&["bench", "--suite", "evidence", "--reads", "50", "--json"]);
    assert!(ok, "{err}");
    let figures: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(figures["reads"], 50, "{figures}");
    assert_eq!(figures["images"], 100, "{figures}");
    assert!(figures["package_mb"].as_f64().unwrap() > 5.0, "{figures}");
    let (ok, _, err) = run(&["bench", "--suite", "slow"]);
    assert!(!ok && err.contains("evidence"), "{err}");
}

#[test]
fn demo_serves_sample_data() {
    let server = Server::start(&["demo", "--listen", "127.0.0.1:0", "--reads", "5000"]);
    // The demo's officer can sign in and search with the printed password.
    let officer = post(
        &format!("{}/api/v1/session", server.url),
        None,
        &json!({"username": "officer", "password": "demo-officer-password"}),
    );
    assert_eq!(officer.unwrap_err().0, 401, "two factors are required");
    let health: Value = ureq::get(&format!("{}/healthz", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert!(
        health["distinct_plates"].as_u64().unwrap() > 1000,
        "{health}"
    );
    server.kill();
}

/// R6.1, R6.2: `purge --dry-run` reports each class and changes nothing;
/// `retention` refuses a period out of bounds by name; `evidence verify`
/// fails (exit 1) on bytes that are not a package.
#[test]
fn purge_retention_and_evidence_verify_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let shorten = [
        "retention",
        "--data",
        data_s,
        "--reads-days",
        "90",
        "--images-days",
        "60",
    ];
    // Shortening retention deletes data at the next purge: refused until
    // confirmed, naming what it weakens (issue 22 finding 5).
    let (ok, out, err) = run(&shorten);
    assert!(!ok, "{out}");
    assert!(
        err.contains("retention.reads_days from 365 to 90") && err.contains("--confirm-weakening"),
        "{err}"
    );
    let (ok, out, err) = run(&[&shorten[..], &["--confirm-weakening"]].concat());
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"reads_days\": 90"), "{out}");
    let (ok, _, err) = run(&["retention", "--data", data_s, "--reads-days", "5"]);
    assert!(!ok);
    assert!(err.contains("retention.reads_days is 5"), "{err}");
    let (ok, out, err) = run(&["purge", "--data", data_s, "--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Would purge (dry run)"), "{out}");
    let report: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["classes"][0]["retention_days"], 90);
    let junk = dir.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").unwrap();
    let (ok, out, _) = run(&["evidence", "verify", junk.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED"), "{out}");
}

/// The project's own generated plate crops, as an `eval` folder.
fn crop_folder(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vision/tests/data");
    let mut lines = Vec::new();
    for plate in ["7ABC123", "8KXM402", "DRV5521"] {
        let name = format!("crop_{plate}.png");
        std::fs::copy(src.join(&name), dir.join(&name)).unwrap();
        lines.push(format!("{name},ca,{plate}"));
    }
    std::fs::write(dir.join("groundtruth.csv"), lines.join("\n")).unwrap();
}

#[test]
fn eval_scores_a_folder_with_the_built_in_or_a_given_character_model() {
    // R9: `eval` reports its figures as one JSON object on the last line,
    // and `--ocr-model` scores a newly trained model the same way.
    let dir = tempfile::tempdir().unwrap();
    crop_folder(dir.path());
    let folder = dir.path().to_str().unwrap();
    let (ok, out, err) = run(&["eval", "--dataset", folder]);
    assert!(ok, "{err}");
    let built_in: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(built_in["images"], 3, "{built_in}");
    assert!(built_in["top1_rate"].as_f64().unwrap() > 0.6, "{built_in}");

    // --verbose: one line per image on stderr, naming the truth, the
    // reading and the runners-up with their confidences.
    let (ok, out, err) = run(&["eval", "--dataset", folder, "--verbose"]);
    assert!(ok, "{err}");
    let per_image: Vec<&str> = err.lines().filter(|l| l.contains("truth=")).collect();
    assert_eq!(per_image.len(), 3, "{err}");
    let seven = per_image
        .iter()
        .find(|l| l.contains("truth=7ABC123"))
        .expect("a line for crop_7ABC123");
    let runners = seven.rsplit_once('[').map(|(_, r)| r).unwrap_or_default();
    assert!(runners.contains(':') && runners.ends_with(']'), "{seven}");
    let summary: Value = serde_json::from_str(out.lines().last().unwrap_or("")).unwrap();
    assert_eq!(summary["top1_rate"], built_in["top1_rate"]);

    let with_model = |model: &str| run(&["eval", "--dataset", folder, "--ocr-model", model]);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vision/models/ocr.onnx");
    let (ok, out, err) = with_model(shipped.to_str().unwrap());
    assert!(ok, "{err}");
    let given: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(given["top1_rate"], built_in["top1_rate"]);
    assert_eq!(given["char_accuracy"], built_in["char_accuracy"]);

    // A file that is not a model, or no file at all: a clear error.
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\x08\x07not a model at all").unwrap();
    let (ok, _, err) = with_model(junk.to_str().unwrap());
    assert!(
        !ok && err.contains("loading the recognition models"),
        "{err}"
    );
    let (ok, _, err) = with_model("/nonexistent.onnx");
    assert!(!ok && err.contains("/nonexistent.onnx"), "{err}");
    let (ok, _, err) = run(&["eval", "--dataset", folder, "--split", "half"]);
    assert!(!ok && err.contains("--split"), "{err}");
}

#[test]
fn recognize_prints_one_json_line_per_image_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    crop_folder(dir.path());
    let good = dir.path().join("crop_7ABC123.png");
    let bad = dir.path().join("groundtruth.csv");
    let (ok, out, err) = run(&[
        "recognize",
        "--crop",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}\n{err}");
    assert_eq!(lines[0]["plates"][0]["text"], "7ABC123", "{}", lines[0]);
    assert_eq!(lines[1]["error"]["code"], "invalid_image", "{}", lines[1]);
    assert_eq!(lines[1]["image"], bad.to_str().unwrap());
    // One picture failed, so the command says so.
    assert!(!ok);
}

/// Every file under `dir` with its bytes: a refused start must leave
/// them all as they were.
fn folder_snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.push((p, b));
            }
        }
    }
    out.sort();
    out
}

/// Issue 24 item 1, end to end: a key made by `keys init`, a plain store
/// converted by `keys encrypt`, a server that refuses a missing or wrong
/// key without touching the folder and serves with the right one (from
/// the file or the environment), `keys rotate`, and `audit verify` with
/// the key.
#[test]
fn keys_encrypt_and_rotate_a_store_that_serves_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let k = |name: &str| keys.join(name).to_str().unwrap().to_string();
    let d = data.to_str().unwrap().to_string();
    let admin = admin_create(&data);

    let (ok, out, err) = run(&["keys", "init", "--key-file", &k("one.key")]);
    assert!(ok, "{err}");
    assert!(out.contains("id "), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(k("one.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (ok, _, err) = run(&["keys", "init", "--key-file", &k("one.key")]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // A key for a plain store is refused: it would seem encrypted.
    let err = serve_refused(&data, &["--key-file", &k("one.key")]);
    assert!(
        err.contains("not encrypted") && err.contains("keys encrypt"),
        "{err}"
    );

    let (ok, out, err) = run(&["keys", "encrypt", "--data", &d, "--key-file", &k("one.key")]);
    assert!(ok, "{err}");
    assert!(out.contains("encrypted under key"), "{out}");
    let raw = std::fs::read(data.join("platekeeper.db")).unwrap();
    assert!(!raw.starts_with(b"SQLite format 3"));
    assert!(!raw.windows(10).any(|w| w == b"Dana Reyes"));

    // Missing, wrong: refused, naming the problem, nothing changed.
    let before = folder_snapshot(&data);
    let err = serve_refused(&data, &[]);
    assert!(
        err.contains("encrypted") && err.contains("--key-file"),
        "{err}"
    );
    run(&["keys", "init", "--key-file", &k("other.key")]);
    let err = serve_refused(&data, &["--key-file", &k("other.key")]);
    assert!(err.contains("is not this data folder's key"), "{err}");
    let err = serve_refused(&data, &["--key-file", &k("absent.key")]);
    assert!(
        err.contains("not found") && err.contains("keys init"),
        "{err}"
    );
    assert_eq!(
        folder_snapshot(&data),
        before,
        "a refused start changed the folder"
    );

    // The right key: the administrator created before encryption signs in.
    let server = Server::start(&[
        "serve",
        "--data",
        &d,
        "--listen",
        "127.0.0.1:0",
        "--key-file",
        &k("one.key"),
    ]);
    let token = admin_session(&server.url, &admin);
    create_camera(&server.url, &token, "cam-enc");
    server.kill();

    let (ok, _, err) = run(&[
        "keys",
        "rotate",
        "--data",
        &d,
        "--key-file",
        &k("one.key"),
        "--new-key-file",
        &k("two.key"),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("re-encrypted"), "{err}");
    let err = serve_refused(&data, &["--key-file", &k("one.key")]);
    assert!(err.contains("is not this data folder's key"), "{err}");

    // The new key from the environment, as a service manager passes it.
    let text = std::fs::read_to_string(k("two.key")).unwrap();
    let digits = text.trim().rsplit(':').next().unwrap().to_string();
    let mut child = Command::new(BIN)
        .args(["serve", "--data", &d, "--listen", "127.0.0.1:0"])
        .env("PLATEKEEPER_DATA_KEY", &digits)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    // Both ways at once is refused.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data", &d, "--key-file", &k("two.key")])
        .env("PLATEKEEPER_DATA_KEY", &digits)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));

    let (ok, out, err) = run(&["audit", "verify", "--data", &d, "--key-file", &k("two.key")]);
    assert!(ok, "{out} {err}");
    assert!(out.contains("audit log intact"), "{out}");

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(k("two.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = serve_refused(&data, &["--key-file", &k("two.key")]);
        assert!(err.contains("chmod 600"), "{err}");
    }
}
