//! `platekeeper bench --reads N [--json]`: builds a store of N synthetic
//! reads through the real ingest path, then times the real searches.
//!
//! Ingest goes through `accept_batch`, the function behind
//! `POST /api/v1/reads` and the CSV import (validation, durable batch
//! commit, dictionary update); only HTTP and JSON decoding are left out.
//! Searches go through `Store::search` under a logged access, as the
//! search endpoint does.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use platekeeper_core::{Area, GeoPoint, Plate, PlatePattern, Purpose};
use platekeeper_server::ingest::{accept_batch, Candidate};
use platekeeper_store::{Access, AccessKind, AccessRequest, Camera, ReadQuery, Store};
use serde_json::json;

use crate::now_ms;
use crate::synthetic::{self, ReadGenerator, Rng};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Reads to generate and ingest.
    #[arg(long, default_value_t = 1_000_000)]
    reads: u64,
    /// Print only the JSON figures (the last line is JSON either way).
    #[arg(long)]
    json: bool,
    /// Where to build the store (default: a temporary folder, removed).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Keep the data folder afterwards.
    #[arg(long)]
    keep: bool,
    /// Measure the queries only, on the store an earlier `bench --data DIR`
    /// built and kept (with the read sample it saved beside it), so a
    /// query's tail can be studied without a new bulk load. Ingest, size,
    /// sign-in and purge figures are left out; the store is not changed
    /// except for the access log.
    #[arg(long, requires = "data")]
    reuse: bool,
    /// Reads per ingest batch (one durable commit each).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Queries of each kind.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Days the reads span (ending now). With fewer days the same number
    /// of reads is denser per day: a quick stand-in for a larger store's
    /// per-day figures (exact, canvass), not for its dictionary.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// `reads` (the read store: ingest, search, size), `hotlists`
    /// (import, matching cost, alert delivery over SSE), `audit` (the
    /// quarterly report over `--reads` log entries) or `evidence` (the
    /// package of a hold of `--reads` reads with pictures, at most 10,000)
    /// or `tls` (an exact search over HTTP, HTTPS and HTTPS with the
    /// device check, kept and new connections, on `--reads` reads) or
    /// `postgres` (the PostgreSQL backend's ingest, size, exact search and
    /// audit log, on the empty database --database names) or `cluster`
    /// (ingest through one and two `serve` nodes, and alert delivery
    /// across nodes, on the empty database --database names).
    #[arg(long, default_value = "reads")]
    suite: String,
    /// Measure only these query kinds (exact, wildcard, substring, fuzzy,
    /// canvass), comma-separated; for studying one kind's tail.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds to stay idle before the second (warm) pass, as a server
    /// sits between searches at night: shows what the machine keeps in
    /// memory for a process that is not touching it.
    #[arg(long, default_value_t = 0)]
    idle_s: u64,
    /// Encrypt the store at rest (issue 24): under the key given with
    /// --key-file or PLATEKEEPER_DATA_KEY, else under a throwaway key.
    #[arg(long)]
    encrypt: bool,
    /// The key of an encrypted store (needed with --reuse).
    #[command(flatten)]
    key: crate::keys::KeyArgs,
}

