//! The PostgreSQL backend against a real PostgreSQL (issue 25, R10.1,
//! R4.5): `scripts/with-postgres` starts a private cluster and names it in
//! PLATEKEEPER_TEST_DATABASE / PLATEKEEPER_TEST_PG_ADMIN; `scripts/test`
//! runs these under it and sets PLATEKEEPER_REQUIRE_POSTGRES so that a
//! missing server fails rather than skips.

use platekeeper_store::log::{Head, NewEntry};
use platekeeper_store::postgres::{self as pg, DatabaseUrl, PgError};

/// A new, empty database of its own for one test, owned by the
/// unprivileged application role; `None` (the test is skipped) when no
/// PostgreSQL was started for the tests.
fn fresh_database() -> Option<DatabaseUrl> {
    let (Ok(app), Ok(admin)) = (
        std::env::var("PLATEKEEPER_TEST_DATABASE"),
        std::env::var("PLATEKEEPER_TEST_PG_ADMIN"),
    ) else {
        assert!(
            std::env::var_os("PLATEKEEPER_REQUIRE_POSTGRES").is_none(),
            "PLATEKEEPER_REQUIRE_POSTGRES is set but no PostgreSQL was started (run under scripts/with-postgres)"
        );
        eprintln!("skipped: no PostgreSQL (run under scripts/with-postgres)");
        return None;
    };
    let name = format!("pk_test_{}", hex(8));
    let mut su = postgres::Client::connect(&admin, postgres::NoTls).expect("admin connection");
    su.batch_execute(&format!("CREATE DATABASE {name} OWNER platekeeper"))
        .expect("create database");
    let (base, _) = app.rsplit_once('/').expect("database url");
    Some(DatabaseUrl::parse(&format!("{base}/{name}")).expect("test url"))
}

fn hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn admin() -> postgres::Client {
    let admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").expect("admin url");
    postgres::Client::connect(&admin, postgres::NoTls).expect("admin connection")
}

/// A superuser connection to the test's database: the insider.
fn insider(url: &DatabaseUrl) -> postgres::Client {
    let admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").expect("admin url");
    let (base, _) = admin.rsplit_once('/').expect("admin url");
    let db = url.to_string();
    let name = db
        .rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next())
        .expect("database name");
    let mut c = postgres::Client::connect(&format!("{base}/{name}"), postgres::NoTls)
        .expect("insider connection");
    c.batch_execute("SET search_path = platekeeper")
        .expect("path");
    c
}

fn entry(i: usize) -> NewEntry {
    NewEntry {
        ts_ms: 1_800_000_000_000 + i as i64,
        category: "access",
        kind: "search".into(),
        username: format!("officer{}", i % 7),
        affiliation: "Agency".into(),
        role: Some("officer".into()),
        client: Some("127.0.0.1".into()),
        details: serde_json::json!({ "plate": format!("7ABC{i:03}") }),
        purpose: Some(serde_json::json!({ "case": format!("C-{i}") })),
    }
}

fn append_n(pool: &pg::PgPool, n: usize) {
    for i in 0..n {
        let mut c = pool.get().expect("connection");
        let mut tx = c.transaction().expect("tx");
        pg::log::append(&mut tx, entry(i)).expect("append");
        tx.commit().expect("commit");
    }
}

