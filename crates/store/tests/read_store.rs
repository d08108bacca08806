//! The read store against real SQLite files (SPEC R1.1, R1.3, R2.1–R2.3).

use platekeeper_core::{read::TimeInput, Area, GeoPoint, PlatePattern, Purpose, RawRead, Region};
use platekeeper_store::{
    Access, AccessKind, AccessRequest, CameraKind, Cursor, IngestItem, IngestStatus, NewCamera,
    ReadQuery, SearchPage, Store, StoreError,
};

const NOW: i64 = 1_795_000_000_000;
const HOUR: i64 = 3_600_000;
const OAKLAND: (f64, f64) = (37.8044, -122.2712);

fn access() -> Access {
    Access::new(AccessRequest {
        username: "test".into(),
        affiliation: "Test PD".into(),
        kind: AccessKind::Search,
        query: serde_json::json!({"test": true}),
        purpose: Purpose::new("24-0001", "459 PC", "test of the store").unwrap(),
        client: None,
        role: None,
    })
}

/// A search as the server makes it: found under an access, released
/// once the access's entry is durable.
fn search(store: &Store, q: &ReadQuery) -> Result<SearchPage, StoreError> {
    let a = access();
    let found = store.search(&a, q)?;
    Ok(store.release(a, found, NOW)?.into_value())
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    fixed: u32,
    mobile: u32,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (fixed, _) = store
        .create_camera(
            NewCamera {
                id: "fixed-1".into(),
                name: "Broadway & 14th".into(),
                kind: CameraKind::Fixed,
                position: Some(GeoPoint::new(OAKLAND.0, OAKLAND.1).unwrap()),
            },
            &platekeeper_store::Actor::system("test"),
            NOW,
        )
        .unwrap();
    let (mobile, _) = store
        .create_camera(
            NewCamera {
                id: "car-7".into(),
                name: "Patrol 7".into(),
                kind: CameraKind::Mobile,
                position: None,
            },
            &platekeeper_store::Actor::system("test"),
            NOW,
        )
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        fixed: fixed.num,
        mobile: mobile.num,
    }
}

fn read(id: Option<&str>, plate: &str, ts: i64, pos: Option<(f64, f64)>) -> RawRead {
    RawRead {
        id: id.map(String::from),
        plate: Some(plate.into()),
        state: Some("CA".into()),
        ts: Some(TimeInput::EpochMs(ts)),
        lat: pos.map(|p| p.0),
        lon: pos.map(|p| p.1),
        confidence: Some(90.0),
        ..RawRead::default()
    }
}

fn item(camera: u32, raw: RawRead) -> IngestItem {
    IngestItem {
        camera,
        read: raw.validate(NOW, "cam").unwrap(),
    }
}

fn plates(store: &Store, q: &ReadQuery) -> Vec<String> {
    search(store, q)
        .unwrap()
        .reads
        .iter()
        .map(|r| r.plate.to_string())
        .collect()
}

fn plate_query(p: &str, fuzzy: bool) -> ReadQuery {
    ReadQuery {
        plate: Some(PlatePattern::parse(p, fuzzy).unwrap()),
        limit: 100,
        ..ReadQuery::default()
    }
}

#[test]
fn resending_a_read_never_duplicates_it() {
    let f = fixture();
    let id = "0b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10";
    let batch = vec![
        item(f.fixed, read(Some(id), "7ABC123", NOW - HOUR, None)),
        item(f.fixed, read(None, "7ABC124", NOW - HOUR, None)),
    ];
    assert_eq!(
        f.store.ingest(&batch).unwrap(),
        [IngestStatus::Accepted, IngestStatus::Accepted]
    );
    // Offline unit re-sends the same batch, twice in one request.
    let again = [batch.clone(), batch].concat();
    assert!(f
        .store
        .ingest(&again)
        .unwrap()
        .iter()
        .all(|s| *s == IngestStatus::Duplicate));
    assert_eq!(f.store.read_count().unwrap(), 2);
    // Same millisecond, different id: a different read, kept.
    let other = item(
        f.fixed,
        read(
            Some("1b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10"),
            "7ABC123",
            NOW - HOUR,
            None,
        ),
    );
    assert_eq!(f.store.ingest(&[other]).unwrap(), [IngestStatus::Accepted]);
    assert_eq!(f.store.read_count().unwrap(), 3);
}

