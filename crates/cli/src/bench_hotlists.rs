//! `platekeeper bench --suite hotlists`: the hot-list figures of issue 4,
//! measured on the real code paths.
//!
//! 1. Import: a generated 1M-line California DOJ file, parsed and stored
//!    as `POST /api/v1/hotlists/{id}/import` does (parse, replace the
//!    source's entries in one transaction, update the index).
//! 2. Matching: with those 1M exact entries and 5,000 partial ones
//!    loaded, the time `Store::match_hot` (the check every ingest batch
//!    makes before acknowledging) adds per read, over synthetic traffic.
//! 3. Delivery: the real server on a loopback port, 50 officers signed in
//!    and holding `GET /api/v1/alerts/stream` open, a camera posting
//!    10,000 reads/s of which one in a thousand is on the list; the time
//!    from the start of the POST carrying a hit to each client's receipt
//!    of its `alert` event.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use platekeeper_core::hotlist::import::{self, Format};
use platekeeper_core::hotlist::ListKind;
use platekeeper_core::read::{format_time_ms, TimeInput};
use platekeeper_core::{GeoPoint, RawRead, Role};
use platekeeper_store::{Actor, CameraKind, HotCheck, ImportFile, NewCamera, NewHotList, Store};
use serde_json::json;

use crate::bench::{peak_rss_mb, percentile, round3};
use crate::synthetic::{plate_from, Rng};

const ENTRIES: usize = 1_000_000;
const PARTIAL: usize = 5_000;
const CLIENTS: usize = 50;
const READS_PER_S: usize = 10_000;
const BATCH: usize = 100;
const SECONDS: u64 = 10;
const HIT_EVERY: usize = 1_000;

