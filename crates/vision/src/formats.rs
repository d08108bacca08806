//! What a US plate's characters may look like, as data: the serial layouts
//! used to re-rank readings, and the one state told by its layout alone.
//! `#` is a digit, `@` a letter.

/// Serial layouts common on US passenger plates. A reading that fits one
/// is preferred over an equally likely one that fits none; vanity plates
/// fit none and are still returned, only ranked lower.
pub const US_LAYOUTS: &[&str] = &[
    "#@@@###", "@@@####", "@@@###", "###@@@", "#@@####", "@@#####", "###@###", "@@@@###", "##@@##",
    "@#####", "#####@", "###@@", "@@@@##", "#@#####", "######", "@@@@@##", "####@@", "@##@@@",
    "#@@@##", "@@###@",
];

/// Layouts that point to one state. California's standard passenger serial
/// (a digit, three letters, three digits) is the agencies' own; other
/// states share their layouts too widely to be told from text alone.
pub const STATE_LAYOUTS: &[(&str, &str)] = &[("CA", "#@@@###"), ("CA", "#@#####")];

/// How much a reading that fits no layout is discounted.
pub const OFF_LAYOUT_FACTOR: f32 = 0.85;

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
    US_LAYOUTS.iter().any(|l| fits(text, l))
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
        assert_eq!(state_from_layout("8XYZ321"), Some("CA"));
        assert_eq!(state_from_layout("XYZ3210"), None);
    }
}
