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
    /// Every other symbol at the same place, most likely first.
    pub alternatives: Vec<(char, f32)>,
}

/// A character the best path left out: the likeliest symbol of a blank
/// column between two read characters (or before the first, after the
/// last). Thin characters and the second of a doubled pair ("100") often
/// lose their column to the blank by a small margin.
#[derive(Debug, Clone, PartialEq)]
pub struct MissedGuess {
    /// It would go before `chars[before]` (`chars.len()`: at the end).
    pub before: usize,
    pub char: char,
    pub confidence: f32,
}

/// What the model read in one crop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub chars: Vec<CharGuess>,
    pub missed: Vec<MissedGuess>,
}

/// A symbol below this in a blank column is not worth trying.
const MISSED_AT_LEAST: f32 = 0.02;

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
    pub fn read(&self, img: &RgbImage, rect: Rect) -> Result<Decoded, VisionError> {
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

fn symbol(k: usize) -> char {
    ALPHABET[k - 1] as char
}

/// Greedy CTC decoding: the most likely class per column, runs merged,
/// blanks dropped. A character's confidence is its best column's
/// probability; its alternatives come from that same column. Each run of
/// blank columns also yields its strongest character, if any, as a
/// possible miss.
pub fn ctc_best_path(probs: &[Vec<f32>]) -> Decoded {
    let best: Vec<(usize, f32)> = probs
        .iter()
        .map(|row| {
            row.iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0))
        })
        .collect();
    let mut out = Decoded::default();
    let mut col = 0;
    while col < best.len() {
        let cls = best[col].0;
        let end = (col..best.len())
            .find(|&c| best[c].0 != cls)
            .unwrap_or(best.len());
        if cls == 0 {
            // The symbol must differ from its neighbour in the column next
            // to it, or CTC would merge the two into one character.
            let prev = col.checked_sub(1).map(|c| best[c].0);
            let next = best.get(end).map(|b| b.0);
            let missed = (col..end)
                .flat_map(|c| (1..probs[c].len()).map(move |k| (c, k)))
                .filter(|&(c, k)| {
                    let merges_back = c == col && prev == Some(k);
                    let merges_on = c + 1 == end && next == Some(k);
                    !(merges_back || merges_on)
                })
                .map(|(c, k)| (k, probs[c][k]))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, p)) = missed.filter(|m| m.1 >= MISSED_AT_LEAST) {
                out.missed.push(MissedGuess {
                    before: out.chars.len(),
                    char: symbol(k),
                    confidence: p,
                });
            }
        } else {
            let peak = (col..end)
                .max_by(|&a, &b| best[a].1.total_cmp(&best[b].1))
                .unwrap_or(col);
            let row = &probs[peak];
            let mut alternatives: Vec<(char, f32)> = (1..row.len())
                .filter(|&k| k != cls)
                .map(|k| (symbol(k), row[k]))
                .collect();
            alternatives.sort_by(|a, b| b.1.total_cmp(&a.1));
            out.chars.push(CharGuess {
                char: symbol(cls),
                confidence: row[cls],
                alternatives,
            });
        }
        col = end;
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
        let got = ctc_best_path(&probs).chars;
        let text: String = got.iter().map(|g| g.char).collect();
        assert_eq!(text, "77A");
        assert!(
            (got[0].confidence - 0.9).abs() < 1e-6,
            "a run's confidence is its best column"
        );
        assert_eq!(got[0].alternatives.len(), 35);
        assert!(got[0].alternatives.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn all_blank_reads_nothing() {
        assert!(ctc_best_path(&[col(0, 0.9), col(0, 0.8)]).chars.is_empty());
        assert!(ctc_best_path(&[]).chars.is_empty());
    }

    /// A blank column where a character nearly won.
    fn blank_with(cls: usize, p: f32) -> Vec<f32> {
        let mut v = vec![0.0; 37];
        v[0] = 1.0 - p;
        v[cls] = p;
        v
    }

    #[test]
    fn a_near_miss_in_a_blank_run_is_kept_with_its_place() {
        // "1", blank, blank ("0" at 0.4), blank, "0", blank, "A": the model
        // read "10A" where the plate may say "100A".
        let (one, zero, a) = (2, 1, 11);
        let probs = vec![
            col(one, 0.9),
            col(0, 0.99),
            blank_with(zero, 0.4),
            col(0, 0.99),
            col(zero, 0.9),
            col(0, 0.99),
            col(a, 0.9),
        ];
        let got = ctc_best_path(&probs);
        let text: String = got.chars.iter().map(|g| g.char).collect();
        assert_eq!(text, "10A");
        assert_eq!(
            got.missed,
            vec![MissedGuess {
                before: 1,
                char: '0',
                confidence: 0.4
            }]
        );
    }

    #[test]
    fn a_near_miss_that_ctc_would_merge_is_not_a_miss() {
        // The blank column right after a "7" leaning to "7" would only
        // lengthen that "7"; nothing weaker than 2 % is offered either.
        let seven = 8;
        let probs = vec![col(seven, 0.9), blank_with(seven, 0.45), col(0, 0.99)];
        let got = ctc_best_path(&probs);
        assert_eq!(got.chars.len(), 1);
        assert!(got.missed.is_empty(), "{:?}", got.missed);
    }
}