impl BenchArgs {
    /// The key the benchmark's store is opened with, if any.
    fn data_key(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<platekeeper_store::at_rest::DataKey>>> {
        match self.key.load()? {
            Some(k) => Ok(Some(k)),
            None if self.encrypt => Ok(Some(std::sync::Arc::new(
                platekeeper_store::at_rest::DataKey::generate()?,
            ))),
            None => Ok(None),
        }
    }
}

const SAMPLE: usize = 4_096;
/// The measured query kinds, in the order they run.
const QUERY_KINDS: [&str; 5] = ["exact", "wildcard", "substring", "fuzzy", "canvass"];
/// Where a kept store's read sample is saved for `--reuse`.
const SAMPLE_FILE: &str = "bench-sample.tsv";

/// What the measured queries draw from: a store built now, or one reused.
enum Ingested {
    Built {
        sample: Vec<(String, i64)>,
        ingest_s: f64,
        wall_s: f64,
    },
    Reused(Vec<(String, i64)>),
}

impl Ingested {
    fn sample(&self) -> &[(String, i64)] {
        match self {
            Ingested::Built { sample, .. } | Ingested::Reused(sample) => sample,
        }
    }
}

/// Saves the sample a kept store's queries are drawn from: the first line
/// is the build's end time, then one `PLATE<TAB>TS` line per read.
fn write_sample(path: &std::path::Path, end: i64, sample: &[(String, i64)]) -> anyhow::Result<()> {
    let mut text = format!("{end}\n");
    for (plate, ts) in sample {
        text.push_str(&format!("{plate}\t{ts}\n"));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn read_sample(path: &std::path::Path) -> anyhow::Result<(i64, Vec<(String, i64)>)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (only a store built by `bench --data DIR` can be reused)",
            path.display()
        )
    })?;
    let mut lines = text.lines();
    let end = lines
        .next()
        .and_then(|l| l.parse().ok())
        .with_context(|| format!("{}: the first line must be the end time", path.display()))?;
    let mut sample = Vec::new();
    for (i, line) in lines.enumerate() {
        let (plate, ts) = line
            .split_once('\t')
            .and_then(|(p, t)| Some((p.to_string(), t.parse().ok()?)))
            .with_context(|| format!("{}: line {} is not PLATE<TAB>TS", path.display(), i + 2))?;
        sample.push((plate, ts));
    }
    if sample.is_empty() {
        bail!("{} holds no reads", path.display());
    }
    Ok((end, sample))
}

pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Peak resident memory of this process, from the kernel.
/// CPU seconds (user and system) this process has used so far, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks).
fn cpu_s() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name may hold spaces; the fields after it do not.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Registers the synthetic cameras; returns them with their numbers.
pub fn register_cameras(store: &Store, seed: u64, now: i64) -> anyhow::Result<Vec<Camera>> {
    synthetic::cameras(seed)
        .into_iter()
        .map(|c| {
            Ok(store
                .create_camera(c, &platekeeper_store::Actor::system("synthetic-data"), now)?
                .0)
        })
        .collect()
}

