//! `platekeeper bench --suite cluster --database URL` (issue 26): what a
//! second node adds, measured through real `platekeeper serve` processes
//! on the database the URL names (it must be empty), on loopback.
//!
//! 1. Ingest: four cameras, each on its own kept-alive connection,
//!    posting batches of 500 reads as fast as they are acknowledged for
//!    `SECONDS`, all to one node, then spread over two nodes (camera i to
//!    node i mod 2); one and two nodes alternate, twice each, so a drift
//!    of the machine's speed shows rather than hides.
//! 2. Alerts: an officer's stream held open on one node, single hot-list
//!    hits posted to the other, one at a time; the time from the start of
//!    the POST to the `alert` event's arrival. The same with the stream
//!    on the ingesting node, for comparison.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use platekeeper_core::hotlist::ListKind;
use platekeeper_core::read::format_time_ms;
use platekeeper_core::{GeoPoint, Role};
use platekeeper_store::{Actor, CameraKind, NewCamera, NewHotList, Store};
use serde_json::{json, Value};

use crate::bench::{percentile, round3};
use crate::synthetic::{plate_from, Rng};

const CAMERAS: usize = 4;
const BATCH: usize = 500;
const SECONDS: u64 = 10;
const ALERTS: usize = 200;
const HOT_PLATES: usize = 1_000;