#[test]
fn a_camera_registered_after_searches_is_named_in_results() {
    // Searches share one camera table; a camera added while it is shared
    // must still be named, and earlier results keep theirs.
    let f = fixture();
    f.store
        .ingest(&[item(f.fixed, read(None, "7ABC123", NOW - HOUR, None))])
        .unwrap();
    let before = search(&f.store, &plate_query("7ABC123", false)).unwrap();
    let (late, _) = f
        .store
        .create_camera(
            NewCamera {
                id: "fixed-2".into(),
                name: "Market & 7th".into(),
                kind: CameraKind::Fixed,
                position: Some(GeoPoint::new(37.80, -122.27).unwrap()),
            },
            &platekeeper_store::Actor::system("test"),
            NOW,
        )
        .unwrap();
    f.store
        .ingest(&[item(
            late.num,
            read(None, "7ABC123", NOW - 30 * 60_000, None),
        )])
        .unwrap();
    let after = search(&f.store, &plate_query("7ABC123", false)).unwrap();
    let cameras: Vec<&str> = after.reads.iter().map(|r| r.camera.as_str()).collect();
    assert_eq!(cameras, ["fixed-2", "fixed-1"]);
    assert_eq!(
        after.reads[0].position,
        Some(GeoPoint::new(37.80, -122.27).unwrap())
    );
    assert_eq!(before.reads[0].camera, "fixed-1");
}

#[test]
fn exact_search_with_time_camera_and_state_filters() {
    let f = fixture();
    let mut batch = Vec::new();
    for h in 0..48 {
        batch.push(item(f.fixed, read(None, "7ABC123", NOW - h * HOUR, None)));
    }
    batch.push(item(
        f.mobile,
        read(None, "7ABC123", NOW - 5 * HOUR - 1, Some((37.7, -122.2))),
    ));
    let mut nv = read(None, "7ABC123", NOW - 6 * HOUR - 1, Some((37.7, -122.2)));
    nv.state = Some("NV".into());
    batch.push(item(f.mobile, nv));
    batch.push(item(f.fixed, read(None, "5XYZ999", NOW, None)));
    f.store.ingest(&batch).unwrap();

    let all = plates(&f.store, &plate_query("7abc-123", false));
    assert_eq!(all.len(), 50);
    assert!(all.iter().all(|p| p == "7ABC123"));

    let page = search(
        &f.store,
        &ReadQuery {
            from_ms: Some(NOW - 10 * HOUR),
            to_ms: Some(NOW - 2 * HOUR),
            ..plate_query("7ABC123", false)
        },
    )
    .unwrap();
    assert_eq!(page.reads.len(), 9 + 2);
    assert!(
        page.reads.windows(2).all(|w| w[0].ts_ms >= w[1].ts_ms),
        "newest first"
    );
    assert!(page
        .reads
        .iter()
        .all(|r| (NOW - 10 * HOUR..=NOW - 2 * HOUR).contains(&r.ts_ms)));

    let by_cam = search(
        &f.store,
        &ReadQuery {
            camera: Some("car-7".into()),
            ..plate_query("7ABC123", false)
        },
    )
    .unwrap();
    assert_eq!(by_cam.reads.len(), 2);
    assert!(by_cam.reads.iter().all(|r| r.camera == "car-7"));
    let by_state = search(
        &f.store,
        &ReadQuery {
            region: Region::parse("NV"),
            ..plate_query("7ABC123", false)
        },
    )
    .unwrap();
    assert_eq!(by_state.reads.len(), 1);
    // A fixed camera's read is placed at the camera.
    let fixed_read = &page.reads.iter().find(|r| r.camera == "fixed-1").unwrap();
    let pos = fixed_read.position.unwrap();
    assert!((pos.lat - OAKLAND.0).abs() < 1e-6);
    assert!(plates(&f.store, &plate_query("7ABC12", false)).is_empty());
}

