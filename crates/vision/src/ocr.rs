//! Characters of one plate crop: a CTC model over 24 columns, decoded to
//! the best reading, per-character confidences and alternative readings.

use image::RgbImage;

use crate::model::Net;
use crate::resample::{sample_grey, Rect};
use crate::VisionError;

/// Model input: grey, 48 rows by 96 columns, values 0..1.
pub const INPUT_H: usize = 48;
pub const INPUT_W: usize = 96;
/// Column 0 of each output row is the CTC blank; then these symbols.
pub const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// One character with its probability and the runner-up symbols.
#[derive(Debug, Clone, PartialEq)]
pub struct CharGuess {
    pub char: char,
    pub confidence: f32,
    /// Other symbols at the same place, most likely first (up to 3).
    pub alternatives: Vec<(char, f32)>,
}

pub struct Ocr {
    net: Net,
}

impl Ocr {
    pub fn load(onnx: &[u8]) -> Result<Ocr, VisionError> {
        Ok(Ocr {
            net: Net::load(onnx, &[1, 1, INPUT_H, INPUT_W])?,
        })
    }

    /// Reads the characters inside `rect` of `img`.
    pub fn read(&self, img: &RgbImage, rect: Rect) -> Result<Vec<CharGuess>, VisionError> {
        let mut input = sample_grey(img, rect, INPUT_W, INPUT_H);
        input.iter_mut().for_each(|v| *v /= 255.0);
        let out = self.net.run(input)?;
        let (shape, logits) = out
            .into_iter()
            .next()
            .ok_or_else(|| VisionError::Model("the character model returned nothing".into()))?;
        let classes = ALPHABET.len() + 1;
        if shape.len() != 3 || shape[2] != classes {
            return Err(VisionError::Model(format!(
                "unexpected character-model output {shape:?}"
            )));
        }
        let probs: Vec<Vec<f32>> = logits.chunks(classes).map(softmax).collect();
        Ok(ctc_best_path(&probs))
    }
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|v| v / sum).collect()
}

/// Greedy CTC decoding: the most likely class per column, runs merged,
/// blanks dropped. A character's confidence is its best column's
/// probability; its alternatives come from that same column.
pub fn ctc_best_path(probs: &[Vec<f32>]) -> Vec<CharGuess> {
    let mut out: Vec<CharGuess> = Vec::new();
    let mut prev = 0usize;
    let mut peak: Option<(usize, f32)> = None; // (column, p) of the current run
    let flush = |out: &mut Vec<CharGuess>, cls: usize, col: usize| {
        let row = &probs[col];
        let mut alts: Vec<(char, f32)> = (1..row.len())
            .filter(|&k| k != cls)
            .map(|k| (ALPHABET[k - 1] as char, row[k]))
            .collect();
        alts.sort_by(|a, b| b.1.total_cmp(&a.1));
        alts.truncate(3);
        out.push(CharGuess {
            char: ALPHABET[cls - 1] as char,
            confidence: row[cls],
            alternatives: alts,
        });
    };
    for (col, row) in probs.iter().enumerate() {
        let (cls, p) = row
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        if cls != prev {
            if let (Some((c, _)), true) = (peak, prev != 0) {
                flush(&mut out, prev, c);
            }
            peak = None;
        }
        if cls != 0 && peak.is_none_or(|(_, best)| p > best) {
            peak = Some((col, p));
        }
        prev = cls;
    }
    if let (Some((c, _)), true) = (peak, prev != 0) {
        flush(&mut out, prev, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(cls: usize, p: f32) -> Vec<f32> {
        let mut v = vec![(1.0 - p) / 36.0; 37];
        v[cls] = p;
        v
    }

    #[test]
    fn runs_merge_and_blanks_split_repeats() {
        // "7", "7" (same run), blank, "7", "A", blank.
        let seven = 1 + 7;
        let a = 1 + 10;
        let probs = vec![
            col(seven, 0.6),
            col(seven, 0.9),
            col(0, 0.9),
            col(seven, 0.8),
            col(a, 0.7),
            col(0, 0.99),
        ];
        let got = ctc_best_path(&probs);
        let text: String = got.iter().map(|g| g.char).collect();
        assert_eq!(text, "77A");
        assert!(
            (got[0].confidence - 0.9).abs() < 1e-6,
            "a run's confidence is its best column"
        );
        assert_eq!(got[0].alternatives.len(), 3);
    }

    #[test]
    fn all_blank_reads_nothing() {
        assert!(ctc_best_path(&[col(0, 0.9), col(0, 0.8)]).is_empty());
        assert!(ctc_best_path(&[]).is_empty());
    }
}
