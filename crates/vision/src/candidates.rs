//! From per-character guesses to ranked whole readings (top-N).

use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use crate::formats::{fits_us_layout, OFF_LAYOUT_FACTOR};
use crate::ocr::CharGuess;

/// A character below this is also tried as absent (a bolt, a sticker edge).
const DROP_BELOW: f32 = 0.5;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub confidence: f32,
}

#[derive(Clone)]
struct Partial {
    score: f32,
    choice: Vec<usize>, // per position: 0 = best, 1..=3 = alternative, 4 = dropped
}

impl PartialEq for Partial {
    fn eq(&self, o: &Self) -> bool {
        self.score == o.score
    }
}
impl Eq for Partial {}
impl PartialOrd for Partial {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Partial {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score)
    }
}

const DROPPED: usize = 4;

fn option(g: &CharGuess, k: usize) -> Option<(Option<char>, f32)> {
    match k {
        0 => Some((Some(g.char), g.confidence)),
        DROPPED if g.confidence < DROP_BELOW => Some((None, 1.0 - g.confidence)),
        k if k <= g.alternatives.len() => g.alternatives.get(k - 1).map(|&(c, p)| (Some(c), p)),
        _ => None,
    }
}

/// Up to `n` readings, most likely first: substitutions from each
/// position's alternatives, weak characters dropped, readings that fit no
/// US layout discounted. Confidence is the geometric mean of the chosen
/// options' probabilities (times the layout factor).
pub fn rank(chars: &[CharGuess], n: usize) -> Vec<Candidate> {
    if chars.is_empty() || n == 0 {
        return Vec::new();
    }
    let best: f32 = chars.iter().map(|g| g.confidence.max(1e-6).ln()).sum();
    let mut heap = BinaryHeap::new();
    heap.push(Partial {
        score: best,
        choice: vec![0; chars.len()],
    });
    let mut seen_choice = HashSet::new();
    let mut seen_text = HashSet::new();
    let mut out = Vec::new();
    // Explore a few times more than asked, since re-ranking reorders them.
    while let Some(p) = heap.pop() {
        if out.len() >= n * 4 {
            break;
        }
        if !seen_choice.insert(p.choice.clone()) {
            continue;
        }
        let text: String = chars
            .iter()
            .zip(&p.choice)
            .filter_map(|(g, &k)| option(g, k).and_then(|(c, _)| c))
            .collect();
        if text.len() >= 2 && seen_text.insert(text.clone()) {
            // Averaged over every column the model emitted, dropped ones
            // included (at their probability of being absent), so dropping
            // a weak character is not a free gain.
            let mut conf = (p.score / chars.len() as f32).exp();
            if !fits_us_layout(&text) {
                conf *= OFF_LAYOUT_FACTOR;
            }
            out.push(Candidate {
                text,
                confidence: conf,
            });
        }
        for (i, g) in chars.iter().enumerate() {
            if p.choice[i] != 0 {
                continue;
            }
            for k in 1..=DROPPED {
                if let Some((_, prob)) = option(g, k) {
                    let mut choice = p.choice.clone();
                    choice[i] = k;
                    let score = p.score - g.confidence.max(1e-6).ln() + prob.max(1e-6).ln();
                    heap.push(Partial { score, choice });
                }
            }
        }
    }
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(c: char, p: f32, alts: &[(char, f32)]) -> CharGuess {
        CharGuess {
            char: c,
            confidence: p,
            alternatives: alts.to_vec(),
        }
    }

    #[test]
    fn layout_fit_beats_a_slightly_likelier_misfit() {
        // "7ABC1Z3" is the raw best; "7ABC123" fits California's layout.
        let chars = vec![
            g('7', 0.99, &[]),
            g('A', 0.99, &[]),
            g('B', 0.99, &[]),
            g('C', 0.99, &[]),
            g('1', 0.99, &[]),
            g('Z', 0.55, &[('2', 0.44)]),
            g('3', 0.99, &[]),
        ];
        let ranked = rank(&chars, 5);
        assert_eq!(ranked[0].text, "7ABC123");
        assert!(ranked.iter().any(|c| c.text == "7ABC1Z3"));
        assert!(ranked
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence));
    }

    #[test]
    fn a_weak_extra_character_can_be_dropped() {
        let mut chars: Vec<CharGuess> = "ABC1234".chars().map(|c| g(c, 0.98, &[])).collect();
        chars.push(g('I', 0.3, &[('1', 0.2)]));
        let ranked = rank(&chars, 10);
        assert_eq!(ranked[0].text, "ABC1234");
        let texts: HashSet<_> = ranked.iter().map(|c| c.text.clone()).collect();
        assert_eq!(texts.len(), ranked.len(), "no reading twice");
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(rank(&[], 10).is_empty());
        assert!(
            rank(&[g('A', 0.9, &[])], 10).is_empty(),
            "one character is not a plate"
        );
    }
}
