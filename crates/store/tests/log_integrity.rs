//! The audit log against deletion and rewriting (SPEC R4.5; issue 22
//! finding 2): the genesis entry, signed checkpoints, the check at open
//! and the proof against a checkpoint kept elsewhere.

use std::path::Path;

use platekeeper_core::checkpoint::{Checkpoint, OnTamper};
use platekeeper_store::checkpoint::{prove_dir, CHECKPOINT_FILE, KEY_FILE};
use platekeeper_store::log::{verify_dir, LogEntry, HEAD_FILE};
use platekeeper_store::{Actor, NewEntry, OpenOptions, Store, StoreError};
use rusqlite::Connection;

const NOW: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

fn options(dir: &Path) -> OpenOptions {
    OpenOptions {
        checkpoint_key: Some(dir.join(KEY_FILE)),
        on_tamper: None,
        now_ms: Some(NOW - 900 * DAY),
        key: None,
        database: None,
        read_database: None,
    }
}

fn alarmed(dir: &Path) -> OpenOptions {
    OpenOptions {
        on_tamper: Some(OnTamper::Alarm),
        ..options(dir)
    }
}

/// The error of an open that must fail.
fn refused(dir: &Path, options: OpenOptions) -> StoreError {
    match Store::open_with(dir, options) {
        Ok(_) => panic!("the store opened"),
        Err(e) => e,
    }
}

fn open(dir: &Path) -> Store {
    Store::open_with(dir, options(dir)).unwrap()
}

fn event(ts: i64, kind: &str) -> NewEntry {
    NewEntry {
        ts_ms: ts,
        category: "admin",
        kind: kind.into(),
        username: "capt".into(),
        affiliation: "Test PD".into(),
        role: Some("administrator".into()),
        client: None,
        details: serde_json::json!({"n": ts}),
        purpose: None,
    }
}

/// A store holding a camera (data) and `n` log entries after it.
fn store_with_entries(dir: &Path, n: i64) -> Store {
    let store = open(dir);
    store
        .create_camera(
            platekeeper_store::NewCamera {
                id: "cam-1".into(),
                name: "Broadway & 14th".into(),
                kind: platekeeper_store::CameraKind::Fixed,
                position: None,
            },
            &Actor::system("test"),
            NOW,
        )
        .unwrap();
    for i in 0..n {
        store.log_event(event(NOW + i, "policy_changed")).unwrap();
    }
    store
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("platekeeper.db")).unwrap()
}

fn entries(conn: &Connection) -> Vec<LogEntry> {
    platekeeper_store::log::read_entries(conn).unwrap()
}

/// Replaces the whole log with `log`, renumbered from 1 and with every
/// hash recomputed, and rewrites the head file to match: the consistent
/// rewrite an insider with the machine can make.
fn rewrite_log(dir: &Path, log: Vec<LogEntry>) {
    platekeeper_store::log::forge(&db(dir), dir, log).unwrap();
}

/// Removes every checkpoint kept on the machine (the table and the file):
/// what a careful insider does after rewriting the log.
fn remove_kept_checkpoints(dir: &Path) {
    db(dir).execute("DELETE FROM checkpoints", []).unwrap();
    let _ = std::fs::remove_file(dir.join(CHECKPOINT_FILE));
}

#[test]
fn a_new_store_starts_its_log_with_a_genesis_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let log = store.log_entries(None, None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].seq, log[0].kind.as_str()), (1, "log_started"));
    assert_eq!(log[0].category, "system");
    assert!(log[0].details.contains(store.store_id()), "{:?}", log[0]);
    assert!(store.verify_log().unwrap().ok);
    drop(store);
    // Reopened, nothing more is written.
    let store = open(dir.path());
    assert_eq!(store.log_entries(None, None, 10).unwrap().len(), 1);
    // The key is kept in a file of its own, readable only by its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Issue 22 finding 2: with the `log` table emptied and `log-head.json`