#[test]
fn wrong_address_password_database_or_application_each_named() {
    let Some(url) = fresh_database() else { return };
    let text = std::env::var("PLATEKEEPER_TEST_DATABASE").expect("url");

    // A wrong password.
    let (scheme_user, rest) = text
        .split_once(':')
        .map(|(a, b)| (a.to_string(), b))
        .expect("url");
    let after_scheme = rest.trim_start_matches("//");
    let (user, tail) = after_scheme.split_once(':').expect("user:password");
    let (_, host_db) = tail.split_once('@').expect("host");
    let wrong = DatabaseUrl::parse(&format!(
        "{scheme_user}://{user}:not-the-password@{host_db}"
    ))
    .expect("url");
    let e = pg::open(&wrong).err().expect("wrong password refused");
    assert!(matches!(e, PgError::WrongPassword { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("refused the password of user \"platekeeper\""),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"));

    // Nobody listening.
    let closed =
        DatabaseUrl::parse("postgres://platekeeper:x@127.0.0.1:1/platekeeper?connect_timeout=2")
            .expect("url");
    let e = pg::open(&closed).err().expect("unreachable");
    assert!(matches!(e, PgError::Unreachable { .. }), "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("cannot be reached"), "{e}");

    // A database that does not exist.
    let (base, _) = text.rsplit_once('/').expect("url");
    let none = DatabaseUrl::parse(&format!("{base}/no_such_database")).expect("url");
    let e = pg::open(&none).err().expect("no database");
    assert!(matches!(e, PgError::NoDatabase { .. }), "{e}");

    // Another application's database: refused, and left as it was.
    let mut c = pg::connect::connect(&url).expect("connect");
    c.batch_execute(
        "CREATE TABLE public.customers(id int); INSERT INTO public.customers VALUES (1)",
    )
    .expect("foreign table");
    let e = pg::open(&url).err().expect("foreign database refused");
    assert!(matches!(e, PgError::ForeignDatabase { .. }), "{e}");
    assert!(e.to_string().contains("public.customers"), "{e}");
    let ours: bool = c
        .query_one("SELECT to_regnamespace('platekeeper') IS NOT NULL", &[])
        .expect("q")
        .get(0);
    assert!(
        !ours,
        "nothing of Platekeeper's was written to another application's database"
    );
}

#[test]
fn schema_is_made_once_upgraded_in_place_and_newer_refused() {
    let Some(url) = fresh_database() else { return };
    let (_, m) = pg::open(&url).expect("first start");
    assert_eq!((m.from, m.to), (0, pg::SCHEMA_VERSION));
    let (pool, m) = pg::open(&url).expect("second start");
    assert_eq!((m.from, m.to), (pg::SCHEMA_VERSION, pg::SCHEMA_VERSION));

    // Run time needs no superuser.
    let mut c = pool.get().expect("connection");
    let superuser: bool = c
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .expect("q")
        .get(0);
    assert!(!superuser);
    // Everything is in the schema `platekeeper`.
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'platekeeper'",
            &[],
        )
        .expect("q")
        .get(0);
    assert!(tables >= 3, "{tables}");
    drop(c);

    // A database a newer Platekeeper upgraded: refused, untouched.
    let mut i = insider(&url);
    i.execute(
        "INSERT INTO schema_version(version, application, program) VALUES (999, 'platekeeper', 'future')",
        &[],
    )
    .expect("newer version");
    let e = pg::open(&url).err().expect("newer schema refused");
    assert!(matches!(e, PgError::NewerSchema { found: 999, .. }), "{e}");
    assert!(e.to_string().contains("newer than this program's"), "{e}");
}

#[test]
fn concurrent_writers_make_one_unbroken_chain() {
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let pool = std::sync::Arc::new(pool);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut c = pool.get().expect("connection");
                    let mut tx = c.transaction().expect("tx");
                    pg::log::append(&mut tx, entry(t * 100 + i)).expect("append");
                    tx.commit().expect("commit");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let mut c = pool.get().expect("connection");
    let v = pg::log::verify(&mut c, None).expect("verify");
    assert!(v.ok, "{v:?}");
    // The genesis entry written at open, then every append.
    assert_eq!(v.entries, 321);
    let entries = pg::log::read_entries(&mut *c).expect("entries");
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=321).collect::<Vec<_>>());

    // An entry appended in a transaction that rolls back leaves no trace.
    let mut tx = c.transaction().expect("tx");
    pg::log::append(&mut tx, entry(999)).expect("append");
    tx.rollback().expect("rollback");
    let v = pg::log::verify(&mut c, None).expect("verify");
    assert!(v.ok && v.entries == 321, "{v:?}");
}

/// A store with ten entries, and the head an auditor kept after them.
fn ten_entries() -> Option<(DatabaseUrl, pg::PgPool, Head)> {
    let url = fresh_database()?;
    let (pool, _) = pg::open(&url).expect("open");
    append_n(&pool, 10);
    let head = pg::log::head(&mut *pool.get().expect("c")).expect("head");
    Some((url, pool, head))
}

fn check(pool: &pg::PgPool, kept: Option<Head>) -> platekeeper_store::Verification {
    pg::log::verify(&mut pool.get().expect("c"), kept).expect("verify")
}

#[test]
fn edit_delete_insert_reorder_and_truncation_are_found() {
    // Edited.
    let Some((url, pool, kept)) = ten_entries() else {
        return;
    };
    assert!(check(&pool, Some(kept)).ok);
    insider(&url)
        .execute(
            "UPDATE log SET details = '{\"plate\":\"OTHER\"}' WHERE seq = 4",
            &[],
        )
        .expect("edit");
    let v = check(&pool, Some(kept));
    assert_eq!((v.ok, v.first_bad), (false, Some(4)), "{v:?}");
    assert!(
        v.problem.as_deref().unwrap_or("").contains("altered"),
        "{v:?}"
    );

    // Deleted from the middle.
    let (url, pool, kept) = ten_entries().expect("pg");
    insider(&url)
        .execute("DELETE FROM log WHERE seq = 6", &[])
        .expect("delete");
    let v = check(&pool, Some(kept));
    assert_eq!((v.ok, v.first_bad), (false, Some(6)), "{v:?}");
    assert!(
        v.problem.as_deref().unwrap_or("").contains("missing"),
        "{v:?}"
    );

    // Inserted: entries 5.. moved up by one to make room for a forged one.
    let (url, pool, kept) = ten_entries().expect("pg");
    let mut i = insider(&url);
    i.batch_execute(
        "UPDATE log SET seq = seq + 1000 WHERE seq >= 5;
         UPDATE log SET seq = seq - 999 WHERE seq >= 1005;
         INSERT INTO log(seq, ts, category, kind, username, affiliation, details, prev, hash)
           SELECT 5, ts, category, kind, 'nobody', affiliation, details, hash, hash FROM log WHERE seq = 4;",
    )
    .expect("insert");
    let v = check(&pool, Some(kept));
    assert_eq!((v.ok, v.first_bad), (false, Some(5)), "{v:?}");

    // Reordered: two entries' places swapped.
    let (url, pool, kept) = ten_entries().expect("pg");
    insider(&url)
        .batch_execute(
            "UPDATE log SET seq = -1 WHERE seq = 3;
             UPDATE log SET seq = 3 WHERE seq = 7;
             UPDATE log SET seq = 7 WHERE seq = -1;",
        )
        .expect("swap");
    let v = check(&pool, Some(kept));
    assert_eq!((v.ok, v.first_bad), (false, Some(3)), "{v:?}");

    // Cut from the end, head row left: the head row shows it.
    let (url, pool, kept) = ten_entries().expect("pg");
    insider(&url)
        .execute("DELETE FROM log WHERE seq > 8", &[])
        .expect("cut");
    let v = check(&pool, None);
    assert!(!v.ok, "{v:?}");
    assert!(
        v.problem
            .as_deref()
            .unwrap_or("")
            .contains("removed from the end"),
        "{v:?}"
    );

    // Cut from the end and the head row moved to match: consistent inside
    // the database, so only the head kept outside it shows the cut.
    insider(&url)
        .execute(
            "UPDATE log_head SET seq = 8, hash = (SELECT hash FROM log WHERE seq = 8)",
            &[],
        )
        .expect("move head");
    assert!(
        check(&pool, None).ok,
        "without a kept head the cut is invisible"
    );
    let v = check(&pool, Some(kept));
    assert!(!v.ok, "{v:?}");
    assert!(
        v.problem
            .as_deref()
            .unwrap_or("")
            .contains("kept outside the database"),
        "{v:?}"
    );

    // The whole log rewritten consistently: the kept head's entry differs.
    let (url, pool, kept) = ten_entries().expect("pg");
    let mut i = insider(&url);
    let mut tx = i.transaction().expect("tx");
    tx.batch_execute(
        "DELETE FROM log; UPDATE log_head SET seq = 0, hash = decode(repeat('00', 32), 'hex')",
    )
    .expect("wipe");
    for n in 0..11 {
        let mut forged = entry(n);
        forged.username = "forger".into();
        pg::log::append(&mut tx, forged).expect("forge");
    }
    tx.commit().expect("commit");
    assert!(check(&pool, None).ok);
    let v = check(&pool, Some(kept));
    assert_eq!((v.ok, v.first_bad), (false, Some(11)), "{v:?}");
    assert!(
        v.problem.as_deref().unwrap_or("").contains("rewritten"),
        "{v:?}"
    );
}

#[test]
fn a_server_that_drops_the_connection_is_a_transient_error_and_the_pool_recovers() {
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let pid: i32 = {
        let mut c = pool.get().expect("c");
        c.query_one("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .get(0)
    };
    // The administrator (or a fail-over) ends the pooled session.
    admin()
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .expect("terminate");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let failed = {
        let mut c = pool.get().expect("c");
        let attempt = c.transaction().map_err(|e| pool.error(e));
        let failed = match attempt {
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                true
            }
            Ok(mut tx) => {
                // The pool noticed the closed session and opened another.
                let one: i32 = tx.query_one("SELECT 1", &[]).expect("q").get(0);
                assert_eq!(one, 1);
                false
            }
        };
        failed
    };
    // Either way, the next request gets a working connection.
    let mut c = pool.get().expect("c");
    let mut tx = c.transaction().expect("tx after a lost connection");
    pg::log::append(&mut tx, entry(1)).expect("append");
    tx.commit().expect("commit");
    let v = pg::log::verify(&mut c, None).expect("verify");
    assert!(
        v.ok && v.entries == 2,
        "{v:?} (first attempt failed: {failed})"
    );
}

#[test]
fn tls_verify_full_checks_the_authority_and_the_host_name() {
    let Some(url) = fresh_database() else { return };
    let ca = std::env::var("PLATEKEEPER_TEST_PG_CA").expect("the test cluster's CA");
    let other = std::env::var("PLATEKEEPER_TEST_PG_OTHER_CA").expect("another CA");
    let text = std::env::var("PLATEKEEPER_TEST_DATABASE").expect("url");
    let db = url.to_string();
    let name = db
        .rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next())
        .expect("database name")
        .to_string();
    let with = |host: &str, roots: &str| {
        let (userinfo, rest) = text
            .trim_start_matches("postgres://")
            .split_once('@')
            .expect("url");
        let port = rest
            .split_once(':')
            .and_then(|(_, p)| p.split('/').next())
            .expect("port");
        DatabaseUrl::parse(&format!(
            "postgres://{userinfo}@{host}:{port}/{name}?sslmode=verify-full&sslrootcert={roots}"
        ))
        .expect("url")
    };

    // The server's certificate, from the trusted authority, for the host
    // named: the connection is encrypted.
    let good = with("localhost", &ca);
    let (pool, _) = pg::open(&good).expect("verify-full to localhost");
    let ssl: bool = pool
        .get()
        .expect("c")
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("q")
        .get(0);
    assert!(ssl);

    // Another authority: refused, as TLS, before the password is sent.
    let e = pg::open(&with("localhost", &other))
        .err()
        .expect("untrusted CA");
    assert!(matches!(e, PgError::Tls { .. }), "{e}");
    // The certificate names localhost, not 127.0.0.1.
    let e = pg::open(&with("127.0.0.1", &ca))
        .err()
        .expect("wrong host name");
    assert!(matches!(e, PgError::Tls { .. }), "{e}");
    // A roots file that is missing or is not PEM.
    let e = pg::open(&with("localhost", "/nonexistent/ca.pem"))
        .err()
        .expect("no roots");
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let junk = std::env::temp_dir().join(format!("pk-junk-{}.pem", hex(4)));
    std::fs::write(&junk, b"not a certificate").expect("write");
    let e = pg::open(&with("localhost", junk.to_str().expect("path")))
        .err()
        .expect("junk roots");
    assert!(e.to_string().contains("holds no certificate"), "{e}");
    let _ = std::fs::remove_file(junk);
}

