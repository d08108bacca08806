//! Several `platekeeper serve` processes on one PostgreSQL (issue 26):
//! every request may go to any node and the result is the one a single
//! node gives; a node killed with SIGKILL during ingest loses no
//! acknowledged read; and, when scripts/with-postgres started a streaming
//! standby (`--standby`), the primary killed and the standby promoted
//! under ingest: nothing acknowledged is lost and the log goes on.
//! Skipped without PostgreSQL unless PLATEKEEPER_REQUIRE_POSTGRES is set.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A cluster being built: a temporary folder with a data folder per
/// node, the checkpoint key the nodes share, and the first administrator,
/// made on `database`.
struct Cluster {
    dir: tempfile::TempDir,
    database: String,
    admin: (String, String, String),
}

impl Cluster {
    fn new(database: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a");
        std::fs::create_dir_all(&first).unwrap();
        let admin = admin_create_with(&first, &["--database", database]);
        Cluster {
            dir,
            database: database.to_string(),
            admin,
        }
    }

    fn data(&self, node: &str) -> std::path::PathBuf {
        self.dir.path().join(node)
    }

    fn key(&self) -> std::path::PathBuf {
        self.dir.path().join("checkpoint.key")
    }

    /// Starts node `name` (its data folder `data(name)`).
    fn node(&self, name: &str) -> Server {
        node(&self.data(name), &self.database, &self.key(), name)
    }
}

/// A node of the cluster: `serve` on its own data folder and port, on
/// the shared database, signing checkpoints with the shared key.
fn node(data: &Path, database: &str, key: &Path, name: &str) -> Server {
    std::fs::create_dir_all(data).unwrap();
    Server::start(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--database",
        database,
        "--checkpoint-key",
        key.to_str().unwrap(),
        "--node-name",
        name,
    ])
}

fn get(url: &str, token: &str) -> Result<Value, (u16, Value)> {
    match ureq::get(url)
        .timeout(Duration::from_secs(30))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) => Ok(r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_json().unwrap_or(Value::Null))),
        Err(e) => Err((0, json!(e.to_string()))),
    }
}

/// `n` reads for `camera`'s batch `batch`, each with its own id.
fn batch(batch: u64, n: u64, base_ms: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let k = batch * n + i;
            json!({
                "id": format!("00000000-0000-4000-8000-{k:012}"),
                "plate": format!("C{:06}", k % 1_000_000),
                "state": "CA",
                "ts": ts(base_ms + (k % 1_000_000) as i64 * 3),
                "lat": 37.8044,
                "lon": -122.2712,
            })
        })
        .collect()
}

/// When a camera's first batch sent after a moment was acknowledged:
/// `(moment, acknowledged)`, armed by setting the moment.
type Timing = Arc<Mutex<(Option<Instant>, Option<Instant>)>>;

/// A camera that sends batches until told to stop, each to the first of
/// `urls` that acknowledges it, sending the same batch again (to the next
/// node, after a pause) until one does, as a camera behind a load
/// balancer does. Returns the ids acknowledged.
fn camera(
    urls: Vec<String>,
    key: String,
    first_batch: u64,
    base_ms: i64,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    timing: Timing,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut b = first_batch;
        let mut at = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let reads = batch(b, 50, base_ms);
            let ids: Vec<String> = reads
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            loop {
                let url = &urls[at % urls.len()];
                let sent = Instant::now();
                match post(
                    &format!("{url}/api/v1/reads"),
                    Some(&key),
                    &json!({"reads": reads}),
                ) {
                    Ok(v) => {
                        let stored = v["accepted"].as_u64().unwrap_or(0)
                            + v["duplicates"].as_u64().unwrap_or(0);
                        assert_eq!(stored, 50, "{v}");
                        acked.lock().unwrap().extend(ids);
                        let mut t = timing.lock().unwrap();
                        if t.0.is_some_and(|armed| sent >= armed) && t.1.is_none() {
                            t.1 = Some(Instant::now());
                        }
                        break;
                    }
                    Err((status, v)) => {
                        // Only a node that is gone, or a database that is
                        // (503 with Retry-After), is a reason to send again.
                        assert!(status == 0 || status == 503, "{status} {v}");
                        if stop.load(Ordering::Relaxed) && status == 0 {
                            return;
                        }
                        at += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            b += 1;
        }
    })
}

