//! Where a photo's time goes: decoding it, finding its plates, and
//! finding and reading them, each the median over a folder of JPEGs.
//! `cargo run --release -p platekeeper-vision --example stages -- DIR`
use std::time::Instant;

use platekeeper_vision::{decode, detect::Detector, Recognizer, DETECTOR_ONNX};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: stages DIR")?;
    let rec = Recognizer::embedded()?;
    let det = Detector::load(DETECTOR_ONNX)?;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .jpg or .png in {dir}").into());
    }
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let mut plates = Vec::new();
    for p in &paths {
        let bytes = std::fs::read(p)?;
        let t = Instant::now();
        let img = decode(&bytes)?;
        times[0].push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        plates.push(det.detect(&img)?.len());
        times[1].push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        rec.recognize(&img)?;
        times[2].push(t.elapsed().as_secs_f64() * 1e3);
    }
    let [decoding, finding, reading] = times.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    plates.sort_unstable();
    println!(
        "{} pictures, medians: decode {decoding:.1} ms, find {finding:.1} ms, \
         find and read {reading:.1} ms, {} boxes",
        paths.len(),
        plates[plates.len() / 2]
    );
    Ok(())
}