fn new_read(plate: &str, ts_ms: i64, at_home: bool) -> platekeeper_core::NewRead {
    platekeeper_core::NewRead {
        id: platekeeper_core::ReadId(random_id()),
        plate: platekeeper_core::Plate::parse(plate).expect("plate"),
        region: platekeeper_core::Region::parse("CA"),
        ts_ms,
        position: Some(if at_home {
            platekeeper_core::GeoPoint {
                lat: 37.8,
                lon: -122.27,
            }
        } else {
            platekeeper_core::GeoPoint {
                lat: 37.81,
                lon: -122.28,
            }
        }),
        heading: Some(90),
        confidence: Some(93),
        plate_image: None,
        vehicle_image: None,
    }
}

fn random_id() -> uuid::Uuid {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random");
    uuid::Uuid::from_bytes(b)
}

const HOME: Option<(i32, i32)> = Some((37_800_000, -122_270_000));
const DAY: i64 = 86_400_000;

#[test]
fn reads_are_stored_once_found_by_plate_and_dropped_by_whole_days() {
    use platekeeper_store::IngestStatus::{Accepted, Duplicate, PastRetention};
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let days = pg::reads::Days::default();
    let t0 = 20_400 * DAY + 3_600_000; // a day in 2025, an hour in
    let reads: Vec<pg::reads::PgRead> = [
        new_read("7ABC123", t0, true),
        new_read("7ABC123", t0 + DAY, false),
        new_read("8XYZ999", t0 + 5, true),
        new_read("7ABC123", t0 + 2 * DAY, true),
    ]
    .iter()
    .map(|r| pg::reads::PgRead::pack(7, HOME, r).expect("packs"))
    .collect();
    assert_eq!(
        reads[0].pos, None,
        "the fixed camera's own position is not stored"
    );
    assert!(reads[1].pos.is_some());
    assert_eq!(reads[0].camera(), 7);

    let mut c = pool.get().expect("c");
    let st = pg::reads::ingest(&mut c, &days, &reads, 0).expect("ingest");
    assert_eq!(st, vec![Accepted; 4]);
    // Sent again (the camera got no acknowledgement): nothing stored twice.
    let mut again = reads.clone();
    again.push(reads[2].clone());
    let st = pg::reads::ingest(&mut c, &days, &again, 0).expect("re-send");
    assert_eq!(st, vec![Duplicate; 5]);
    // The same new read twice in one batch: stored once.
    let fresh = pg::reads::PgRead::pack(7, HOME, &new_read("5DEF456", t0 + 9, true)).expect("p");
    let st = pg::reads::ingest(&mut c, &days, &[fresh.clone(), fresh.clone()], 0).expect("twice");
    assert_eq!(st, vec![Accepted, Duplicate]);

    let found = pg::reads::exact(&mut *c, reads[0].plate, 0, i64::MAX, 100).expect("exact");
    let times: Vec<i64> = found.iter().map(|r| r.ts_ms).collect();
    assert_eq!(times, vec![t0 + 2 * DAY, t0 + DAY, t0], "newest first");
    assert_eq!(found[2], reads[0], "stored as sent");
    let window = pg::reads::exact(&mut *c, reads[0].plate, t0 + 1, t0 + DAY, 100).expect("w");
    assert_eq!(window.len(), 1);
    let mut plates = pg::reads::distinct_plates(&mut *c).expect("plates");
    plates.sort_unstable();
    assert_eq!(plates.len(), 3);

    // The pattern searches' two steps: the dictionary rebuilt from the
    // database finds the plates, their reads come from the index.
    let mut dictionary = platekeeper_store::dictionary::PlateDictionary::default();
    assert_eq!(
        pg::reads::load_dictionary(&mut *c, &mut dictionary).expect("load"),
        3
    );
    let pattern = platekeeper_core::PlatePattern::parse("7AB*", false).expect("pattern");
    let spans = dictionary.matching(&pattern, 100);
    let codes: Vec<i64> = spans.iter().map(|s| s.plate.code()).collect();
    assert_eq!(codes, vec![reads[0].plate]);
    assert_eq!(spans[0].first_day, (t0 / DAY) as i32);
    assert_eq!(spans[0].last_day, (t0 / DAY) as i32 + 2);
    let spans: Vec<_> = ["7ABC123", "8XYZ999", "5DEF456"]
        .iter()
        .filter_map(|p| dictionary.get(&platekeeper_core::Plate::parse(p).expect("plate")))
        .collect();
    assert_eq!(spans.len(), 3);
    let by_day = pg::reads::of_spans(&mut *c, &spans, 0, t0 + 3 * DAY, 100).expect("of spans");
    let times: Vec<i64> = by_day.iter().map(|r| r.ts_ms).collect();
    assert_eq!(
        times,
        vec![t0 + 2 * DAY, t0 + DAY, t0 + 9, t0 + 5, t0],
        "every read of the matched plates, newest first, day by day"
    );
    let two = pg::reads::of_spans(&mut *c, &spans, 0, t0 + 3 * DAY, 2).expect("limit");
    assert_eq!(two.len(), 2);

    // A canvass's candidates: camera 7's reads at home in the window, and
    // reads with a position of their own; none of another camera.
    let (window, more) = pg::reads::in_window(&mut *c, t0, t0 + 10, &[7], 100).expect("window");
    assert!(!more);
    assert_eq!(window.len(), 3, "{window:?}");
    assert!(window.iter().all(|r| r.position_micro(HOME) == HOME));
    assert!(pg::reads::in_window(&mut *c, t0, t0 + 10, &[8], 100)
        .expect("w")
        .0
        .is_empty());
    // A window with more candidates than asked for says so.
    let (two, more) = pg::reads::in_window(&mut *c, t0, t0 + 10, &[7], 2).expect("capped");
    assert_eq!((two.len(), more), (2, true));
    assert_eq!(two[0].ts_ms, t0 + 9, "the newest kept");
    let (own, _) = pg::reads::in_window(&mut *c, t0 + DAY, t0 + DAY, &[], 100).expect("w");
    assert_eq!(own.len(), 1);
    assert_eq!(
        own[0].position_micro(HOME),
        Some((37_810_000, -122_280_000))
    );

    // Retention drops the first day's partition whole.
    let day0 = (t0 / DAY) as i32;
    let dropped = pg::reads::drop_days_before(&mut c, &days, day0 + 1).expect("purge");
    assert_eq!(dropped, vec![day0]);
    let left = pg::reads::exact(&mut *c, reads[0].plate, 0, i64::MAX, 100).expect("exact");
    assert_eq!(left.len(), 2);
    let partitions: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reads'::regclass",
            &[],
        )
        .expect("q")
        .get(0);
    assert_eq!(partitions, 2);
    // A late read for the purged day is refused, not a new partition.
    let late =
        pg::reads::PgRead::pack(7, HOME, &new_read("1LAT000", t0 + 60_000, true)).expect("p");
    let st = pg::reads::ingest(&mut c, &days, &[late], day0 + 1).expect("late");
    assert_eq!(st, vec![PastRetention]);
    assert!(pg::reads::bytes(&mut *c).expect("bytes") > 0);
    pg::reads::seal_day(&mut c, day0 + 1).expect("seal");
    assert_eq!(
        pg::reads::exact(&mut *c, reads[0].plate, 0, i64::MAX, 100)
            .expect("after seal")
            .len(),
        2
    );
}

