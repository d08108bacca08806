//! `bench --suite postgres --database URL --reads N` (issue 25): the
//! PostgreSQL backend's reads and audit log, through the code the store
//! uses (`platekeeper_store::postgres`), on an empty database of its own.
//! Measured: durable ingest, bytes per read (`pg_total_relation_size` of
//! every day partition: table, indexes, TOAST), the exact search, and the
//! exact search with both of its access-log entries committed.

use std::time::Instant;

use anyhow::{bail, Context};
use platekeeper_store::log::NewEntry;
use platekeeper_store::postgres::{self as pg, reads::PgRead, DatabaseUrl};
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
            let home = match c.kind {
                CameraKind::Fixed => c.position.map(|p| p.to_micro()),
                CameraKind::Mobile => None,
            };
            (*num, (c.id.clone(), home))
        })
        .collect();
    let mut gen = ReadGenerator::new(seed, reads, end_ms, days.max(1), cameras);
    let mut rng = Rng::new(seed ^ 0x5A3F);
    let mut sample: Vec<(i64, i64)> = Vec::with_capacity(SAMPLE);
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
                let slot = if sample.len() < SAMPLE {
                    Some(sample.len())
                } else {
                    let j = rng.below(seen) as usize;
                    (j < SAMPLE).then_some(j)
                };
                let p = PgRead::pack(num, *home, &read).context("a read without a position")?;
                if let Some(slot) = slot {
                    if slot == sample.len() {
                        sample.push((p.plate, p.ts_ms));
                    } else {
                        sample[slot] = (p.plate, p.ts_ms);
                    }
                }
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