/// deleted, the store used to open with a new chain from entry 1 and
/// `verify` said "intact: 0 entries". Now both refuse, naming what the
/// store still holds. (Fails without the fix: open succeeded, verify ok.)
#[test]
fn a_deleted_log_is_refused_at_open_and_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_entries(dir.path(), 3));
    let conn = db(dir.path());
    conn.execute("DELETE FROM log", []).unwrap();
    // Even with the genesis marker and the checkpoints gone too.
    conn.execute(
        "DELETE FROM meta WHERE key IN ('log_genesis', 'store_id')",
        [],
    )
    .unwrap();
    drop(conn);
    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let _ = std::fs::remove_file(dir.path().join(CHECKPOINT_FILE));

    let v = verify_dir(dir.path(), None).unwrap();
    assert!(!v.ok, "{v:?}");
    let problem = v.problem.unwrap();
    assert!(
        problem.contains("log is empty but the store holds 1 camera:"),
        "{problem}"
    );
    let err = refused(dir.path(), options(dir.path()));
    assert!(matches!(err, StoreError::LogMissing(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("was deleted") && text.contains("backup"),
        "{text}"
    );
    // No policy setting starts a new log over the old data.
    let err = refused(dir.path(), alarmed(dir.path()));
    assert!(matches!(err, StoreError::LogMissing(_)), "{err}");
    assert_eq!(
        db(dir.path())
            .query_row("SELECT count(*) FROM log", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0,
        "nothing was written"
    );
}

#[test]
fn an_emptied_log_with_its_marker_left_is_refused_even_in_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    db(dir.path()).execute("DELETE FROM log", []).unwrap();
    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let err = refused(dir.path(), options(dir.path()));
    assert!(err.to_string().contains("started at entry 1"), "{err}");
    assert!(!verify_dir(dir.path(), None).unwrap().ok);
}

/// A store of four entries as an earlier version left it: no genesis
/// entry, no marker, no checkpoints. Returns its entries.
fn pre_genesis_store() -> (tempfile::TempDir, Vec<LogEntry>) {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_entries(dir.path(), 4));
    let conn = db(dir.path());
    let old: Vec<LogEntry> = entries(&conn).into_iter().skip(1).collect();
    conn.execute(
        "DELETE FROM meta WHERE key IN ('log_genesis', 'store_id')",
        [],
    )
    .unwrap();
    drop(conn);
    remove_kept_checkpoints(dir.path());
    rewrite_log(dir.path(), old.clone());
    (dir, old)
}

/// A data folder made before genesis entries: its intact log is marked
/// once (`log_upgraded`), keeping its numbers; a broken one is refused.
#[test]
fn a_log_from_an_earlier_version_is_marked_once_and_keeps_its_numbers() {
    let (dir, old) = pre_genesis_store();
    assert!(
        verify_dir(dir.path(), None).unwrap().ok,
        "an earlier version's log verifies"
    );

    let store = open(dir.path());
    let log = store.log_entries(None, None, 100).unwrap();
    assert_eq!(log.len(), old.len() + 1);
    assert_eq!(log[0].kind, "log_upgraded");
    assert_eq!(log[0].seq, old.len() as i64 + 1);
    assert!(log[0]
        .details
        .contains(&format!("\"entries_before\":{}", old.len())));
    assert_eq!(
        log.last().unwrap().kind,
        old[0].kind,
        "old entries keep their numbers"
    );
    assert!(store.verify_log().unwrap().ok);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.log_entries(None, None, 100).unwrap().len(),
        old.len() + 1,
        "marked once"
    );
    drop(store);

    // An earlier version's log that is already broken is not marked.
    let (dir, _) = pre_genesis_store();
    db(dir.path())
        .execute("UPDATE log SET username = 'someone' WHERE seq = 2", [])
        .unwrap();
    let err = refused(dir.path(), options(dir.path()));
    assert!(matches!(err, StoreError::LogTampered(_)), "{err}");
    assert!(err.to_string().contains("entry 2 was altered"), "{err}");
}