#[test]
fn paging_walks_every_read_once() {
    let f = fixture();
    let batch: Vec<IngestItem> = (0..250)
        .map(|i| item(f.fixed, read(None, "4KXL001", NOW - i * 1_000_000, None)))
        .collect();
    f.store.ingest(&batch).unwrap();
    let mut q = ReadQuery {
        limit: 60,
        ..plate_query("4KXL001", false)
    };
    let mut seen = Vec::new();
    loop {
        let page = search(&f.store, &q).unwrap();
        seen.extend(page.reads.iter().map(|r| r.ts_ms));
        match page.next {
            Some(c) => q.cursor = Some(Cursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 250);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
}

#[test]
fn wildcard_substring_and_misread_search() {
    let f = fixture();
    let batch: Vec<IngestItem> = [
        "7ABC123", "7ABX129", "8ABC123", "14KX221", "7A8C123", "B0B5000",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| item(f.fixed, read(None, p, NOW - i as i64 * HOUR, None)))
    .collect();
    f.store.ingest(&batch).unwrap();
    let mut got = plates(&f.store, &plate_query("7AB?12*", false));
    got.sort();
    assert_eq!(got, ["7ABC123", "7ABX129"]);
    assert_eq!(plates(&f.store, &plate_query("*4KX*", false)), ["14KX221"]);
    let mut fuzzy = plates(&f.store, &plate_query("7ABC123", true));
    fuzzy.sort();
    assert_eq!(fuzzy, ["7A8C123", "7ABC123"]);
    assert_eq!(plates(&f.store, &plate_query("80B5OOO", true)), ["B0B5000"]);
}

#[test]
fn canvass_by_radius_and_polygon() {
    let f = fixture();
    let near = (OAKLAND.0 + 0.003, OAKLAND.1); // ~330 m north
    let far = (OAKLAND.0 + 0.02, OAKLAND.1); // ~2.2 km north
    let batch = vec![
        item(f.fixed, read(None, "FIXED01", NOW - 10 * 60_000, None)),
        item(
            f.mobile,
            read(None, "NEAR001", NOW - 20 * 60_000, Some(near)),
        ),
        item(
            f.mobile,
            read(None, "FAR0001", NOW - 30 * 60_000, Some(far)),
        ),
        item(f.mobile, read(None, "LATE001", NOW - 3 * HOUR, Some(near))),
    ];
    f.store.ingest(&batch).unwrap();
    let center = GeoPoint::new(OAKLAND.0, OAKLAND.1).unwrap();
    let q = ReadQuery {
        area: Some(Area::circle(center, 500.0).unwrap()),
        from_ms: Some(NOW - HOUR),
        to_ms: Some(NOW),
        limit: 100,
        ..ReadQuery::default()
    };
    assert_eq!(plates(&f.store, &q), ["FIXED01", "NEAR001"]);
    let poly = Area::polygon(
        [
            (37.80, -122.28),
            (37.80, -122.26),
            (37.81, -122.26),
            (37.81, -122.28),
        ]
        .iter()
        .map(|&(a, b)| GeoPoint::new(a, b).unwrap())
        .collect(),
    )
    .unwrap();
    let q = ReadQuery {
        area: Some(poly),
        ..q
    };
    assert_eq!(plates(&f.store, &q), ["FIXED01", "NEAR001"]);
    // A canvass needs a bounded window.
    let unbounded = ReadQuery { from_ms: None, ..q };
    assert!(search(&f.store, &unbounded).is_err());
}

#[test]
fn reopening_restores_the_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let (cam, _) = store
            .create_camera(
                NewCamera {
                    id: "c".into(),
                    name: "c".into(),
                    kind: CameraKind::Mobile,
                    position: None,
                },
                &platekeeper_store::Actor::system("test"),
                NOW,
            )
            .unwrap();
        store
            .ingest(&[item(
                cam.num,
                read(None, "9QRS555", NOW - 3 * 86_400_000, Some((37.0, -122.0))),
            )])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.distinct_plates(), 1);
    assert_eq!(plates(&store, &plate_query("*QRS*", false)), ["9QRS555"]);
    assert!(store.camera("c").is_some());
}

