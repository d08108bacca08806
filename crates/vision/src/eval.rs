//! Scoring the recognizer on a labelled folder, in either layout of the
//! public OpenALPR benchmark: plate crops listed in `groundtruth.csv`
//! (`file,state,plate`), or road photos each with `NAME.txt` holding
//! `file x y w h plate` (tab- or space-separated).

use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::detect::iou;
use crate::{PlateReading, Rect};

/// A detection counts as finding the plate at this overlap or more.
pub const FOUND_IOU: f32 = 0.4;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub image: PathBuf,
    pub plate: String,
    /// The plate's box for road photos; `None` for a crop.
    pub truth: Option<Rect>,
}

/// Which part of a folder to score. Training used the "train" half of the
/// crops and three quarters of the road photos; report "held".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    All,
    Held,
    Train,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "all" => Some(Split::All),
            "held" => Some(Split::Held),
            "train" => Some(Split::Train),
            _ => None,
        }
    }

    fn keeps(self, name: &str, crop: bool) -> bool {
        let c = crc32(name.as_bytes());
        let held = if crop { c % 2 == 1 } else { c % 4 == 3 };
        match self {
            Split::All => true,
            Split::Held => held,
            Split::Train => !held,
        }
    }
}

/// zlib's CRC-32, so the split matches `training/` (Python's zlib.crc32).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{0} holds neither groundtruth.csv nor NAME.txt label files")]
    Empty(String),
}

fn read(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Lists the labelled images of `dir`, filtered by `split`.
pub fn load(dir: &Path, split: Split) -> Result<Vec<Sample>, DatasetError> {
    let gt = dir.join("groundtruth.csv");
    let mut out = Vec::new();
    if gt.is_file() {
        let text = read(&gt)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [file, _state, plate] = f[..] else {
                return Err(DatasetError::Format {
                    path: gt.display().to_string(),
                    line: i + 1,
                    message: "expected file,state,plate".into(),
                });
            };
            if !split.keeps(file, true) {
                continue;
            }
            let image = [dir.join(file), dir.join("usimages").join(file)]
                .into_iter()
                .find(|p| p.is_file())
                .unwrap_or_else(|| dir.join(file));
            out.push(Sample {
                image,
                plate: plate.to_ascii_uppercase(),
                truth: None,
            });
        }
        return Ok(out);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut labels: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    labels.sort();
    for label in labels {
        let text = read(&label)?;
        let f: Vec<&str> = text.split_whitespace().collect();
        let bad = |message: &str| DatasetError::Format {
            path: label.display().to_string(),
            line: 1,
            message: message.into(),
        };
        if f.len() < 6 {
            return Err(bad("expected `file x y w h plate`"));
        }
        let num = |s: &str| s.parse::<f32>().map_err(|_| bad("x y w h must be numbers"));
        let truth = Rect {
            x: num(f[1])?,
            y: num(f[2])?,
            w: num(f[3])?,
            h: num(f[4])?,
        };
        if !split.keeps(f[0], false) {
            continue;
        }
        out.push(Sample {
            image: dir.join(f[0]),
            plate: f[5].to_ascii_uppercase(),
            truth: Some(truth),
        });
    }
    if out.is_empty() && split == Split::All {
        return Err(DatasetError::Empty(dir.display().to_string()));
    }
    Ok(out)
}

/// How one image went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub found: bool,
    pub top1: bool,
    pub top5: bool,
    /// The truth's place among the candidates (1 = best), if there.
    pub rank: Option<usize>,
    /// 1 - edit distance / plate length, clamped to 0 (0 when not found).
    pub char_accuracy: f64,
    pub ms: f64,
}

