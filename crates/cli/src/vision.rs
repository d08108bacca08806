//! `platekeeper recognize` and `platekeeper eval` (SPEC R9, issue 6).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use platekeeper_vision::eval::{self, Outcome, Split};
use platekeeper_vision::{PlateReading, Recognizer};
use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    image: &'a str,
    ms: f64,
    plates: Vec<PlateReading>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut>,
}

#[derive(Serialize)]
struct ErrorOut {
    code: &'static str,
    message: String,
}

/// One JSON line per image. An unreadable image gets a line with `error`
/// and the command exits 1 after the others are done.
pub fn recognize(images: &[PathBuf], crop: bool) -> anyhow::Result<()> {
    let rec = Recognizer::embedded().context("loading the recognition models")?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for path in images {
        let start = Instant::now();
        let result = read_file(path).and_then(|bytes| run(&rec, &bytes, crop));
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let name = path.display().to_string();
        let line = match result {
            Ok(plates) => Line {
                image: &name,
                ms,
                plates,
                error: None,
            },
            Err(e) => {
                failed += 1;
                Line {
                    image: &name,
                    ms,
                    plates: vec![],
                    error: Some(ErrorOut {
                        code: e.code(),
                        message: e.to_string(),
                    }),
                }
            }
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} images could not be read", images.len());
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, platekeeper_vision::VisionError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| platekeeper_vision::VisionError::Image(format!("cannot open: {e}")))?;
    platekeeper_vision::decode::check_file_len(meta.len())?;
    std::fs::read(path)
        .map_err(|e| platekeeper_vision::VisionError::Image(format!("cannot read: {e}")))
}

fn run(
    rec: &Recognizer,
    bytes: &[u8],
    crop: bool,
) -> Result<Vec<PlateReading>, platekeeper_vision::VisionError> {
    if crop {
        Ok(rec.read_crop_bytes(bytes)?.into_iter().collect())
    } else {
        rec.recognize_bytes(bytes)
    }
}

/// Scores a labelled folder; progress on stderr, the summary as the last
/// stdout line.
pub fn evaluate(
    dataset: &Path,
    split: &str,
    verbose: bool,
    ocr_model: Option<&Path>,
) -> anyhow::Result<()> {
    let split = Split::parse(split)
        .with_context(|| format!("--split must be all, held or train, not {split:?}"))?;
    let samples = eval::load(dataset, split)?;
    anyhow::ensure!(
        !samples.is_empty(),
        "no labelled images in {} for that split",
        dataset.display()
    );
    let rec = match ocr_model {
        None => Recognizer::embedded(),
        Some(path) => {
            let onnx = std::fs::read(path)
                .with_context(|| format!("reading the character model {}", path.display()))?;
            Recognizer::with_ocr(&onnx)
        }
    }
    .context("loading the recognition models")?;
    let crops = samples.iter().all(|s| s.truth.is_none());
    let mut outcomes = Vec::with_capacity(samples.len());
    let mut unreadable = 0usize;
    for s in &samples {
        let start = Instant::now();
        let result = read_file(&s.image).and_then(|b| run(&rec, &b, crops));
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let o = match result {
            Ok(readings) => {
                let o = eval::judge(s, &readings, ms);
                if verbose {
                    let got = readings.first().map_or("-", |r| r.text.as_str());
                    // The runners-up with their confidences show how close
                    // a miss was, which is what re-ranking constants move.
                    let runners: Vec<String> = readings
                        .first()
                        .map(|r| {
                            r.candidates
                                .iter()
                                .take(3)
                                .map(|c| format!("{}:{:.3}", c.text, c.confidence))
                                .collect()
                        })
                        .unwrap_or_default();
                    eprintln!(
                        "{} truth={} read={} top1={} rank={} {:.1} ms [{}]",
                        s.image.display(),
                        s.plate,
                        got,
                        o.top1,
                        o.rank.map_or("-".to_string(), |k| k.to_string()),
                        ms,
                        runners.join(" ")
                    );
                }
                o
            }
            Err(e) => {
                unreadable += 1;
                eprintln!("{}: {e}", s.image.display());
                Outcome {
                    ms,
                    ..Outcome::default()
                }
            }
        };
        outcomes.push(o);
    }
    #[derive(Serialize)]
    struct Report {
        dataset: String,
        kind: &'static str,
        split: String,
        unreadable: usize,
        #[serde(flatten)]
        summary: eval::Summary,
    }
    let report = Report {
        dataset: dataset.display().to_string(),
        kind: if crops { "plate_crops" } else { "road_photos" },
        split: format!("{split:?}").to_lowercase(),
        unreadable,
        summary: eval::summarize(&outcomes),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