#[test]
fn the_same_batch_sent_by_four_connections_at_once_is_stored_once() {
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let pool = std::sync::Arc::new(pool);
    let days = std::sync::Arc::new(pg::reads::Days::default());
    let t0 = 20_400 * DAY;
    let batch: Vec<pg::reads::PgRead> = (0..300)
        .map(|i| {
            let r = new_read(&format!("7A{:05}", i % 50), t0 + i * 1_000, i % 3 == 0);
            pg::reads::PgRead::pack(3, HOME, &r).expect("p")
        })
        .collect();
    let batch = std::sync::Arc::new(batch);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, days, batch) = (pool.clone(), days.clone(), batch.clone());
            std::thread::spawn(move || {
                let mut c = pool.get().expect("c");
                pg::reads::ingest(&mut c, &days, &batch, 0).expect("ingest")
            })
        })
        .collect();
    let results: Vec<Vec<platekeeper_store::IngestStatus>> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for i in 0..300 {
        let accepted = results
            .iter()
            .filter(|r| r[i] == platekeeper_store::IngestStatus::Accepted)
            .count();
        assert_eq!(accepted, 1, "read {i} accepted by exactly one sender");
    }
    let n: i64 = pool
        .get()
        .expect("c")
        .query_one("SELECT count(*) FROM reads", &[])
        .expect("q")
        .get(0);
    assert_eq!(n, 300);
}

#[test]
fn genesis_once_checkpoints_signed_and_a_rewrite_proven_against_them() {
    let Some(url) = fresh_database() else { return };
    // Four nodes start at once: one genesis entry.
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || pg::open(&url).map(|_| ()))
        })
        .collect();
    for o in opens {
        o.join().expect("thread").expect("open");
    }
    let (pool, _) = pg::open(&url).expect("open again");
    let entries = pg::log::read_entries(&mut *pool.get().expect("c")).expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].kind, "log_started");
    append_n(&pool, 5);

    let dir = std::env::temp_dir().join(format!("pk-ckpt-{}", hex(4)));
    std::fs::create_dir_all(&dir).expect("dir");
    let key =
        platekeeper_store::CheckpointKey::load_or_create(&dir.join("checkpoint.key")).expect("key");
    let mut c = pool.get().expect("c");
    let kept = pg::log::checkpoint(&mut c, &key, 1_800_000_000_000).expect("checkpoint");
    assert_eq!(kept.entries, 6);
    let (v, problem) = pg::log::prove(&mut c, &kept).expect("prove");
    assert!(v.ok && problem.is_none(), "{v:?} {problem:?}");
    drop(c);
    append_n(&pool, 3);
    let (_, problem) = pg::log::prove(&mut pool.get().expect("c"), &kept).expect("prove");
    assert!(
        problem.is_none(),
        "a longer log still extends the checkpoint: {problem:?}"
    );

    // An altered checkpoint, and one of another store, prove nothing.
    let mut forged = kept.clone();
    forged.entries = 8;
    let (_, problem) = pg::log::prove(&mut pool.get().expect("c"), &forged).expect("prove");
    assert!(problem.unwrap_or_default().contains("not validly signed"));
    let other = fresh_database().expect("pg");
    let (other_pool, _) = pg::open(&other).expect("other store");
    let (_, problem) = pg::log::prove(&mut other_pool.get().expect("c"), &kept).expect("prove");
    assert!(problem.unwrap_or_default().contains("is of store"));

    // The insider rewrites the log consistently, head row and all: the
    // log's own check passes, the kept checkpoint does not.
    let mut i = insider(&url);
    let mut tx = i.transaction().expect("tx");
    tx.batch_execute(
        "DELETE FROM log WHERE seq > 1;
         UPDATE log_head SET seq = 1, hash = (SELECT hash FROM log WHERE seq = 1)",
    )
    .expect("cut");
    for n in 0..8 {
        let mut e = entry(n);
        e.username = "forger".into();
        pg::log::append(&mut tx, e).expect("forge");
    }
    tx.commit().expect("commit");
    let mut c = pool.get().expect("c");
    assert!(pg::log::verify(&mut c, None).expect("verify").ok);
    let (v, problem) = pg::log::prove(&mut c, &kept).expect("prove");
    assert!(!v.ok, "{v:?}");
    assert!(problem.unwrap_or_default().contains("rewritten"));
    drop(c);

    // The whole log deleted: the store refuses to open rather than start
    // a new chain.
    insider(&url)
        .batch_execute(
            "DELETE FROM log; UPDATE log_head SET seq = 0, hash = decode(repeat('00', 32), 'hex')",
        )
        .expect("wipe");
    let e = pg::open(&url).err().expect("a wiped log is refused");
    assert!(matches!(e, PgError::LogMissing(_)), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pictures_leave_the_node_sealed_and_are_dropped_with_their_day() {
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let key = platekeeper_store::at_rest::DataKey::generate().expect("key");
    let other = platekeeper_store::at_rest::DataKey::generate().expect("key");
    let (key, other) = (
        platekeeper_store::at_rest::PictureKey::new(&key),
        platekeeper_store::at_rest::PictureKey::new(&other),
    );
    let picture = b"\xFF\xD8\xFF\xE0 a JPEG of plate 7ABC123 at Main and 5th".to_vec();
    let day = 20_400;
    let mut c = pool.get().expect("c");
    let mut tx = c.transaction().expect("tx");
    let r = pg::pictures::put(
        &mut tx,
        Some(&key),
        day,
        platekeeper_core::ImageKind::Jpeg,
        &picture,
    )
    .expect("put");
    // Stored once per day, however many reads carry it.
    pg::pictures::put(
        &mut tx,
        Some(&key),
        day,
        platekeeper_core::ImageKind::Jpeg,
        &picture,
    )
    .expect("again");
    pg::pictures::put(
        &mut tx,
        Some(&key),
        day + 1,
        platekeeper_core::ImageKind::Jpeg,
        b"next day",
    )
    .expect("next day");
    tx.commit().expect("commit");
    assert_eq!(
        pg::pictures::get(&mut *c, Some(&key), day, &r)
            .expect("get")
            .as_deref(),
        Some(&picture[..])
    );
    // What the database (and its backups) hold is sealed.
    let stored: Vec<u8> = insider(&url)
        .query_one("SELECT sealed FROM pictures WHERE day = $1", &[&day])
        .expect("row")
        .get(0);
    assert!(!stored.windows(7).any(|w| w == b"7ABC123"));
    assert!(!stored.windows(4).any(|w| w == b"JPEG"));
    let n: i64 = insider(&url)
        .query_one("SELECT count(*) FROM pictures WHERE day = $1", &[&day])
        .expect("q")
        .get(0);
    assert_eq!(n, 1);
    // Another key, an altered copy, or a picture moved under another name
    // is refused, not shown.
    assert!(pg::pictures::get(&mut *c, Some(&other), day, &r).is_err());
    insider(&url)
        .execute(
            // One byte flipped (never a no-op, as writing a fixed byte
            // would be when the byte already had that value).
            "UPDATE pictures SET sealed = set_byte(sealed, 39, get_byte(sealed, 39) # 255) WHERE day = $1",
            &[&day],
        )
        .expect("alter");
    assert!(pg::pictures::get(&mut *c, Some(&key), day, &r).is_err());
    // Retention drops the day's partition.
    assert_eq!(
        pg::pictures::drop_days_before(&mut c, day + 1).expect("drop"),
        1
    );
    assert_eq!(
        pg::pictures::get(&mut *c, Some(&key), day, &r).expect("gone"),
        None
    );
}

/// A store on the database, as a node opens it.
fn store_on(url: &DatabaseUrl) -> (tempfile::TempDir, platekeeper_store::Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = platekeeper_store::Store::open_with(
        dir.path(),
        platekeeper_store::OpenOptions {
            database: Some(url.clone()),
            read_database: None,
            ..Default::default()
        },
    )
    .expect("open on postgres");
    (dir, store)
}

#[test]
fn policy_changes_are_judged_logged_and_never_undo_each_other() {
    use platekeeper_store::{Actor, Confirm, PolicyOutcome};
    let Some(url) = fresh_database() else { return };
    let (_dir, store) = store_on(&url);
    let admin = Actor::system("test-admin");
    let p = store.policy();
    assert_eq!(
        p.retention.access_log_days, 730,
        "the defaults until one is set"
    );

    // A weakening waits for its confirmation, and nothing is stored.
    let mut weaker = p.clone();
    weaker.retention.access_log_days = 400;
    let out = store
        .update_policy(|_| Ok(weaker.clone()), Confirm::Fields(&[]), &admin, 1_000)
        .expect("update");
    let PolicyOutcome::NeedsConfirmation(w) = out else {
        panic!("{out:?}")
    };
    assert_eq!(w[0].field, "retention.access_log_days");
    assert_eq!(store_on(&url).1.policy().retention.access_log_days, 730);
    let confirm = ["retention.access_log_days".to_string()];
    let out = store
        .update_policy(
            |_| Ok(weaker.clone()),
            Confirm::Fields(&confirm),
            &admin,
            2_000,
        )
        .expect("update");
    assert!(
        matches!(out, PolicyOutcome::Applied(ref ch) if ch.changes.len() == 1),
        "{out:?}"
    );
    assert_eq!(store_on(&url).1.policy().retention.access_log_days, 400);
    let (pool, _) = pg::open(&url).expect("open");
    let entries = pg::log::read_entries(&mut *pool.get().expect("c")).expect("log");
    let last = entries.last().expect("entry");
    assert_eq!(last.kind, "policy_changed");
    let d: serde_json::Value = serde_json::from_str(&last.details).expect("json");
    assert_eq!(
        (
            d["changes"][0]["old"].clone(),
            d["changes"][0]["new"].clone()
        ),
        (730.into(), 400.into())
    );
    assert_eq!(d["weakenings_confirmed"], "named by the administrator");
    // The same policy again: nothing changed, nothing logged.
    let n = entries.len();
    store
        .update_policy(|_| Ok(weaker.clone()), Confirm::All, &admin, 3_000)
        .expect("same");
    assert_eq!(
        pg::log::read_entries(&mut *pool.get().expect("c"))
            .expect("log")
            .len(),
        n
    );
    // A rule switched off is refused outright.
    let e = store
        .update_policy(
            |old| {
                let mut p = old.clone();
                p.retention.reads_days = 0;
                Ok(p)
            },
            Confirm::All,
            &admin,
            4_000,
        )
        .expect_err("invalid");
    assert!(
        matches!(e, platekeeper_store::StoreError::InvalidPolicy(_)),
        "{e}"
    );

    // Two administrators on two nodes change different fields at once:
    // both changes stand (each is judged inside the log's lock against
    // the policy the other left).
    let other = std::thread::spawn({
        let (url, admin) = (url.clone(), admin.clone());
        move || {
            let (_dir, node) = store_on(&url);
            for i in 0..10 {
                node.update_policy(
                    |old| {
                        let mut p = old.clone();
                        p.retention.access_log_days = 800 + i;
                        Ok(p)
                    },
                    Confirm::All,
                    &admin,
                    5_000,
                )
                .expect("a");
            }
        }
    });
    for i in 0..10 {
        store
            .update_policy(
                |old| {
                    let mut p = old.clone();
                    p.retention.audit_documents_days = 1_900 + i;
                    Ok(p)
                },
                Confirm::All,
                &admin,
                5_000,
            )
            .expect("b");
    }
    other.join().expect("thread");
    let p = store_on(&url).1.policy();
    assert_eq!(
        (
            p.retention.access_log_days,
            p.retention.audit_documents_days
        ),
        (809, 1_909)
    );
    assert!(store.verify_log().expect("v").ok);
}

#[test]
fn a_statement_on_a_connection_the_server_dropped_is_a_transient_store_error() {
    let Some(url) = fresh_database() else { return };
    let (_dir, store) = store_on(&url);
    assert!(store.accounts().expect("works").is_empty());
    let name = url
        .to_string()
        .rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next().map(str::to_string))
        .expect("database name");
    admin()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .expect("terminate");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let e = store.accounts().expect_err("the session is gone");
    match &e {
        platekeeper_store::StoreError::Postgres(p) => assert!(p.is_transient(), "{e}"),
        other => panic!("{other}"),
    }
    // The pool does not lend the dead connection again.
    assert!(store.accounts().is_ok());
}

