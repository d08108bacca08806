//! Resampling a region of an RGB picture into a model's input tensor,
//! each the way that model's training data was made: [`sample`] for the
//! detector (its scenes were shrunk with PIL's `BOX`: every source pixel
//! under an output pixel averaged, bilinear when enlarging) and
//! [`sample_grey`] for the character model (PIL's `convert("L")` then
//! antialiased `BILINEAR`).

use image::RgbImage;

/// A rectangle in source pixels (fractional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// Samples `rect` of `img` to `out_w x out_h`, calling `put(ox, oy, rgb)`
/// with channel values 0..=255. Parts of `rect` outside the picture read
/// as the nearest edge pixel.
pub fn sample(
    img: &RgbImage,
    rect: Rect,
    out_w: usize,
    out_h: usize,
    put: impl FnMut(usize, usize, [f32; 3]),
) {
    let sx = rect.w / out_w as f32;
    let sy = rect.h / out_h as f32;
    if img.width() == 0 || img.height() == 0 {
        return;
    }
    if sx > 1.5 || sy > 1.5 {
        shrink_box(img, rect, out_w, out_h, put);
    } else {
        enlarge_bilinear(img, rect, out_w, out_h, put);
    }
}

/// Every source pixel under an output pixel averaged. Spans are worked
/// out once per column and row and sums kept in whole numbers, since this
/// is the first thing done to every camera frame (6 ms of a 1080p frame's
/// 50 when it was done pixel by pixel with float sums; the results are the
/// same, as sums of whole levels are exact either way).
fn shrink_box(
    img: &RgbImage,
    rect: Rect,
    out_w: usize,
    out_h: usize,
    mut put: impl FnMut(usize, usize, [f32; 3]),
) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let (sx, sy) = (rect.w / out_w as f32, rect.h / out_h as f32);
    let span = |start: f32, step: f32, o: usize| {
        let lo = (start + o as f32 * step).floor() as i64;
        let hi = ((start + (o + 1) as f32 * step).floor() as i64).max(lo + 1);
        (lo, hi)
    };
    // Each column's source offsets into a row, edge pixels repeated.
    let columns: Vec<Vec<usize>> = (0..out_w)
        .map(|ox| {
            let (lo, hi) = span(rect.x, sx, ox);
            (lo..hi).map(|x| x.clamp(0, iw - 1) as usize * 3).collect()
        })
        .collect();
    let mut sums = vec![[0u32; 3]; out_w];
    for oy in 0..out_h {
        let (y0, y1) = span(rect.y, sy, oy);
        sums.fill([0; 3]);
        for y in y0..y1 {
            let at = (y.clamp(0, ih - 1) * iw * 3) as usize;
            let row = &raw[at..at + iw as usize * 3];
            for (sum, xs) in sums.iter_mut().zip(&columns) {
                for &i in xs {
                    sum[0] += u32::from(row[i]);
                    sum[1] += u32::from(row[i + 1]);
                    sum[2] += u32::from(row[i + 2]);
                }
            }
        }
        let rows = (y1 - y0) as usize;
        for (ox, (sum, xs)) in sums.iter().zip(&columns).enumerate() {
            let n = (xs.len() * rows) as f32;
            put(ox, oy, sum.map(|v| v as f32 / n));
        }
    }
}

