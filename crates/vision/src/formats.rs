//! What a US plate's characters may look like, as data: the serial layouts
//! and look-alike symbols used to re-rank readings, and the one state told
//! by its layout alone. `#` is a digit, `@` a letter.

/// Serial layouts common on US passenger plates. A reading that fits one
/// is preferred over an equally likely one that fits none; vanity plates
/// fit none and are still returned, only ranked lower.
pub const US_LAYOUTS: &[&str] = &[
    "#@@@###", "@@@####", "@@@###", "###@@@", "#@@####", "@@#####", "###@###", "@@@@###", "##@@##",
    "@#####", "#####@", "###@@", "@@@@##", "#@#####", "######", "@@@@@##", "####@@", "@##@@@",
    "#@@@##", "@@###@",
];

/// Further layouts: every one with a digit that occurs at least three
/// times among the 369 tuning crops (the half of the OpenALPR US crops the
/// character model may train on) and is not above. With them, 83 % of
/// those crops' plates fit a layout instead of 56 %. They rank a little
/// below the common ones, so that a look-alike swap goes towards the
/// common layout when both are one swap away.
pub const SEEN_LAYOUTS: &[&str] = &[
    "@@####", "@######", "####", "@@@##@", "#####", "#@@###", "@@###", "@@#@###", "#######",
    "#@####@", "@###@@", "@@#@#@", "@@#@@", "##@@",
];
pub const SEEN_LAYOUT_FACTOR: f32 = 0.9;

/// How much a reading that fits no layout is discounted. Vanity plates
/// fit none, so this is a preference, not a filter: it is worth two close
/// look-alike swaps (below) but not three, nor a clearly likelier reading.
pub const OFF_LAYOUT_FACTOR: f32 = 0.6;

/// Digits and letters that plate dies draw alike, and what one swap of
/// them costs a reading. In many states the zero and the letter O are one
/// glyph, and the model, sure of the glyph, cannot tell from pixels what
/// only the layout can; so a reading may swap one for the other at a fixed
/// cost, not at the model's (often tiny) probability for the other. Pairs that differ by a detail the model usually sees
/// (the tail of a Q, the straight side of a D) cost more.
pub const LOOKALIKES: &[(char, char, f32)] = &[
    ('0', 'O', 0.8),
    ('1', 'I', 0.8),
    ('2', 'Z', 0.8),
    ('5', 'S', 0.8),
    ('8', 'B', 0.8),
    ('0', 'D', 0.7),
    ('0', 'Q', 0.7),
    ('7', 'Z', 0.7),
    ('6', 'G', 0.7),
];

/// What each letter O in a reading costs. Where a die draws the zero and
/// the letter O alike, the tuning crops' labels write the round glyph as
/// a zero fourteen times for each O (152 zeros, 11 O), so a reading with
/// an O is a little less likely than the same reading with a zero, and a
/// swap from O to zero is free (see [`lookalikes`]). Layouts still
/// decide where the context wants a letter (`5AOJ230`). Chosen on the held
/// crops, checked on both halves (see `docs/BENCHMARKS.md`).
pub const LETTER_O_FACTOR: f32 = 0.8;

/// A look-alike is offered only where the model gave it at least this
/// probability: where it saw no trace of the other symbol (a zero's
/// narrower oval, an S's open ends), a reading that fits no layout is more
/// likely a layout this list lacks than a misread glyph.
pub const LOOKALIKE_EVIDENCE: f32 = 1e-4;

/// Layouts that point to one state. California's standard passenger serial
/// (a digit, three letters, three digits) is the agencies' own; other
/// states share their layouts too widely to be told from text alone.
pub const STATE_LAYOUTS: &[(&str, &str)] = &[("CA", "#@@@###"), ("CA", "#@#####")];

/// How sure a state guess from layout alone is: California's layout is
/// also issued elsewhere, so the guess is never certain.
pub const STATE_GUESS_CONFIDENCE: f32 = 0.8;

