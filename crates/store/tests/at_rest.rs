//! Encryption at rest against real SQLCipher files (issue 24; SPEC
//! R11.1): a copied folder without the key shows no plate, a missing or
//! wrong key touches nothing, and a change of key survives interruption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use platekeeper_core::{read::TimeInput, GeoPoint, Plate, PlatePattern, Purpose, RawRead};
use platekeeper_store::at_rest::{rekey, DataKey};
use platekeeper_store::{
    Access, AccessKind, AccessRequest, Actor, CameraKind, IngestItem, NewCamera, NewUser,
    OpenOptions, ReadQuery, Store, StoreError,
};

const NOW: i64 = 1_795_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn open(dir: &Path, key: Option<&Arc<DataKey>>) -> Result<Store, StoreError> {
    Store::open_with(
        dir,
        OpenOptions {
            key: key.cloned(),
            database: None,
            read_database: None,
            now_ms: Some(NOW),
            ..OpenOptions::default()
        },
    )
}

fn open_err(dir: &Path, key: Option<&Arc<DataKey>>) -> StoreError {
    match open(dir, key) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e,
    }
}

fn access(plate: &str) -> Access {
    Access::new(AccessRequest {
        username: "analyst1".into(),
        affiliation: "Test PD".into(),
        kind: AccessKind::Search,
        query: serde_json::json!({"plate": plate}),
        purpose: Purpose::new("24-0001", "459 PC", "test of encryption at rest").unwrap(),
        client: None,
        role: None,
    })
}

fn plate_query(p: &str) -> ReadQuery {
    ReadQuery {
        plate: Some(PlatePattern::parse(p, false).unwrap()),
        limit: 100,
        ..ReadQuery::default()
    }
}

/// Plates found for `p` (a logged search, as the server makes it).
fn search(store: &Store, p: &str) -> Vec<String> {
    let a = access(p);
    let found = store.search(&a, &plate_query(p)).unwrap();
    store
        .release(a, found, NOW)
        .unwrap()
        .into_value()
        .reads
        .iter()
        .map(|r| r.plate.to_string())
        .collect()
}

/// A picture that carries its plate's text, as a real one would in its
/// metadata or a burnt-in caption.
fn picture(plate: &str) -> Vec<u8> {
    [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        format!("caption {plate} end").as_bytes(),
    ]
    .concat()
}

/// What must not be found in a stolen folder.
struct Secrets {
    plates: Vec<String>,
    totp_secret: String,
}

/// Fills a store the way a working agency does: cameras, reads over
/// three days with pictures (two days sealed), an administrator with a
/// TOTP secret, and searches logged with the plate in the query.
fn populate(store: &Store) -> Secrets {
    let (camera, _) = store
        .create_camera(
            NewCamera {
                id: "fixed-1".into(),
                name: "Broadway & 14th".into(),
                kind: CameraKind::Fixed,
                position: Some(GeoPoint::new(37.8044, -122.2712).unwrap()),
            },
            &Actor::system("test"),
            NOW - 3 * DAY,
        )
        .unwrap();
    let mut plates = Vec::new();
    for day in 0..3 {
        let mut batch = Vec::new();
        for i in 0..40 {
            let plate = format!("Q{day}X{i:03}Z");
            let raw = RawRead {
                plate: Some(plate.clone()),
                state: Some("CA".into()),
                ts: Some(TimeInput::EpochMs(NOW - (2 - day) * DAY - HOUR + i)),
                confidence: Some(90.0),
                vehicle_image: Some(picture(&plate)),
                ..RawRead::default()
            };
            batch.push(IngestItem {
                camera: camera.num,
                read: raw.validate(NOW, "fixed-1").unwrap(),
            });
            plates.push(plate);
        }
        store.ingest(&batch).unwrap();
    }
    store.seal_finished_days(NOW).unwrap();
    let (_, totp_secret) = store
        .create_administrator(
            NewUser {
                username: "chief".into(),
                name: "Pat Chief".into(),
                role: platekeeper_core::Role::Administrator,
                title: Some("Captain".into()),
            },
            365,
            NOW,
        )
        .unwrap();
    for p in plates.iter().step_by(7) {
        assert_eq!(search(store, p), vec![p.to_string()]);
    }
    Secrets {
        plates,
        totp_secret,
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every way a plate or secret sits in a file of a plain store: as text,
/// and as the 6-byte big-endian integer SQLite stores a plate code as
/// (what "a five-line script decodes").
fn leaks(dir: &Path, s: &Secrets) -> Vec<String> {
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &s.plates {
        needles.push((format!("plate {p}"), p.as_bytes().to_vec()));
        let code = Plate::parse(p).unwrap().code();
        needles.push((
            format!("plate code of {p}"),
            code.to_be_bytes()[2..].to_vec(),
        ));
    }
    needles.push(("TOTP secret".into(), s.totp_secret.as_bytes().to_vec()));
    needles.push(("a user's name".into(), b"Pat Chief".to_vec()));
    needles.push(("a camera's name".into(), b"Broadway & 14th".to_vec()));
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for (what, n) in &needles {
            if contains(&bytes, n) {
                found.push(format!("{what} in {}", f.display()));
            }
        }
    }
    found
}

#[test]
fn a_copied_encrypted_folder_shows_no_plate_secret_or_name() {
    let keys = tempfile::tempdir().unwrap();
    let key = Arc::new(DataKey::create(&keys.path().join("data.key")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(store.encryption_key_id(), Some(&key.id()));
    let secrets = populate(&store);
    // While the server runs (write-ahead logs and all) ...
    assert_eq!(leaks(dir.path(), &secrets), Vec::<String>::new());
    drop(store);
    // ... and after it stops.
    let leaked = leaks(dir.path(), &secrets);
    assert!(leaked.is_empty(), "{leaked:#?}");
    assert!(
        files_under(dir.path()).len() >= 6,
        "the scan covered the day files, pictures and the main database"
    );
    // And the key opens it all again.
    let store = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        search(&store, &secrets.plates[0]),
        [secrets.plates[0].clone()]
    );
    let v = platekeeper_store::log::verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(v.ok, "{v:?}");
}

/// The control: the same scan finds everything in a plain store, so the
/// test above would fail if encryption were off.
#[test]
fn the_scan_finds_plates_in_a_plain_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None).unwrap();
    assert_eq!(store.encryption_key_id(), None);
    let secrets = populate(&store);
    drop(store);
    let leaked = leaks(dir.path(), &secrets);
    for what in [
        "plate Q0X000Z",
        "plate code of Q2X039Z",
        "TOTP secret",
        "a user's name",
        "a camera's name",
    ] {
        assert!(
            leaked.iter().any(|l| l.starts_with(what)),
            "{what} not found in a plain store: {leaked:#?}"
        );
    }
}