/// Generates `n` reads and ingests them in batches; calls `progress` after
/// each batch with the count so far. Returns seconds spent in ingest and a
/// frequency-weighted sample of (plate, time) from the reads.
///
/// As in the server, finished days are sealed by a second thread while
/// ingest goes on: when the reads move into a new day, the days before it
/// are sealed. So ingest is measured in its steady state, sharing the
/// machine with sealing, and memory holds one open day, not thirty.
#[allow(clippy::too_many_arguments)]
pub fn fill(
    store: &Store,
    cameras: &[Camera],
    n: u64,
    seed: u64,
    batch: usize,
    end_ms: i64,
    days: i64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(f64, Vec<(String, i64)>)> {
    let pairs = cameras
        .iter()
        .map(|c| {
            (
                c.num,
                platekeeper_store::NewCamera {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    kind: c.kind,
                    position: c.position,
                },
            )
        })
        .collect();
    let by_num: std::collections::HashMap<u32, &Camera> =
        cameras.iter().map(|c| (c.num, c)).collect();
    let mut gen = ReadGenerator::new(seed, n, end_ms, days.max(1), pairs);
    // Reservoir sampling keeps every read equally likely.
    let mut sample = synthetic::Reservoir::new(SAMPLE, seed ^ 0x5A3F);
    let mut ingest_s = 0.0;
    let mut done = 0u64;
    let (tx, rx) = std::sync::mpsc::channel::<i64>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let sealer = scope.spawn(move || -> anyhow::Result<()> {
            while let Ok(mut now) = rx.recv() {
                // Catch up to the latest day change only.
                while let Ok(later) = rx.try_recv() {
                    now = later;
                }
                store.seal_finished_days(now)?;
            }
            Ok(())
        });
        let mut current_day = i64::MIN;
        loop {
            let mut candidates = Vec::with_capacity(batch);
            for (num, raw) in gen.by_ref().take(batch) {
                sample.offer(|| {
                    let ts = match &raw.ts {
                        Some(platekeeper_core::read::TimeInput::EpochMs(t)) => *t,
                        _ => 0,
                    };
                    (raw.plate.clone().unwrap_or_default(), ts)
                });
                if let Some(platekeeper_core::read::TimeInput::EpochMs(t)) = &raw.ts {
                    let day = t.div_euclid(86_400_000);
                    // Late reads from offline units do not move the clock back.
                    if day > current_day {
                        if current_day != i64::MIN {
                            let _ = tx.send(day * 86_400_000);
                        }
                        current_day = day;
                    }
                }
                let camera = by_num
                    .get(&num)
                    .map(|c| (*c).clone())
                    .context("generator named an unknown camera")?;
                candidates.push(Candidate {
                    index: candidates.len(),
                    camera,
                    raw: Ok(raw),
                });
            }
            if candidates.is_empty() {
                break;
            }
            let count = candidates.len() as u64;
            let t = Instant::now();
            let report = accept_batch(store, candidates, end_ms)?.report;
            ingest_s += t.elapsed().as_secs_f64();
            if !report.rejected.is_empty() {
                bail!("synthetic reads were rejected: {:?}", &report.rejected[..1]);
            }
            done += count;
            progress(done);
        }
        drop(tx);
        sealer
            .join()
            .map_err(|_| anyhow::anyhow!("the sealing thread panicked"))??;
        Ok(())
    })?;
    Ok((ingest_s, sample.into_items()))
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed().as_secs_f64() * 1e3, v)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite.as_str() {
        "reads" => {}
        "hotlists" => return crate::bench_hotlists::run(args.json, args.seed),
        "audit" => return crate::bench_audit::run(args.json, args.seed, args.reads),
        "evidence" => return crate::bench_evidence::run(args.json, args.seed, args.reads),
        "tls" => return crate::bench_tls::run(args.json, args.reads, args.queries),
        "postgres" => {
            return crate::bench_postgres::run(
                args.json,
                args.key.database.as_deref(),
                args.reads,
                args.batch,
                args.queries,
                args.seed,
                args.days,
            )
        }
        "cluster" => {
            return crate::bench_cluster::run(args.json, args.key.database.as_deref(), args.seed)
        }
        other => {
            bail!("--suite {other:?} must be reads, hotlists, audit, evidence, tls, postgres or cluster")
        }
    }
    let data_key = args.data_key()?;
    // Checked before a bulk load that may take minutes.
    if let Some(k) = args
        .only
        .iter()
        .find(|k| !QUERY_KINDS.contains(&k.as_str()))
    {
        bail!(
            "--only {k:?}: the query kinds are {}",
            QUERY_KINDS.join(", ")
        );
    }
    let (dir, temp) = match &args.data {
        Some(d) if args.reuse => (d.clone(), false),
        Some(d) => {
            if d.join("reads.db").exists() {
                bail!(
                    "{} already holds a store; give an empty folder",
                    d.display()
                );
            }
            (d.clone(), false)
        }
        None => {
            let d = std::env::temp_dir().join(format!("platekeeper-bench-{}", std::process::id()));
            (d, !args.keep)
        }
    };
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let sample_file = dir.join(SAMPLE_FILE);
    let (store, end, ingest) = if args.reuse {
        let (end, sample) = read_sample(&sample_file)?;
        let store = crate::keys::open_in(&dir, data_key.clone(), args.key.database()?)?;
        say(format!(
            "measuring queries on the store in {} ({} reads)",
            dir.display(),
            store.read_count()?
        ));
        (store, end, Ingested::Reused(sample))
    } else {
        let end = now_ms();
        let store = crate::keys::open_in(&dir, data_key.clone(), args.key.database()?)?;
        let cameras = register_cameras(&store, args.seed, end)?;
        say(format!(
            "ingesting {} synthetic reads into {} …",
            args.reads,
            dir.display()
        ));
        let step = (args.reads / 20).max(1);
        let started = Instant::now();
        let (ingest_s, sample) = fill(
            &store,
            &cameras,
            args.reads,
            args.seed,
            args.batch,
            end,
            args.days,
            |done| {
                if done % step < args.batch as u64 {
                    say(format!(
                        "  {done} reads, {:.0} s, peak RSS {:.0} MiB",
                        started.elapsed().as_secs_f64(),
                        peak_rss_mb()
                    ));
                }
            },
        )?;
        let wall_s = started.elapsed().as_secs_f64();
        // What the server's periodic job does: compact every finished day.
        let (seal_ms, sealed) = timed(|| store.seal_finished_days(end));
        let sealed = sealed?.len();
        say(format!(
            "sealed {sealed} finished days in {:.1} s",
            seal_ms / 1e3
        ));
        if !temp {
            write_sample(&sample_file, end, &sample)?;
        }
        (
            store,
            end,
            Ingested::Built {
                sample,
                ingest_s,
                wall_s,
            },
        )
    };
    let sample = ingest.sample();
    let cameras = store.cameras();
    let bytes = store.database_bytes();
    let mut rng = Rng::new(args.seed ^ 0xBE4C);
    let pick = |rng: &mut Rng| sample[rng.below(sample.len() as u64) as usize].clone();
    let q = args.queries.max(1);
    let base = ReadQuery {
        limit: 100,
        ..ReadQuery::default()
    };
    type Maker<'a> = Box<dyn FnMut(&mut Rng) -> anyhow::Result<ReadQuery> + 'a>;
    let mut kinds: Vec<(&str, Maker)> = vec![
        (
            "exact",
            Box::new(|r: &mut Rng| {
                let (p, _) = pick(r);
                Ok(ReadQuery {
                    plate: Some(PlatePattern::exact(&Plate::parse(&p)?, false)),
                    ..base.clone()
                })
            }),
        ),
        (
            "wildcard",
            Box::new(|r: &mut Rng| {
                // `7AB?12*`-like.
                let (p, _) = pick(r);
                let pat = format!("{}?{}*", &p[..3], &p[4..6.min(p.len())]);
                Ok(ReadQuery {
                    plate: Some(PlatePattern::parse(&pat, false)?),
                    ..base.clone()
                })
            }),
        ),
        (
            "substring",
            Box::new(|r: &mut Rng| {
                // `*4KX*`-like: the first three characters, which on a
                // California plate are a digit and two letters.
                let (p, _) = pick(r);
                let pat = format!("*{}*", &p[..3]);
                Ok(ReadQuery {
                    plate: Some(PlatePattern::parse(&pat, false)?),
                    ..base.clone()
                })
            }),
        ),
        (
            "fuzzy",
            Box::new(|r: &mut Rng| {
                let (p, _) = pick(r);
                Ok(ReadQuery {
                    plate: Some(PlatePattern::exact(&Plate::parse(&p)?, true)),
                    ..base.clone()
                })
            }),
        ),
        (
            "canvass",
            Box::new(|r: &mut Rng| {
                // 500 m around a camera, in the hour before a sampled read.
                let (_, ts) = pick(r);
                let cam = &cameras[r.below(cameras.len() as u64) as usize];
                let center = cam
                    .position
                    .unwrap_or_else(|| synthetic::point_near(r, synthetic::CENTER, 20_000.0));
                Ok(ReadQuery {
                    area: Some(Area::circle(GeoPoint::new(center.lat, center.lon)?, 500.0)?),
                    from_ms: Some(ts - 3_600_000),
                    to_ms: Some(ts),
                    limit: 1000,
                    ..ReadQuery::default()
                })
            }),
        ),
    ];
    if !args.only.is_empty() {
        kinds.retain(|(name, _)| args.only.iter().any(|k| k == name));
    }
    // Two passes of fresh random queries: the first right after the bulk
    // load (files and connections cold), the second as a running server
    // sees them. Both are reported.
    let mut passes: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let mut errors = serde_json::Map::new();
    for pass in 0..2 {
        if pass == 1 && args.idle_s > 0 {
            say(format!("idle for {} s before the second pass", args.idle_s));
            std::thread::sleep(std::time::Duration::from_secs(args.idle_s));
        }
        let mut figs = serde_json::Map::new();
        for (kind, make) in kinds.iter_mut() {
            let mut times = Vec::with_capacity(q);
            let mut results = 0usize;
            let mut failed = 0usize;
            let mut found_all = Vec::with_capacity(q);
            for _ in 0..q {
                let query = make(&mut rng)?;
                // The query alone, without its log entry (that is
                // `exact_with_log` below): the data stays sealed until
                // the pass ends, so the queries run back to back as
                // before issue 28, with no commit between them.
                let access = bench_access(json!({"bench": kind}))?;
                let (ms, page) = timed(|| store.search(&access, &query));
                match page {
                    Ok(found) => {
                        found_all.push((access, found));
                        times.push(ms);
                    }
                    // A refused query (say, a pattern too broad) is counted
                    // and reported, not fatal.
                    Err(e) => {
                        failed += 1;
                        if failed == 1 {
                            eprintln!("{kind} query refused: {e}");
                        }
                    }
                }
            }
            // Counted once released (untimed): sealed data shows nothing,
            // not even how much.
            for (access, found) in found_all {
                results += store.release(access, found, end)?.value().reads.len();
            }
            if failed > 0 {
                errors.insert(kind.to_string(), json!(failed));
            }
            figs.insert(
                format!("{kind}_p50_ms"),
                json!(round3(percentile(&mut times, 0.50))),
            );
            figs.insert(
                format!("{kind}_p99_ms"),
                json!(round3(percentile(&mut times, 0.99))),
            );
            figs.insert(format!("{kind}_mean_results"), json!(results / q));
            if pass == 1 {
                // As the search endpoint runs a first page: with the total
                // count (issue 23 item 7), which reads the pages after it.
                let mut counted = Vec::with_capacity(q);
                let mut totals = 0usize;
                let mut found_all = Vec::with_capacity(q);
                for _ in 0..q {
                    let query = make(&mut rng)?;
                    let access = bench_access(json!({"bench": kind, "counted": true}))?;
                    let (ms, page) = timed(|| {
                        store
                            .plan(query)
                            .and_then(|p| store.run(&access, &p.count_total()))
                    });
                    if let Ok(found) = page {
                        found_all.push((access, found));
                        counted.push(ms);
                    }
                }
                for (access, found) in found_all {
                    let released = store.release(access, found, end)?;
                    totals += released.value().total.map_or(0, |t| t.count);
                }
                figs.insert(
                    format!("{kind}_counted_p50_ms"),
                    json!(round3(percentile(&mut counted, 0.50))),
                );
                figs.insert(
                    format!("{kind}_counted_p99_ms"),
                    json!(round3(percentile(&mut counted, 0.99))),
                );
                figs.insert(
                    format!("{kind}_mean_total"),
                    json!(totals / counted.len().max(1)),
                );
            }
        }
        passes.push(figs);
    }
    // The search endpoint's whole store path, as a person's exact plate
    // search costs minus HTTP: one searcher, then several at once.
    let mut logged_ms = Vec::with_capacity(q);
    for _ in 0..q {
        let (p, _) = pick(&mut rng);
        let (ms, r) = timed(|| lawful_exact(&store, &p, end));
        r?;
        logged_ms.push(ms);
    }
    let mut concurrent = serde_json::Map::new();
    for threads in [1usize, 4, 16] {
        let figs = bench_concurrent(&store, sample, end, threads, q.max(200) * 2, args.seed)?;
        say(format!("{threads} concurrent searchers: {figs}"));
        concurrent.insert(threads.to_string(), figs);
    }
    let reads = store.read_count()?;
    let mut figures = json!({
        "exact_with_log_p50_ms": round3(percentile(&mut logged_ms, 0.50)),
        "exact_with_log_p99_ms": round3(percentile(&mut logged_ms, 0.99)),
        "reads": reads,
        "distinct_plates": store.distinct_plates(),
        "queries_per_kind": q,
        "refused_queries": errors,
        "lawful_concurrent": concurrent,
        "peak_rss_mb": peak_rss_mb().round(),
        "encrypted": store.encryption_key_id().is_some(),
    });
    if let Ingested::Built {
        ingest_s, wall_s, ..
    } = ingest
    {
        let (login_p50, login_p99) = bench_login(&store, end)?;
        figures["login_p50_ms"] = json!(round3(login_p50));
        figures["login_p99_ms"] = json!(round3(login_p99));
        figures["ingest_reads_per_s"] = json!((args.reads as f64 / ingest_s).round());
        figures["ingest_wall_s"] = json!((wall_s * 10.0).round() / 10.0);
        figures["batch"] = json!(args.batch);
        figures["days"] = json!(args.days);
        figures["bytes_per_read"] = json!(round3(bytes as f64 / reads.max(1) as f64));
        figures["database_bytes"] = json!(bytes);
        // Retention: the daily purge as it runs a day later, when the oldest
        // day has just passed a retention of `days` (R6.1). Its writer time is
        // the time any writer (main database, day map) was held. A kept
        // store is not purged: it stays whole for later `--reuse` runs.
        if temp {
            let mut policy = store.policy();
            policy.retention.reads_days = args.days.max(30);
            policy.retention.images_days = policy.retention.reads_days;
            let actor = platekeeper_store::Actor::system("bench");
            store.set_policy(policy, &actor, end)?;
            // Two days later: the oldest (partial) day and the first whole day go.
            let later = end + (args.days.max(30) - args.days + 2) * 86_400_000;
            let (ms, report) = timed(|| store.purge(later, false, &actor));
            let report = report?;
            say(format!(
                "purged {} reads ({} day files, {} plates seen only then) in {ms:.1} ms, writer held {:.1} ms",
                report.classes[0].count,
                report.days_removed.len(),
                report.plates_forgotten,
                report.writer_ms
            ));
            figures["purge_ms"] = json!(round3(ms));
            figures["purge_writer_ms"] = json!(round3(report.writer_ms));
            figures["purge_writer_longest_ms"] = json!(round3(report.writer_longest_ms));
            figures["purge_reads_removed"] = json!(report.classes[0].count);
            figures["purge_days_removed"] = json!(report.days_removed.len());
            figures["purge_plates_forgotten"] = json!(report.plates_forgotten);
            figures["distinct_plates_after_purge"] = json!(store.distinct_plates());
        }
    }
    // Headline figures from the warm pass; the cold pass under "cold".
    let mut passes = passes.into_iter();
    if let (Some(obj), Some(cold), Some(warm)) =
        (figures.as_object_mut(), passes.next(), passes.next())
    {
        obj.extend(warm);
        obj.insert("cold".into(), serde_json::Value::Object(cold));
    }
    drop(store);
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !args.json {
        eprintln!("{}", serde_json::to_string_pretty(&figures)?);
    }
    println!("{figures}");
    Ok(())
}

