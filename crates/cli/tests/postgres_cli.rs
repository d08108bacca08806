//! The command line against a real PostgreSQL (issue 25): the benchmark
//! writes reads and log entries through the PostgreSQL backend, and
//! `audit verify --database` checks the log, then finds an insider's
//! edit. Runs under scripts/with-postgres; skipped without it unless
//! PLATEKEEPER_REQUIRE_POSTGRES is set.

use std::process::Command;

mod common;
use common::{admin_create, admin_create_with, fresh_database, psql, run, BIN};

#[test]
fn bench_writes_through_postgres_and_audit_verify_finds_an_edit() {
    let Some((url, insider)) = fresh_database() else {
        return;
    };
    let out = Command::new(BIN)
        .args(["bench", "--suite", "postgres", "--database", &url])
        .args(["--reads", "5000", "--queries", "20", "--json"])
        .output()
        .expect("bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("json line")).expect("json");
    assert_eq!(figures["reads"], 5000);
    assert_eq!(
        figures["log_entries_verified"], 41,
        "the genesis entry and 40"
    );
    assert!(!stdout.contains("PASSWORD") && !url.contains("PASSWORD"));

    // Again on the same database: refused, nothing added.
    let again = Command::new(BIN)
        .args([
            "bench",
            "--suite",
            "postgres",
            "--database",
            &url,
            "--reads",
            "10",
        ])
        .output()
        .expect("bench");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 5000 reads"));

    // The environment variable does as well as the option.
    let ok = Command::new(BIN)
        .args(["audit", "verify"])
        .env("PLATEKEEPER_DATABASE", &url)
        .output()
        .expect("verify");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit log intact: 41 entries"));

    // A checkpoint signed now and kept outside the database: the log
    // extends it.
    let dir = tempfile::tempdir().expect("dir");
    let key = platekeeper_store::CheckpointKey::load_or_create(&dir.path().join("checkpoint.key"))
        .expect("key");
    let parsed = platekeeper_store::postgres::DatabaseUrl::parse(&url).expect("url");
    let (pool, _) = platekeeper_store::postgres::open(&parsed).expect("open");
    let kept = platekeeper_store::postgres::log::checkpoint(
        &mut pool.get().expect("c"),
        &key,
        1_800_000_000_000,
    )
    .expect("checkpoint");
    let file = dir.path().join("checkpoint.json");
    std::fs::write(&file, serde_json::to_vec(&kept).expect("json")).expect("write");
    let proven = Command::new(BIN)
        .args(["audit", "verify", "--database", &url, "--checkpoint"])
        .arg(&file)
        .output()
        .expect("verify");
    assert!(
        proven.status.success(),
        "{}",
        String::from_utf8_lossy(&proven.stderr)
    );
    assert!(String::from_utf8_lossy(&proven.stdout).contains("extends the checkpoint of entry 41"));

    // An insider edits one entry: verify fails and names it.
    let edit = psql(
        &insider,
        "UPDATE platekeeper.log SET username = 'nobody' WHERE seq = 17",
    );
    assert!(edit.status.success());
    let bad = Command::new(BIN)
        .args(["audit", "verify", "--database", &url])
        .output()
        .expect("verify");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("FAILED at entry 17"), "{err}");
    let bad = Command::new(BIN)
        .args(["audit", "verify", "--database", &url, "--checkpoint"])
        .arg(&file)
        .output()
        .expect("verify");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("against the checkpoint FAILED"), "{err}");

    // A wrong password is named as such, and not echoed.
    let wrong = url.replacen("platekeeper:", "platekeeper:wrong-", 1);
    let out = Command::new(BIN)
        .args(["audit", "verify", "--database", &wrong])
        .output()
        .expect("verify");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the password"), "{err}");
    assert!(!err.contains("wrong-"), "{err}");
}

