//! From per-character guesses to ranked whole readings (top-N).
//!
//! Each place of a reading offers options: the model's character, its
//! runners-up, a look-alike of the other kind (`0`/`O`, `8`/`B`, …), no
//! character at all where the model was unsure, and, between characters,
//! a character the best path left out. Readings are explored best first;
//! those that fit no US layout are discounted (see `formats`).

use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use crate::formats::{layout_factor, lookalikes, symbol_factor, LOOKALIKE_EVIDENCE};
use crate::ocr::Decoded;

/// A character below this is also tried as absent (a bolt, a sticker edge).
const DROP_BELOW: f32 = 0.5;
/// Runner-up symbols tried at each place.
const RUNNERS_UP: usize = 3;
/// Readings looked at per reading asked for, since re-ranking reorders them.
const EXPLORE_PER_ASKED: usize = 4;
/// A bound on the search however the options fall.
const MAX_STEPS: usize = 5_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub confidence: f32,
}

/// A candidate with the probability of each of its characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    pub chars: Vec<(char, f32)>,
}

/// One option at one place of a reading.
#[derive(Debug, Clone, Copy)]
struct Opt {
    char: Option<char>,
    /// The model's probability for this option; averaged (geometrically)
    /// over the places, so readings of different lengths compare.
    p: f32,
    /// A fixed cost outside that average (a look-alike swap).
    factor: f32,
}

impl Opt {
    fn weight(&self, places: f32) -> f32 {
        self.p.max(1e-6).ln() / places + self.factor.ln()
    }
}

/// The options at each place, best first.
fn places(decoded: &Decoded) -> Vec<Vec<Opt>> {
    let plain = |char, p| Opt {
        char,
        p,
        factor: 1.0,
    };
    let mut out = Vec::new();
    for i in 0..=decoded.chars.len() {
        // Characters the best path missed go before the one they preceded
        // (the last place takes those after the final character).
        let last = i == decoded.chars.len();
        for m in decoded
            .missed
            .iter()
            .filter(|m| m.before == i || last && m.before > i)
        {
            out.push(vec![
                plain(None, 1.0 - m.confidence),
                plain(Some(m.char), m.confidence),
            ]);
        }
        let Some(g) = decoded.chars.get(i) else {
            break;
        };
        let mut opts = vec![plain(Some(g.char), g.confidence)];
        opts.extend(
            g.alternatives
                .iter()
                .take(RUNNERS_UP)
                .map(|&(c, p)| plain(Some(c), p)),
        );
        opts.extend(lookalikes(g.char).filter_map(|(c, factor)| {
            let p = g
                .alternatives
                .iter()
                .find(|a| a.0 == c)
                .map_or(0.0, |a| a.1);
            (p >= LOOKALIKE_EVIDENCE).then_some(Opt {
                char: Some(c),
                p: g.confidence,
                factor,
            })
        }));
        if g.confidence < DROP_BELOW {
            opts.push(plain(None, 1.0 - g.confidence));
        }
        out.push(opts);
    }
    let n = out.len().max(1) as f32;
    for opts in &mut out {
        opts.sort_by(|a, b| b.weight(n).total_cmp(&a.weight(n)));
        // A symbol offered twice (a runner-up that is also a look-alike)
        // keeps its better option only.
        let mut seen = HashSet::new();
        opts.retain(|o| seen.insert(o.char));
    }
    out
}

