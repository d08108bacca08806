//! Untrusted bytes to pixels, with limits checked before any allocation.

use image::{ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;

use crate::VisionError;

/// Largest picture accepted: 40 megapixels (a 12-bit-wide 8K frame is 33).
/// The header's size is checked before decoding, so a small file that
/// claims a huge canvas (a decompression bomb) costs nothing.
pub const MAX_PIXELS: u64 = 40_000_000;

/// Largest file accepted for recognition (bigger than any camera still).
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

/// Decodes a JPEG or PNG into 8-bit RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, VisionError> {
    if bytes.is_empty() {
        return Err(VisionError::Image("the file is empty".into()));
    }
    check_file_len(bytes.len() as u64)?;
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        _ => {
            return Err(VisionError::Image(
                "not a JPEG or PNG image (unrecognised leading bytes)".into(),
            ))
        }
    };
    // The JPEG decoder fills a cut-off file with grey rather than failing;
    // a picture missing its end is refused instead of half-read.
    if format == ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        return Err(VisionError::Image(
            "truncated JPEG: no end-of-image marker".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| VisionError::Image(format!("unreadable image header: {e}")))?;
    check_size(w, h)?;
    reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // RGBA16 is the widest buffer a decoder may need before conversion.
    limits.max_alloc = Some(u64::from(w) * u64::from(h) * 8 + (1 << 20));
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| VisionError::Image(format!("the image could not be decoded: {e}")))?;
    Ok(img.into_rgb8())
}

/// Refuses a file over [`MAX_FILE_BYTES`] (callers reading from disk check
/// its length before reading it).
pub fn check_file_len(len: u64) -> Result<(), VisionError> {
    if len > MAX_FILE_BYTES as u64 {
        return Err(VisionError::TooLarge(format!(
            "the file is {len} bytes; at most {MAX_FILE_BYTES} are read"
        )));
    }
    Ok(())
}

fn check_size(w: u32, h: u32) -> Result<(), VisionError> {
    if w == 0 || h == 0 {
        return Err(VisionError::Image(format!("the image is {w}x{h} pixels")));
    }
    let px = u64::from(w) * u64::from(h);
    if px > MAX_PIXELS {
        return Err(VisionError::TooLarge(format!(
            "the image is {w}x{h} ({px} pixels); at most {MAX_PIXELS} are decoded"
        )));
    }
    Ok(())
}

/// The end-of-image marker, allowing the few padding bytes some cameras
/// append after it.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