#[test]
fn the_pool_never_opens_more_than_its_limit_and_a_busy_pool_is_transient() {
    use std::time::Duration;
    let Some(url) = fresh_database() else { return };
    pg::open(&url).expect("schema");
    let pool = pg::PgPool::with_limits(&url, 3, Duration::from_millis(300)).expect("pool");
    let (a, b, c) = (
        pool.get().expect("1"),
        pool.get().expect("2"),
        pool.get().expect("3"),
    );
    let started = std::time::Instant::now();
    let e = pool.get().err().expect("a fourth waits, then is refused");
    assert!(e.is_transient(), "{e}");
    assert!(
        e.to_string().contains("all 3 of this node's connections"),
        "{e}"
    );
    assert!(started.elapsed() >= Duration::from_millis(290));
    drop(b);
    assert!(pool.get().is_ok(), "a connection given back is lent again");
    drop((a, c));
    drop(pool);

    // Sixteen threads share three connections; every call is served.
    let pool = std::sync::Arc::new(
        pg::PgPool::with_limits(&url, 3, Duration::from_secs(10)).expect("pool"),
    );
    let name = url
        .to_string()
        .rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next().map(str::to_string))
        .expect("db name");
    // The first pool's sessions end as it closes them; wait until the
    // server has let them go, so only the new pool's are counted.
    let mut su = admin();
    for _ in 0..100 {
        let n: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'platekeeper'",
                &[&name],
            )
            .expect("q")
            .get(0);
        if n <= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (pool, peak, name) = (pool.clone(), peak.clone(), name.clone());
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let mut c = pool.get().expect("served");
                    let n: i64 = c
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'platekeeper'",
                            &[&name],
                        )
                        .expect("q")
                        .get(0);
                    peak.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let seen = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=3).contains(&seen), "{seen} connections open at once");
}