/// The finding's second half: a consistent rewrite (hashes recomputed,
/// head file rewritten, kept checkpoints removed) passes `verify`, but a
/// checkpoint saved elsewhere before it proves the rewrite. (Fails
/// without the fix: there were no checkpoints.)
#[test]
fn a_consistent_rewrite_is_caught_by_a_checkpoint_kept_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 5);
    let saved: Checkpoint = store.checkpoint(NOW + 100).unwrap();
    assert_eq!(saved.entries, 7, "genesis, camera, 5 events");
    assert_eq!(saved.store_id, store.store_id());
    assert_eq!(
        Some(saved.public_key.clone()),
        store.checkpoint_public_key()
    );
    assert!(store.prove_checkpoint(&saved).unwrap().ok);
    store.log_event(event(NOW + 200, "signed_in")).unwrap();
    drop(store);

    // The rewrite: entry 3's details changed, the chain recomputed.
    let conn = db(dir.path());
    let mut log = entries(&conn);
    drop(conn);
    log[2].details = serde_json::json!({"n": 0}).to_string();
    rewrite_log(dir.path(), log);

    // The checkpoints kept on the machine catch it at open and in verify…
    let v = verify_dir(dir.path(), None).unwrap();
    assert!(
        !v.ok && v.problem.as_deref().unwrap().contains("differs"),
        "{v:?}"
    );
    let err = refused(dir.path(), options(dir.path()));
    assert!(matches!(err, StoreError::LogTampered(_)), "{err}");
    assert!(err.to_string().contains("entry 7 differs"), "{err}");

    // …and once those are removed too, only the copy kept elsewhere does.
    remove_kept_checkpoints(dir.path());
    assert!(
        verify_dir(dir.path(), None).unwrap().ok,
        "undetectable without a checkpoint"
    );
    let p = prove_dir(dir.path(), None, &saved).unwrap();
    assert!(!p.ok, "{p:?}");
    assert!(p.log.ok);
    let problem = p.problem.unwrap();
    assert!(
        problem.contains("entry 7 differs") && problem.contains("rewritten"),
        "{problem}"
    );
}

#[test]
fn truncation_before_a_checkpoint_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 5);
    let saved = store.checkpoint(NOW + 100).unwrap();
    drop(store);
    let conn = db(dir.path());
    let log = entries(&conn);
    drop(conn);
    rewrite_log(dir.path(), log[..4].to_vec());
    remove_kept_checkpoints(dir.path());
    let p = prove_dir(dir.path(), None, &saved).unwrap();
    assert!(!p.ok);
    assert!(
        p.problem
            .as_deref()
            .unwrap()
            .contains("the log ends at entry 4"),
        "{p:?}"
    );
}

/// A checkpoint file that was altered, or is of another store, proves
/// nothing.
#[test]
fn an_altered_checkpoint_or_one_of_another_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 2);
    let saved = store.checkpoint(NOW).unwrap();
    for (altered, words) in [
        (
            Checkpoint {
                entries: 3,
                ..saved.clone()
            },
            "not validly signed",
        ),
        (
            Checkpoint {
                head: "00".repeat(32),
                ..saved.clone()
            },
            "not validly signed",
        ),
        (
            Checkpoint {
                signature: "zz".into(),
                ..saved.clone()
            },
            "not 128 hex digits",
        ),
    ] {
        let p = store.prove_checkpoint(&altered).unwrap();
        assert!(
            !p.ok && p.problem.as_deref().unwrap().contains(words),
            "{p:?}"
        );
    }
    let other = tempfile::tempdir().unwrap();
    let theirs = store_with_entries(other.path(), 2).checkpoint(NOW).unwrap();
    let p = store.prove_checkpoint(&theirs).unwrap();
    assert!(
        p.problem.as_deref().unwrap().contains("is of store"),
        "{p:?}"
    );
    assert!(
        p.note.as_deref().unwrap().contains("signed with key"),
        "{p:?}"
    );
}

/// The checks at open: a checkpoint beyond the log's end, a key replaced,
/// a checkpoint file the database lacks.
#[test]
fn the_store_refuses_to_open_when_the_log_does_not_extend_its_last_checkpoint() {
    // Truncated, head file rewritten to match: the kept checkpoint is
    // beyond the end.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 5);
    store.checkpoint(NOW).unwrap();
    drop(store);
    let log = entries(&db(dir.path()));
    rewrite_log(dir.path(), log[..5].to_vec());
    let err = refused(dir.path(), options(dir.path()));
    assert!(
        err.to_string().contains("the log ends at entry 5")
            && err.to_string().contains("--on-tamper alarm"),
        "{err}"
    );

    // The key replaced (deleted: the server makes a new one).
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 1);
    store.checkpoint(NOW).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let err = refused(dir.path(), options(dir.path()));
    assert!(err.to_string().contains("the key was replaced"), "{err}");

    // Checkpoints deleted from the database but not from the file.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 1);
    store.checkpoint(NOW).unwrap();
    drop(store);
    db(dir.path())
        .execute("DELETE FROM checkpoints", [])
        .unwrap();
    let err = refused(dir.path(), options(dir.path()));
    assert!(
        err.to_string().contains("which the database lacks"),
        "{err}"
    );

    // Tools that open the store without the key still check the rest.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 3);
    store.checkpoint(NOW).unwrap();
    drop(store);
    let log = entries(&db(dir.path()));
    rewrite_log(dir.path(), log[..3].to_vec());
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    assert!(Store::open(dir.path()).is_err());
}