/// A `platekeeper serve` child, killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(data: &Path, database: &str, key: &Path, name: &str) -> anyhow::Result<Node> {
        std::fs::create_dir_all(data)?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--database", database])
            .arg("--checkpoint-key")
            .arg(key)
            .args(["--node-name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a node")?;
        let stdout = child.stdout.take().context("the node's output")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    let url = line[i + "listening on ".len()..].trim().to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .context("the node did not start")?;
        Ok(Node { child, url })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(json_only: bool, database: Option<&str>, seed: u64) -> anyhow::Result<()> {
    let say = |s: String| {
        if !json_only {
            eprintln!("{s}");
        }
    };
    let Some(database) = database
        .map(str::to_owned)
        .or_else(|| std::env::var(platekeeper_store::postgres::DATABASE_ENV).ok())
    else {
        bail!("--suite cluster needs --database URL (an empty PostgreSQL database)");
    };
    let url = platekeeper_store::postgres::DatabaseUrl::parse(&database)?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("checkpoint.key");
    let now = crate::now_ms();
    let admin = Actor::system("bench");

    // The agency: cameras, an officer, a hot list.
    let store = Store::open_with(
        dir.path().join("setup"),
        platekeeper_store::OpenOptions {
            checkpoint_key: Some(key.clone()),
            database: Some(url),
            ..Default::default()
        },
    )?;
    let mut keys = Vec::new();
    for i in 0..CAMERAS {
        let (_, k) = store.create_camera(
            NewCamera {
                id: format!("bench-{i}"),
                name: format!("Bench camera {i}"),
                kind: CameraKind::Fixed,
                position: Some(GeoPoint::new(37.8044, -122.2712)?),
            },
            &admin,
            now,
        )?;
        keys.push(k);
    }
    let password = "bench cluster officer password";
    let secret = crate::demo::ready_user(
        &store,
        "officer",
        "Officer",
        Role::Officer,
        password,
        &admin,
        now,
    )?;
    let list = store.create_hotlist(
        NewHotList {
            name: "Bench stolen".into(),
            kind: ListKind::StolenVehicle,
            retention_days: 30,
            fuzzy: false,
        },
        &admin,
        now,
    )?;
    let hot: Vec<String> = (0..HOT_PLATES).map(|i| format!("9HT{i:04}")).collect();
    for p in &hot {
        store.add_hot_entry(
            list.id,
            platekeeper_core::hotlist::EntryDraft {
                pattern: platekeeper_core::PlatePattern::parse(p, false)?,
                state: None,
                reason: "benchmark".into(),
                case_number: None,
                expires_at_ms: now + 20 * 86_400_000,
                details: vec![],
            },
            &admin,
            now,
        )?;
    }
    drop(store);

    let next_id = Arc::new(AtomicU64::new(1));
    let mut rng = Rng::new(seed);
    let mut figures = serde_json::Map::new();
    figures.insert("suite".into(), json!("cluster"));

    // 1. Ingest, one node and two alternating.
    let a = Node::start(&dir.path().join("a"), &database, &key, "bench-a")?;
    let mut per_run = Vec::new();
    for (round, nodes) in [1usize, 2, 1, 2].into_iter().enumerate() {
        let b = if nodes == 2 {
            Some(Node::start(
                &dir.path().join("b"),
                &database,
                &key,
                "bench-b",
            )?)
        } else {
            None
        };
        let urls: Vec<String> = std::iter::once(a.url.clone())
            .chain(b.iter().map(|n| n.url.clone()))
            .collect();
        let rate = ingest(&urls, &keys, &next_id, rng.next_u64())?;
        say(format!(
            "ingest round {}: {nodes} node(s), {rate:.0} reads/s",
            round + 1
        ));
        per_run.push((nodes, rate));
    }
    let mean = |n: usize| {
        let r: Vec<f64> = per_run
            .iter()
            .filter(|(k, _)| *k == n)
            .map(|(_, r)| *r)
            .collect();
        r.iter().sum::<f64>() / r.len().max(1) as f64
    };
    figures.insert("ingest_one_node_reads_per_s".into(), json!(mean(1).round()));
    figures.insert(
        "ingest_two_nodes_reads_per_s".into(),
        json!(mean(2).round()),
    );
    figures.insert(
        "ingest_runs".into(),
        json!(per_run
            .iter()
            .map(|(n, r)| json!({"nodes": n, "reads_per_s": r.round()}))
            .collect::<Vec<_>>()),
    );

    // 2. Alerts, from node A's ingest to a stream on node B, and on A.
    let b = Node::start(&dir.path().join("b"), &database, &key, "bench-b")?;
    let code = platekeeper_store::credentials::totp_code(&secret, (crate::now_ms() / 1000) as u64)
        .unwrap_or_default();
    let session: Value = ureq::post(&format!("{}/api/v1/session", a.url))
        .send_json(json!({"username": "officer", "password": password, "totp": code}))
        .context("signing in")?
        .into_json()?;
    let token = session["token"].as_str().context("no token")?.to_string();
    for (name, stream_on) in [("other_node", &b.url), ("same_node", &a.url)] {
        let mut lat = alerts(&a.url, stream_on, &token, &keys[0], &hot, &next_id)?;
        let (p50, p99) = (percentile(&mut lat, 0.50), percentile(&mut lat, 0.99));
        let max = lat.iter().cloned().fold(0.0, f64::max);
        say(format!(
            "alert to a stream on the {name}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} alerts)",
            lat.len()
        ));
        figures.insert(format!("alert_{name}_p50_ms"), json!(round3(p50)));
        figures.insert(format!("alert_{name}_p99_ms"), json!(round3(p99)));
        figures.insert(format!("alert_{name}_max_ms"), json!(round3(max)));
    }
    figures.insert("alerts".into(), json!(ALERTS));
    figures.insert("cameras".into(), json!(CAMERAS));
    figures.insert("batch".into(), json!(BATCH));
    figures.insert("seconds_per_round".into(), json!(SECONDS));
    drop((a, b));
    println!("{}", Value::Object(figures));
    Ok(())
}

/// `reads` reads, each with a fresh id, dated within the last hour.
fn reads(n: usize, next_id: &AtomicU64, rng: &mut Rng, plate: Option<&str>) -> Vec<Value> {
    let now = crate::now_ms();
    (0..n)
        .map(|k| {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            json!({
                "id": format!("00000000-0000-4000-8000-{id:012}"),
                "plate": plate.map(str::to_owned).unwrap_or_else(|| plate_from(rng.next_u64()).0),
                "state": "CA",
                "ts": format_time_ms(now - 60_000 - k as i64),
            })
        })
        .collect()
}

/// Reads per second acknowledged by `urls` from the cameras (camera i
/// posting to node i mod the nodes) in `SECONDS`.
fn ingest(
    urls: &[String],
    keys: &[String],
    next_id: &Arc<AtomicU64>,
    seed: u64,
) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let threads: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (url, key) = (urls[i % urls.len()].clone(), key.clone());
            let (stop, acked, failed, next_id) =
                (stop.clone(), acked.clone(), failed.clone(), next_id.clone());
            std::thread::spawn(move || {
                let agent = ureq::agent();
                let mut rng = Rng::new(seed ^ i as u64);
                while !stop.load(Ordering::Relaxed) {
                    let batch = reads(BATCH, &next_id, &mut rng, None);
                    match agent
                        .post(&format!("{url}/api/v1/reads"))
                        .set("Authorization", &format!("Bearer {key}"))
                        .send_json(json!({ "reads": batch }))
                    {
                        Ok(r) => {
                            let v: Value = r.into_json().unwrap_or(Value::Null);
                            acked.fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        }
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(SECONDS));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bail!("a camera's batch failed: {e}");
    }
    Ok(acked.load(Ordering::Relaxed) as f64 / elapsed)
}

/// Milliseconds from posting each of `ALERTS` hot reads to `ingest_on`
/// to their `alert` events on a stream held on `stream_on`.
fn alerts(
    ingest_on: &str,
    stream_on: &str,
    token: &str,
    camera_key: &str,
    hot: &[String],
    next_id: &AtomicU64,
) -> anyhow::Result<Vec<f64>> {
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let resp = ureq::get(&format!("{stream_on}/api/v1/alerts/stream"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .context("opening the alert stream")?;
    let reader = std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if line.starts_with("data:")
                && event == "alert"
                && tx.send(Instant::now()).is_err()
            {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let agent = ureq::agent();
    let mut rng = Rng::new(99);
    let mut out = Vec::with_capacity(ALERTS);
    for i in 0..ALERTS {
        let plate = &hot[(i * 7) % hot.len()];
        let batch = reads(1, next_id, &mut rng, Some(plate));
        let sent = Instant::now();
        agent
            .post(&format!("{ingest_on}/api/v1/reads"))
            .set("Authorization", &format!("Bearer {camera_key}"))
            .send_json(json!({ "reads": batch }))
            .context("posting a hit")?;
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .context("an alert did not arrive")?;
        out.push(got.duration_since(sent).as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(rx);
    drop(reader);
    Ok(out)
}