pub fn run(json_only: bool, seed: u64) -> anyhow::Result<()> {
    let say = |s: String| {
        if !json_only {
            eprintln!("{s}");
        }
    };
    let base_dir =
        std::env::temp_dir().join(format!("platekeeper-hotbench-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(base_dir.clone());
    let now = crate::now_ms();
    let admin = Actor::system("bench");
    let mut rng = Rng::new(seed);

    // 1. A 1M-line DOJ file of distinct plates, and 5,000 partial plates.
    let mut listed: Vec<String> = Vec::with_capacity(ENTRIES);
    let mut seen = std::collections::HashSet::with_capacity(ENTRIES);
    while listed.len() < ENTRIES {
        let (p, _) = plate_from(rng.next_u64());
        if seen.insert(p.clone()) {
            listed.push(p);
        }
    }
    drop(seen);
    let mut doj = String::with_capacity(ENTRIES * 22);
    doj.push_str("SVS 20261122 CALIFORNIA DOJ STOLEN VEHICLE SYSTEM\n");
    for p in &listed {
        doj.push_str(&format!("{p:<8}CA{:02}20261101\n", rng.below(58) + 1));
    }
    doj.push_str(&format!("TOTAL RECORDS: {ENTRIES}\n"));
    let mut partial_csv = String::from("plate,reason\n");
    for i in 0..PARTIAL {
        let (p, _) = plate_from(rng.next_u64());
        let pattern = match i % 5 {
            0 => format!("{}*", &p[..5]),
            1 => format!("*{}", &p[p.len() - 5..]),
            _ => {
                let k = rng.below(p.len() as u64) as usize;
                format!("{}?{}", &p[..k], &p[k + 1..])
            }
        };
        partial_csv.push_str(&format!("{pattern},partial plate from a witness\n"));
    }
    let store = Store::open(base_dir.join("match"))?;
    say(format!(
        "importing a {ENTRIES}-line DOJ file ({} MB) …",
        doj.len() >> 20
    ));
    let (import_s, partial) = load_lists(&store, &doj, &partial_csv, &admin, now)?;
    say(format!("  {import_s:.2} s; {partial} partial entries"));

    // 2. Matching cost per read.
    let (camera, _) = bench_camera(&store, &admin, now)?;
    let traffic: Vec<platekeeper_core::NewRead> = (0..1_000_000)
        .map(|i| {
            let (plate, state) = plate_from(rng.next_u64());
            synthetic_read(i, &plate, state, now - 60_000).validate(now, "bench-cam")
        })
        .collect::<Result<_, _>>()?;
    let checks: Vec<HotCheck<'_>> = traffic
        .iter()
        .map(|read| HotCheck {
            read,
            camera: &camera,
        })
        .collect();
    let started = Instant::now();
    let mut hits = 0;
    for batch in checks.chunks(1_000) {
        hits += store.match_hot(batch, now)?.len();
    }
    let match_ns = started.elapsed().as_nanos() as f64 / checks.len() as f64;
    say(format!(
        "matching: {match_ns:.0} ns per read over {} reads ({hits} hits) against {} entries",
        checks.len(),
        store.hot_entry_count()
    ));
    drop(checks);
    drop(traffic);
    drop(store);

    // A fresh store for delivery: the matching run above stored alerts
    // that a server would re-send.
    let dir = base_dir.join("serve");
    let store = Store::open(&dir)?;
    load_lists(&store, &doj, &partial_csv, &admin, now)?;
    drop(doj);
    let (_, key) = bench_camera(&store, &admin, now)?;

    // 3. Delivery through the real server.
    let mut passwords = Vec::new();
    for i in 0..CLIENTS {
        let username = format!("officer{i:02}");
        let password = format!("bench-{username}-password");
        let secret = crate::demo::ready_user(
            &store,
            &username,
            &username,
            Role::Officer,
            &password,
            &admin,
            now,
        )?;
        passwords.push((username, password, secret));
    }
    drop(store);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let mut config = platekeeper_server::Config::new(dir.clone(), "127.0.0.1:0".parse()?);
    // Every client of the benchmark is on 127.0.0.1.
    config.net.max_connections_per_address = config.net.max_connections;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _ = rt.block_on(platekeeper_server::serve(config, move |a| {
            let _ = addr_tx.send(a);
        }));
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(120))
        .context("the server did not start")?;
    let base = format!("http://{addr}");
    say(format!("server on {base}; signing in {CLIENTS} officers …"));
    let received: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut last_token = String::new();
    for (username, password, secret) in passwords {
        let now_s = (crate::now_ms() / 1000) as u64;
        let code = platekeeper_store::credentials::totp_code(&secret, now_s).unwrap_or_default();
        let resp: serde_json::Value = ureq::post(&format!("{base}/api/v1/session"))
            .send_json(json!({"username": username, "password": password, "totp": code}))
            .with_context(|| format!("signing in {username}"))?
            .into_json()?;
        let token = resp["token"].as_str().context("no token")?.to_string();
        last_token = token.clone();
        let url = format!("{base}/api/v1/alerts/stream");
        let received = received.clone();
        let ready_tx = ready_tx.clone();
        std::thread::spawn(move || {
            let Ok(resp) = ureq::get(&url)
                .set("Authorization", &format!("Bearer {token}"))
                .call()
            else {
                return;
            };
            let _ = ready_tx.send(());
            for line in BufReader::new(resp.into_reader()).lines() {
                let Ok(line) = line else { return };

                if let Some(data) = line.strip_prefix("data:") {
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                        if let Some(p) = v["plate"].as_str() {
                            if let Ok(mut r) = received.lock() {
                                r.push((p.to_string(), at));
                            }
                        }
                    }
                }
            }
        });
    }
    for _ in 0..CLIENTS {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .context("a stream did not open")?;
    }
    say(format!(
        "posting {READS_PER_S} reads/s for {SECONDS} s, one in {HIT_EVERY} on the list …"
    ));
    let agent = ureq::agent();
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut n = 0usize;
    let mut hit_at = 0usize;
    let start = Instant::now();
    let batches = READS_PER_S / BATCH * SECONDS as usize;
    let mut late_batches = 0;
    let mut accepted = 0u64;
    for b in 0..batches {
        let due = start + Duration::from_secs_f64(b as f64 * BATCH as f64 / READS_PER_S as f64);
        match due.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => late_batches += 1,
        }
        let ts = crate::now_ms() - 1_000;
        let mut reads = Vec::with_capacity(BATCH);
        let mut hits_here = Vec::new();
        for k in 0..BATCH {
            n += 1;
            let plate = if n.is_multiple_of(HIT_EVERY) {
                hit_at += 1;
                let p = listed[hit_at * 7_919 % listed.len()].clone();
                hits_here.push(p.clone());
                p
            } else {
                plate_from(rng.next_u64()).0
            };
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
            reads.push(json!({
                "id": uuid::Builder::from_random_bytes(id).into_uuid().to_string(),
                "plate": plate,
                "state": "CA",
                // A camera's reads are milliseconds apart, not in one.
                "ts": format_time_ms(ts - k as i64),
            }));
        }
        let posted = Instant::now();
        for p in hits_here {
            sent.insert(p, posted);
        }
        let answer: serde_json::Value = agent
            .post(&format!("{base}/api/v1/reads"))
            .set("Authorization", &format!("Bearer {key}"))
            .send_json(json!({ "reads": reads }))
            .context("posting reads")?
            .into_json()?;
        accepted += answer["accepted"].as_u64().unwrap_or(0);
    }
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let stored: serde_json::Value = ureq::get(&format!("{base}/api/v1/alerts?limit=500"))
        .set("Authorization", &format!("Bearer {last_token}"))
        .call()
        .context("reading the stored alerts")?
        .into_json()?;
    let stored = stored["alerts"].as_array().map_or(0, Vec::len);
    let got = received.lock().map(|r| r.clone()).unwrap_or_default();
    let mut latencies: Vec<f64> = got
        .iter()
        .filter_map(|(p, at)| {
            sent.get(p)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1e3)
        })
        .collect();
    let expected = sent.len() * CLIENTS;

    say(format!(
        "{} deliveries of {expected} expected; {achieved:.0} reads/s achieved ({late_batches} batches late)",
        latencies.len()
    ));
    let figures = json!({
        "suite": "hotlists",
        "exact_entries": ENTRIES,
        "partial_entries": partial,
        "doj_import_s": round3(import_s),
        "match_ns_per_read": round3(match_ns),
        "match_reads": 1_000_000,
        "clients": CLIENTS,
        "reads_per_s_target": READS_PER_S,
        "reads_per_s_achieved": achieved.round(),
        "reads_accepted": accepted,
        "alerts_sent": sent.len(),
        "alerts_stored": stored,
        "deliveries": latencies.len(),
        "deliveries_expected": expected,
        "sse_p50_ms": round3(percentile(&mut latencies, 0.50)),
        "sse_p99_ms": round3(percentile(&mut latencies, 0.99)),
        "sse_max_ms": round3(latencies.iter().cloned().fold(0.0, f64::max)),
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{figures}");
    Ok(())
}

/// Creates the two lists and imports the DOJ file (timed) and the partial
/// plates; returns the DOJ import's seconds and the partial entries added.
fn load_lists(
    store: &Store,
    doj: &str,
    partial_csv: &str,
    admin: &Actor,
    now: i64,
) -> anyhow::Result<(f64, usize)> {
    let mut import_s = 0.0;
    let mut partial = 0;
    for (name, kind, retention_days, text, format, source) in [
        (
            "DOJ SVS",
            ListKind::StolenVehicle,
            7,
            doj,
            Format::Doj,
            "svs",
        ),
        (
            "Partial plates",
            ListKind::Agency,
            30,
            partial_csv,
            Format::Csv,
            "witness",
        ),
    ] {
        let list = store.create_hotlist(
            NewHotList {
                name: name.into(),
                kind,
                retention_days,
                fuzzy: false,
            },
            admin,
            now,
        )?;
        // Timed as the import endpoint runs it: parse, store, index.
        let started = Instant::now();
        let ctx = import::Context {
            kind,
            fuzzy: false,
            retention_days,
            now_ms: now,
            max_expiry_ms: now + retention_days * 86_400_000,
        };
        let parsed = import::parse(format, text, &ctx);
        let report = store.import_hotlist(list.id, file_of(source, format), parsed, admin, now)?;
        if format == Format::Doj {
            import_s = started.elapsed().as_secs_f64();
            if report.added != ENTRIES {
                bail!(
                    "the import added {} entries, not {ENTRIES}: {:?}",
                    report.added,
                    report.refused
                );
            }
        } else {
            partial = report.added;
        }
    }
    Ok((import_s, partial))
}

fn bench_camera(
    store: &Store,
    admin: &Actor,
    now: i64,
) -> anyhow::Result<(platekeeper_store::Camera, String)> {
    Ok(store.create_camera(
        NewCamera {
            id: "bench-cam".into(),
            name: "Bench camera".into(),
            kind: CameraKind::Fixed,
            position: Some(GeoPoint::new(37.8044, -122.2712)?),
        },
        admin,
        now,
    )?)
}

fn file_of(source: &str, format: Format) -> ImportFile<'_> {
    ImportFile {
        source,
        format,
        sha256: "generated by the benchmark",
        replace_all: false,
    }
}

fn synthetic_read(i: u64, plate: &str, state: &str, ts: i64) -> RawRead {
    RawRead {
        id: Some(uuid::Uuid::from_u64_pair(0xB3C4, i).to_string()),
        plate: Some(plate.to_string()),
        state: Some(state.to_string()),
        ts: Some(TimeInput::EpochMs(ts)),
        ..RawRead::default()
    }
}

/// Removes the benchmark's data folder however the run ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