/// `audit.on_tamper: "alarm"` (or the operator's override): the store
/// opens, logs the alarm, signs nothing until it is acknowledged, and
/// the acknowledgment is logged with its note.
#[test]
fn an_alarmed_store_signs_nothing_until_the_alarm_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 5);
    store.checkpoint(NOW).unwrap();
    drop(store);
    let log = entries(&db(dir.path()));
    rewrite_log(dir.path(), log[..5].to_vec());

    let store = Store::open_with(dir.path(), alarmed(dir.path())).unwrap();
    let alarm = store.log_alarm().expect("alarmed");
    assert!(
        alarm.problem.contains("the log ends at entry 5"),
        "{alarm:?}"
    );
    let last = &store.log_entries(None, None, 1).unwrap()[0];
    assert_eq!(
        (last.seq, last.kind.as_str()),
        (alarm.entry, "log_tamper_detected")
    );
    let err = store.checkpoint(NOW).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "log_alarm",
                ..
            }
        ),
        "{err}"
    );
    let actor = Actor::system("auditor-test");
    assert!(store.acknowledge_log_alarm(&actor, "  ", NOW).is_err());
    drop(store);

    // Still alarmed at the next start: nothing was signed over the log.
    let store = Store::open_with(dir.path(), alarmed(dir.path())).unwrap();
    assert!(store.log_alarm().is_some());
    let c = store
        .acknowledge_log_alarm(
            &actor,
            "restored from the 03:00 backup; entries 6-7 lost",
            NOW,
        )
        .unwrap();
    assert!(store.log_alarm().is_none());
    let log = store.log_entries(None, None, 2).unwrap();
    assert_eq!(log[0].kind, "log_alarm_acknowledged");
    assert!(log[0].details.contains("03:00 backup"));
    // The checkpoint the log no longer extends is set aside, recorded in
    // the acknowledgment; the log verifies from here on.
    assert!(
        log[0].details.contains("checkpoints_set_aside"),
        "{}",
        log[0].details
    );
    assert!(
        log[0].details.contains("\"entries\":7"),
        "{}",
        log[0].details
    );
    assert!(store.verify_log().unwrap().ok, "{:?}", store.verify_log());
    assert_eq!(c.entries, log[0].seq);
    assert!(matches!(
        store
            .acknowledge_log_alarm(&actor, "again", NOW)
            .unwrap_err(),
        StoreError::Conflict {
            code: "no_log_alarm",
            ..
        }
    ));
    drop(store);
    // Acknowledged: the next start is clean, and the policy's default
    // (refuse) applies again.
    let store = open(dir.path());
    assert!(store.log_alarm().is_none());
}

/// The policy setting itself (not only the override) opens alarmed.
#[test]
fn the_policy_setting_chooses_alarm_over_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 3);
    let mut policy = store.policy();
    policy.audit.on_tamper = OnTamper::Alarm;
    store
        .set_policy(policy, &Actor::system("test"), NOW)
        .unwrap();
    store.checkpoint(NOW).unwrap();
    drop(store);
    let log = entries(&db(dir.path()));
    rewrite_log(dir.path(), log[..3].to_vec());
    let store = open(dir.path());
    assert!(store.log_alarm().is_some());
}

/// What checkpoints cannot do, stated as a test: entries forged after the
/// last checkpoint, with valid hashes and the head file rewritten, are
/// not caught by that checkpoint (the log still extends it). Only a
/// later checkpoint kept elsewhere, or the entries' content, can show
/// them. See docs/SECURITY.md.
#[test]
fn forged_entries_after_the_last_checkpoint_are_beyond_its_proof() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_entries(dir.path(), 2);
    let saved = store.checkpoint(NOW).unwrap();
    drop(store);
    let mut log = entries(&db(dir.path()));
    let mut forged = log[1].clone();
    forged.kind = "policy_changed".into();
    forged.details = "{\"forged\":true}".into();
    log.push(forged);
    rewrite_log(dir.path(), log);
    let p = prove_dir(dir.path(), None, &saved).unwrap();
    assert!(p.ok, "{p:?}");
    assert!(Store::open_with(dir.path(), options(dir.path())).is_ok());
}

