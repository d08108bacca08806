//! Where the plates are: a small fully-convolutional network that marks
//! plate centres on a grid (every 8 input pixels) and regresses each
//! plate's size there.

use image::RgbImage;

use crate::model::Net;
use crate::resample::{sample, Rect};
use crate::VisionError;

/// The detector sees every picture letterboxed into 640x384 (top-left
/// aligned, the rest black), so any size or aspect works.
pub const INPUT_W: usize = 640;
pub const INPUT_H: usize = 384;
pub const STRIDE: usize = 8;
/// A grid cell must score at least this to become a plate.
pub const MIN_SCORE: f32 = 0.3;
/// Most plates reported per picture.
pub const MAX_PLATES: usize = 8;

/// A plate found in a picture, in the picture's own pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub rect: Rect,
    pub score: f32,
}

pub struct Detector {
    net: Net,
}

impl Detector {
    pub fn load(onnx: &[u8]) -> Result<Detector, VisionError> {
        Ok(Detector {
            net: Net::load(onnx, &[1, 3, INPUT_H, INPUT_W])?,
        })
    }

    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let scale = (INPUT_W as f32 / w).min(INPUT_H as f32 / h);
        let (cw, ch) = (
            ((w * scale).round() as usize).max(1),
            ((h * scale).round() as usize).max(1),
        );
        let plane = INPUT_W * INPUT_H;
        let mut input = vec![0f32; 3 * plane];
        let src = Rect {
            x: 0.0,
            y: 0.0,
            w,
            h,
        };
        sample(img, src, cw.min(INPUT_W), ch.min(INPUT_H), |x, y, p| {
            let i = y * INPUT_W + x;
            input[i] = p[0] / 255.0;
            input[plane + i] = p[1] / 255.0;
            input[2 * plane + i] = p[2] / 255.0;
        });
        let outputs = self.net.run(input)?;
        let (gw, gh) = (INPUT_W / STRIDE, INPUT_H / STRIDE);
        let [(hs, heat), (gs, geom)] =
            <[crate::model::Output; 2]>::try_from(outputs).map_err(|o| {
                VisionError::Model(format!("the detector returned {} outputs, not 2", o.len()))
            })?;
        if hs != [1, 1, gh, gw] || gs != [1, 4, gh, gw] {
            return Err(VisionError::Model(format!(
                "unexpected detector outputs {hs:?} {gs:?}"
            )));
        }
        Ok(decode(&heat, &geom, gw, gh, scale))
    }
}

/// Peaks of the centre map (local 3x3 maxima over MIN_SCORE) to boxes in
/// the original picture's pixels, overlapping ones suppressed.
pub fn decode(heat: &[f32], geom: &[f32], gw: usize, gh: usize, scale: f32) -> Vec<Detection> {
    let plane = gw * gh;
    let mut found = Vec::new();
    for gy in 0..gh {
        for gx in 0..gw {
            let s = heat[gy * gw + gx];
            if s < MIN_SCORE {
                continue;
            }
            let is_peak = (gy.saturating_sub(1)..(gy + 2).min(gh))
                .all(|y| (gx.saturating_sub(1)..(gx + 2).min(gw)).all(|x| heat[y * gw + x] <= s));
            if !is_peak {
                continue;
            }
            let i = gy * gw + gx;
            let cx = (gx as f32 + geom[i]) * STRIDE as f32;
            let cy = (gy as f32 + geom[plane + i]) * STRIDE as f32;
            let bw = geom[2 * plane + i].clamp(-4.0, 6.0).exp() * STRIDE as f32;
            let bh = geom[3 * plane + i].clamp(-4.0, 6.0).exp() * STRIDE as f32;
            let rect = Rect {
                x: (cx - bw / 2.0) / scale,
                y: (cy - bh / 2.0) / scale,
                w: bw / scale,
                h: bh / scale,
            };
            found.push(Detection { rect, score: s });
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in found {
        if kept.len() >= MAX_PLATES {
            break;
        }
        if kept.iter().all(|k| iou(&k.rect, &d.rect) < 0.3) {
            kept.push(d);
        }
    }
    kept
}

/// Intersection over union of two boxes.
pub fn iou(a: &Rect, b: &Rect) -> f32 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w).min(b.x + b.w);
    let y1 = (a.y + a.h).min(b.y + b.h);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.w * a.h + b.w * b.h - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_become_boxes_and_overlaps_are_suppressed() {
        let (gw, gh) = (8, 6);
        let plane = gw * gh;
        let mut heat = vec![0.0; plane];
        let mut geom = vec![0.0; 4 * plane];
        // A plate centred in cell (2, 3), 64x16 input pixels, and a weaker
        // neighbour that is not a local maximum.
        heat[3 * gw + 2] = 0.9;
        heat[3 * gw + 3] = 0.5;
        let i = 3 * gw + 2;
        geom[i] = 0.5;
        geom[plane + i] = 0.5;
        geom[2 * plane + i] = (64.0f32 / 8.0).ln();
        geom[3 * plane + i] = (16.0f32 / 8.0).ln();
        let got = decode(&heat, &geom, gw, gh, 0.5);
        assert_eq!(got.len(), 1);
        let r = got[0].rect;
        // Centre (2.5 * 8, 3.5 * 8) = (20, 28) at scale 0.5 → (40, 56).
        assert!((r.x + r.w / 2.0 - 40.0).abs() < 1e-3 && (r.y + r.h / 2.0 - 56.0).abs() < 1e-3);
        assert!((r.w - 128.0).abs() < 1e-3 && (r.h - 32.0).abs() < 1e-3);
    }

    #[test]
    fn iou_of_boxes() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let b = Rect {
            x: 5.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(
            iou(
                &a,
                &Rect {
                    x: 20.0,
                    y: 20.0,
                    w: 1.0,
                    h: 1.0
                }
            ),
            0.0
        );
    }
}
