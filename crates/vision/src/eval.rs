//! Scoring the recognizer on a labelled folder, in either layout of the
//! public OpenALPR benchmark: plate crops listed in `groundtruth.csv`
//! (`file,state,plate`), or road photos each with `NAME.txt` holding one
//! line `file x y w h plate` (tab- or space-separated) per plate in the
//! photo.

use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::detect::iou;
use crate::{PlateReading, Rect};

/// A detection counts as finding the plate at this overlap or more.
pub const FOUND_IOU: f32 = 0.4;
/// A box overlapping its plate less than this is counted as loose
/// (issue 27 item 2: none below 0.5).
pub const TIGHT_IOU: f32 = 0.5;

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
        let mut first: Option<String> = None;
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() {
                continue;
            }
            let bad = |message: &str| DatasetError::Format {
                path: label.display().to_string(),
                line: i + 1,
                message: message.into(),
            };
            if f.len() < 6 {
                return Err(bad("expected `file x y w h plate`"));
            }
            // One photo per label file: its plates are scored together,
            // from one run of the recognizer.
            match &first {
                None => first = Some(f[0].to_string()),
                Some(name) if name != f[0] => {
                    return Err(bad("every line of a label file must name the same photo"))
                }
                Some(_) => {}
            }
            // A box may start just outside the photo (the public set has
            // x = -1), but it must have a size.
            let num = |s: &str, least: f32| match s.parse::<f32>() {
                Ok(v) if v.is_finite() && v >= least => Ok(v),
                _ => Err(bad("x y w h must be numbers, w and h above 0")),
            };
            let truth = Rect {
                x: num(f[1], f32::MIN)?,
                y: num(f[2], f32::MIN)?,
                w: num(f[3], f32::MIN_POSITIVE)?,
                h: num(f[4], f32::MIN_POSITIVE)?,
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
    }
    if out.is_empty() && split == Split::All {
        return Err(DatasetError::Empty(dir.display().to_string()));
    }
    Ok(out)
}

/// How one labelled plate went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub found: bool,
    pub top1: bool,
    pub top5: bool,
    /// The truth's place among the candidates (1 = best), if there.
    pub rank: Option<usize>,
    /// 1 - edit distance / plate length, clamped to 0 (0 when not found).
    pub char_accuracy: f64,
    /// The overlap of the scored reading's box with the labelled box (the
    /// best overlap of any box when none found it); `None` for a crop.
    pub iou: Option<f32>,
    /// The time the recognizer took on the plate's photo, given on the
    /// photo's first plate only so that a photo counts once.
    pub ms: Option<f64>,
    /// The photo's readings that no labelled plate is judged by (a box
    /// elsewhere, a second box on a plate, one too loose to count), on
    /// the photo's first plate only; `None` for a crop.
    pub extra: Option<usize>,
}

/// The samples in runs of one image each (consecutive samples of the same
/// image, as [`load`] lists a photo's plates together).
pub fn by_image(samples: &[Sample]) -> impl Iterator<Item = &[Sample]> {
    samples.chunk_by(|a, b| a.image == b.image)
}

/// Judges the readings of one photo against each of its labelled plates;
/// the photo's time goes on the first.
pub fn judge_image(plates: &[Sample], readings: &[PlateReading], ms: f64) -> Vec<Outcome> {
    let used: Vec<usize> = plates
        .iter()
        .filter_map(|s| scored(s, readings))
        .filter_map(|m| readings.iter().position(|r| std::ptr::eq(r, m)))
        .collect();
    let extra = readings
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .count();
    plates
        .iter()
        .enumerate()
        .map(|(i, s)| Outcome {
            ms: (i == 0).then_some(ms),
            extra: (i == 0 && s.truth.is_some()).then_some(extra),
            ..judge(s, readings)
        })
        .collect()
}

/// The reading scored for a sample: the first (best) that overlaps the
/// truth box enough; for a crop, the first reading.
pub fn scored<'a>(sample: &Sample, readings: &'a [PlateReading]) -> Option<&'a PlateReading> {
    match sample.truth {
        None => readings.first(),
        Some(t) => readings.iter().find(|r| iou(&r.rect(), &t) >= FOUND_IOU),
    }
}

