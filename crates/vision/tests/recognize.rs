//! The shipped models on pictures the project generated itself
//! (training/make_test_images.py), and hostile input (SPEC R9.1, issue 6).

use platekeeper_vision::{decode, Recognizer, VisionError};
use std::path::PathBuf;
use std::sync::OnceLock;

fn rec() -> &'static Recognizer {
    static REC: OnceLock<Recognizer> = OnceLock::new();
    REC.get_or_init(|| Recognizer::embedded().expect("the embedded models load"))
}

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn reads_plate_crops() {
    for serial in ["7ABC123", "8KXM402", "DRV5521"] {
        let img = decode(&data(&format!("crop_{serial}.png"))).unwrap();
        let r = rec().read_crop(&img).unwrap().expect("a reading");
        assert_eq!(r.text, serial, "top-1 of crop_{serial}");
        let spelled: String = r.chars.iter().map(|c| c.char).collect();
        assert_eq!(
            spelled, r.text,
            "per-character confidences are the reading's own"
        );
        assert!(r.chars.iter().all(|c| (0.0..=1.0).contains(&c.confidence)));
        assert!(r.candidates.len() > 1, "alternatives are offered");
        assert!(r
            .candidates
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence));
    }
}

#[test]
fn california_layout_gives_a_state_guess() {
    let img = decode(&data("crop_7ABC123.png")).unwrap();
    let r = rec().read_crop(&img).unwrap().unwrap();
    assert_eq!(r.state, Some("CA"));
    let img = decode(&data("crop_DRV5521.png")).unwrap();
    assert_eq!(rec().read_crop(&img).unwrap().unwrap().state, None);
}

#[test]
fn finds_and_reads_the_plate_in_a_scene() {
    for serial in ["6TRW918", "4PLN730"] {
        let plates = rec()
            .recognize_bytes(&data(&format!("scene_{serial}.jpg")))
            .unwrap();
        let truth = platekeeper_vision::Rect {
            x: 540.0,
            y: 450.0,
            w: 200.0,
            h: 100.0,
        };
        let hit = plates
            .iter()
            .find(|p| platekeeper_vision::detect::iou(&p.rect(), &truth) >= 0.4)
            .unwrap_or_else(|| panic!("scene_{serial}: no box over the plate in {plates:?}"));
        assert_eq!(hit.text, serial);
        assert!(hit.confidence > 0.0 && hit.confidence <= 1.0);
    }
}

#[test]
fn a_blank_picture_has_no_plate() {
    let img = image::RgbImage::from_pixel(800, 600, image::Rgb([128, 128, 128]));
    assert!(rec().recognize(&img).unwrap().is_empty());
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 200, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn hostile_input_is_an_error_never_a_panic() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("jpeg magic only", vec![0xFF, 0xD8, 0xFF]),
        ("truncated png", png(64, 32)[..40].to_vec()),
        ("truncated jpeg", data("scene_6TRW918.jpg")[..2000].to_vec()),
        ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
    ];
    for (what, bytes) in cases {
        match rec().recognize_bytes(&bytes) {
            Err(VisionError::Image(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected an image error, got {other:?}"),
        }
    }
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    // A valid PNG header that claims 100,000 x 100,000 pixels: the size is
    // refused before a byte of pixels is allocated.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // Fix the IHDR CRC so only the size is wrong.
    let crc = platekeeper_vision::eval::crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    match decode(&bomb) {
        Err(VisionError::TooLarge(msg)) => assert!(msg.contains("100000x100000"), "{msg}"),
        other => panic!("expected too large, got {other:?}"),
    }
    assert!(matches!(
        decode(&vec![0u8; platekeeper_vision::decode::MAX_FILE_BYTES + 1]),
        Err(VisionError::TooLarge(_))
    ));
}

#[test]
fn tiny_and_odd_pictures_are_handled() {
    for (w, h) in [(1, 1), (3, 700), (2000, 2)] {
        let r = rec().recognize_bytes(&png(w, h));
        assert!(r.is_ok(), "{w}x{h}: {r:?}");
        let img = decode(&png(w, h)).unwrap();
        assert!(rec().read_crop(&img).is_ok());
    }
}