/// One exact plate search as the search endpoint runs it in the store:
/// plan, the search, its access entry made durable, the release.
fn lawful_exact(store: &Store, plate: &str, end: i64) -> anyhow::Result<usize> {
    let query = ReadQuery {
        plate: Some(PlatePattern::exact(&Plate::parse(plate)?, false)),
        limit: 100,
        ..ReadQuery::default()
    };
    let plan = store.plan(query)?;
    let access = bench_access(json!({"plate": plate}))?;
    let found = store.run(&access, &plan)?;
    let released = store.release(access, found, end)?;
    Ok(released.value().reads.len())
}

/// An access as the bench's searches make them.
fn bench_access(query: serde_json::Value) -> anyhow::Result<Access> {
    Ok(Access::new(AccessRequest {
        username: "bench".into(),
        affiliation: "platekeeper bench".into(),
        kind: AccessKind::Search,
        query,
        purpose: Purpose::new("BENCH-0001", "benchmark", "performance measurement")?,
        client: None,
        role: None,
    }))
}

/// `threads` searchers running [`lawful_exact`] at once, `total` searches
/// in all: searches per second, and each search's p50 / p99 while the
/// others run.
fn bench_concurrent(
    store: &Store,
    sample: &[(String, i64)],
    end: i64,
    threads: usize,
    total: usize,
    seed: u64,
) -> anyhow::Result<serde_json::Value> {
    let per = total.div_ceil(threads);
    let commits_before = store.log_commits()?;
    let cpu_before = cpu_s();
    let started = Instant::now();
    let times = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut rng = Rng::new(seed ^ 0xC0C0 ^ t as u64);
                    let mut times = Vec::with_capacity(per);
                    for _ in 0..per {
                        let (p, _) = &sample[rng.below(sample.len() as u64) as usize];
                        let (ms, r) = timed(|| lawful_exact(store, p, end));
                        r?;
                        times.push(ms);
                    }
                    Ok(times)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(per * threads);
        for w in workers {
            let times = w
                .join()
                .map_err(|_| anyhow::anyhow!("a bench searcher panicked"))??;
            all.extend(times);
        }
        anyhow::Ok(all)
    })?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_s() - cpu_before;
    let commits = store.log_commits()?;
    let mut times = times;
    Ok(json!({
        "searches": times.len(),
        // Durable commits the searches' entries took: fewer than the
        // searches when concurrent searches shared commits.
        "commits": commits.commits - commits_before.commits,
        // CPU time (all threads) per search: with `per_s`, shows whether
        // the two cores or the disk set the ceiling.
        "cpu_ms_per_search": round3(cpu * 1e3 / times.len().max(1) as f64),
        "per_s": (times.len() as f64 / wall).round(),
        "p50_ms": round3(percentile(&mut times, 0.50)),
        "p99_ms": round3(percentile(&mut times, 0.99)),
    }))
}