/// Every file's name, size and content, to show an open that failed
/// changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect()
}

#[test]
fn a_missing_or_wrong_key_stops_the_open_and_touches_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let key = Arc::new(DataKey::create(&keys.path().join("a.key")).unwrap());
    let other = Arc::new(DataKey::generate().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let secrets = populate(&open(dir.path(), Some(&key)).unwrap());
    let before = snapshot(dir.path());

    let err = open_err(dir.path(), None);
    assert!(
        matches!(&err, StoreError::KeyRequired { key_id } if *key_id == key.id().0),
        "{err}"
    );
    assert!(err.to_string().contains("--key-file"), "{err}");
    let err = open_err(dir.path(), Some(&other));
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(
        err.to_string().contains(&key.id().0),
        "names the key it needs: {err}"
    );
    let err = platekeeper_store::log::verify_dir(dir.path(), Some(&other)).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused open changed a file"
    );

    // Without its marker, the files themselves refuse a wrong key, and
    // the right key brings the marker back.
    std::fs::remove_file(dir.path().join("encryption.json")).unwrap();
    assert!(matches!(
        open(dir.path(), None),
        Err(StoreError::KeyRequired { .. })
    ));
    assert!(matches!(
        open(dir.path(), Some(&other)),
        Err(StoreError::WrongKey { .. })
    ));
    let store = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(
        search(&store, &secrets.plates[5]),
        [secrets.plates[5].clone()]
    );
    assert!(dir.path().join("encryption.json").exists());

    // A key given for a plain store is refused too (it would otherwise
    // seem encrypted and not be).
    let plain = tempfile::tempdir().unwrap();
    populate(&open(plain.path(), None).unwrap());
    let before = snapshot(plain.path());
    assert!(matches!(
        open(plain.path(), Some(&key)),
        Err(StoreError::NotEncrypted)
    ));
    assert_eq!(snapshot(plain.path()), before);
}