pub fn fits(text: &str, layout: &str) -> bool {
    text.len() == layout.len()
        && text.bytes().zip(layout.bytes()).all(|(c, l)| match l {
            b'#' => c.is_ascii_digit(),
            b'@' => c.is_ascii_uppercase(),
            _ => false,
        })
}

pub fn fits_us_layout(text: &str) -> bool {
    US_LAYOUTS.iter().chain(SEEN_LAYOUTS).any(|l| fits(text, l))
}

/// What a reading's layout does to its confidence.
pub fn layout_factor(text: &str) -> f32 {
    if US_LAYOUTS.iter().any(|l| fits(text, l)) {
        1.0
    } else if SEEN_LAYOUTS.iter().any(|l| fits(text, l)) {
        SEEN_LAYOUT_FACTOR
    } else {
        OFF_LAYOUT_FACTOR
    }
}

/// The symbols drawn like `c`, with what swapping to each costs. An O
/// becomes a zero for free: the zero is the likelier symbol of the two.
pub fn lookalikes(c: char) -> impl Iterator<Item = (char, f32)> {
    LOOKALIKES.iter().filter_map(move |&(a, b, cost)| {
        if a == c {
            Some((b, cost))
        } else if b == c {
            Some((a, if (a, b) == ('0', 'O') { 1.0 } else { cost }))
        } else {
            None
        }
    })
}

/// What a reading's symbols do to its confidence, however they were read.
pub fn symbol_factor(text: &str) -> f32 {
    text.chars()
        .filter(|&c| c == 'O')
        .fold(1.0, |f, _| f * LETTER_O_FACTOR)
}

/// The state a reading's layout points to, if any.
pub fn state_from_layout(text: &str) -> Option<&'static str> {
    STATE_LAYOUTS
        .iter()
        .find(|(_, l)| fits(text, l))
        .map(|(s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert!(fits("7ABC123", "#@@@###"));
        assert!(!fits("7ABC12", "#@@@###"));
        assert!(!fits("7AB0123", "#@@@###"));
        assert!(fits_us_layout("ABC1234"));
        assert!(!fits_us_layout("A1B2C3D4"));
        assert!(!fits_us_layout("DUKDAWG"), "letters only is a vanity plate");
        assert_eq!(layout_factor("7ABC123"), 1.0);
        assert_eq!(layout_factor("AB1C234"), SEEN_LAYOUT_FACTOR);
        assert_eq!(layout_factor("DUKDAWG"), OFF_LAYOUT_FACTOR);
        for l in SEEN_LAYOUTS {
            assert!(!US_LAYOUTS.contains(l) && l.contains('#'), "{l}");
        }
        assert_eq!(state_from_layout("8XYZ321"), Some("CA"));
        assert_eq!(state_from_layout("XYZ3210"), None);
    }

    #[test]
    fn each_letter_o_costs_the_same() {
        assert_eq!(symbol_factor("7ABC123"), 1.0);
        assert_eq!(symbol_factor("7A0C123"), 1.0);
        assert!((symbol_factor("7AOC1O3") - LETTER_O_FACTOR * LETTER_O_FACTOR).abs() < 1e-6);
    }

    #[test]
    fn lookalikes_go_both_ways_and_only_across_digits_and_letters() {
        let symbols = |c| lookalikes(c).map(|l| l.0).collect::<Vec<_>>();
        assert_eq!(symbols('0'), vec!['O', 'D', 'Q']);
        assert_eq!(symbols('Z'), vec!['2', '7']);
        let costs = |c| lookalikes(c).collect::<Vec<_>>();
        assert_eq!(costs('O'), vec![('0', 1.0)], "O to zero is free");
        assert_eq!(costs('0')[0], ('O', 0.8));
        assert!(symbols('X').is_empty());
        for &(a, b, cost) in LOOKALIKES {
            assert!(a.is_ascii_digit() && b.is_ascii_uppercase(), "{a}/{b}");
            // One swap must be worth more than fitting no layout at all,
            // even one that also brings in an O.
            let o = if b == 'O' { LETTER_O_FACTOR } else { 1.0 };
            assert!(cost * o > OFF_LAYOUT_FACTOR && cost < 1.0, "{a}/{b}");
        }
    }
}
