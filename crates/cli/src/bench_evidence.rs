//! `platekeeper bench --suite evidence [--reads N]`: exporting the
//! evidence package of a hold of N reads (default and most: a hold's
//! limit of 10,000), each with a vehicle picture of about 100 KB and a
//! plate picture of about 8 KB (SPEC R6.2).
//!
//! The reads go in through the store's ingest, are found under a logged
//! access, held, and exported by `Store::export_evidence` — the function
//! behind `POST /api/v1/evidence` — then the spool file is read through
//! as the server sends it. Figures: time to build, time to read back,
//! package size, and the process's peak memory, which no longer grows
//! with the package (it is written to a spool file as it is made).

use std::io::Read;
use std::time::Instant;

use anyhow::Context;
use platekeeper_core::read::TimeInput;
use platekeeper_core::{Purpose, RawRead};
use platekeeper_store::{
    Access, AccessKind, AccessRequest, Actor, CameraKind, IngestItem, NewCamera, Store,
};
use serde_json::json;

use crate::bench::{peak_rss_mb, round3};
use crate::now_ms;
use crate::synthetic::Rng;

const VEHICLE_BYTES: usize = 100 * 1024;
const PLATE_BYTES: usize = 8 * 1024;

/// A picture of `len` bytes that no other read shares (JPEG magic, then
/// noise, which no store could shrink or deduplicate).
fn picture(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn run(json_only: bool, seed: u64, reads: u64) -> anyhow::Result<()> {
    let n = if reads == 1_000_000 || reads == 0 {
        platekeeper_store::MAX_HOLD_READS
    } else {
        (reads as usize).min(platekeeper_store::MAX_HOLD_READS)
    };
    let say = |s: String| {
        if !json_only {
            eprintln!("{s}");
        }
    };
    let dir =
        std::env::temp_dir().join(format!("platekeeper-bench-evidence-{}", std::process::id()));
    let result = measure(&dir, n, seed, &say);
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    if !json_only {
        eprintln!("{}", serde_json::to_string_pretty(&figures)?);
    }
    println!("{figures}");
    Ok(())
}

fn measure(
    dir: &std::path::Path,
    n: usize,
    seed: u64,
    say: &dyn Fn(String),
) -> anyhow::Result<serde_json::Value> {
    let store = Store::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let now = now_ms();
    let actor = Actor::system("bench");
    let (camera, _) = store.create_camera(
        NewCamera {
            id: "bench-evidence".into(),
            name: "Evidence bench".into(),
            kind: CameraKind::Fixed,
            position: Some(platekeeper_core::GeoPoint::new(37.8044, -122.2712)?),
        },
        &actor,
        now,
    )?;
    let mut rng = Rng::new(seed);
    let mut sent = Vec::with_capacity(n);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let items = chunk
            .iter()
            .map(|&i| {
                let raw = RawRead {
                    plate: Some(format!("7EV{:04}", i % 10_000)),
                    state: Some("CA".into()),
                    ts: Some(TimeInput::EpochMs(now - 3_600_000 + i as i64 * 100)),
                    vehicle_image: Some(picture(&mut rng, VEHICLE_BYTES)),
                    plate_image: Some(picture(&mut rng, PLATE_BYTES)),
                    ..RawRead::default()
                };
                Ok(IngestItem {
                    camera: camera.num,
                    read: raw.validate(now, "bench-evidence")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        sent.extend(items.iter().map(|it| (it.read.id, it.read.ts_ms)));
        store.ingest(&items)?;
    }
    say(format!(
        "ingested {n} reads with pictures in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let access = |kind, what: &str| -> anyhow::Result<Access> {
        Ok(Access::new(AccessRequest {
            username: "bench".into(),
            affiliation: "Bench PD".into(),
            kind,
            query: json!({"bench": what}),
            purpose: Purpose::new("26-000001", "187 PC", "evidence export benchmark")?,
            client: None,
            role: None,
        }))
    };
    let hold = store
        .place_hold(access(AccessKind::Hold, "hold")?, &sent, &actor, now)?
        .into_value();
    anyhow::ensure!(hold.reads as usize == n, "held {} of {n} reads", hold.reads);
    let rss_before = peak_rss_mb();
    let started = Instant::now();
    let (package, _download) = store
        .export_evidence(access(AccessKind::Export, "evidence")?, &hold, &actor, now)?
        .into_value();
    let build_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut file = package.file;
    let mut buf = vec![0u8; 256 << 10];
    let mut sent_bytes = 0u64;
    loop {
        let k = file.read(&mut buf)?;
        if k == 0 {
            break;
        }
        sent_bytes += k as u64;
    }
    let read_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(sent_bytes == package.size, "the spool file is short");
    say(format!(
        "package of {} reads, {} pictures, {:.1} MB built in {build_s:.2} s, read back in {read_s:.2} s",
        package.reads,
        package.images,
        package.size as f64 / 1e6
    ));
    Ok(json!({
        "suite": "evidence",
        "reads": package.reads,
        "images": package.images,
        "package_mb": round3(package.size as f64 / 1e6),
        "build_s": round3(build_s),
        "build_mb_per_s": round3(package.size as f64 / 1e6 / build_s),
        "read_back_s": round3(read_s),
        "peak_rss_mb_before_export": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }))
}