/// Cameras registered through one node, sending batches as [`camera`]
/// does, with what was acknowledged to them.
struct Fleet {
    names: Vec<&'static str>,
    keys: Vec<String>,
    /// Their reads are dated from this time on (within the last hour).
    base: i64,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
}

impl Fleet {
    fn register(url: &str, token: &str, names: &[&'static str]) -> Fleet {
        Fleet {
            names: names.to_vec(),
            keys: names.iter().map(|n| create_camera(url, token, n)).collect(),
            base: now_ms() - 3_600_000,
            stop: Arc::default(),
            acked: Arc::default(),
        }
    }

    /// Every camera sending to `urls` (batches numbered from `offset` on,
    /// apart per camera), timed by `timings` where given.
    fn start(
        &self,
        urls: &[String],
        offset: u64,
        timings: &[Timing],
    ) -> Vec<std::thread::JoinHandle<()>> {
        self.stop.store(false, Ordering::Relaxed);
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                camera(
                    urls.to_vec(),
                    k.clone(),
                    i as u64 * 100_000 + offset,
                    self.base,
                    self.stop.clone(),
                    self.acked.clone(),
                    timings.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the cameras and waits for them; the ids acknowledged so far.
    fn stop(&self, senders: Vec<std::thread::JoinHandle<()>>) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().unwrap();
        }
        self.acked.lock().unwrap().clone()
    }

    /// Every acknowledged id is stored once (see [`check_stored_once`]).
    fn check_stored_once(&self, url: &str, token: &str, acked: &[String]) {
        check_stored_once(url, token, &self.names, acked, self.base);
    }
}

/// Every acknowledged id is stored, once, and nothing else from these
/// cameras is.
fn check_stored_once(url: &str, token: &str, cameras: &[&str], acked: &[String], from: i64) {
    let mut stored = HashSet::new();
    for cam in cameras {
        for r in all_reads(url, token, cam, from - 1_000, now_ms() + 60_000) {
            let id = r["read_id"].as_str().unwrap().to_string();
            assert!(stored.insert(id.clone()), "read {id} stored twice");
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged reads lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

/// `audit verify --database` on the database: the chain is whole. Its
/// last line.
fn log_verifies(data: &Path, database: &str) -> String {
    let (ok, out, err) = run(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
        "--database",
        database,
    ]);
    assert!(ok, "audit verify: {out} {err}");
    out.lines().last().unwrap_or_default().to_string()
}

/// Reads `alert` events from a stream on `url` into `got`, with when each
/// arrived.
fn alert_stream(url: String, token: String, got: Arc<Mutex<Vec<(Value, Instant)>>>) {
    std::thread::spawn(move || {
        let r = ureq::get(&format!("{url}/api/v1/alerts/stream"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("stream");
        let mut event = String::new();
        for line in BufReader::new(r.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if event == "alert" {
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    got.lock().unwrap().push((v, Instant::now()));
                }
            }
        }
    });
}

fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_on_one_database_act_as_one() {
    let Some((database, _)) = fresh_database() else {
        return;
    };
    let cluster = Cluster::new(&database);
    let admin = cluster.admin.clone();
    let a = cluster.node("a");
    let b = cluster.node("b");
    let c = cluster.node("c");

    // Signed in through A; the session works on B and C.
    let token = admin_session(&a.url, &admin);
    for n in [&b, &c] {
        let me = get(&format!("{}/api/v1/me", n.url), &token).expect("me");
        assert_eq!(me["username"], "capt", "{me}");
    }

    // Each node says who it is, that it reaches the primary, and exactly
    // one runs the scheduled work.
    until("one leader", Duration::from_secs(30), || {
        [&a, &b, &c]
            .iter()
            .filter(|n| {
                get(&format!("{}/healthz", n.url), "")
                    .map(|h| h["leads_scheduled_work"] == true)
                    .unwrap_or(false)
            })
            .count()
            == 1
    });
    for (n, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let h = get(&format!("{}/healthz", n.url), "").expect("health");
        assert_eq!(h["node"], name, "{h}");
        assert_eq!(h["database"]["backend"], "postgres", "{h}");
        assert_eq!(h["database"]["primary"], true, "{h}");
    }

    // A camera made through B ingests through A; a hot list made through
    // C matches there; the alert reaches a stream held open on C.
    let cam_key = create_camera(&b.url, &token, "cam-cluster");
    let list = post(
        &format!("{}/api/v1/hotlists", c.url),
        Some(&token),
        &json!({"name": "Stolen", "kind": "stolen_vehicle", "retention_days": 30, "fuzzy": false}),
    )
    .expect("list");
    post(
        &format!("{}/api/v1/hotlists/{}/entries", c.url, list["id"]),
        Some(&token),
        &json!({"plate": "8CLU555", "reason": "stolen in a carjacking"}),
    )
    .expect("entry");
    let alerts: Arc<Mutex<Vec<(Value, Instant)>>> = Arc::default();
    alert_stream(c.url.clone(), token.clone(), alerts.clone());
    std::thread::sleep(Duration::from_millis(500));
    let now = now_ms();
    let mut latencies = Vec::new();
    for i in 0..5 {
        let read = json!({"id": format!("00000000-0000-4000-9000-{i:012}"), "plate": "8CLU555", "state": "CA",
            "ts": ts(now - 10_000 + i), "lat": 37.8044, "lon": -122.2712});
        let mut sent = Instant::now();
        until(
            "node A to know the new camera",
            Duration::from_secs(10),
            || {
                sent = Instant::now();
                post(
                    &format!("{}/api/v1/reads", a.url),
                    Some(&cam_key),
                    &json!({"reads": [read.clone()]}),
                )
                .is_ok()
            },
        );
        until("the alert on node C", Duration::from_secs(10), || {
            alerts.lock().unwrap().len() > i as usize
        });
        let (alert, at) = alerts.lock().unwrap()[i as usize].clone();
        assert_eq!(alert["plate"], "8CLU555", "{alert}");
        latencies.push(at.duration_since(sent));
    }
    eprintln!("alert from ingest on node A to a stream on node C: {latencies:?}");

    // Searched through B: the exact plate and a pattern.
    for plate in ["8CLU555", "8CLU*"] {
        let found =
            search_plate(&b.url, &token, plate, now - 60_000, now + 60_000).expect("search");
        assert_eq!(
            found["results"].as_array().map(Vec::len),
            Some(5),
            "{plate}: {found}"
        );
    }

    // A download link made through A is fetched through B, once.
    let link = post(
        &format!("{}/api/v1/download-links", a.url),
        Some(&token),
        &json!({"search_export": {"search": {"plate": "8CLU555", "purpose": purpose()}}}),
    )
    .expect("link");
    let path = link["url"].as_str().unwrap();
    let csv = ureq::get(&format!("{}{path}", b.url))
        .call()
        .expect("fetched through another node")
        .into_string()
        .unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains("8CLU555")).count(), 5);
    assert!(
        matches!(
            ureq::get(&format!("{}{path}", c.url)).call(),
            Err(ureq::Error::Status(404, _))
        ),
        "a link is good once, on any node"
    );

    // Failed sign-ins spread over the nodes count together: the fourth
    // from this address starts a wait that every node enforces.
    let wrong = json!({"username": "capt", "password": "not the password", "totp": "000000"});
    for n in [&a, &b, &c, &a] {
        let (status, v) = post(&format!("{}/api/v1/session", n.url), None, &wrong).unwrap_err();
        assert_eq!(status, 401, "{v}");
    }
    for n in [&a, &b, &c] {
        let (status, v) = post(&format!("{}/api/v1/session", n.url), None, &wrong).unwrap_err();
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (429, Some("too_many_attempts"))
        );
    }
    // The account's own lock (5 wrong in a row) is reached through two
    // nodes, and a third refuses the right password.
    std::thread::sleep(Duration::from_millis(2_100));
    let (status, _) = post(&format!("{}/api/v1/session", b.url), None, &wrong).unwrap_err();
    assert_eq!(status, 423, "the fifth failure locks the account");
    std::thread::sleep(Duration::from_millis(4_100));
    let right = json!({"username": "capt", "password": PASSWORD, "totp": code(&admin.2, 60)});
    let (status, v) = post(&format!("{}/api/v1/session", c.url), None, &right).unwrap_err();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (423, Some("account_locked")),
        "{v}"
    );