#[test]
fn images_are_stored_once_by_content_and_found_by_id_and_time() {
    let f = fixture();
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 100]].concat();
    let mut a = read(None, "IMG0001", NOW - HOUR, None);
    a.vehicle_image = Some(jpeg.clone());
    let mut b = read(None, "IMG0002", NOW - HOUR + 1, None);
    b.vehicle_image = Some(jpeg.clone());
    let items = vec![item(f.fixed, a), item(f.fixed, b)];
    f.store.ingest(&items).unwrap();
    let acc = access();
    let found = f
        .store
        .read_image(&acc, items[0].read.id, items[0].read.ts_ms, false)
        .unwrap();
    let (bytes, _) = f.store.release(acc, found, NOW).unwrap().into_value();
    assert_eq!(bytes, jpeg);
    let files: Vec<_> = walk(&f.store.dir().join("images"));
    assert_eq!(files.len(), 1, "one file for two reads of the same picture");
    let err = f
        .store
        .read_image(&access(), items[0].read.id, NOW, false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Gone {
                code: "unknown_read",
                ..
            }
        ),
        "{err}"
    );
}

/// Issue 22 finding 3: the folder was 0755 and every file 0644, TOTP
/// secrets included. Everything a store writes is now this account's
/// alone: folders 0700, files 0600 (SQLite's -wal and -shm too).
#[cfg(unix)]
#[test]
fn everything_the_store_writes_is_private_to_its_account() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[9u8; 100]].concat();
    let mut a = read(None, "PRIV001", NOW - HOUR, None);
    a.vehicle_image = Some(jpeg);
    f.store.ingest(&[item(f.fixed, a)]).unwrap();
    f.store.seal_finished_days(NOW + 3 * 86_400_000).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = f.store.dir().to_path_buf();
    assert_eq!(mode(&root), 0o700);
    let mut dirs = vec![root];
    let (mut nfiles, mut ndirs) = (0, 0);
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                ndirs += 1;
                dirs.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                nfiles += 1;
            }
        }
    }
    assert!(nfiles >= 5 && ndirs >= 3, "{nfiles} files, {ndirs} folders");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn too_broad_queries_are_refused() {
    let f = fixture();
    let nothing = ReadQuery {
        limit: 10,
        ..ReadQuery::default()
    };
    assert!(search(&f.store, &nothing).is_err());
    let reversed = ReadQuery {
        from_ms: Some(NOW),
        to_ms: Some(NOW - 1),
        ..plate_query("7ABC123", false)
    };
    assert!(search(&f.store, &reversed).is_err());
    assert!(Cursor::decode("12.x").is_err());
    assert!(Cursor::decode("12").is_err());
    assert!(Cursor::decode("12.-5").is_err());
}

#[test]
fn sealed_days_answer_like_open_ones_and_accept_late_reads() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let collect = |store: &Store| -> Vec<Vec<String>> {
        ["7ABC123", "*BC1*", "7AB?12*"]
            .iter()
            .map(|p| {
                let mut v = plates(store, &plate_query(p, false));
                v.sort();
                v
            })
            .collect()
    };
    let before;
    {
        let f = fixture_in(dir.path());
        let batch: Vec<IngestItem> = (0..300)
            .map(|i| {
                let plate = if i % 3 == 0 {
                    "7ABC123".to_string()
                } else {
                    format!("{}BC1{:02}", i % 10, i % 100)
                };
                item(
                    f.1,
                    read(None, &plate, NOW - (i % 4) * day - i * 1000, None),
                )
            })
            .collect();
        f.0.ingest(&batch).unwrap();
        before = collect(&f.0);
        let sealed = f.0.seal_finished_days(NOW).unwrap();
        assert_eq!(sealed.len(), 2, "every day before yesterday: {sealed:?}");
        assert!(
            f.0.seal_finished_days(NOW).unwrap().is_empty(),
            "sealing is done once"
        );
        assert_eq!(collect(&f.0), before);
        // A unit that was offline for days uploads into a sealed day.
        let late = item(f.1, read(None, "LATE123", NOW - 3 * day - 5, None));
        assert_eq!(f.0.ingest(&[late]).unwrap(), [IngestStatus::Accepted]);
        assert_eq!(plates(&f.0, &plate_query("LATE123", false)), ["LATE123"]);
    }
    let f = fixture_in(dir.path());
    assert_eq!(collect(&f.0), before);
    assert_eq!(f.0.read_count().unwrap(), 301);
}