/// `keys encrypt` and `keys rotate` on a store in PostgreSQL: its
/// pictures (and held copies) are sealed anew under the new key; a second
/// run finds nothing left to do; the store opened with the new key shows
/// the picture, and the old key opens it no more.
#[test]
fn pictures_are_sealed_anew_when_the_key_changes() {
    use platekeeper_store::at_rest::{DataKey, PictureKey};
    use platekeeper_store::IngestItem;
    let Some(url) = fresh_database() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let open = |key: Option<&std::sync::Arc<DataKey>>| {
        platekeeper_store::Store::open_with(
            dir.path(),
            platekeeper_store::OpenOptions {
                database: Some(url.clone()),
                read_database: None,
                key: key.cloned(),
                ..Default::default()
            },
        )
    };
    let picture = b"\xFF\xD8\xFF\xE0 the rear of a grey sedan".to_vec();
    let now = 1_800_000_000_000;
    let mut read = new_read("7ABC123", now - 60_000, true);
    read.vehicle_image = Some((platekeeper_core::ImageKind::Jpeg, picture.clone()));
    let (id, ts) = (read.id, read.ts_ms);
    {
        let store = open(None).expect("plain store");
        let cam = broadway(&store, &platekeeper_store::Actor::system("test"), now)
            .expect("camera")
            .0;
        store
            .ingest(&[IngestItem {
                camera: cam.num,
                read,
            }])
            .expect("ingest");
    }
    let shown = |store: &platekeeper_store::Store| {
        let access = analyst_access(
            serde_json::json!({"read": id.to_string()}),
            "key change test",
        );
        store.read_image(&access, id, ts, false).map(|sealed| {
            store
                .release(access, sealed, now)
                .expect("release")
                .value()
                .0
                .clone()
        })
    };
    let (pool, _) = pg::open(&url).expect("pool");
    let k1 = std::sync::Arc::new(DataKey::generate().expect("key"));
    let k2 = std::sync::Arc::new(DataKey::generate().expect("key"));
    let reseal = |from: Option<&std::sync::Arc<DataKey>>, to: &std::sync::Arc<DataKey>| {
        let n = pg::pictures::reseal(
            &mut pool.get().expect("c"),
            from.map(|k| PictureKey::new(k)).as_ref(),
            &PictureKey::new(to),
            &to.id(),
            |_, _| {},
        )
        .expect("reseal");
        // Then the folder's marker, as `keys encrypt` / `keys rotate` do.
        platekeeper_store::at_rest::mark_database_store(dir.path(), from.map(|k| &**k), to)
            .expect("marker");
        n
    };
    assert_eq!(reseal(None, &k1), 1);
    assert_eq!(
        pg::pictures::reseal(
            &mut pool.get().expect("c"),
            None,
            &PictureKey::new(&k1),
            &k1.id(),
            |_, _| {}
        )
        .expect("again"),
        0,
        "a second run has nothing left to do"
    );
    assert_eq!(
        shown(&open(Some(&k1)).expect("k1")).expect("shown"),
        picture
    );
    assert_eq!(reseal(Some(&k1), &k2), 1);
    assert_eq!(
        shown(&open(Some(&k2)).expect("k2")).expect("shown"),
        picture
    );
    assert!(
        open(Some(&k1)).is_err(),
        "the folder says which key the store is under now"
    );
    let stored: Vec<u8> = insider(&url)
        .query_one("SELECT sealed FROM pictures", &[])
        .expect("row")
        .get(0);
    assert!(!stored.windows(10).any(|w| w == b"grey sedan"));
}

/// Issue 26 item 3: an embedded store moved into PostgreSQL with
/// everything as it was — the log's chain and head unchanged, every read
/// and picture (still sealed under the same key), accounts, hot lists —
/// then opened there as a store; a second run is refused; a run stopped
/// part way is finished by running it again.
#[test]
fn an_embedded_store_moves_into_postgres_whole_and_resumably() {
    use platekeeper_store::{IngestItem, Store};
    let Some(url) = fresh_database() else { return };
    let source_dir = tempfile::tempdir().expect("dir");
    let key = std::sync::Arc::new(platekeeper_store::at_rest::DataKey::generate().expect("key"));
    let open = |dir: &std::path::Path, database: Option<DatabaseUrl>| {
        Store::open_with(
            dir,
            platekeeper_store::OpenOptions {
                key: Some(key.clone()),
                database,
                ..Default::default()
            },
        )
    };
    let now = 1_800_000_000_000;
    let admin = platekeeper_store::Actor::system("test");
    let picture = b"\xFF\xD8\xFF\xE0 plate crop of 7MOV001".to_vec();
    let (read_id, read_ts) = {
        let store = open(source_dir.path(), None).expect("embedded");
        let cam = broadway(&store, &admin, now - 5 * DAY).expect("camera").0;
        let mut items = Vec::new();
        for i in 0..300i64 {
            let mut r = new_read(
                &format!("7MOV{:03}", i % 50),
                now - (i % 3) * DAY - i * 1_000,
                false,
            );
            if i == 1 {
                r.plate_image = Some((platekeeper_core::ImageKind::Jpeg, picture.clone()));
            }
            items.push(IngestItem {
                camera: cam.num,
                read: r,
            });
        }
        let with_picture = (items[1].read.id, items[1].read.ts_ms);
        store.ingest(&items).expect("ingest");
        store
            .create_user(
                platekeeper_store::NewUser {
                    username: "officer1".into(),
                    name: "Sam Lee".into(),
                    role: platekeeper_core::Role::Officer,
                    title: None,
                },
                &admin,
                now,
            )
            .expect("user");
        stolen_list(&store, &admin, now);
        // A hold on one read, a correction of another.
        let access_of = |kind, why: &str| {
            platekeeper_store::Access::new(platekeeper_store::AccessRequest {
                kind,
                ..analyst_request(serde_json::json!({"migration": why}), why)
            })
        };
        store
            .place_hold(
                access_of(platekeeper_store::AccessKind::Hold, "hold"),
                &[(items[5].read.id, items[5].read.ts_ms)],
                &admin,
                now,
            )
            .expect("hold");
        store
            .correct_read(
                access_of(platekeeper_store::AccessKind::Correction, "correction"),
                items[6].read.id,
                items[6].read.ts_ms,
                (
                    platekeeper_core::Plate::parse("7MOV999").expect("plate"),
                    None,
                ),
                "the camera read an 8 as a 0",
                &admin,
                now,
            )
            .expect("correction");
        with_picture
    };
    let source = open(source_dir.path(), None).expect("embedded again");
    let before = source.verify_log().expect("verify");

    let report = source.transfer_to(&url, |_| {}).expect("transfer");
    assert!(report.matches(), "{report:?}");
    assert_eq!(report.reads_target, 300);
    assert_eq!(report.pictures_target, 1);
    assert_eq!(
        report.head_target, before.head,
        "the same chain, the same head"
    );
    assert!(
        matches!(
            source.transfer_to(&url, |_| {}),
            Err(platekeeper_store::StoreError::Conflict {
                code: "already_migrated",
                ..
            })
        ),
        "a second run is refused"
    );

    let target_dir = tempfile::tempdir().expect("dir");
    let moved = open(target_dir.path(), Some(url.clone())).expect("opens on postgres");
    let after = moved.verify_log().expect("verify");
    assert!(after.ok, "{after:?}");
    assert_eq!(
        (after.entries, after.head.clone()),
        (before.entries, before.head.clone())
    );
    assert_eq!(moved.read_count().expect("count"), 300);
    assert_eq!(moved.distinct_plates(), source.distinct_plates());
    assert!(moved.account("officer1").expect("account").is_some());
    assert_eq!(moved.hotlists().expect("lists").len(), 1);
    let holds = moved.holds(true, None, None, 10).expect("holds");
    assert_eq!(
        (holds.len(), holds[0].reads),
        (1, 1),
        "the hold and its kept read"
    );
    let fixed = moved.corrections(None).expect("corrections");
    assert_eq!((fixed.len(), fixed[0].new_plate.as_str()), (1, "7MOV999"));
    assert_eq!(
        search_plate(&moved, "7MOV999", now).reads.len(),
        1,
        "the corrected read, by its new plate"
    );
    let access = analyst_access(
        serde_json::json!({"read": read_id.to_string()}),
        "migration test",
    );
    let sealed = moved
        .read_image(&access, read_id, read_ts, true)
        .expect("the picture, opened with the same key");
    assert_eq!(
        moved
            .release(access, sealed, now)
            .expect("release")
            .value()
            .0,
        picture
    );

    // Stopped part way (simulated on a second database): reads of a day
    // and the end of the log missing, no "done" mark; a second run
    // finishes it.
    let Some(url2) = fresh_database() else { return };
    source.transfer_to(&url2, |_| {}).expect("first");
    let mut insider2 = insider(&url2);
    insider2
        .batch_execute(&format!(
            "DELETE FROM meta WHERE key = 'transfer_done';
             DELETE FROM reads WHERE ts > {};
             DELETE FROM log WHERE seq > 3;",
            now - DAY
        ))
        .expect("cut");
    let again = source.transfer_to(&url2, |_| {}).expect("resumed");
    assert!(again.resumed && again.matches(), "{again:?}");
}

