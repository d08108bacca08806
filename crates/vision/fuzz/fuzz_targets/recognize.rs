//! Any bytes through the decode-and-recognize entry point a camera's
//! picture takes: an error is fine, a panic or a hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platekeeper_vision::Recognizer;
use std::sync::OnceLock;

static REC: OnceLock<Recognizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let rec = REC.get_or_init(|| Recognizer::embedded().expect("embedded models load"));
    let _ = rec.recognize_bytes(data);
});
