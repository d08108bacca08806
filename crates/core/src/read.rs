//! A plate read as a camera reports it, and the rules it must pass before
//! it is stored (SPEC R1.1, R1.3, R1.5).

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::geo::{GeoError, GeoPoint};
use crate::plate::{Plate, PlateError};
use crate::region::Region;

/// Images larger than this are refused: a plate crop or a vehicle picture
/// is a few hundred kilobytes; more is a misconfigured camera or an attack.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// How far ahead of the server's clock a read's time may be (camera clock
/// drift); later is refused as impossible.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// 2000-01-01T00:00:00Z: reads before it are refused (a camera whose clock
/// was never set reports 1970).
pub const EARLIEST_READ_MS: i64 = 946_684_800_000;

/// A read's stable identity, chosen by the camera (a UUID) or derived from
/// the read's content for imports that have none, so re-sending never
/// duplicates (SPEC R1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadId(pub Uuid);

impl ReadId {
    pub fn parse(raw: &str) -> Result<ReadId, ReadError> {
        Uuid::parse_str(raw.trim()).map(ReadId).map_err(|_| {
            ReadError::new(
                "id",
                "invalid_id",
                format!(
                    "id {raw:?} is not a UUID (for example 0b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10)"
                ),
            )
        })
    }

    /// A name-based id: SHA-256 of a namespace label and `parts`, shaped as
    /// an RFC 9562 version-8 UUID. Equal inputs give equal ids.
    pub fn derive(parts: &[&[u8]]) -> ReadId {
        let mut h = Sha256::new();
        h.update(b"platekeeper-read-id-v1");
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ReadId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl std::fmt::Display for ReadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The picture formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }
}

/// Checks an image's size and signature. Decoding is left to whoever
/// displays it; here the bytes are only kept, by content hash.
pub fn check_image(field: &'static str, bytes: &[u8]) -> Result<ImageKind, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::new(
            field,
            "image_empty",
            format!("{field} is empty"),
        ));
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ReadError::new(
            field,
            "image_too_large",
            format!(
                "{field} is {} bytes; at most {MAX_IMAGE_BYTES} bytes (2 MiB) are accepted",
                bytes.len()
            ),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(ImageKind::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageKind::Png)
    } else {
        Err(ReadError::new(
            field,
            "image_not_jpeg_or_png",
            format!("{field} is neither a JPEG nor a PNG image"),
        ))
    }
}

/// Why one read was refused: the field at fault, a stable code for
/// programs, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReadError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl ReadError {
    pub fn new(field: &'static str, code: &'static str, message: String) -> ReadError {
        ReadError {
            field,
            code,
            message,
        }
    }

    pub fn missing(field: &'static str) -> ReadError {
        ReadError::new(field, "missing_field", format!("{field} is required"))
    }
}

impl From<PlateError> for ReadError {
    fn from(e: PlateError) -> ReadError {
        ReadError::new("plate", "invalid_plate", format!("plate: {e}"))
    }
}

impl From<GeoError> for ReadError {
    fn from(e: GeoError) -> ReadError {
        let field = match &e {
            GeoError::Latitude { field, .. } | GeoError::Longitude { field, .. } => *field,
            _ => "position",
        };
        ReadError::new(field, "invalid_coordinates", e.to_string())
    }
}

/// A read's time as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeInput {
    /// RFC 3339 text, e.g. `2026-11-22T15:04:05.250Z`.
    Text(String),
    /// Milliseconds since the Unix epoch (the OpenALPR agent's form).
    EpochMs(i64),
}

/// A read as received, every field still unchecked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRead {
    pub id: Option<String>,
    pub plate: Option<String>,
    pub state: Option<String>,
    pub ts: Option<TimeInput>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub heading: Option<f64>,
    pub confidence: Option<f64>,
    pub plate_image: Option<Vec<u8>>,
    pub vehicle_image: Option<Vec<u8>>,
}