/// Issue 26 item 1: a plate first read through one node is found by an
/// exact search on another node at once, though that node's plate
/// dictionary had never seen it, and by a pattern search there once the
/// commit's notification has arrived.
#[test]
fn searches_on_one_node_find_plates_ingested_on_another() {
    use platekeeper_store::IngestItem;
    let Some(url) = fresh_database() else { return };
    let (_a_dir, a) = store_on(&url);
    let (_b_dir, b) = store_on(&url);
    let now = 1_800_000_000_000;
    let cam = one_read(&a, "4NOD123", now);
    let search = |store: &platekeeper_store::Store, plate: &str| search_plate(store, plate, now);
    let page = search(&b, "4NOD123");
    assert_eq!((page.reads.len(), page.plates_matched), (1, 1));
    let none = search(&b, "4NOD999");
    assert_eq!((none.reads.len(), none.plates_matched), (0, 0));

    // A pattern search on node B finds plates first read through node A:
    // B's dictionary hears of them from A's commits (NOTIFY).
    a.ingest(&[IngestItem {
        camera: cam.num,
        read: new_read("4PAT777", now - 500, false),
    }])
    .expect("ingest on node A");
    let mut seen = false;
    for _ in 0..50 {
        if search(&b, "4PAT7*").reads.len() == 1 {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(seen, "node B's pattern search finds node A's new plate");
    // A node opened later loads every plate from the database.
    let (_c_dir, c) = store_on(&url);
    assert_eq!(c.distinct_plates(), 2);
}

/// Issue 26 item 1: scheduled work runs on one node of the cluster; when
/// that node goes, another takes it over.
#[test]
fn one_node_leads_the_scheduled_work_and_another_takes_over() {
    let Some(url) = fresh_database() else { return };
    let (_a_dir, a) = store_on(&url);
    let (_b_dir, b) = store_on(&url);
    assert!(a.leads_maintenance().expect("a"));
    assert!(
        a.leads_maintenance().expect("a again"),
        "it keeps the lease"
    );
    assert!(!b.leads_maintenance().expect("b"), "one leader at a time");
    drop(a);
    let mut took_over = false;
    for _ in 0..50 {
        if b.leads_maintenance().expect("b") {
            took_over = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(took_over, "the lease passes on when its node goes");
}

/// Issue 26 item 1: a camera revoked, or the policy changed, on one node
/// holds on the others as soon as the change's notification arrives (they
/// drop their cached copy and read it again).
#[test]
fn a_revocation_or_a_policy_change_on_one_node_holds_on_the_others() {
    use platekeeper_store::{Actor, Confirm};
    let Some(url) = fresh_database() else { return };
    let (_a_dir, a) = store_on(&url);
    let (_b_dir, b) = store_on(&url);
    let admin = Actor::system("test");
    let now = 1_800_000_000_000;
    let (_, key) = broadway(&a, &admin, now).expect("camera");
    let eventually = |f: &dyn Fn() -> bool| {
        (0..100).any(|_| {
            if f() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        })
    };
    assert!(
        eventually(&|| b.authenticate_camera(&key, now).is_some()),
        "node B learns of the new camera"
    );
    a.revoke_camera("cam-1", "stolen from the patrol car", &admin, now + 1)
        .expect("revoke");
    assert!(
        eventually(&|| b.authenticate_camera(&key, now + 2).is_none()),
        "node B refuses the revoked key"
    );
    a.update_policy(
        |old| {
            let mut p = old.clone();
            p.retention.audit_documents_days = 1_900;
            Ok(p)
        },
        Confirm::All,
        &admin,
        now + 3,
    )
    .expect("policy");
    assert!(
        eventually(&|| b.policy().retention.audit_documents_days == 1_900),
        "node B applies the new policy"
    );
}

/// An analyst's search for `plate` (a pattern may hold `*`), released.
fn search_plate(
    store: &platekeeper_store::Store,
    plate: &str,
    now_ms: i64,
) -> platekeeper_store::SearchPage {
    let access = analyst_access(serde_json::json!({"plate": plate}), "a test's search");
    let q = platekeeper_store::ReadQuery {
        plate: Some(platekeeper_core::PlatePattern::parse(plate, false).expect("pattern")),
        ..Default::default()
    };
    let found = store.search(&access, &q).expect("search");
    store
        .release(access, found, now_ms)
        .expect("release")
        .value()
        .clone()
}

/// Registers `cam-1` on `store` and stores one read of `plate` through it
/// a second before `now_ms`; returns the camera.
fn one_read(
    store: &platekeeper_store::Store,
    plate: &str,
    now_ms: i64,
) -> platekeeper_store::Camera {
    let cam = broadway(store, &platekeeper_store::Actor::system("test"), now_ms)
        .expect("camera")
        .0;
    store
        .ingest(&[platekeeper_store::IngestItem {
            camera: cam.num,
            read: new_read(plate, now_ms - 1_000, false),
        }])
        .expect("ingest");
    cam
}

/// Makes the test's hot list "Stolen" on `store`.
fn stolen_list(
    store: &platekeeper_store::Store,
    actor: &platekeeper_store::Actor,
    now_ms: i64,
) -> platekeeper_store::HotList {
    store
        .create_hotlist(
            platekeeper_store::NewHotList {
                name: "Stolen".into(),
                kind: platekeeper_core::hotlist::ListKind::StolenVehicle,
                retention_days: 30,
                fuzzy: false,
            },
            actor,
            now_ms,
        )
        .expect("hot list")
}

/// Registers the test's camera `cam-1` on `store`; returns it and its key.
fn broadway(
    store: &platekeeper_store::Store,
    actor: &platekeeper_store::Actor,
    now_ms: i64,
) -> Result<(platekeeper_store::Camera, String), platekeeper_store::StoreError> {
    store.create_camera(
        platekeeper_store::NewCamera {
            id: "cam-1".into(),
            name: "Broadway".into(),
            kind: platekeeper_store::CameraKind::Mobile,
            position: None,
        },
        actor,
        now_ms,
    )
}

/// An analyst's access for `query`, with a purpose naming `why`.
fn analyst_access(query: serde_json::Value, why: &str) -> platekeeper_store::Access {
    platekeeper_store::Access::new(analyst_request(query, why))
}

/// An analyst's search request for `query`, with a purpose naming `why`.
fn analyst_request(query: serde_json::Value, why: &str) -> platekeeper_store::AccessRequest {
    platekeeper_store::AccessRequest {
        username: "analyst1".into(),
        affiliation: "Test PD".into(),
        kind: platekeeper_store::AccessKind::Search,
        query,
        purpose: platekeeper_core::Purpose::new("24-0001", "459 PC", why).expect("purpose"),
        client: None,
        role: None,
    }
}

/// Issue 26 item 1: an alert raised through node A, and its re-send, are
/// handed to node B (which loads them to send down its own streams);
/// node A does not hear its own.
#[test]
fn alerts_raised_or_re_sent_on_one_node_reach_the_others() {
    use platekeeper_store::{Actor, HotCheck};
    use std::sync::{Arc, Mutex};
    let Some(url) = fresh_database() else { return };
    let (_a_dir, a) = store_on(&url);
    let (_b_dir, b) = store_on(&url);
    let heard = |s: &platekeeper_store::Store| {
        let got: Arc<Mutex<Vec<i64>>> = Arc::default();
        let g = got.clone();
        s.on_other_nodes_alerts(Box::new(move |ids| g.lock().unwrap().extend(ids)));
        got
    };
    let (on_a, on_b) = (heard(&a), heard(&b));
    let admin = Actor::system("test");
    let now = 1_800_000_000_000;
    let (cam, _) = broadway(&a, &admin, now).expect("camera");
    let list = stolen_list(&a, &admin, now);
    a.add_hot_entry(
        list.id,
        platekeeper_core::hotlist::EntryDraft {
            pattern: platekeeper_core::PlatePattern::parse("7HOT001", false).expect("plate"),
            state: None,
            reason: "stolen".into(),
            case_number: None,
            expires_at_ms: now + 86_400_000,
            details: vec![],
        },
        &admin,
        now,
    )
    .expect("entry");
    let read = new_read("7HOT001", now - 1_000, false);
    let raised = a
        .match_hot(
            &[HotCheck {
                read: &read,
                camera: &cam,
            }],
            now,
        )
        .expect("match");
    assert_eq!(raised.len(), 1);
    let id = raised[0].id;
    let wait_for = |got: &Arc<Mutex<Vec<i64>>>, n: usize| {
        (0..100).any(|_| {
            if got.lock().unwrap().len() >= n {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        })
    };
    assert!(wait_for(&on_b, 1), "node B hears of the alert");
    assert_eq!(*on_b.lock().unwrap(), vec![id]);
    let relayed = b.alerts_to_relay(&[id, 987_654]).expect("load");
    assert_eq!(relayed.len(), 1, "an unknown id is skipped");
    assert_eq!(relayed[0].plate, "7HOT001");
    // Unacknowledged, it is re-sent once, by whichever node asks first,
    // and every other node hears of that too.
    let due = a
        .alerts_to_resend(now + 120_000, 60_000, 5)
        .expect("re-send");
    assert_eq!(due.len(), 1);
    assert!(b
        .alerts_to_resend(now + 120_000, 60_000, 5)
        .expect("re-send on B")
        .is_empty());
    assert!(wait_for(&on_b, 2), "node B hears of the re-send");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(on_a.lock().unwrap().is_empty(), "A does not hear itself");
}

/// Issue 26 item 1: a download link made through one node is taken once
/// through any node, and sign-in failures counted through two nodes add
/// up.
#[test]
fn links_and_sign_in_failures_are_shared_by_the_nodes() {
    use platekeeper_store::shared_state::StoredLink;
    let Some(url) = fresh_database() else { return };
    let (_a_dir, a) = store_on(&url);
    let (_b_dir, b) = store_on(&url);
    let link = StoredLink {
        username: "ana".into(),
        client: Some("192.0.2.7".into()),
        payload: b"sealed session".to_vec(),
    };
    a.put_link("pkl_two", &link, 2_000, 1_000, 4, 256)
        .expect("put")
        .expect("room");
    assert_eq!(b.take_link("pkl_two", 1_500).expect("take"), Some(link));
    assert_eq!(a.take_link("pkl_two", 1_500).expect("again"), None, "once");
    let delay = |n: u32| if n >= 4 { 2_000 } else { 0 };
    for (i, node) in [&a, &b, &a].into_iter().enumerate() {
        assert_eq!(
            node.count_address_failure("p 192.0.2.7 ana", 10 + i as i64, 3_600_000, delay)
                .expect("count")
                .1,
            None
        );
    }
    let (n, until) = b
        .count_address_failure("p 192.0.2.7 ana", 20, 3_600_000, delay)
        .expect("fourth");
    assert_eq!((n, until), (4, Some(2_020)));
    assert_eq!(
        a.failures_blocked_until(&["p 192.0.2.7 ana"], 30)
            .expect("read"),
        Some(2_020)
    );
}

/// Issue 26 item 2: with a read database, searches run there (a role
/// that may only read, standing in for a standby); when it cannot be
/// reached they run on the primary, so a search is slower rather than
/// refused; a read database that does not hold this store is refused.
#[test]
fn searches_use_the_read_database_and_fall_back_to_the_primary() {
    let Some(url) = fresh_database() else { return };
    let now = 1_800_000_000_000;
    let (_a_dir, a) = store_on(&url);
    one_read(&a, "5RDB001", now);
    // A role that may only read the store's tables.
    let reader = format!("pk_reader_{}", hex(4));
    let mut su = insider(&url);
    su.batch_execute(&format!(
        "CREATE ROLE {reader} LOGIN PASSWORD 'read-only-pw';
         GRANT USAGE ON SCHEMA platekeeper TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA platekeeper TO {reader};"
    ))
    .expect("reader role");
    let app = std::env::var("PLATEKEEPER_TEST_DATABASE").expect("url");
    let (_, host_and_db) = app.rsplit_once('@').expect("url");
    let (host, _) = host_and_db.rsplit_once('/').expect("url");
    let db = url.to_string();
    let name = db
        .rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next())
        .expect("name");
    let read_url = DatabaseUrl::parse(&format!("postgres://{reader}:read-only-pw@{host}/{name}"))
        .expect("url");
    let dir = tempfile::tempdir().expect("dir");
    let b = platekeeper_store::Store::open_with(
        dir.path(),
        platekeeper_store::OpenOptions {
            database: Some(url.clone()),
            read_database: Some(read_url.clone()),
            ..Default::default()
        },
    )
    .expect("open with a read database");
    let state = b.database_state().expect("state");
    let rd = state.read_database.expect("a read database");
    assert!(rd.reachable, "{rd:?}");
    let search = |store: &platekeeper_store::Store| search_plate(store, "5RDB001", now).reads.len();
    assert_eq!(search(&b), 1);
    // The read role's sessions, by the last statement each ran: the
    // search shows there (opening ran only the log's first entry).
    let searched_there: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%FROM reads%'",
            &[&reader],
        )
        .expect("sessions")
        .get(0);
    assert!(searched_there > 0, "searched through the read role");
    // The read database goes away: searches go on, on the primary.
    su.batch_execute(&format!(
        "ALTER ROLE {reader} NOLOGIN;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{reader}';"
    ))
    .expect("cut the reader off");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(search(&b), 1, "searched on the primary");
    assert!(
        !b.database_state()
            .expect("state")
            .read_database
            .expect("rd")
            .reachable
    );
    drop(b);
    // A database that does not hold this store is refused as its reader.
    let Some(other) = fresh_database() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let refused = platekeeper_store::Store::open_with(
        dir.path(),
        platekeeper_store::OpenOptions {
            database: Some(url.clone()),
            read_database: Some(other),
            ..Default::default()
        },
    );
    assert!(
        matches!(
            refused,
            Err(platekeeper_store::StoreError::Conflict {
                code: "read_database_mismatch",
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
}

/// Issue 26 item 2: when the server goes (a restart, a fail-over), every
/// idle pooled session went with it: the first request that finds one
/// lost has the pool drop the others, so one request fails, not one per
/// pooled session.
#[test]
fn one_lost_session_empties_the_pool_of_the_others() {
    let Some(url) = fresh_database() else { return };
    let (pool, _) = pg::open(&url).expect("open");
    let pids: Vec<i32> = {
        let mut held: Vec<_> = (0..4).map(|_| pool.get().expect("c")).collect();
        held.iter_mut()
            .map(|c| {
                c.query_one("SELECT pg_backend_pid()", &[])
                    .expect("pid")
                    .get(0)
            })
            .collect()
    };
    admin()
        .execute(
            "SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p",
            &[&pids],
        )
        .expect("terminate");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let failures = (0..4)
        .filter(|_| {
            let mut c = pool.get().expect("c");
            c.query_one("SELECT 1", &[]).is_err()
        })
        .count();
    assert!(failures <= 1, "{failures} requests failed on lost sessions");
}