    // The node running the scheduled work goes; another takes it over.
    let nodes = [a, b, c];
    let leads = |n: &Server| {
        get(&format!("{}/healthz", n.url), "")
            .map(|h| h["leads_scheduled_work"] == true)
            .unwrap_or(false)
    };
    let leader = nodes.iter().position(leads).expect("a leader");
    let mut nodes: Vec<Server> = nodes.into_iter().collect();
    nodes.remove(leader).kill();
    until("another node to take over", Duration::from_secs(40), || {
        nodes.iter().filter(|n| leads(n)).count() == 1
    });
    drop(nodes);
    log_verifies(&cluster.data("a"), &database);
}

/// A node killed with SIGKILL during sustained ingest from cameras that
/// send again to another node: every acknowledged read is stored once,
/// and the log verifies.
#[test]
fn a_node_killed_during_ingest_loses_no_acknowledged_read() {
    let Some((database, _)) = fresh_database() else {
        return;
    };
    let cluster = Cluster::new(&database);
    let a = cluster.node("a");
    let b = cluster.node("b");
    let token = admin_session(&a.url, &cluster.admin);
    let fleet = Fleet::register(&a.url, &token, &["cam-1", "cam-2", "cam-3"]);
    let senders = fleet.start(&[a.url.clone(), b.url.clone()], 0, &[]);
    until(
        "reads acknowledged by node A",
        Duration::from_secs(60),
        || fleet.acked() >= 3_000,
    );
    let before = fleet.acked();
    a.kill();
    until(
        "ingest going on through node B",
        Duration::from_secs(60),
        || fleet.acked() >= before + 3_000,
    );
    let acked = fleet.stop(senders);
    fleet.check_stored_once(&b.url, &token, &acked);
    drop(b);
    log_verifies(&cluster.data("a"), &database);
}