/// Retention purges old entries: a checkpoint of an entry still kept (or
/// of the anchor itself) still proves; one of an entry purged can no
/// longer be checked, and says so.
#[test]
fn checkpoints_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        store
            .log_event(event(NOW - 800 * DAY + i, "old_event"))
            .unwrap();
    }
    let old = store.checkpoint(NOW - 800 * DAY).unwrap();
    store
        .log_event(event(NOW - 800 * DAY + 20, "old_event"))
        .unwrap();
    let at_anchor = store.checkpoint(NOW - 800 * DAY).unwrap();
    store.log_event(event(NOW - DAY, "recent_event")).unwrap();
    let recent = store.checkpoint(NOW - DAY).unwrap();
    let report = store
        .purge(NOW, false, &Actor::system("retention"))
        .unwrap();
    assert!(report.log_seq.is_some());
    assert!(store.verify_log().unwrap().ok, "{:?}", store.verify_log());
    assert!(store.prove_checkpoint(&recent).unwrap().ok);
    assert!(store.prove_checkpoint(&at_anchor).unwrap().ok);
    let p = store.prove_checkpoint(&old).unwrap();
    assert!(!p.ok);
    assert!(p.problem.unwrap().contains("purged by retention"));
    // The genesis entry went with them; the store still opens.
    drop(store);
    let store = open(dir.path());
    assert!(store.verify_log().unwrap().ok);
    assert!(store.checkpoint(NOW).is_ok());
}

/// Issue 28: versions before it logged each access as two entries (the
/// access, then a `result` entry naming what it returned). Such a log
/// still verifies beside one-entry accesses, and reports count each old
/// pair as one access.
#[test]
fn two_entry_accesses_of_earlier_versions_still_verify_and_count_once() {
    use platekeeper_core::audit_report::Period;
    use platekeeper_store::{Access, AccessKind, AccessRequest, ReadQuery};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let purpose = platekeeper_core::Purpose::new("26-000001", "211 PC", "robbery").unwrap();
    let old_access = NewEntry {
        ts_ms: NOW - DAY,
        category: "access",
        kind: "search".into(),
        username: "officer1".into(),
        affiliation: "Test PD".into(),
        role: Some("officer".into()),
        client: None,
        details: serde_json::json!({"plate": "7ABC123"}),
        purpose: Some(serde_json::to_value(&purpose).unwrap()),
    };
    let first = store.log_event(old_access).unwrap();
    store
        .log_event(NewEntry {
            ts_ms: NOW - DAY,
            category: "access",
            kind: "result".into(),
            username: "officer1".into(),
            affiliation: String::new(),
            role: None,
            client: None,
            details: serde_json::json!({"access": first.seq, "result_count": 0, "reads": []}),
            purpose: None,
        })
        .unwrap();
    let access = Access::new(AccessRequest {
        username: "officer1".into(),
        affiliation: "Test PD".into(),
        kind: AccessKind::Search,
        query: serde_json::json!({"plate": "7ABC124"}),
        purpose,
        client: None,
        role: Some("officer".into()),
    });
    let q = ReadQuery {
        plate: Some(platekeeper_core::PlatePattern::parse("7ABC124", false).unwrap()),
        ..ReadQuery::default()
    };
    let found = store.search(&access, &q).unwrap();
    let new = store.release(access, found, NOW - DAY + 1).unwrap();

    assert!(store.verify_log().unwrap().ok);
    assert_eq!(
        store.access_count().unwrap(),
        2,
        "the old pair is one access"
    );
    assert_eq!(
        store.access_record(first.seq).unwrap().unwrap().kind,
        "search"
    );
    assert!(
        store.access_record(first.seq + 1).unwrap().is_none(),
        "a result entry is not an access"
    );
    assert_eq!(
        store
            .access_record(new.access_id())
            .unwrap()
            .unwrap()
            .username,
        "officer1"
    );
    let period = Period {
        label: "test".into(),
        from_ms: NOW - 2 * DAY,
        to_ms: NOW,
    };
    let (_, report) = store
        .audit_report(period, &Actor::system("test"), NOW)
        .unwrap();
    assert_eq!(report.accesses, 2);
    drop(store);
    assert!(verify_dir(dir.path(), None).unwrap().ok);
}
