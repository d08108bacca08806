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

/// Models to score in place of the built-in ones (a newly trained one,
/// before it replaces the built-in).
#[derive(Clone, Copy, Default)]
pub struct Models<'a> {
    pub ocr: Option<&'a Path>,
    pub detector: Option<&'a Path>,
}

impl Models<'_> {
    fn load(self) -> anyhow::Result<Recognizer> {
        let read = |path: Option<&Path>, what: &str| -> anyhow::Result<Option<Vec<u8>>> {
            path.map(|p| {
                std::fs::read(p).with_context(|| format!("reading the {what} {}", p.display()))
            })
            .transpose()
        };
        let ocr = read(self.ocr, "character model")?;
        let detector = read(self.detector, "plate detector")?;
        Recognizer::from_onnx(
            detector
                .as_deref()
                .unwrap_or(platekeeper_vision::DETECTOR_ONNX),
            ocr.as_deref().unwrap_or(platekeeper_vision::OCR_ONNX),
        )
        .context("loading the recognition models")
    }
}

/// Scores a labelled folder; progress on stderr, the summary as the last
/// stdout line.
pub fn evaluate(dataset: &Path, split: &str, verbose: bool, models: Models) -> anyhow::Result<()> {
    let split = Split::parse(split)
        .with_context(|| format!("--split must be all, held or train, not {split:?}"))?;
    let samples = eval::load(dataset, split)?;
    anyhow::ensure!(
        !samples.is_empty(),
        "no labelled images in {} for that split",
        dataset.display()
    );
    let rec = models.load()?;
    let crops = samples.iter().all(|s| s.truth.is_none());
    let mut outcomes = Vec::with_capacity(samples.len());
    let mut unreadable = 0usize;
    for plates in eval::by_image(&samples) {
        let image = &plates[0].image;
        let start = Instant::now();
        let result = read_file(image).and_then(|b| run(&rec, &b, crops));
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(readings) => {
                let got = eval::judge_image(plates, &readings, ms);
                if verbose {
                    for (s, o) in plates.iter().zip(&got) {
                        eprintln!("{}", describe(s, o, &readings, ms));
                    }
                }
                outcomes.extend(got);
            }
            Err(e) => {
                unreadable += 1;
                eprintln!("{}: {e}", image.display());
                outcomes.extend(plates.iter().enumerate().map(|(i, _)| Outcome {
                    ms: (i == 0).then_some(ms),
                    ..Outcome::default()
                }));
            }
        }
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

/// One verbose line: the plate, what was read over it, and the runners-up
/// with their confidences (how close a miss was, which is what the
/// re-ranking constants move).
fn describe(s: &eval::Sample, o: &Outcome, readings: &[PlateReading], ms: f64) -> String {
    let scored = eval::scored(s, readings);
    let runners: Vec<String> = scored
        .map(|r| {
            r.candidates
                .iter()
                .take(3)
                .map(|c| format!("{}:{:.3}", c.text, c.confidence))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} truth={} read={} top1={} rank={} iou={} {:.1} ms [{}]",
        s.image.display(),
        s.plate,
        scored.map_or("-", |r| r.text.as_str()),
        o.top1,
        o.rank.map_or("-".to_string(), |k| k.to_string()),
        o.iou.map_or("-".to_string(), |v| format!("{v:.2}")),
        ms,
        runners.join(" ")
    )
}