/// The standby is promoted after the primary is killed under ingest:
/// the node reconnects by itself (its URL names both servers), cameras
/// get 503 with Retry-After meanwhile and send again, nothing acknowledged
/// is lost (synchronous replication), and the log verifies and goes on
/// on the new primary. Needs `scripts/with-postgres --standby`.
#[test]
fn the_primary_killed_and_the_standby_promoted_loses_nothing_acknowledged() {
    let (Ok(database), Ok(kill), Ok(promote)) = (
        std::env::var("PLATEKEEPER_TEST_FAILOVER_DATABASE"),
        std::env::var("PLATEKEEPER_TEST_PG_KILL_PRIMARY"),
        std::env::var("PLATEKEEPER_TEST_PG_PROMOTE"),
    ) else {
        skip(
            "PLATEKEEPER_REQUIRE_STANDBY",
            "no standby (run under scripts/with-postgres --standby)",
        );
        return;
    };
    let cluster = Cluster::new(&database);
    let (data, key) = (cluster.data("a"), cluster.key());
    let a = cluster.node("a");
    let token = admin_session(&a.url, &cluster.admin);
    let fleet = Fleet::register(&a.url, &token, &["cam-1", "cam-2"]);
    let nodes = [a.url.clone()];
    let timings: Vec<Timing> = fleet.names.iter().map(|_| Arc::default()).collect();
    let senders = fleet.start(&nodes, 0, &timings);
    until("reads acknowledged", Duration::from_secs(60), || {
        fleet.acked() >= 2_000
    });
    fleet.stop(senders);

    // A second node searching on the standby (`--read-database`): its
    // searches find the reads and run there; a database holding another
    // store is refused as a read database.
    let standby = std::env::var("PLATEKEEPER_TEST_STANDBY_DATABASE").expect("standby URL");
    let reader = Server::start(&[
        "serve",
        "--data",
        data.join("reader").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--database",
        &database,
        "--read-database",
        &standby,
        "--checkpoint-key",
        key.to_str().unwrap(),
        "--node-name",
        "reader",
    ]);
    let h = get(&format!("{}/healthz", reader.url), "").expect("health");
    assert_eq!(h["database"]["read_database"]["reachable"], true, "{h}");
    let standby_port = standby
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap();
    assert!(
        h["database"]["read_database"]["server"]
            .as_str()
            .is_some_and(|s| s.ends_with(standby_port)),
        "{h}"
    );
    let searched_there = || -> i64 {
        // The standby's sessions of the node, by the last statement each
        // ran: a search of reads shows there.
        let out = psql(
            &std::env::var("PLATEKEEPER_TEST_STANDBY_ADMIN").expect("standby admin"),
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'platekeeper' AND query LIKE '%FROM reads%'",
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(-1)
    };
    let before_search = searched_there();
    let probe = batch(0, 1, fleet.base)[0]["plate"]
        .as_str()
        .unwrap()
        .to_string();
    until(
        "the standby to find a read",
        Duration::from_secs(10),
        || {
            search_plate(&reader.url, &token, &probe, fleet.base - 1_000, now_ms())
                .map(|v| !v["results"].as_array().unwrap().is_empty())
                .unwrap_or(false)
        },
    );
    assert!(
        searched_there() > before_search,
        "the search ran on the standby"
    );
    // The standby stops replaying and falls more than 16 MiB behind:
    // searches go to the primary, and find a read the standby lacks.
    let standby_admin = std::env::var("PLATEKEEPER_TEST_STANDBY_ADMIN").expect("standby admin");
    let primary_admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").expect("primary admin");
    assert!(psql(&standby_admin, "SELECT pg_wal_replay_pause()")
        .status
        .success());
    let filler = psql(
        &primary_admin,
        "CREATE TABLE pk_wal_filler AS SELECT g FROM generate_series(1, 700000) g; DROP TABLE pk_wal_filler",
    );
    assert!(
        filler.status.success(),
        "{}",
        String::from_utf8_lossy(&filler.stderr)
    );
    let fresh = json!({"id": "00000000-0000-4000-a000-000000000001", "plate": "8LAG001", "state": "CA",
                       "ts": ts(now_ms() - 1_000), "lat": 37.8044, "lon": -122.2712});
    post(
        &format!("{}/api/v1/reads", a.url),
        Some(&fleet.keys[0]),
        &json!({"reads": [fresh]}),
    )
    .expect("a read while the standby is paused");
    until(
        "the primary to answer for the paused standby",
        Duration::from_secs(10),
        || {
            search_plate(&reader.url, &token, "8LAG001", now_ms() - 60_000, now_ms())
                .map(|v| v["results"].as_array().is_some_and(|r| r.len() == 1))
                .unwrap_or(false)
        },
    );
    let h = get(&format!("{}/healthz", reader.url), "").expect("health");
    assert_eq!(h["database"]["read_database"]["in_use"], false, "{h}");
    assert!(
        h["database"]["read_database"]["replay_lag_bytes"]
            .as_i64()
            .is_some_and(|b| b > 16 << 20),
        "{h}"
    );
    assert!(psql(&standby_admin, "SELECT pg_wal_replay_resume()")
        .status
        .success());
    drop(reader);
    let (ok, _, err) = run(&[
        "serve",
        "--data",
        data.join("wrong").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--database",
        &database,
        "--read-database",
        &format!("{}/postgres", standby.rsplit_once('/').unwrap().0),
        "--checkpoint-key",
        key.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("does not hold this store"), "{err}");

    // Sustained ingest again, and the primary killed under it.
    let before = fleet.acked();
    let senders = fleet.start(&nodes, 50_000, &timings);
    until("ingest under way", Duration::from_secs(30), || {
        fleet.acked() >= before + 500
    });

    let sh = |cmd: &str| {
        let out = std::process::Command::new("bash")
            .args(["-c", cmd])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&kill);
    // From the kill on, each camera's first batch sent after it is timed.
    let killed = Instant::now();
    for t in &timings {
        t.lock().unwrap().0 = Some(killed);
    }
    sh(&promote);
    let promoted = killed.elapsed();
    until("ingest on the new primary", Duration::from_secs(30), || {
        timings.iter().all(|t| t.lock().unwrap().1.is_some())
    });
    let resumed = timings
        .iter()
        .map(|t| t.lock().unwrap().1.unwrap().duration_since(killed))
        .max()
        .unwrap();
    eprintln!("the standby promoted {promoted:?} after the kill");
    eprintln!("from the primary's loss to both cameras' next acknowledged batch: {resumed:?}");
    until(
        "more reads on the new primary",
        Duration::from_secs(60),
        || fleet.acked() >= before + 2_000,
    );
    let acked = fleet.stop(senders);
    fleet.check_stored_once(&a.url, &token, &acked);
    // The log goes on on the new primary, and verifies whole.
    let h = get(&format!("{}/healthz", a.url), "").expect("health");
    assert_eq!(h["database"]["primary"], true, "{h}");
    create_camera(&a.url, &token, "cam-after");
    drop(a);
    let v = log_verifies(&data, &database);
    eprintln!("log after fail-over: {v}");
}

/// Issue 26 item 3: a store built through the server (reads over three
/// days, a hold, a corrected read, a hot list, two people) is moved with
/// `platekeeper migrate`, then served from PostgreSQL: the sessions go on,
/// the administrator signs in again with the same password and code (no
/// re-enrolment), and every record is where it was, with the same log.
#[test]
fn a_store_built_through_the_server_serves_from_postgres_after_migrate() {
    let Some((database, _)) = fresh_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("embedded");
    std::fs::create_dir_all(&data).unwrap();
    let admin = admin_create(&data);
    let server = Server::serve(&data);
    let token = admin_session(&server.url, &admin);
    // The sign-in used the next time step's code; a later sign-in needs a
    // later one.
    let code_step_used = now_ms() / 30_000 + 1;
    let cam = create_camera(&server.url, &token, "cam-move");
    let now = now_ms();
    let reads: Vec<Value> = (0..90)
        .map(|i| {
            json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "plate": format!("6MV{:04}", i % 30),
                   "state": "CA", "ts": ts(now - (i % 3) * 86_400_000 - i * 1_000), "lat": 37.8044, "lon": -122.2712})
        })
        .collect();
    let v = post(
        &format!("{}/api/v1/reads", server.url),
        Some(&cam),
        &json!({"reads": reads}),
    )
    .unwrap();
    assert_eq!(v["accepted"], 90, "{v}");
    // Searched first: a hold and a correction name reads the person saw.
    let count = |url: &str, token: &str, plate: &str| {
        post(
            &format!("{url}/api/v1/search"),
            Some(token),
            &json!({"plate": plate, "from": ts(now - 4 * 86_400_000), "to": ts(now + 60_000), "limit": 1000, "purpose": purpose()}),
        )
        .expect("search")["results"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    assert_eq!(count(&server.url, &token, "6MV*"), 90);
    let held = "00000000-0000-4000-8000-000000000004";
    post(
        &format!("{}/api/v1/holds", server.url),
        Some(&token),
        &json!({"case_number": "26-007700", "read_ids": [held]}),
    )
    .expect("hold");
    post(
        &format!(
            "{}/api/v1/reads/00000000-0000-4000-8000-000000000005/correction",
            server.url
        ),
        Some(&token),
        &json!({"plate": "6MV9999", "reason": "the image shows 9999"}),
    )
    .expect("correction");
    post(
        &format!("{}/api/v1/hotlists", server.url),
        Some(&token),
        &json!({"name": "Stolen", "kind": "stolen_vehicle", "retention_days": 30, "fuzzy": false}),
    )
    .expect("list");
    let jdoe = post(
        &format!("{}/api/v1/users", server.url),
        Some(&token),
        &json!({"username": "jdoe", "name": "Jo Doe", "role": "officer", "title": "Officer"}),
    )
    .expect("user");
    server.kill();

    let (ok, here, err) = run(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "migrate",
        "--data",
        data.to_str().unwrap(),
        "--to",
        &database,
    ]);
    assert!(ok, "{out} {err}");
    let node_data = dir.path().join("node");
    let target = node(&node_data, &database, &data.join("checkpoint.key"), "moved");
    // The session made before the move goes on.
    let me = get(&format!("{}/api/v1/me", target.url), &token).expect("me");
    assert_eq!(me["username"], "capt", "{me}");
    // The officer made before the move signs in with the one-time
    // password given then.
    let first = post(
        &format!("{}/api/v1/session", target.url),
        None,
        &json!({"username": "jdoe", "password": jdoe["one_time_password"]}),
    )
    .expect("the same one-time password");
    assert_eq!(
        first["next"],
        json!(["change_password", "enroll_totp"]),
        "{first}"
    );
    // The administrator signs in with the same password and authenticator
    // (a code of a time step after the last one used: the replay guard
    // moved with the account).
    let wait = (code_step_used * 30_000 + 200 - now_ms()).max(0);
    std::thread::sleep(Duration::from_millis(wait as u64));
    let again = post(
        &format!("{}/api/v1/session", target.url),
        None,
        &json!({"username": "capt", "password": PASSWORD, "totp": code(&admin.2, 30)}),
    )
    .expect("the same password and code");
    let fresh = again["token"].as_str().unwrap().to_string();
    assert_eq!(count(&target.url, &fresh, "6MV*"), 90, "every read");
    assert_eq!(count(&target.url, &fresh, "6MV9999"), 1, "the correction");
    let holds = get(&format!("{}/api/v1/holds", target.url), &fresh).expect("holds");
    assert_eq!(holds["holds"][0]["reads"], 1, "{holds}");
    let hold_id = holds["holds"][0]["id"].as_i64().unwrap();
    let kept = get(
        &format!("{}/api/v1/holds/{hold_id}/reads", target.url),
        &fresh,
    )
    .expect("held reads");
    assert!(kept.to_string().contains(held), "{kept}");
    let lists = get(&format!("{}/api/v1/hotlists", target.url), &fresh).expect("lists");
    assert!(lists.to_string().contains("Stolen"), "{lists}");
    let users = get(&format!("{}/api/v1/users", target.url), &fresh).expect("users");
    assert!(users.to_string().contains("jdoe"), "{users}");
    drop(target);
    let there = log_verifies(&node_data, &database);
    let head = |s: &str| {
        s.split("head ")
            .nth(1)
            .map(|h| h.split_whitespace().next().unwrap_or("").to_string())
    };
    // The log went on after the move (sign-in, searches): the moved
    // head is where the target's chain continued from.
    assert!(
        head(&here).is_some() && head(&there).is_some(),
        "{here} / {there}"
    );
    let moved_head = head(&here).unwrap();
    assert!(
        out.contains(&moved_head[..16]),
        "the comparison names the head: {out}"
    );
}