/// Sign-in as the server does it: Argon2id check, TOTP check, the log
/// entry, the session. Each sign-in uses the next time step's code.
fn bench_login(store: &Store, end: i64) -> anyhow::Result<(f64, f64)> {
    use platekeeper_store::{credentials, Actor, NewUser, SignIn};
    let actor = Actor::system("bench");
    let user = "bench-officer";
    store.create_user(
        NewUser {
            username: user.into(),
            name: "Bench Officer".into(),
            role: platekeeper_core::Role::Officer,
            title: None,
        },
        &actor,
        end,
    )?;
    let password = "a long benchmark password";
    store.change_password(user, password, &actor, end)?;
    let secret = store.begin_totp(user, end)?;
    let code = credentials::totp_code(&secret, (end / 1000) as u64).unwrap_or_default();
    store.confirm_totp(user, &code, end)?;
    let mut times = Vec::new();
    for i in 1..=20i64 {
        let at = end + i * 30_000;
        let code = credentials::totp_code(&secret, (at / 1000) as u64).unwrap_or_default();
        let (ms, r) = timed(|| -> anyhow::Result<()> {
            match store.sign_in(user, password, Some(&code), 5, None, at)? {
                SignIn::Ok(_) => {
                    store.create_session(user, at + 3_600_000, None, at)?;
                    Ok(())
                }
                other => anyhow::bail!("bench sign-in failed: {other:?}"),
            }
        });
        r?;
        times.push(ms);
    }
    Ok((percentile(&mut times, 0.50), percentile(&mut times, 0.99)))
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