#[test]
fn an_altered_or_swapped_picture_is_refused_not_shown() {
    let key = Arc::new(DataKey::generate().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Some(&key)).unwrap();
    populate(&store);
    let pictures: Vec<PathBuf> = files_under(&dir.path().join("images"));
    assert_eq!(pictures.len(), 120);
    // Flip one byte of one picture; put another's bytes under a second's
    // name; put a plain JPEG under a third's.
    let mut bytes = std::fs::read(&pictures[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&pictures[0], bytes).unwrap();
    std::fs::copy(&pictures[3], &pictures[1]).unwrap();
    std::fs::write(&pictures[2], picture("FAKE123")).unwrap();
    let mut refused = 0;
    let mut shown = 0;
    for day in 0..3 {
        let from = NOW - (2 - day) * DAY - 2 * HOUR;
        let a = access("*");
        let q = ReadQuery {
            from_ms: Some(from),
            to_ms: Some(from + 2 * HOUR),
            camera: Some("fixed-1".into()),
            limit: 100,
            ..ReadQuery::default()
        };
        let page = store.search(&a, &q).unwrap();
        let page = store.release(a, page, NOW).unwrap().into_value();
        for r in page.reads {
            let a = access(r.plate.as_str());
            match store.read_image(&a, r.id, r.ts_ms, false) {
                Ok(found) => {
                    let (b, _) = store.release(a, found, NOW).unwrap().into_value();
                    assert_eq!(b, picture(r.plate.as_str()));
                    shown += 1;
                }
                Err(e) => {
                    assert!(matches!(e, StoreError::Picture { .. }), "{e}");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!((refused, shown), (3, 117));
}

#[test]
fn encrypting_a_plain_store_keeps_every_read_and_the_log() {
    let keys = tempfile::tempdir().unwrap();
    let key = Arc::new(DataKey::create(&keys.path().join("data.key")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None).unwrap();
    let secrets = populate(&store);
    let head = platekeeper_store::log::verify_dir(dir.path(), None).unwrap();
    drop(store);
    let mut seen = Vec::new();
    let report = rekey::rekey(dir.path(), None, &key, |p| seen.push(p)).unwrap();
    assert_eq!(report.pictures, 120);
    assert_eq!(report.databases, 4, "the main database and three days");
    let last = seen.last().unwrap();
    assert_eq!(
        (last.files_done, last.bytes_done),
        (last.files_total, last.bytes_total)
    );
    assert!(
        seen.len() as u64 > last.files_total,
        "progress after each file"
    );
    assert!(leaks(dir.path(), &secrets).is_empty());
    assert!(matches!(
        open(dir.path(), None),
        Err(StoreError::KeyRequired { .. })
    ));
    let store = open(dir.path(), Some(&key)).unwrap();
    for p in &secrets.plates {
        assert_eq!(
            search(&store, p),
            vec![p.to_string()],
            "{p} after encryption"
        );
    }
    drop(store);
    let v = platekeeper_store::log::verify_dir(dir.path(), Some(&key)).unwrap();
    assert!(v.ok, "{v:?}");
    assert!(v.entries > head.entries, "the searches since were logged");
    // Encrypting twice is refused (rotation is its own command).
    let err = rekey::rekey(dir.path(), None, &key, |_| {}).unwrap_err();
    assert!(err.to_string().contains("already encrypted"), "{err}");
}

#[test]
fn a_rotation_interrupted_and_resumed_leaves_a_readable_store() {
    let keys = tempfile::tempdir().unwrap();
    let old = Arc::new(DataKey::create(&keys.path().join("old.key")).unwrap());
    let new = Arc::new(DataKey::create(&keys.path().join("new.key")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Some(&old)).unwrap();
    let secrets = populate(&store);
    drop(store);

    // Stopped after the main database, two day files and a few pictures
    // (as a crash or Ctrl-C would stop it between files) ...
    let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rekey::rekey(dir.path(), Some(&old), &new, |p| {
            if p.files_done == 8 {
                panic!("interrupted");
            }
        })
    }));
    assert!(interrupted.is_err());
    // ... and in the middle of a file: its half-written copy is left.
    std::fs::write(dir.path().join("reads/2026-11-17.rekey"), b"half a copy").unwrap();

    // Meanwhile the store opens under neither key, and says why.
    for k in [&old, &new] {
        let err = open_err(dir.path(), Some(k));
        assert!(matches!(err, StoreError::RekeyUnfinished { .. }), "{err}");
        assert!(err.to_string().contains("again"), "{err}");
    }
    // A run with other keys is refused, naming the two it needs.
    let stranger = DataKey::generate().unwrap();
    let err = rekey::rekey(dir.path(), Some(&old), &stranger, |_| {}).unwrap_err();
    assert!(err.to_string().contains(&new.id().0), "{err}");

    let report = rekey::rekey(dir.path(), Some(&old), &new, |_| {}).unwrap();
    assert_eq!(report.already_done, 8);
    assert_eq!(
        report.databases + report.pictures + report.already_done,
        124
    );
    assert!(!dir.path().join("reads/2026-11-17.rekey").exists());

    assert!(matches!(
        open(dir.path(), Some(&old)),
        Err(StoreError::WrongKey { .. })
    ));
    let store = open(dir.path(), Some(&new)).unwrap();
    for p in secrets.plates.iter().step_by(3) {
        assert_eq!(search(&store, p), vec![p.to_string()]);
    }
    let a = access("Q1X004Z");
    let found = store.search(&a, &plate_query("Q1X004Z")).unwrap();
    let page = store.release(a, found, NOW).unwrap().into_value();
    let r = &page.reads[0];
    let a = access("Q1X004Z");
    let found = store.read_image(&a, r.id, r.ts_ms, false).unwrap();
    let (bytes, _) = store.release(a, found, NOW).unwrap().into_value();
    assert_eq!(bytes, picture("Q1X004Z"));
    drop(store);
    assert!(
        platekeeper_store::log::verify_dir(dir.path(), Some(&new))
            .unwrap()
            .ok
    );
    assert!(leaks(dir.path(), &secrets).is_empty());
    // Rotating to the key it already has is refused.
    let err = rekey::rekey(dir.path(), Some(&new), &new, |_| {}).unwrap_err();
    assert!(err.to_string().contains("already has"), "{err}");
}
