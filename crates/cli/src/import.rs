//! `platekeeper import reads FILE.csv --data DIR` (SPEC R1.4).
//!
//! Rows go through the same acceptance path as the API, in batches, with
//! a progress bar. A bad row is reported by its line number and skipped;
//! the good rows around it are kept. Rows without an `id` get one derived
//! from their content, so importing the same file twice adds nothing.

use std::fs::File;
use std::path::Path;

use crate::now_ms;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use platekeeper_core::read::TimeInput;
use platekeeper_core::RawRead;
use platekeeper_server::ingest::{accept_batch, Candidate, Rejected};

const BATCH: usize = 5_000;
const HEADER: [&str; 8] = [
    "id",
    "plate",
    "state",
    "ts",
    "lat",
    "lon",
    "camera",
    "confidence",
];
/// Rejections printed one by one; past this only the count grows.
const SHOW_REJECTS: usize = 200;

/// Holds the data folder's lock: one process (server or import) at a time
/// owns a data folder, because the server keeps the plate dictionary in
/// memory and would not see rows written behind its back.
pub struct DataLock(#[allow(dead_code)] File);

pub fn lock_data_dir(dir: &Path) -> anyhow::Result<DataLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("platekeeper.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(DataLock(f)),
        Err(_) => bail!(
            "{} is in use by another platekeeper process (a running server?); stop it first, or send reads through the API",
            dir.display()
        ),
    }
}

fn number(
    field: &'static str,
    s: &str,
) -> Result<Option<f64>, (&'static str, &'static str, String)> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>().map(Some).map_err(|_| {
        (
            field,
            "invalid_number",
            format!("{field} {s:?} is not a number"),
        )
    })
}

pub fn reads(file: &Path, data: &Path, key: &crate::keys::KeyArgs) -> anyhow::Result<()> {
    let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let (_lock, store) = crate::keys::open_locked(data, key)?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = rdr
        .headers()
        .context("reading the CSV header")?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if header != HEADER {
        bail!(
            "line 1: the header must be exactly {} (found {})",
            HEADER.join(","),
            header.join(",")
        );
    }
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut accepted, mut duplicates, mut rejected) = (0usize, 0usize, 0usize);
    let mut batch: Vec<Candidate> = Vec::with_capacity(BATCH);
    let report = |rejects: &[Rejected], bar: &ProgressBar, rejected: &mut usize| {
        for r in rejects {
            *rejected += 1;
            if *rejected <= SHOW_REJECTS {
                // Straight to standard error (the bar hides itself when that
                // is not a terminal, and would swallow these lines).
                bar.suspend(|| eprintln!("line {}: {} ({})", r.index, r.message, r.code));
            }
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line() as usize;
        let more = match rdr.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                // A broken row (bad quoting, invalid UTF-8) is skipped, not fatal.
                report(
                    &[Rejected::new(
                        line,
                        ("row", "malformed_row", format!("unreadable CSV row: {e}")),
                    )],
                    &bar,
                    &mut rejected,
                );
                continue;
            }
        };
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line() as usize).unwrap_or(line);
        let col = |i: usize| record.get(i).unwrap_or("");
        let raw = (|| {
            if record.len() != HEADER.len() {
                return Err((
                    "row",
                    "wrong_column_count",
                    format!(
                        "row has {} columns; expected {}",
                        record.len(),
                        HEADER.len()
                    ),
                ));
            }
            let camera_id = col(6);
            let camera = store.camera(camera_id).ok_or((
                "camera",
                "unknown_camera",
                format!("camera {camera_id:?} is not registered"),
            ))?;
            let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
            Ok((
                camera,
                RawRead {
                    id: nonempty(col(0)),
                    plate: nonempty(col(1)),
                    state: nonempty(col(2)),
                    ts: nonempty(col(3)).map(TimeInput::Text),
                    lat: number("lat", col(4))?,
                    lon: number("lon", col(5))?,
                    heading: None,
                    confidence: number("confidence", col(7))?,
                    plate_image: None,
                    vehicle_image: None,
                },
            ))
        })();
        match raw {
            Ok((camera, raw)) => batch.push(Candidate {
                index: line,
                camera,
                raw: Ok(raw),
            }),
            Err(e) => report(&[Rejected::new(line, e)], &bar, &mut rejected),
        }
        if batch.len() >= BATCH {
            let r = accept_batch(&store, std::mem::take(&mut batch), now_ms())?.report;
            accepted += r.accepted;
            duplicates += r.duplicates;
            report(&r.rejected, &bar, &mut rejected);
            bar.set_position(rdr.position().byte());
            bar.set_message(format!("{accepted} stored"));
        }
    }
    let r = accept_batch(&store, batch, now_ms())?.report;
    accepted += r.accepted;
    duplicates += r.duplicates;
    report(&r.rejected, &bar, &mut rejected);
    bar.finish_and_clear();
    if rejected > SHOW_REJECTS {
        eprintln!(
            "… {} more rejected lines not shown",
            rejected - SHOW_REJECTS
        );
    }
    println!(
        "{}",
        serde_json::json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected})
    );
    Ok(())
}