fn fixture_in(dir: &std::path::Path) -> (Store, u32) {
    let store = Store::open(dir).unwrap();
    let num = match store.camera("fixed-9") {
        Some(c) => c.num,
        None => {
            store
                .create_camera(
                    NewCamera {
                        id: "fixed-9".into(),
                        name: "Fixed 9".into(),
                        kind: CameraKind::Fixed,
                        position: Some(GeoPoint::new(OAKLAND.0, OAKLAND.1).unwrap()),
                    },
                    &platekeeper_store::Actor::system("test"),
                    NOW,
                )
                .unwrap()
                .0
                .num
        }
    };
    (store, num)
}

/// Every read in the area and window, by brute force over what was sent.
fn expected_in(sent: &[(String, i64, (f64, f64))], area: &Area, from: i64, to: i64) -> Vec<String> {
    let mut v: Vec<String> = sent
        .iter()
        .filter(|(_, ts, (lat, lon))| {
            (from..=to).contains(ts) && area.contains(GeoPoint::new(*lat, *lon).unwrap())
        })
        .map(|(p, _, _)| p.clone())
        .collect();
    v.sort();
    v
}

/// A canvass walked page by page, sorted.
fn canvass_all(store: &Store, area: &Area, from: i64, to: i64, page: usize) -> Vec<String> {
    let mut q = ReadQuery {
        area: Some(area.clone()),
        from_ms: Some(from),
        to_ms: Some(to),
        limit: page,
        ..ReadQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let res = search(store, &q).unwrap();
        out.extend(res.reads.iter().map(|r| r.plate.to_string()));
        match res.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let n = out.len();
    out.sort();
    out.dedup();
    assert_eq!(out.len(), n, "paging returned a read twice");
    out
}

#[test]
fn canvasses_find_every_read_in_open_sealed_and_late_days() {
    // SPEC R2.3: a canvass returns every read in its area and window,
    // whether the day is open (memory index), sealed (canvass table), was
    // written late after sealing, or sealed by an older release.
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let (store, fixed) = fixture_in(dir.path());
    let (mobile, _) = store
        .create_camera(
            NewCamera {
                id: "car-1".into(),
                name: "Patrol 1".into(),
                kind: CameraKind::Mobile,
                position: None,
            },
            &platekeeper_store::Actor::system("test"),
            NOW,
        )
        .unwrap();
    // A fixed camera alone in its part of town: a canvass there finds
    // its reads only through the camera's own list.
    let lone_at = (37.7700, -122.2200);
    let (lone, _) = store
        .create_camera(
            NewCamera {
                id: "fixed-lone".into(),
                name: "Lone".into(),
                kind: CameraKind::Fixed,
                position: Some(GeoPoint::new(lone_at.0, lone_at.1).unwrap()),
            },
            &platekeeper_store::Actor::system("test"),
            NOW,
        )
        .unwrap();
    // Positions on both sides of a 0.01° cell edge, inside and outside
    // 500 m of the fixed camera.
    let spots = [
        (37.80, -122.27),
        (37.7999999, -122.2700001),
        (37.8044, -122.2712),
        (37.8070, -122.2690),
        (37.83, -122.30),
    ];
    let mut sent: Vec<(String, i64, (f64, f64))> = Vec::new();
    let mut batch = Vec::new();
    for i in 0..2_000i64 {
        let ts = NOW - (i % 4) * day - (i * 37_003) % (20 * HOUR);
        let plate = format!("C{i:06}");
        if i % 3 == 0 {
            batch.push(item(fixed, read(None, &plate, ts, None)));
            sent.push((plate, ts, OAKLAND));
        } else if i % 7 == 0 {
            batch.push(item(lone.num, read(None, &plate, ts, None)));
            sent.push((plate, ts, lone_at));
        } else {
            let p = spots[(i as usize) % spots.len()];
            batch.push(item(mobile.num, read(None, &plate, ts, Some(p))));
            sent.push((plate, ts, p));
        }
    }
    assert!(store
        .ingest(&batch)
        .unwrap()
        .iter()
        .all(|s| *s == IngestStatus::Accepted));
    let center = GeoPoint::new(OAKLAND.0, OAKLAND.1).unwrap();
    let areas = [
        Area::circle(center, 500.0).unwrap(),
        Area::circle(GeoPoint::new(37.80, -122.27).unwrap(), 50.0).unwrap(),
        Area::polygon(
            [(37.79, -122.28), (37.79, -122.26), (37.81, -122.27)]
                .iter()
                .map(|&(a, b)| GeoPoint::new(a, b).unwrap())
                .collect(),
        )
        .unwrap(),
        Area::circle(GeoPoint::new(lone_at.0, lone_at.1).unwrap(), 300.0).unwrap(),
        // Larger than the canvass table is used for: scanned.
        Area::circle(center, 50_000.0).unwrap(),
    ];
    let check = |store: &Store, sent: &[(String, i64, (f64, f64))], when: &str| {
        for back in 0..4 {
            let (from, to) = (NOW - back * day - 6 * HOUR, NOW - back * day);
            for (n, area) in areas.iter().enumerate() {
                let want = expected_in(sent, area, from, to);
                assert!(
                    n == 1 || !want.is_empty(),
                    "{when}: area {n} day -{back} is empty"
                );
                for page in [7, 1000] {
                    assert_eq!(
                        canvass_all(store, area, from, to, page),
                        want,
                        "{when}: area {n}, day -{back}, pages of {page}"
                    );
                }
            }
        }
    };
    check(&store, &sent, "open");
    assert!(store.seal_finished_days(NOW).unwrap().len() >= 2);
    check(&store, &sent, "sealed");
    // Late uploads into a sealed day, at moments no read of their place
    // had, and at a place the day had no read at.
    let late = [
        (
            "LATE001",
            NOW - 3 * day - 17,
            mobile.num,
            Some((37.8045, -122.2711)),
        ),
        ("LATE002", NOW - 2 * day - 5 * HOUR, fixed, None),
        (
            "LATE003",
            NOW - 3 * day - 1,
            mobile.num,
            Some((37.8012, -122.2755)),
        ),
        ("LATE004", NOW - 2 * day - 2 * HOUR - 1, lone.num, None),
        ("LATE005", NOW - 3 * day - 4 * HOUR, lone.num, None),
    ];
    for (plate, ts, cam, pos) in late {
        let at = match pos {
            Some(p) => p,
            None if cam == lone.num => lone_at,
            None => OAKLAND,
        };
        let r = item(cam, read(None, plate, ts, pos));
        assert_eq!(store.ingest(&[r]).unwrap(), [IngestStatus::Accepted]);
        sent.push((plate.to_string(), ts, at));
    }
    check(&store, &sent, "late");
    drop(store);

    // A day sealed by the release before the canvass table: reopened, it
    // is scanned, then sealed again by the next run.
    let old = dir.path().join("reads").join(
        std::fs::read_dir(dir.path().join("reads"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".db"))
            .min()
            .unwrap(),
    );
    {
        let conn = rusqlite::Connection::open(&old).unwrap();
        conn.execute_batch("DELETE FROM canvass; PRAGMA user_version = 1;")
            .unwrap();
    }
    let (store, _) = fixture_in(dir.path());
    check(&store, &sent, "reopened, old seal");
    assert_eq!(store.seal_finished_days(NOW).unwrap().len(), 1);
    check(&store, &sent, "sealed again");
}

/// R6.1, R4.5: log entries past the access-log retention are purged, the
/// rest of the chain still verifies from the recorded anchor, and an
/// anchor that no purge entry names fails verification.
#[test]
fn purged_log_entries_leave_a_chain_that_still_verifies() {
    let f = fixture();
    let actor = platekeeper_store::Actor::system("test");
    const DAY: i64 = 86_400_000;
    for i in 0..50 {
        f.store
            .log_event(actor_entry(&actor, NOW - 800 * DAY + i * HOUR, "old_event"))
            .unwrap();
    }
    for i in 0..5 {
        f.store
            .log_event(actor_entry(&actor, NOW - DAY + i * HOUR, "recent_event"))
            .unwrap();
    }
    let before = f.store.log_entries(None, None, 10_000).unwrap().len();
    let dry = f.store.purge(NOW, true, &actor).unwrap();
    let log_class = dry
        .classes
        .iter()
        .find(|c| c.class == "access_log")
        .unwrap();
    assert!(log_class.count >= 50, "{dry:?}");
    assert_eq!(
        f.store.log_entries(None, None, 10_000).unwrap().len(),
        before
    );
    let report = f.store.purge(NOW, false, &actor).unwrap();
    assert!(report.log_seq.is_some());
    let kinds: Vec<String> = f
        .store
        .log_entries(None, None, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.iter().any(|k| k == "old_event"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "recent_event").count(), 5);
    let v = f.store.verify_log().unwrap();
    assert!(v.ok, "{v:?}");
    // Forging the anchor (to hide more removed entries) is found.
    let dir = f.store.dir().to_path_buf();
    drop(f.store);
    let conn = rusqlite::Connection::open(dir.join("platekeeper.db")).unwrap();
    let anchor: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'log_anchor'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (seq, hash) = anchor.split_once(':').unwrap();
    let next: i64 = seq.parse::<i64>().unwrap() + 1;
    let next_hash: Vec<u8> = conn
        .query_row("SELECT hash FROM log WHERE seq = ?1", [next], |r| r.get(0))
        .unwrap();
    conn.execute("DELETE FROM log WHERE seq = ?1", [next])
        .unwrap();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'log_anchor'",
        [format!("{next}:{}", hex_of(&next_hash))],
    )
    .unwrap();
    let _ = hash;
    drop(conn);
    let v = platekeeper_store::log::verify_dir(&dir, None).unwrap();
    assert!(!v.ok, "a moved anchor must fail: {v:?}");
    assert!(v.problem.unwrap().contains("no purge entry"));
}