/// Judges the readings of one sample: the reading that overlaps the truth
/// box (best first) is the one scored; for a crop, the first reading.
pub fn judge(sample: &Sample, readings: &[PlateReading], ms: f64) -> Outcome {
    let matched = match sample.truth {
        None => readings.first(),
        Some(t) => readings.iter().find(|r| iou(&r.rect(), &t) >= FOUND_IOU),
    };
    let Some(r) = matched else {
        return Outcome {
            ms,
            ..Outcome::default()
        };
    };
    let dist = levenshtein(&r.text, &sample.plate) as f64;
    let rank = r
        .candidates
        .iter()
        .position(|c| c.text == sample.plate)
        .map(|i| i + 1);
    Outcome {
        found: true,
        top1: r.text == sample.plate,
        top5: rank.is_some_and(|k| k <= 5),
        rank,
        char_accuracy: (1.0 - dist / sample.plate.len().max(1) as f64).max(0.0),
        ms,
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub images: usize,
    pub found_rate: f64,
    pub top1_rate: f64,
    pub top5_rate: f64,
    /// As OpenALPR's benchmark counts "right within the top 10".
    pub top10_rate: f64,
    pub char_accuracy: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
}

pub fn summarize(outcomes: &[Outcome]) -> Summary {
    let n = outcomes.len().max(1) as f64;
    let rate = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / n;
    let mut ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if ms.is_empty() {
            0.0
        } else {
            ms[((ms.len() - 1) as f64 * p).round() as usize]
        }
    };
    Summary {
        images: outcomes.len(),
        found_rate: rate(|o| o.found),
        top1_rate: rate(|o| o.top1),
        top5_rate: rate(|o| o.top5),
        top10_rate: rate(|o| o.rank.is_some_and(|k| k <= 10)),
        char_accuracy: outcomes.iter().map(|o| o.char_accuracy).sum::<f64>() / n,
        median_ms: pct(0.5),
        p90_ms: pct(0.9),
    }
}

pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        // The standard CRC-32 check value, as Python's zlib.crc32 gives.
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("7ABC123", "7ABC123"), 0);
        assert_eq!(levenshtein("7ABC123", "7A8C123"), 1);
        assert_eq!(levenshtein("ABC", ""), 3);
        assert_eq!(levenshtein("ABC1234", "ABC234"), 1);
    }

    fn reading(text: &str, bbox: [u32; 4]) -> PlateReading {
        PlateReading {
            bbox,
            text: text.into(),
            confidence: 0.9,
            state: None,
            chars: vec![],
            candidates: vec![
                crate::Candidate {
                    text: "X".into(),
                    confidence: 0.5,
                },
                crate::Candidate {
                    text: text.into(),
                    confidence: 0.4,
                },
            ],
            detection: 1.0,
        }
    }

    #[test]
    fn a_reading_elsewhere_in_the_photo_does_not_count() {
        let s = Sample {
            image: "a.jpg".into(),
            plate: "ABC123".into(),
            truth: Some(Rect {
                x: 100.0,
                y: 100.0,
                w: 100.0,
                h: 50.0,
            }),
        };
        let far = judge(&s, &[reading("ABC123", [0, 0, 50, 20])], 5.0);
        assert!(!far.found && !far.top1);
        let near = judge(&s, &[reading("ABC128", [105, 102, 100, 50])], 5.0);
        assert!(near.found && !near.top1 && !near.top5);
        assert_eq!(near.rank, None);
        let mut runner_up = reading("ABC123", [105, 102, 100, 50]);
        runner_up.text = "ABC12B".into();
        let second = judge(&s, &[runner_up], 5.0);
        assert!(!second.top1 && second.top5);
        assert_eq!(second.rank, Some(2));
        assert!((near.char_accuracy - (1.0 - 1.0 / 6.0)).abs() < 1e-9);
        let sum = summarize(&[far, near, second]);
        assert_eq!(sum.images, 3);
        assert!((sum.found_rate - 2.0 / 3.0).abs() < 1e-9);
        assert!((sum.top10_rate - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn labels_in_both_layouts() {
        let dir = std::env::temp_dir().join(format!("pk-eval-{}", std::process::id()));
        let crops = dir.join("crops");
        std::fs::create_dir_all(crops.join("usimages")).unwrap();
        std::fs::write(
            crops.join("groundtruth.csv"),
            "a.png,ca,7abc123\nb.png,nv,XYZ999\n",
        )
        .unwrap();
        let s = load(&crops, Split::All).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].plate, "7ABC123");
        assert!(s[0].truth.is_none());
        let photos = dir.join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::write(photos.join("p1.txt"), "p1.jpg\t10\t20\t100\t30\tab123cd\n").unwrap();
        let s = load(&photos, Split::All).unwrap();
        assert_eq!(
            s[0].truth,
            Some(Rect {
                x: 10.0,
                y: 20.0,
                w: 100.0,
                h: 30.0
            })
        );
        std::fs::write(photos.join("p2.txt"), "p2.jpg 10 twenty 100 30 X\n").unwrap();
        assert!(matches!(
            load(&photos, Split::All),
            Err(DatasetError::Format { .. })
        ));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            load(&empty, Split::All),
            Err(DatasetError::Empty(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