/// A read that passed every rule, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRead {
    pub id: ReadId,
    pub plate: Plate,
    pub region: Option<Region>,
    /// Milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// `None` only where the camera is fixed and its position is known.
    pub position: Option<GeoPoint>,
    /// Degrees clockwise from north, 0–359.
    pub heading: Option<u16>,
    /// Percent, 0–100.
    pub confidence: Option<u8>,
    pub plate_image: Option<(ImageKind, Vec<u8>)>,
    pub vehicle_image: Option<(ImageKind, Vec<u8>)>,
}

/// Parses an RFC 3339 time to epoch milliseconds.
pub fn parse_time_ms(field: &'static str, raw: &str) -> Result<i64, ReadError> {
    let t = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        ReadError::new(
            field,
            "invalid_timestamp",
            format!("{field} {raw:?} is not an RFC 3339 time such as 2026-11-22T15:04:05Z"),
        )
    })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Formats epoch milliseconds as RFC 3339 UTC.
pub fn format_time_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl RawRead {
    /// Applies every ingest rule. `now_ms` is the server's clock; `camera`
    /// names the sending camera and seeds the id of a read that has none.
    pub fn validate(self, now_ms: i64, camera: &str) -> Result<NewRead, ReadError> {
        let plate = Plate::parse(self.plate.as_deref().ok_or(ReadError::missing("plate"))?)?;
        let ts_ms = match self.ts.as_ref().ok_or(ReadError::missing("ts"))? {
            TimeInput::Text(s) => parse_time_ms("ts", s)?,
            TimeInput::EpochMs(ms) => *ms,
        };
        if ts_ms < EARLIEST_READ_MS {
            return Err(ReadError::new(
                "ts",
                "timestamp_too_old",
                format!(
                    "ts {} is before 2000-01-01; check the camera's clock",
                    format_time_ms(ts_ms)
                ),
            ));
        }
        if ts_ms > now_ms + MAX_FUTURE_SKEW_MS {
            return Err(ReadError::new(
                "ts",
                "timestamp_in_future",
                format!(
                    "ts {} is more than 5 minutes after the server's time {}",
                    format_time_ms(ts_ms),
                    format_time_ms(now_ms)
                ),
            ));
        }
        let region = match self.state.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(Region::parse(s).ok_or_else(|| {
                ReadError::new(
                    "state",
                    "invalid_state",
                    format!("state {s:?} is not a US state, territory or Canadian province code"),
                )
            })?),
        };
        let position = match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint::new(lat, lon)?),
            (None, None) => None,
            (Some(_), None) => return Err(ReadError::missing("lon")),
            (None, Some(_)) => return Err(ReadError::missing("lat")),
        };
        let heading = match self.heading {
            None => None,
            Some(h) if (0.0..360.0).contains(&h) => Some(h as u16),
            Some(h) => {
                return Err(ReadError::new(
                    "heading",
                    "invalid_heading",
                    format!("heading is {h}; it must be degrees from 0 up to (not including) 360"),
                ))
            }
        };
        let confidence = match self.confidence {
            None => None,
            Some(c) if (0.0..=100.0).contains(&c) => Some(c.round() as u8),
            Some(c) => {
                return Err(ReadError::new(
                    "confidence",
                    "invalid_confidence",
                    format!("confidence is {c}; it must be a percentage from 0 to 100"),
                ))
            }
        };
        let plate_image = match self.plate_image {
            Some(b) => Some((check_image("plate_image", &b)?, b)),
            None => None,
        };
        let vehicle_image = match self.vehicle_image {
            Some(b) => Some((check_image("vehicle_image", &b)?, b)),
            None => None,
        };
        let id = match self.id.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => ReadId::parse(s)?,
            _ => {
                let pos = position.map(|p| p.to_micro()).unwrap_or((0, 0));
                ReadId::derive(&[
                    camera.as_bytes(),
                    plate.as_str().as_bytes(),
                    &ts_ms.to_le_bytes(),
                    &pos.0.to_le_bytes(),
                    &pos.1.to_le_bytes(),
                ])
            }
        };
        Ok(NewRead {
            id,
            plate,
            region,
            ts_ms,
            position,
            heading,
            confidence,
            plate_image,
            vehicle_image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18

    fn good() -> RawRead {
        RawRead {
            id: Some("0b6f3c1e-4d4b-4c8e-9a57-2f3d2b1c9e10".into()),
            plate: Some("7abc 123".into()),
            state: Some("CA".into()),
            ts: Some(TimeInput::EpochMs(NOW - 1000)),
            lat: Some(37.8),
            lon: Some(-122.27),
            heading: Some(90.0),
            confidence: Some(93.4),
            ..RawRead::default()
        }
    }

    fn code(r: RawRead) -> &'static str {
        r.validate(NOW, "cam-1").unwrap_err().code
    }

    #[test]
    fn accepts_a_good_read() {
        let r = good().validate(NOW, "cam-1").unwrap();
        assert_eq!(r.plate.as_str(), "7ABC123");
        assert_eq!(r.confidence, Some(93));
        assert_eq!(r.region.unwrap().as_str(), "CA");
    }

    #[test]
    fn each_rule_has_its_code() {
        assert_eq!(
            code(RawRead {
                plate: None,
                ..good()
            }),
            "missing_field"
        );
        assert_eq!(
            code(RawRead {
                plate: Some("7AB$".into()),
                ..good()
            }),
            "invalid_plate"
        );
        assert_eq!(
            code(RawRead {
                id: Some("nope".into()),
                ..good()
            }),
            "invalid_id"
        );
        assert_eq!(
            code(RawRead {
                state: Some("ZZ".into()),
                ..good()
            }),
            "invalid_state"
        );
        assert_eq!(
            code(RawRead {
                lat: Some(91.0),
                ..good()
            }),
            "invalid_coordinates"
        );
        assert_eq!(
            code(RawRead {
                lon: Some(f64::NAN),
                ..good()
            }),
            "invalid_coordinates"
        );
        assert_eq!(
            code(RawRead {
                lon: None,
                ..good()
            }),
            "missing_field"
        );
        assert_eq!(
            code(RawRead {
                heading: Some(360.0),
                ..good()
            }),
            "invalid_heading"
        );
        assert_eq!(
            code(RawRead {
                confidence: Some(101.0),
                ..good()
            }),
            "invalid_confidence"
        );
        let future = TimeInput::EpochMs(NOW + MAX_FUTURE_SKEW_MS + 1);
        assert_eq!(
            code(RawRead {
                ts: Some(future),
                ..good()
            }),
            "timestamp_in_future"
        );
        let old = TimeInput::Text("1999-12-31T23:59:59Z".into());
        assert_eq!(
            code(RawRead {
                ts: Some(old),
                ..good()
            }),
            "timestamp_too_old"
        );
        let bad = TimeInput::Text("yesterday".into());
        assert_eq!(
            code(RawRead {
                ts: Some(bad),
                ..good()
            }),
            "invalid_timestamp"
        );
    }

    #[test]
    fn images_are_checked() {
        let big = vec![0xFF; MAX_IMAGE_BYTES + 1];
        assert_eq!(
            code(RawRead {
                plate_image: Some(big),
                ..good()
            }),
            "image_too_large"
        );
        let gif = b"GIF89a....".to_vec();
        assert_eq!(
            code(RawRead {
                vehicle_image: Some(gif),
                ..good()
            }),
            "image_not_jpeg_or_png"
        );
        assert_eq!(
            code(RawRead {
                vehicle_image: Some(vec![]),
                ..good()
            }),
            "image_empty"
        );
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2];
        let r = RawRead {
            plate_image: Some(jpeg),
            ..good()
        }
        .validate(NOW, "c")
        .unwrap();
        assert_eq!(r.plate_image.unwrap().0, ImageKind::Jpeg);
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = RawRead { id: None, ..good() }
            .validate(NOW, "cam-1")
            .unwrap();
        let b = RawRead { id: None, ..good() }
            .validate(NOW, "cam-1")
            .unwrap();
        let c = RawRead { id: None, ..good() }
            .validate(NOW, "cam-2")
            .unwrap();
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn time_text_round_trips() {
        let ms = parse_time_ms("ts", "2026-11-22T15:04:05.250Z").unwrap();
        assert_eq!(format_time_ms(ms), "2026-11-22T15:04:05.25Z");
    }
}