fn actor_entry(
    actor: &platekeeper_store::Actor,
    ts: i64,
    kind: &str,
) -> platekeeper_store::NewEntry {
    platekeeper_store::NewEntry {
        ts_ms: ts,
        category: "admin",
        kind: kind.into(),
        username: actor.username.clone(),
        affiliation: actor.affiliation.clone(),
        role: None,
        client: None,
        details: serde_json::json!({}),
        purpose: None,
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// R6.1: a purge takes the removed days' plates out of the plate
/// dictionary, so a pattern search neither matches nor counts a plate
/// whose reads are gone; plates read since stay, and a reopened store
/// agrees.
#[test]
fn purged_plates_leave_the_dictionary() {
    let f = fixture();
    const DAY: i64 = 86_400_000;
    let old = NOW - 400 * DAY;
    let items = vec![
        item(f.fixed, read(None, "7OLD001", old, None)),
        item(f.fixed, read(None, "7OLD002", old + HOUR, None)),
        item(f.fixed, read(None, "7OLD003", old, None)),
        item(f.fixed, read(None, "7OLD003", NOW - DAY, None)),
        item(f.fixed, read(None, "7NEW004", NOW - HOUR, None)),
    ];
    f.store.ingest(&items).unwrap();
    let matched = |store: &Store| {
        let page = search(store, &plate_query("*00*", false)).unwrap();
        let mut got: Vec<String> = page.reads.iter().map(|r| r.plate.to_string()).collect();
        got.sort();
        (page.plates_matched, got)
    };
    assert_eq!(matched(&f.store).0, 4);
    assert_eq!(f.store.distinct_plates(), 4);

    let actor = platekeeper_store::Actor::system("test");
    let dry = f.store.purge(NOW, true, &actor).unwrap();
    assert_eq!(dry.plates_forgotten, 2, "{dry:?}");
    assert_eq!(f.store.distinct_plates(), 4, "a dry run forgets nothing");
    let report = f.store.purge(NOW, false, &actor).unwrap();
    assert_eq!(report.plates_forgotten, 2, "{report:?}");
    assert_eq!(report.days_removed.len(), 1);
    assert_eq!(f.store.distinct_plates(), 2);
    assert_eq!(
        matched(&f.store),
        (2, vec!["7NEW004".to_string(), "7OLD003".to_string()])
    );
    assert!(plates(&f.store, &plate_query("7OLD001", false)).is_empty());
    assert!(plates(&f.store, &plate_query("*OLD00?", true))
        .iter()
        .all(|p| p == "7OLD003"));
    // New reads still go in after the table was rebuilt.
    f.store
        .ingest(&[item(f.fixed, read(None, "7NEW005", NOW - HOUR, None))])
        .unwrap();
    assert_eq!(f.store.distinct_plates(), 3);
    // A second purge has nothing more to forget.
    assert_eq!(
        f.store.purge(NOW, false, &actor).unwrap().plates_forgotten,
        0
    );
    let dir = f.store.dir().to_path_buf();
    drop(f.store);
    let reopened = Store::open(&dir).unwrap();
    assert_eq!(reopened.distinct_plates(), 3);
    assert_eq!(matched(&reopened).0, 3);
}

/// A correction that moves a plate's last read away takes the plate out
/// of the dictionary, on an open day (memory index) and a sealed one
/// (SQLite index) alike; a plate with another read stays (R8.2).
#[test]
fn a_corrected_plate_leaves_the_dictionary_once_no_read_carries_it() {
    let f = fixture();
    let day = 86_400_000;
    let batch = vec![
        item(f.fixed, read(None, "OLD1111", NOW - 3 * day, None)),
        item(f.fixed, read(None, "OLD2222", NOW - HOUR, None)),
        item(f.fixed, read(None, "OLD3333", NOW - 3 * day - 1000, None)),
        item(f.fixed, read(None, "OLD3333", NOW - HOUR - 1000, None)),
    ];
    f.store.ingest(&batch).unwrap();
    assert_eq!(f.store.seal_finished_days(NOW).unwrap().len(), 1);
    let matched = |p: &str| {
        search(&f.store, &plate_query(p, false))
            .unwrap()
            .plates_matched
    };
    assert_eq!(matched("OLD*"), 3);
    let correct = |from: &str, to: &str, newest: bool| {
        let found = search(&f.store, &plate_query(from, false)).unwrap().reads;
        let read = if newest {
            &found[0]
        } else {
            &found[found.len() - 1]
        };
        f.store
            .correct_read(
                access(),
                read.id,
                read.ts_ms,
                (platekeeper_core::Plate::parse(to).unwrap(), None),
                "checked against the picture",
                &platekeeper_store::Actor::system("test"),
                NOW,
            )
            .unwrap();
    };
    correct("OLD1111", "NEW1111", true);
    assert_eq!(matched("OLD*"), 2, "the sealed day's only read moved");
    correct("OLD2222", "NEW2222", true);
    assert_eq!(matched("OLD*"), 1, "the open day's only read moved");
    correct("OLD3333", "NEW3333", true);
    assert_eq!(matched("OLD*"), 1, "OLD3333 keeps its older read");
    assert_eq!(
        plates(&f.store, &plate_query("OLD3333", false)),
        ["OLD3333"]
    );
    correct("OLD3333", "NEW3333", false);
    assert_eq!(matched("OLD*"), 0);
    assert_eq!(matched("NEW*"), 3);
    assert_eq!(f.store.distinct_plates(), 3);
}