/// `--database` on the commands that open a store (R10.1): the
/// administrator, an import, retention and a purge all land in the
/// database, and the data folder keeps nothing of the agency's data (no
/// database file, no day files, no pictures).
#[test]
fn the_store_commands_work_on_postgres_and_leave_the_data_folder_empty() {
    let Some((url, _)) = fresh_database() else {
        return;
    };
    let data = tempfile::tempdir().expect("dir");
    let data_s = data.path().to_str().expect("path");
    let (username, _, _) = admin_create_with(data.path(), &["--database", &url]);
    assert_eq!(username, "capt");
    // A camera, registered as the server would.
    {
        let parsed = platekeeper_store::postgres::DatabaseUrl::parse(&url).expect("url");
        let store = platekeeper_store::Store::open_with(
            data.path(),
            platekeeper_store::OpenOptions {
                database: Some(parsed),
                read_database: None,
                ..Default::default()
            },
        )
        .expect("open");
        store
            .create_camera(
                platekeeper_store::NewCamera {
                    id: "cam-csv".into(),
                    name: "Broadway".into(),
                    kind: platekeeper_store::CameraKind::Mobile,
                    position: None,
                },
                &platekeeper_store::Actor::system("test"),
                1_800_000_000_000,
            )
            .expect("camera");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ts = |ms: i64| platekeeper_core::read::format_time_ms(ms);
    let csv = data.path().join("reads.csv");
    std::fs::write(
        &csv,
        format!(
            "id,plate,state,ts,lat,lon,camera,confidence\n\
             0b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10,7ABC123,CA,{},37.8044,-122.2712,cam-csv,90\n\
             ,7ABC124,CA,{},37.81,-122.27,cam-csv,\n\
             ,7AB$124,CA,{},37.81,-122.27,cam-csv,\n",
            ts(now - 600_000),
            ts(now - 500_000),
            ts(now - 400_000)
        ),
    )
    .expect("csv");
    let csv_s = csv.to_str().expect("path");
    let (ok, out, err) = run(&[
        "import",
        "reads",
        csv_s,
        "--data",
        data_s,
        "--database",
        &url,
    ]);
    assert!(ok, "{err}");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("summary")).expect("json");
    assert_eq!(
        last,
        serde_json::json!({"accepted": 2, "duplicates": 0, "rejected": 1})
    );
    // The same file again: duplicates, nothing added.
    let (ok, out, _) = run(&[
        "import",
        "reads",
        csv_s,
        "--data",
        data_s,
        "--database",
        &url,
    ]);
    assert!(ok);
    assert!(out.contains("\"duplicates\":2"), "{out}");
    std::fs::remove_file(&csv).expect("rm");

    let (ok, _, err) = run(&[
        "retention",
        "--data",
        data_s,
        "--database",
        &url,
        "--reads-days",
        "400",
        "--confirm-weakening",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["purge", "--data", data_s, "--database", &url, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("reads"), "{out}");
    let (ok, out, err) = run(&["audit", "verify", "--database", &url]);
    assert!(ok, "{err}");
    assert!(out.contains("audit log intact"), "{out}");

    // The data key on a store in PostgreSQL: `keys encrypt` and `keys
    // rotate` take --database (pictures sealed anew; see the store's
    // tests), and the store then opens under the new key only.
    let keys = tempfile::tempdir().expect("dir");
    let (k1, k2) = (keys.path().join("k1"), keys.path().join("k2"));
    let (k1_s, k2_s) = (k1.to_str().expect("p"), k2.to_str().expect("p"));
    let (ok, out, err) = run(&[
        "keys",
        "encrypt",
        "--data",
        data_s,
        "--key-file",
        k1_s,
        "--database",
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("sealed 0 pictures"), "{out}");
    let (ok, _, err) = run(&[
        "keys",
        "rotate",
        "--data",
        data_s,
        "--key-file",
        k1_s,
        "--new-key-file",
        k2_s,
        "--database",
        &url,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "purge",
        "--data",
        data_s,
        "--database",
        &url,
        "--key-file",
        k2_s,
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "purge",
        "--data",
        data_s,
        "--database",
        &url,
        "--key-file",
        k1_s,
        "--dry-run",
    ]);
    assert!(!ok && err.contains("key"), "the old key is refused: {err}");

    // Nothing of the agency's data in the folder: its key files only.
    let left: Vec<String> = std::fs::read_dir(data.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &left {
        assert!(
            [
                "checkpoint.key",
                "platekeeper.lock",
                "exports",
                "encryption.json"
            ]
            .contains(&name.as_str())
                || name.starts_with(".platekeeper"),
            "{name} in the data folder of a PostgreSQL store: {left:?}"
        );
    }
}

/// `platekeeper migrate` (issue 26 item 3): an embedded store moves into
/// an empty database with its log's head unchanged; a second run is
/// refused.
#[test]
fn migrate_moves_an_embedded_store_with_its_log_head() {
    let Some((url, _)) = fresh_database() else {
        return;
    };
    let data = tempfile::tempdir().expect("dir");
    let data_s = data.path().to_str().expect("path");
    admin_create(data.path());
    let (ok, here, err) = run(&["audit", "verify", "--data", data_s]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["migrate", "--data", data_s, "--to", &url]);
    assert!(ok, "{err}");
    assert!(out.contains("moved"), "{out}");
    let (ok, there, err) = run(&["audit", "verify", "--database", &url]);
    assert!(ok, "{err}");
    let head = |s: &str| {
        s.split("head ")
            .nth(1)
            .and_then(|h| h.split_whitespace().next())
            .map(str::to_string)
    };
    assert_eq!(head(&here), head(&there), "{here} / {there}");
    assert!(head(&here).is_some());
    let (ok, _, err) = run(&["migrate", "--data", data_s, "--to", &url]);
    assert!(!ok && err.contains("already"), "{err}");
}