#[derive(Clone)]
struct Partial {
    score: f32,
    choice: Vec<usize>, // per place: index into its options, 0 = best
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

/// Up to `n` readings, most likely first. Confidence is the geometric mean
/// of the chosen options' probabilities over every place (a place left
/// empty counts at its probability of being empty, so dropping a weak
/// character is not a free gain), times the look-alike and layout factors.
pub fn rank(decoded: &Decoded, n: usize) -> Vec<Ranked> {
    let places = places(decoded);
    if places.is_empty() || n == 0 {
        return Vec::new();
    }
    let count = places.len() as f32;
    let best: f32 = places.iter().map(|o| o[0].weight(count)).sum();
    let mut heap = BinaryHeap::new();
    heap.push(Partial {
        score: best,
        choice: vec![0; places.len()],
    });
    let mut seen_choice = HashSet::new();
    let mut seen_text = HashSet::new();
    let mut out = Vec::new();
    let mut steps = 0;
    while let Some(p) = heap.pop() {
        steps += 1;
        if out.len() >= n * EXPLORE_PER_ASKED || steps > MAX_STEPS {
            break;
        }
        if !seen_choice.insert(p.choice.clone()) {
            continue;
        }
        let chosen: Vec<Opt> = places.iter().zip(&p.choice).map(|(o, &k)| o[k]).collect();
        let chars: Vec<(char, f32)> = chosen
            .iter()
            .filter_map(|o| o.char.map(|c| (c, o.p * o.factor)))
            .collect();
        let text: String = chars.iter().map(|c| c.0).collect();
        if text.len() >= 2 && seen_text.insert(text.clone()) {
            let confidence = p.score.exp() * layout_factor(&text) * symbol_factor(&text);
            out.push(Ranked {
                candidate: Candidate { text, confidence },
                chars,
            });
        }
        for (i, opts) in places.iter().enumerate() {
            if p.choice[i] != 0 {
                continue;
            }
            for (k, o) in opts.iter().enumerate().skip(1) {
                let mut choice = p.choice.clone();
                choice[i] = k;
                let score = p.score - opts[0].weight(count) + o.weight(count);
                heap.push(Partial { score, choice });
            }
        }
    }
    out.sort_by(|a, b| b.candidate.confidence.total_cmp(&a.candidate.confidence));
    out.truncate(n);
    out
}

/// Joins the readings of several views of one plate (the same box read
/// from slightly different places): a reading's confidence becomes its
/// mean over the views, counting zero where a view did not offer it, so a
/// reading every view agrees on beats one that a single view was a little
/// surer of. Its characters are those of the view that was surest of it.
/// Up to `n`, most likely first.
pub fn merge(views: Vec<Vec<Ranked>>, n: usize) -> Vec<Ranked> {
    let count = views.len().max(1) as f32;
    let mut out: Vec<(Ranked, f32)> = Vec::new();
    for r in views.into_iter().flatten() {
        let c = r.candidate.confidence;
        match out
            .iter_mut()
            .find(|(o, _)| o.candidate.text == r.candidate.text)
        {
            Some((o, sum)) => {
                *sum += c;
                if c > o.candidate.confidence {
                    *o = r;
                }
            }
            None => out.push((r, c)),
        }
    }
    let mut out: Vec<Ranked> = out
        .into_iter()
        .map(|(mut r, sum)| {
            r.candidate.confidence = sum / count;
            r
        })
        .collect();
    out.sort_by(|a, b| b.candidate.confidence.total_cmp(&a.candidate.confidence));
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::{CharGuess, MissedGuess};

    fn g(c: char, p: f32, alts: &[(char, f32)]) -> CharGuess {
        CharGuess {
            char: c,
            confidence: p,
            alternatives: alts.to_vec(),
        }
    }

    /// Sure characters whose look-alikes the model saw a trace of.
    fn sure(text: &str) -> Vec<CharGuess> {
        text.chars()
            .map(|c| {
                let trace: Vec<_> = lookalikes(c).map(|l| (l.0, 0.001)).collect();
                g(c, 0.99, &trace)
            })
            .collect()
    }

    fn ranked(chars: Vec<CharGuess>, missed: Vec<MissedGuess>, n: usize) -> Vec<Ranked> {
        rank(&Decoded { chars, missed }, n)
    }

    fn texts(r: &[Ranked]) -> Vec<&str> {
        r.iter().map(|r| r.candidate.text.as_str()).collect()
    }

    #[test]
    fn layout_fit_beats_a_slightly_likelier_misfit() {
        // "7ABC1Z3" is the raw best; "7ABC123" fits California's layout.
        let mut chars = sure("7ABC1Z3");
        chars[5] = g('Z', 0.55, &[('2', 0.44)]);
        let r = ranked(chars, vec![], 10);
        assert_eq!(r[0].candidate.text, "7ABC123");
        assert!(texts(&r).contains(&"7ABC1Z3"));
        assert!(r
            .windows(2)
            .all(|w| w[0].candidate.confidence >= w[1].candidate.confidence));
        assert_eq!(
            r[0].chars[5],
            ('2', 0.44),
            "the chosen runner-up's own probability"
        );
    }

    #[test]
    fn a_sure_zero_where_the_layout_wants_a_letter_is_read_as_o() {
        // The model is certain of the glyph, not of which symbol it is; only
        // the zero has a look-alike trace here.
        let with_o_trace = |o: f32| -> Vec<CharGuess> {
            "5A0J230"
                .chars()
                .map(|c| match c {
                    '0' => g(c, 0.99, &[('O', o)]),
                    _ => g(c, 0.99, &[]),
                })
                .collect()
        };
        let r = ranked(with_o_trace(0.001), vec![], 10);
        assert_eq!(r[0].candidate.text, "5AOJ230");
        assert!((r[0].chars[2].1 - 0.99 * 0.8).abs() < 1e-6);
        assert!(
            texts(&r).contains(&"5A0J230"),
            "the raw reading stays a candidate"
        );
        // Without a trace of the O, the zero stays: a layout missing from
        // the list is then the likelier story.
        assert_eq!(
            ranked(with_o_trace(1e-6), vec![], 10)[0].candidate.text,
            "5A0J230"
        );
        // Two close swaps are still worth a layout, three are not.
        assert_eq!(
            ranked(sure("5S8AB12"), vec![], 5)[0].candidate.text,
            "SSBAB12"
        );
        assert_eq!(
            ranked(sure("5S8AB1Z"), vec![], 5)[0].candidate.text,
            "5S8AB1Z"
        );
    }

    #[test]
    fn a_sure_o_that_could_be_a_zero_is_read_as_zero() {
        // Both fit a layout ("#@@@##", "#@@###"); the zero is the likelier
        // symbol for a round glyph (R9.3).
        let r = ranked(sure("1WGO11"), vec![], 5);
        assert_eq!(texts(&r)[..2], ["1WG011", "1WGO11"]);
        // Not without a trace of the zero, nor where the layout wants a
        // letter and the reading with a zero fits none.
        let chars: Vec<_> = "1WGO11".chars().map(|c| g(c, 0.99, &[])).collect();
        assert_eq!(ranked(chars, vec![], 5)[0].candidate.text, "1WGO11");
        let mut chars = sure("5AOJ230");
        chars[0] = g('5', 0.99, &[]);
        assert_eq!(ranked(chars, vec![], 5)[0].candidate.text, "5AOJ230");
    }

    #[test]
    fn a_reading_that_fits_a_layout_keeps_its_symbols() {
        let r = ranked(sure("7ABC123"), vec![], 10);
        assert_eq!(r[0].candidate.text, "7ABC123");
        assert!(r[0].chars.iter().all(|c| c.1 == 0.99));
        // A vanity reading with no look-alike path to a layout is kept.
        assert_eq!(
            ranked(sure("DUKDAWG"), vec![], 10)[0].candidate.text,
            "DUKDAWG"
        );
    }

    #[test]
    fn a_character_the_best_path_missed_can_be_put_back() {
        // "10AJA" fits no layout; with the faint second zero it is "100AJA".
        let missed = vec![MissedGuess {
            before: 2,
            char: '0',
            confidence: 0.3,
        }];
        let r = ranked(sure("10AJA"), missed.clone(), 10);
        assert_eq!(r[0].candidate.text, "100AJA");
        assert_eq!(r[0].chars[2], ('0', 0.3));
        assert!(texts(&r).contains(&"10AJA"));
        // Not where the reading already fits a layout.
        let r = ranked(sure("100AJA"), missed, 10);
        assert_eq!(r[0].candidate.text, "100AJA");
        // Nor at the end when it is faint.
        let end = vec![MissedGuess {
            before: 7,
            char: '4',
            confidence: 0.03,
        }];
        assert_eq!(
            ranked(sure("7ABC123"), end, 10)[0].candidate.text,
            "7ABC123"
        );
    }

    #[test]
    fn a_weak_extra_character_can_be_dropped() {
        let mut chars = sure("ABC1234");
        chars.push(g('I', 0.3, &[('1', 0.2)]));
        let r = ranked(chars, vec![], 10);
        assert_eq!(r[0].candidate.text, "ABC1234");
        let unique: HashSet<_> = texts(&r).into_iter().collect();
        assert_eq!(unique.len(), r.len(), "no reading twice");
    }

    fn reading(text: &str, confidence: f32) -> Ranked {
        Ranked {
            candidate: Candidate {
                text: text.into(),
                confidence,
            },
            chars: text.chars().map(|c| (c, confidence)).collect(),
        }
    }

    #[test]
    fn views_that_agree_outvote_one_that_is_surer() {
        let views = vec![
            vec![reading("7ABC123", 0.6), reading("7ABC128", 0.3)],
            vec![reading("7ABC128", 0.9), reading("7ABC123", 0.5)],
            vec![reading("7ABC123", 0.7)],
        ];
        let r = merge(views, 10);
        assert_eq!(texts(&r), ["7ABC123", "7ABC128"]);
        assert!((r[0].candidate.confidence - 0.6).abs() < 1e-6);
        // A view that did not offer a reading counts as zero for it.
        assert!((r[1].candidate.confidence - 0.4).abs() < 1e-6);
        assert_eq!(r[0].chars[0], ('7', 0.7), "the surest view's characters");
        // One view is passed through; nothing in, nothing out.
        let one = merge(vec![vec![reading("ABC123", 0.8)]], 10);
        assert_eq!(one, vec![reading("ABC123", 0.8)]);
        assert!(merge(vec![], 10).is_empty());
        assert_eq!(
            merge(vec![vec![reading("AB", 0.5), reading("CD", 0.4)]], 1).len(),
            1
        );
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(ranked(vec![], vec![], 10).is_empty());
        assert!(
            ranked(vec![g('A', 0.9, &[])], vec![], 10).is_empty(),
            "one character is not a plate"
        );
        assert!(ranked(sure("ABC123"), vec![], 0).is_empty());
    }

    #[test]
    fn the_search_is_bounded_on_a_long_noisy_reading() {
        let alts = [('A', 0.2), ('B', 0.2), ('C', 0.2)];
        let chars: Vec<_> = (0..24).map(|_| g('0', 0.3, &alts)).collect();
        let r = ranked(chars, vec![], 10);
        assert_eq!(r.len(), 10);
    }
}
