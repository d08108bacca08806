//! Reads that arrive as pictures only (SPEC R9.1, R1.2): the server reads
//! the plate itself before the read is validated and stored.

use std::sync::{Arc, OnceLock};

use platekeeper_core::RawRead;
use platekeeper_vision::Recognizer;

use crate::json::FieldError;

/// The recognizer, loaded the first time a picture-only read arrives (the
/// models take a moment to plan, which servers that never see one skip).
#[derive(Clone, Default)]
pub struct Recognition {
    cell: Arc<OnceLock<Result<Recognizer, String>>>,
}

impl Recognition {
    fn get(&self) -> Result<&Recognizer, String> {
        self.cell
            .get_or_init(|| Recognizer::embedded().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Whether a read needs its plate read from its pictures: no plate text,
/// and at least one picture.
pub fn needs_reading(raw: &RawRead) -> bool {
    raw.plate.as_deref().is_none_or(|p| p.trim().is_empty())
        && (raw.plate_image.is_some() || raw.vehicle_image.is_some())
}

/// Fills in `plate`, and `confidence` and `state` where the camera sent
/// none, from the best plate in the read's plate crop (preferred) or
/// vehicle picture. The stored confidence is the recognizer's, as a
/// percentage. A picture with no readable plate refuses the read.
pub fn read_plate(rec: &Recognition, raw: &mut RawRead) -> Result<(), FieldError> {
    let recognizer = rec.get().map_err(|e| {
        (
            "vehicle_image",
            "recognizer_unavailable",
            format!("plate recognition is unavailable: {e}"),
        )
    })?;
    let (field, reading) = if let Some(bytes) = &raw.plate_image {
        ("plate_image", recognizer.read_crop_bytes(bytes))
    } else if let Some(bytes) = &raw.vehicle_image {
        let best = recognizer
            .recognize_bytes(bytes)
            .map(|r| r.into_iter().next());
        ("vehicle_image", best)
    } else {
        return Ok(());
    };
    let reading = reading.map_err(|e| (field, e.code(), format!("{field}: {e}")))?;
    let Some(best) = reading else {
        return Err((
            field,
            "no_plate_found",
            format!("no plate could be read in {field}; send plate text with it"),
        ));
    };
    raw.plate = Some(best.text);
    if raw.confidence.is_none() {
        raw.confidence = Some(f64::from(best.confidence) * 100.0);
    }
    if raw.state.is_none() {
        raw.state = best.state.map(str::to_string);
    }
    Ok(())
}