/// Judges the readings of one sample against the [`scored`] reading.
pub fn judge(sample: &Sample, readings: &[PlateReading]) -> Outcome {
    let matched = scored(sample, readings);
    let overlap = sample.truth.map(|t| match matched {
        Some(r) => iou(&r.rect(), &t),
        None => readings
            .iter()
            .map(|r| iou(&r.rect(), &t))
            .fold(0.0, f32::max),
    });
    let Some(r) = matched else {
        return Outcome {
            iou: overlap,
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
        iou: overlap,
        ..Outcome::default()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub images: usize,
    /// Labelled plates (more than `images` where a photo holds several);
    /// the rates below are of plates.
    pub plates: usize,
    pub found_rate: f64,
    pub top1_rate: f64,
    pub top5_rate: f64,
    /// As OpenALPR's benchmark counts "right within the top 10".
    pub top10_rate: f64,
    pub char_accuracy: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    /// Of the plates some box overlaps (road photos only): the median and
    /// the tenth percentile of the best box's overlap with the label, and
    /// how many boxes overlap their plate less than [`TIGHT_IOU`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_iou: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p10_iou: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loose_boxes: Option<usize>,
    /// Readings no labelled plate is judged by, in all (road photos
    /// only; see [`Outcome::extra`]). On a stand-in some are real,
    /// unlabelled plates of the background photos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_readings: Option<usize>,
}

/// The value at fraction `p` of sorted `v` (nearest rank), 0 when empty.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

pub fn summarize(outcomes: &[Outcome]) -> Summary {
    let n = outcomes.len().max(1) as f64;
    let rate = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / n;
    let mut ms: Vec<f64> = outcomes.iter().filter_map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let photos = outcomes.iter().any(|o| o.iou.is_some());
    let mut ious: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.iou)
        .filter(|&v| v > 0.0)
        .map(f64::from)
        .collect();
    ious.sort_by(f64::total_cmp);
    Summary {
        images: ms.len(),
        plates: outcomes.len(),
        found_rate: rate(|o| o.found),
        top1_rate: rate(|o| o.top1),
        top5_rate: rate(|o| o.top5),
        top10_rate: rate(|o| o.rank.is_some_and(|k| k <= 10)),
        char_accuracy: outcomes.iter().map(|o| o.char_accuracy).sum::<f64>() / n,
        median_ms: percentile(&ms, 0.5),
        p90_ms: percentile(&ms, 0.9),
        median_iou: photos.then(|| percentile(&ious, 0.5)),
        p10_iou: photos.then(|| percentile(&ious, 0.1)),
        loose_boxes: photos.then(|| ious.iter().filter(|&&v| v < f64::from(TIGHT_IOU)).count()),
        extra_readings: photos.then(|| outcomes.iter().filter_map(|o| o.extra).sum()),
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
        let far = judge(&s, &[reading("ABC123", [0, 0, 50, 20])]);
        assert!(!far.found && !far.top1);
        assert_eq!(far.iou, Some(0.0));
        let near = judge(&s, &[reading("ABC128", [105, 102, 100, 50])]);
        assert!(near.found && !near.top1 && !near.top5);
        assert_eq!(near.rank, None);
        let mut runner_up = reading("ABC123", [105, 102, 100, 50]);
        runner_up.text = "ABC12B".into();
        let second = judge(&s, &[runner_up]);
        assert!(!second.top1 && second.top5);
        assert_eq!(second.rank, Some(2));
        assert!((near.char_accuracy - (1.0 - 1.0 / 6.0)).abs() < 1e-9);
        // A box twice the plate's size covers it but overlaps it 0.5 at
        // most: found, and counted as loose below 0.5.
        let loose = judge(&s, &[reading("ABC123", [80, 90, 140, 79])]);
        assert!(loose.found && loose.top1);
        let sum = summarize(&[far, near, second, loose]);
        assert_eq!(sum.plates, 4);
        assert_eq!(sum.images, 0, "no photo's time was given");
        assert!((sum.found_rate - 3.0 / 4.0).abs() < 1e-9);
        assert!((sum.top10_rate - 2.0 / 4.0).abs() < 1e-9);
        assert_eq!(sum.loose_boxes, Some(1), "{sum:?}");
        let median = sum.median_iou.unwrap();
        assert!(median > 0.8 && median < 0.9, "{median}");
        assert!(sum.p10_iou.unwrap() < 0.5);
    }

    #[test]
    fn a_photo_with_two_plates_counts_once_for_time_and_twice_for_plates() {
        let plate = |x: f32, text: &str| Sample {
            image: "two.jpg".into(),
            plate: text.into(),
            truth: Some(Rect {
                x,
                y: 100.0,
                w: 80.0,
                h: 40.0,
            }),
        };
        let samples = [plate(100.0, "AAA111"), plate(600.0, "BBB222")];
        assert_eq!(by_image(&samples).count(), 1);
        // One reading over the first plate, which must not also count for
        // the second; and two extra: a second box on the first plate and
        // a box elsewhere.
        let got = judge_image(
            &samples,
            &[
                reading("AAA111", [100, 100, 80, 40]),
                reading("AAA11", [104, 100, 80, 40]),
                reading("XYZ", [300, 300, 80, 40]),
            ],
            12.0,
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].found && got[0].top1 && got[0].ms == Some(12.0));
        assert!(!got[1].found && got[1].ms.is_none());
        assert_eq!((got[0].extra, got[1].extra), (Some(2), None));
        let sum = summarize(&got);
        assert_eq!((sum.images, sum.plates), (1, 2));
        assert_eq!(sum.extra_readings, Some(2));
        assert!((sum.found_rate - 0.5).abs() < 1e-9);
        assert_eq!(sum.median_ms, 12.0);
        assert_eq!(
            sum.median_iou,
            Some(1.0),
            "the unfound plate has no box to measure"
        );
    }

    #[test]
    fn crops_report_no_overlap() {
        let s = Sample {
            image: "c.png".into(),
            plate: "ABC123".into(),
            truth: None,
        };
        let o = judge_image(
            std::slice::from_ref(&s),
            &[reading("ABC123", [0, 0, 9, 9])],
            3.0,
        );
        assert_eq!((o[0].iou, o[0].extra), (None, None));
        let sum = summarize(&o);
        assert_eq!((sum.median_iou, sum.loose_boxes), (None, None));
        assert_eq!(sum.extra_readings, None);
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
        std::fs::write(photos.join("p1.txt"), "p1.jpg\t-1\t20\t100\t30\tab123cd\n").unwrap();
        let s = load(&photos, Split::All).unwrap();
        assert_eq!(
            s[0].truth,
            Some(Rect {
                x: -1.0,
                y: 20.0,
                w: 100.0,
                h: 30.0
            })
        );
        // Several plates, one line each, blank lines allowed.
        std::fs::write(
            photos.join("p0.txt"),
            "p0.jpg 1 2 30 15 AAA111\n\np0.jpg\t300\t2\t30\t15\tbbb222\n",
        )
        .unwrap();
        let s = load(&photos, Split::All).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].plate.as_str(), s[1].plate.as_str()),
            ("AAA111", "BBB222")
        );
        assert_eq!(
            by_image(&s).map(<[Sample]>::len).collect::<Vec<_>>(),
            [2, 1]
        );
        for (bad, why) in [
            ("p2.jpg 10 twenty 100 30 X\n", "not a number"),
            ("p2.jpg 10 20 -100 30 X\n", "negative"),
            ("p2.jpg 10 20 100 0 X\n", "no height"),
            ("p2.jpg 10 20 NaN 30 X\n", "not finite"),
            ("p2.jpg 10 20 100 30 X\nother.jpg 1 2 3 4 Y\n", "two photos"),
            (
                "p2.jpg 10 20 100 30 X\np2.jpg 1 2 3\n",
                "a short second line",
            ),
        ] {
            std::fs::write(photos.join("p2.txt"), bad).unwrap();
            match load(&photos, Split::All) {
                Err(DatasetError::Format { path, .. }) => {
                    assert!(path.ends_with("p2.txt"), "{why}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            load(&empty, Split::All),
            Err(DatasetError::Empty(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