/// Bilinear between the four nearest source pixels.
fn enlarge_bilinear(
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
    let (sx, sy) = (rect.w / out_w as f32, rect.h / out_h as f32);
    for oy in 0..out_h {
        for ox in 0..out_w {
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

/// PIL's `convert("L")`: ITU-R BT.601 luma in 16-bit fixed point,
/// rounded to a whole grey level.
pub fn luma8(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Weights of PIL's antialiased bilinear filter for one axis: for each
/// output pixel, the first source index and the normalised weights. The
/// triangle is widened by the shrink factor, so every source pixel under
/// an output pixel counts.
fn triangle_weights(start: f32, len: f32, size: i64, out: usize) -> Vec<(i64, Vec<f32>)> {
    let scale = len / out as f32;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out)
        .map(|o| {
            let center = start + (o as f32 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor() as i64).clamp(0, size - 1);
            let hi = ((center + support + 0.5).floor() as i64).clamp(lo + 1, size);
            let mut w: Vec<f32> = (lo..hi)
                .map(|x| (1.0 - ((x as f32 - center + 0.5) / filter_scale).abs()).max(0.0))
                .collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // The region lies outside the picture: use the nearest edge.
                w = vec![0.0; (hi - lo) as usize];
                let nearest = (center.floor() as i64).clamp(lo, hi - 1);
                w[(nearest - lo) as usize] = 1.0;
            }
            (lo, w)
        })
        .collect()
}

/// `rect` of `img` as grey levels (0..=255) at `out_w x out_h`, made the
/// way the character model's training crops were: PIL's `convert("L")`
/// then `resize(…, BILINEAR)` (a separable triangle filter, horizontal
/// pass first, each pass rounded to whole levels). Matching the training
/// pipeline matters: a box filter here cost 3 points of top-1 accuracy.
pub fn sample_grey(img: &RgbImage, rect: Rect, out_w: usize, out_h: usize) -> Vec<f32> {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    if iw == 0 || ih == 0 || out_w == 0 || out_h == 0 {
        return vec![0.0; out_w * out_h];
    }
    let raw = img.as_raw();
    let xs = triangle_weights(rect.x, rect.w, iw, out_w);
    let ys = triangle_weights(rect.y, rect.h, ih, out_h);
    let y_lo = ys.first().map_or(0, |(lo, _)| *lo);
    let y_hi = ys
        .iter()
        .map(|(lo, w)| lo + w.len() as i64)
        .max()
        .unwrap_or(0);
    // Horizontal pass over the rows the vertical pass will read.
    let rows = (y_hi - y_lo) as usize;
    let mut mid = vec![0f32; rows * out_w];
    for (r, y) in (y_lo..y_hi).enumerate() {
        let row = &raw[(y * iw * 3) as usize..((y + 1) * iw * 3) as usize];
        for (ox, (lo, w)) in xs.iter().enumerate() {
            let mut acc = 0f32;
            for (k, wk) in w.iter().enumerate() {
                let i = ((lo + k as i64) * 3) as usize;
                acc += wk * luma8(row[i], row[i + 1], row[i + 2]) as f32;
            }
            mid[r * out_w + ox] = acc.round().clamp(0.0, 255.0);
        }
    }
    let mut out = vec![0f32; out_w * out_h];
    for (oy, (lo, w)) in ys.iter().enumerate() {
        for ox in 0..out_w {
            let mut acc = 0f32;
            for (k, wk) in w.iter().enumerate() {
                acc += wk * mid[((lo - y_lo) as usize + k) * out_w + ox];
            }
            out[oy * out_w + ox] = acc.round().clamp(0.0, 255.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(img: &RgbImage) -> Rect {
        Rect {
            x: 0.0,
            y: 0.0,
            w: img.width() as f32,
            h: img.height() as f32,
        }
    }

    /// The box filter pixel by pixel, as it was first written: the
    /// reference the faster one must match exactly.
    fn shrink_reference(img: &RgbImage, rect: Rect, out_w: usize, out_h: usize) -> Vec<[f32; 3]> {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let (sx, sy) = (rect.w / out_w as f32, rect.h / out_h as f32);
        let mut out = Vec::new();
        for oy in 0..out_h {
            for ox in 0..out_w {
                let x0 = (rect.x + ox as f32 * sx).floor() as i64;
                let x1 = ((rect.x + (ox + 1) as f32 * sx).floor() as i64).max(x0 + 1);
                let y0 = (rect.y + oy as f32 * sy).floor() as i64;
                let y1 = ((rect.y + (oy + 1) as f32 * sy).floor() as i64).max(y0 + 1);
                let mut acc = [0f32; 3];
                for y in y0..y1 {
                    for x in x0..x1 {
                        let p = img.get_pixel(x.clamp(0, iw - 1) as u32, y.clamp(0, ih - 1) as u32);
                        for k in 0..3 {
                            acc[k] += p[k] as f32;
                        }
                    }
                }
                let n = ((x1 - x0) * (y1 - y0)) as f32;
                out.push(acc.map(|v| v / n));
            }
        }
        out
    }

    #[test]
    fn the_box_filter_matches_its_pixel_by_pixel_reference() {
        // Noise, so any misplaced span shows; odd sizes and regions
        // hanging off every edge, so the clamping does too.
        let mut seed = 12345u32;
        let img = RgbImage::from_fn(397, 211, |_, _| {
            let mut next = || {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            };
            image::Rgb([next(), next(), next()])
        });
        let rects = [
            whole(&img),
            Rect {
                x: -31.5,
                y: -12.25,
                w: 300.0,
                h: 150.0,
            },
            Rect {
                x: 250.0,
                y: 120.0,
                w: 220.0,
                h: 140.0,
            },
            Rect {
                x: 10.7,
                y: 3.3,
                w: 397.0,
                h: 40.0,
            },
        ];
        for rect in rects {
            for (ow, oh) in [(64, 36), (97, 13), (23, 50)] {
                let mut got = vec![[f32::NAN; 3]; ow * oh];
                sample(&img, rect, ow, oh, |x, y, p| got[y * ow + x] = p);
                assert_eq!(
                    got,
                    shrink_reference(&img, rect, ow, oh),
                    "{rect:?} {ow}x{oh}"
                );
            }
        }
    }

    #[test]
    fn grey_levels_follow_pil_luma() {
        assert_eq!(luma8(255, 255, 255), 255);
        assert_eq!(luma8(0, 0, 0), 0);
        // PIL: Image.new("RGB", (1, 1), (200, 100, 50)).convert("L") → 124.
        assert_eq!(luma8(200, 100, 50), 124);
    }

    #[test]
    fn shrinking_averages_and_keeps_flat_areas_flat() {
        let flat = RgbImage::from_pixel(300, 150, image::Rgb([90, 90, 90]));
        assert!(sample_grey(&flat, whole(&flat), 96, 48)
            .iter()
            .all(|&v| v == 90.0));
        // One-pixel stripes shrunk 4x become an even grey, not aliased bands.
        let stripes = RgbImage::from_fn(384, 192, |x, _| {
            let v = if x % 2 == 0 { 0 } else { 255 };
            image::Rgb([v, v, v])
        });
        let out = sample_grey(&stripes, whole(&stripes), 96, 48);
        // (The edge columns are renormalised over fewer pixels, as in PIL.)
        let inner = out.chunks(96).flat_map(|row| &row[1..95]);
        assert!(
            inner.into_iter().all(|&v| (120.0..=135.0).contains(&v)),
            "{:?}",
            &out[..8]
        );
    }

    #[test]
    fn enlarging_interpolates_and_regions_off_the_picture_read_its_edge() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            let v = if x == 0 { 0 } else { 200 };
            image::Rgb([v, v, v])
        });
        let out = sample_grey(&img, whole(&img), 4, 1);
        assert_eq!(out, [0.0, 50.0, 150.0, 200.0]);
        let off = Rect {
            x: -50.0,
            y: 0.0,
            w: 10.0,
            h: 1.0,
        };
        assert_eq!(sample_grey(&img, off, 2, 1), [0.0, 0.0]);
    }
}
