//! Resampling a region of an RGB picture into a model's input tensor.
//!
//! Shrinking averages every source pixel under an output pixel (a box
//! filter: the detector's training scenes were shrunk with PIL's `BOX`;
//! the character model's crops with PIL's antialiased bilinear, which this
//! approximates), so small text does not alias; enlarging interpolates
//! bilinearly.

use image::RgbImage;

/// A rectangle in source pixels (fractional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Samples `rect` of `img` to `out_w x out_h`, calling `put(ox, oy, rgb)`
/// with channel values 0..=255. Parts of `rect` outside the picture read
/// as the nearest edge pixel.
pub fn sample(
    img: &RgbImage,
    rect: Rect,
    out_w: usize,
    out_h: usize,
    mut put: impl FnMut(usize, usize, [f32; 3]),
) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let px = |x: i64, y: i64| -> [f32; 3] {
        let x = x.clamp(0, iw - 1);
        let y = y.clamp(0, ih - 1);
        let i = ((y * iw + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    let sx = rect.w / out_w as f32;
    let sy = rect.h / out_h as f32;
    let shrinking = sx > 1.5 || sy > 1.5;
    for oy in 0..out_h {
        for ox in 0..out_w {
            if shrinking {
                let x0 = (rect.x + ox as f32 * sx).floor() as i64;
                let x1 = ((rect.x + (ox + 1) as f32 * sx).floor() as i64).max(x0 + 1);
                let y0 = (rect.y + oy as f32 * sy).floor() as i64;
                let y1 = ((rect.y + (oy + 1) as f32 * sy).floor() as i64).max(y0 + 1);
                let mut acc = [0f32; 3];
                for y in y0..y1 {
                    for x in x0..x1 {
                        let p = px(x, y);
                        acc[0] += p[0];
                        acc[1] += p[1];
                        acc[2] += p[2];
                    }
                }
                let n = ((x1 - x0) * (y1 - y0)) as f32;
                put(ox, oy, [acc[0] / n, acc[1] / n, acc[2] / n]);
            } else {
                let fx = rect.x + (ox as f32 + 0.5) * sx - 0.5;
                let fy = rect.y + (oy as f32 + 0.5) * sy - 0.5;
                let (x0, y0) = (fx.floor(), fy.floor());
                let (ax, ay) = (fx - x0, fy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                let (a, b, c, d) = (
                    px(x0, y0),
                    px(x0 + 1, y0),
                    px(x0, y0 + 1),
                    px(x0 + 1, y0 + 1),
                );
                let mut o = [0f32; 3];
                for k in 0..3 {
                    let top = a[k] + (b[k] - a[k]) * ax;
                    let bot = c[k] + (d[k] - c[k]) * ax;
                    o[k] = top + (bot - top) * ay;
                }
                put(ox, oy, o);
            }
        }
    }
}

/// ITU-R BT.601 luma, as PIL's `convert("L")`.
pub fn luma(p: [f32; 3]) -> f32 {
    p[0] * 0.299 + p[1] * 0.587 + p[2] * 0.114
}
