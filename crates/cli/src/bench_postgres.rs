//! `bench --suite postgres --database URL --reads N` (issue 25): the
//! PostgreSQL backend's reads and audit log, through the code the store
//! uses (`platekeeper_store::postgres`), on an empty database of its own.
//! Measured: durable ingest, bytes per read (`pg_total_relation_size` of
//! every day partition: table, indexes, TOAST), the exact search, and the
//! exact search with both of its access-log entries committed.

use std::time::Instant;

use anyhow::{bail, Context};
use platekeeper_core::{Area, GeoPoint, Plate, PlatePattern};
use platekeeper_store::log::NewEntry;
use platekeeper_store::postgres::{self as pg, reads::PgRead, DatabaseUrl};
use platekeeper_store::search::MAX_PATTERN_CANDIDATES;
use platekeeper_store::CameraKind;

use crate::bench::{peak_rss_mb, percentile, round3};
use crate::synthetic::{self, ReadGenerator, Rng};

const SAMPLE: usize = 4_096;

pub fn run(
    json: bool,
    database: Option<&str>,
    reads: u64,
    batch: usize,
    queries: usize,
    seed: u64,
    days: i64,
) -> anyhow::Result<()> {
    let url = DatabaseUrl::from_option_or_env(database)?.context(
        "--suite postgres needs --database postgres://… (or PLATEKEEPER_DATABASE): an empty database of its own",
    )?;
    let (pool, _) = pg::open(&url)?;
    let mut conn = pool.get()?;
    let present: i64 = conn
        .query_one("SELECT count(*) FROM reads", &[])
        .map_err(|e| pool.error(e))?
        .get(0);
    if present > 0 {
        bail!(
            "{url} already holds {present} reads: the benchmark needs an empty database of its own"
        );
    }

    let end_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let cameras: Vec<(u32, platekeeper_store::NewCamera)> = synthetic::cameras(seed)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u32 + 1, c))
        .collect();
    let homes: std::collections::HashMap<u32, (String, Option<(i32, i32)>)> = cameras
        .iter()
        .map(|(num, c)| {
            let home = platekeeper_store::cameras::home_micro(c.kind, c.position);
            (*num, (c.id.clone(), home))
        })
        .collect();
    // Fixed cameras in number order: the canvass centres.
    let fixed: Vec<(u32, GeoPoint)> = cameras
        .iter()
        .filter(|(_, c)| c.kind == CameraKind::Fixed)
        .filter_map(|(n, c)| c.position.map(|p| (*n, p)))
        .collect();
    let mut gen = ReadGenerator::new(seed, reads, end_ms, days.max(1), cameras);
    let mut sample = synthetic::Reservoir::new(SAMPLE, seed ^ 0x5A3F);
    let days_cache = pg::reads::Days::default();
    let mut seen = 0u64;
    let mut ingest_s = 0.0;
    let wall = Instant::now();
    let mut current_day = i32::MIN;
    let (tx, rx) = std::sync::mpsc::channel::<i32>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Finished days are compacted beside ingest, as the server would.
        let pool_ref = &pool;
        let sealer = scope.spawn(move || -> anyhow::Result<()> {
            let pool = pool_ref;
            let mut c = pool.get()?;
            while let Ok(day) = rx.recv() {
                pg::reads::seal_day(&mut c, day).map_err(|e| pool.error(e))?;
            }
            Ok(())
        });
        loop {
            let mut packed = Vec::with_capacity(batch);
            // Days finished by this batch: compacted once it is stored.
            let mut finished = Vec::new();
            for (num, raw) in gen.by_ref().take(batch) {
                let (camera, home) = homes.get(&num).context("unknown camera")?;
                let read = raw
                    .validate(end_ms, camera)
                    .map_err(|e| anyhow::anyhow!("a synthetic read was refused: {e}"))?;
                seen += 1;
                let p = PgRead::pack(num, *home, &read).context("a read without a position")?;
                sample.offer(|| (p.plate, p.ts_ms));
                let day = platekeeper_store::partition::day_of(p.ts_ms);
                if day > current_day {
                    if current_day != i32::MIN {
                        finished.push(current_day);
                    }
                    current_day = day;
                }
                packed.push(p);
            }
            if packed.is_empty() {
                break;
            }
            let t = Instant::now();
            let st = pg::reads::ingest(&mut conn, &days_cache, &packed, i32::MIN)
                .map_err(|e| pool.error(e))?;
            ingest_s += t.elapsed().as_secs_f64();
            for day in finished {
                let _ = tx.send(day);
            }
            if let Some(bad) = st
                .iter()
                .find(|s| **s != platekeeper_store::IngestStatus::Accepted)
            {
                bail!("a synthetic read was not accepted: {bad:?}");
            }
            if !json && seen % 1_000_000 < batch as u64 {
                eprintln!("ingested {seen} reads");
            }
        }
        drop(tx);
        sealer
            .join()
            .map_err(|_| anyhow::anyhow!("the sealing thread panicked"))??;
        Ok(())
    })?;
    let wall_s = wall.elapsed().as_secs_f64();
    let sample = sample.into_items();
    if sample.is_empty() {
        bail!("no reads were generated (--reads 0?)");
    }
    let mut rng = Rng::new(seed ^ 0xBE4C);
    conn.batch_execute("VACUUM (ANALYZE) reads")
        .map_err(|e| pool.error(e))?;
    let bytes = pg::reads::bytes(&mut *conn).map_err(|e| pool.error(e))?;

    // The exact search: a plate's reads over the 30 days, 100 at most.
    let from = end_ms - days.max(1) * 86_400_000;
    let mut exact_ms = Vec::with_capacity(queries);
    let mut logged_ms = Vec::with_capacity(queries);
    let mut results = 0usize;
    for q in 0..queries * 2 {
        let (plate, _) = sample[rng.below(sample.len() as u64) as usize];
        if q < queries {
            let t = Instant::now();
            let found = pg::reads::exact(&mut *conn, plate, from, end_ms, 100)
                .map_err(|e| pool.error(e))?;
            exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
            results += found.len();
        } else {
            // With the access's two log entries, each committed before
            // the step after it (the search's, then the release's).
            let t = Instant::now();
            let mut txn = conn.transaction().map_err(|e| pool.error(e))?;
            pg::log::append(&mut txn, entry("search", plate, end_ms)).map_err(|e| pool.error(e))?;
            txn.commit().map_err(|e| pool.error(e))?;
            let found = pg::reads::exact(&mut *conn, plate, from, end_ms, 100)
                .map_err(|e| pool.error(e))?;
            let mut txn = conn.transaction().map_err(|e| pool.error(e))?;
            pg::log::append(&mut txn, entry("released", found.len() as i64, end_ms))
                .map_err(|e| pool.error(e))?;
            txn.commit().map_err(|e| pool.error(e))?;
            logged_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    // The pattern searches: the plate dictionary (rebuilt from the
    // database, as a node does at start) finds the plates, then their
    // reads come from the (plate, ts) index; patterns made as in the
    // embedded benchmark.
    let (dictionary_s, dictionary) = {
        let t = Instant::now();
        let mut d = platekeeper_store::dictionary::PlateDictionary::default();
        pg::reads::load_dictionary(&mut *conn, &mut d).map_err(|e| pool.error(e))?;
        (t.elapsed().as_secs_f64(), d)
    };
    let mut pattern_figures = serde_json::Map::new();
    for kind in ["wildcard", "substring", "fuzzy"] {
        let mut times = Vec::with_capacity(queries);
        let mut results = 0usize;
        let mut refused = 0usize;
        for _ in 0..queries {
            let (code, _) = sample[rng.below(sample.len() as u64) as usize];
            let plate = Plate::from_code(code).context("a sampled plate code")?;
            let p = plate.as_str();
            let pattern = match kind {
                "wildcard" => {
                    PlatePattern::parse(&format!("{}?{}*", &p[..3], &p[4..6.min(p.len())]), false)?
                }
                "substring" => PlatePattern::parse(&format!("*{}*", &p[..3]), false)?,
                _ => PlatePattern::exact(&plate, true),
            };
            let t = Instant::now();
            let found = dictionary.matching(&pattern, MAX_PATTERN_CANDIDATES);
            if found.len() > MAX_PATTERN_CANDIDATES {
                refused += 1;
                continue;
            }
            let reads = pg::reads::of_spans(&mut *conn, &found, from, end_ms, 100)
                .map_err(|e| pool.error(e))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            results += reads.len();
        }
        let n = times.len().max(1);
        pattern_figures.insert(
            format!("{kind}_p50_ms"),
            round3(percentile(&mut times.clone(), 0.5)).into(),
        );
        pattern_figures.insert(
            format!("{kind}_p99_ms"),
            round3(percentile(&mut times, 0.99)).into(),
        );
        pattern_figures.insert(format!("{kind}_mean_results"), (results / n).into());
        pattern_figures.insert(format!("{kind}_refused"), refused.into());
    }

    // Canvass: 500 m around a camera in the hour before a sampled read;
    // the candidates (reads of the cameras inside, and reads with a
    // position of their own) are kept if they lie in the circle.
    let mut canvass_ms = Vec::with_capacity(queries);
    let mut canvass_results = 0usize;
    for _ in 0..queries {
        let (_, ts) = sample[rng.below(sample.len() as u64) as usize];
        let (_, center) = fixed[rng.below(fixed.len() as u64) as usize];
        let area = Area::circle(center, 500.0)?;
        let t = Instant::now();
        let inside: Vec<i64> = fixed
            .iter()
            .filter(|(_, p)| area.contains(*p))
            .map(|(n, _)| *n as i64)
            .collect();
        let (candidates, more) = pg::reads::in_window(
            &mut *conn,
            ts - 3_600_000,
            ts,
            &inside,
            pg::reads::MAX_CANVASS_CANDIDATES,
        )
        .map_err(|e| pool.error(e))?;
        if more {
            bail!(
                "a one-hour canvass had more than {} candidates",
                pg::reads::MAX_CANVASS_CANDIDATES
            );
        }
        let kept = candidates
            .iter()
            .filter(|r| {
                let home = homes.get(&r.camera()).and_then(|(_, h)| *h);
                r.position_micro(home).is_some_and(|(lat, lon)| {
                    GeoPoint::new(lat as f64 / 1e6, lon as f64 / 1e6)
                        .map(|p| area.contains(p))
                        .unwrap_or(false)
                })
            })
            .count();
        canvass_ms.push(t.elapsed().as_secs_f64() * 1e3);
        canvass_results += kept;
    }
    pattern_figures.insert(
        "canvass_p50_ms".into(),
        round3(percentile(&mut canvass_ms.clone(), 0.5)).into(),
    );
    pattern_figures.insert(
        "canvass_p99_ms".into(),
        round3(percentile(&mut canvass_ms, 0.99)).into(),
    );
    pattern_figures.insert(
        "canvass_mean_results".into(),
        (canvass_results / queries.max(1)).into(),
    );
    pattern_figures.insert("dictionary_load_s".into(), round3(dictionary_s).into());
    pattern_figures.insert("distinct_plates".into(), dictionary.len().into());

    let verify = pg::log::verify(&mut conn, None).map_err(|e| pool.error(e))?;
    if !verify.ok {
        bail!("the benchmark's audit log failed its check: {verify:?}");
    }
    let figures = serde_json::json!({
        "backend": "postgres",
        "database": url.to_string(),
        "reads": seen,
        "batch": batch,
        "ingest_reads_per_s": (seen as f64 / ingest_s).round(),
        "ingest_wall_s": round3(wall_s),
        "bytes": bytes,
        "bytes_per_read": round3(bytes as f64 / seen.max(1) as f64),
        "queries_per_kind": queries,
        "exact_p50_ms": round3(percentile(&mut exact_ms.clone(), 0.5)),
        "exact_p99_ms": round3(percentile(&mut exact_ms, 0.99)),
        "exact_mean_results": results / queries.max(1),
        "exact_with_log_p50_ms": round3(percentile(&mut logged_ms.clone(), 0.5)),
        "exact_with_log_p99_ms": round3(percentile(&mut logged_ms, 0.99)),
        "log_entries_verified": verify.entries,
        "peak_rss_mb": peak_rss_mb(),
    });
    let mut figures = figures;
    if let Some(map) = figures.as_object_mut() {
        map.extend(pattern_figures);
    }
    if !json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    }
    println!("{figures}");
    Ok(())
}

fn entry(kind: &str, detail: i64, ts_ms: i64) -> NewEntry {
    NewEntry {
        ts_ms,
        category: "access",
        kind: kind.into(),
        username: "bench".into(),
        affiliation: "Benchmark".into(),
        role: Some("analyst".into()),
        client: None,
        details: serde_json::json!({ "n": detail }),
        purpose: Some(serde_json::json!({ "case": "BENCH-1" })),
    }
}
