//! Where the plates are: a small fully-convolutional network that marks
//! plate centres on a grid (every 8 input pixels) and regresses each
//! plate's size there.

use image::RgbImage;

use crate::model::{parse, Net};
use crate::resample::{sample, Rect};
use crate::VisionError;

/// The detector sees every picture letterboxed into 640x384 (top-left
/// aligned, the rest black), so any size or aspect works.
pub const INPUT_W: usize = 640;
pub const INPUT_H: usize = 384;
pub const STRIDE: usize = 8;
/// The network's coarsest feature map is this many input pixels a cell,
/// so its input's sides are multiples of it.
pub const DEEPEST: usize = 32;
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
    /// The network on one band of the first pass's input (see
    /// [`BAND_H`]).
    band: Net,
    /// The same network on a quarter of the input, for closer looks.
    look: Net,
}

/// The first pass's input is worked in two bands of this many rows, one
/// on each core, overlapping by at least 64 rows: 1.17 times the work of
/// the whole input, done in 0.58 of the time on two cores (issue 27: the
/// 50-ms median). A plate is taken from the band whose half of the input
/// holds its centre, where it is at least 32 input rows (four feature
/// cells) from that band's cut edge, so it is seen with the context the
/// network learned.
pub const BAND_H: usize = 224;

/// A closer look's input: a quarter of the first pass's width and height
/// (160×96, a sixteenth of its cost), enough around one plate seen at
/// [`LOOK_ZOOM`] times the first pass's scale.
pub const LOOK_W: usize = INPUT_W / 4;
pub const LOOK_H: usize = INPUT_H / 4;

impl Detector {
    pub fn load(onnx: &[u8]) -> Result<Detector, VisionError> {
        let proto = parse(onnx)?;
        let resized = |h: usize, w: usize| {
            let mut sized = proto.clone();
            upsampling_for(&mut sized, h as i64, w as i64)?;
            Net::from_proto(&sized, &[1, 3, h, w])
        };
        Ok(Detector {
            band: resized(BAND_H, INPUT_W)?,
            look: resized(LOOK_H, LOOK_W)?,
        })
    }

    /// The plates in `img`: one pass over the whole picture, then closer
    /// looks at three times its scale, side by side (issue 27 items 1 and
    /// 2):
    /// - each plate narrower than [`REDRAW_BELOW`] input pixels where it
    ///   was found is drawn again from a look centred on it, so a small
    ///   plate's box follows its edges rather than the pass's 8-pixel grid;
    /// - in a large frame (from [`TILE_FROM_WIDTH`]), up to [`MAX_LOOKS`]
    ///   places the first pass nearly called a plate (a centre scoring at
    ///   least [`HINT_SCORE`]) and that lie on no plate found get a look,
    ///   so a second, farther car is not lost behind a nearer one's plate
    ///   (what such a look finds is kept from [`LOOK_MIN_SCORE`]).
    ///
    /// A large frame whose first pass found nothing is passed again in
    /// four overlapping quarters (a 60-pixel plate in a 1920-wide frame is
    /// 20 pixels wide in the first pass, 36 in a quarter), and the small
    /// plates those find are drawn again as above.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w,
            h,
        };
        let first = fit_scale(whole, INPUT_W, INPUT_H);
        let (found, mut hints): (Vec<Detection>, Vec<Detection>) = self
            .pass(img, whole, HINT_SCORE)?
            .into_iter()
            .partition(|d| d.score >= MIN_SCORE);
        let large = w >= TILE_FROM_WIDTH;
        let (mut found, seen_at) = match suppress(found) {
            none if none.is_empty() && large => {
                hints.clear();
                let mut all = Vec::new();
                let parts = quarters(w, h);
                for quarter in parts {
                    all.extend(self.pass(img, quarter, MIN_SCORE)?);
                }
                (suppress(all), fit_scale(parts[0], INPUT_W, INPUT_H))
            }
            found => (found, first),
        };
        let mut looks: Vec<(Rect, Option<usize>)> = found
            .iter()
            .enumerate()
            .filter(|(_, d)| d.rect.w * seen_at < REDRAW_BELOW)
            .map(|(i, d)| (redraw_window(d.rect, first, w, h), Some(i)))
            .collect();
        if large {
            let scale = first * LOOK_ZOOM;
            let size = (LOOK_W as f32 / scale, LOOK_H as f32 / scale);
            looks.extend(
                closer_looks(&found, hints, size, w, h)
                    .into_iter()
                    .map(|r| (r, None)),
            );
        }
        let seen = crate::threads::each(&looks, |(at, _)| self.look_at(img, *at, MIN_SCORE))?;
        let mut more = Vec::new();
        for ((_, redraws), boxes) in looks.iter().zip(seen) {
            match redraws {
                Some(i) => found[*i].rect = redrawn(found[*i].rect, &boxes),
                None => more.extend(boxes.into_iter().filter(|b| b.score >= LOOK_MIN_SCORE)),
            }
        }
        found.extend(more);
        Ok(suppress(found))
    }

    /// The centre-map peaks scoring `least` or more in the part `src` of
    /// `img` letterboxed into the first pass's 640×384, as boxes in the
    /// picture's pixels, not yet suppressed. The input is worked in bands
    /// ([`BAND_H`]), side by side.
    fn pass(&self, img: &RgbImage, src: Rect, least: f32) -> Result<Vec<Detection>, VisionError> {
        let (input, scale, ch) = letterbox(img, src, INPUT_W, INPUT_H);
        // (first row, the rows its plates' centre cells may lie on); the
        // second band starts on a multiple of DEEPEST, so both see every
        // feature cell where the whole input would.
        let bands = if ch <= BAND_H {
            vec![(0, 0..ch)]
        } else {
            let top = (ch - BAND_H) / DEEPEST * DEEPEST;
            let seam = (top + BAND_H) / 2;
            vec![(0, 0..seam), (top, seam..INPUT_H)]
        };
        let plane = INPUT_W * INPUT_H;
        let found = crate::threads::each(&bands, |(top, centres)| {
            let rows = top * INPUT_W..(top + BAND_H) * INPUT_W;
            let band = (0..3)
                .flat_map(|c| &input[c * plane..][rows.clone()])
                .copied()
                .collect();
            let at = (src.x, src.y + *top as f32 / scale);
            infer(&self.band, band, scale, at, least, |gy| {
                centres.contains(&(top + gy * STRIDE + STRIDE / 2))
            })
        })?;
        Ok(found.into_iter().flatten().collect())
    }

    /// As [`Detector::pass`] through the closer looks' smaller network.
    fn look_at(
        &self,
        img: &RgbImage,
        src: Rect,
        least: f32,
    ) -> Result<Vec<Detection>, VisionError> {
        let (input, scale, _) = letterbox(img, src, LOOK_W, LOOK_H);
        infer(&self.look, input, scale, (src.x, src.y), least, |_| true)
    }
}

/// `src` of `img` shrunk or enlarged to fit `in_w`×`in_h`, top-left
/// aligned on black, as three planes of 0..1; with the scale and the
/// rows the picture takes in it.
fn letterbox(img: &RgbImage, src: Rect, in_w: usize, in_h: usize) -> (Vec<f32>, f32, usize) {
    let scale = fit_scale(src, in_w, in_h);
    let cw = ((src.w * scale).round() as usize).clamp(1, in_w);
    let ch = ((src.h * scale).round() as usize).clamp(1, in_h);
    let plane = in_w * in_h;
    let mut input = vec![0f32; 3 * plane];
    sample(img, src, cw, ch, |x, y, p| {
        let i = y * in_w + x;
        input[i] = p[0] / 255.0;
        input[plane + i] = p[1] / 255.0;
        input[2 * plane + i] = p[2] / 255.0;
    });
    (input, scale, ch)
}

/// The scale at which `src` fits `in_w`×`in_h` whole.
fn fit_scale(src: Rect, in_w: usize, in_h: usize) -> f32 {
    (in_w as f32 / src.w).min(in_h as f32 / src.h)
}

/// Runs the detector `net` on `input` and returns its centre-map peaks
/// scoring `least` or more on the grid rows `keep_row` accepts, as boxes
/// in the picture's pixels: input pixels divided by `scale`, moved by
/// `at` (where the input's corner lies in the picture).
fn infer(
    net: &Net,
    input: Vec<f32>,
    scale: f32,
    at: (f32, f32),
    least: f32,
    keep_row: impl Fn(usize) -> bool,
) -> Result<Vec<Detection>, VisionError> {
    let &[_, _, in_h, in_w] = net.shape() else {
        return Err(VisionError::Model(
            "the detector's input is not NCHW".into(),
        ));
    };
    let outputs = net.run(input)?;
    let (gw, gh) = (in_w / STRIDE, in_h / STRIDE);
    let [(hs, heat), (gs, geom)] = <[crate::model::Output; 2]>::try_from(outputs).map_err(|o| {
        VisionError::Model(format!("the detector returned {} outputs, not 2", o.len()))
    })?;
    if hs != [1, 1, gh, gw] || gs != [1, 4, gh, gw] {
        return Err(VisionError::Model(format!(
            "unexpected detector outputs {hs:?} {gs:?}"
        )));
    }
    let mut found = peaks(&heat, &geom, gw, gh, scale, least, keep_row);
    for d in &mut found {
        d.rect.x += at.0;
        d.rect.y += at.1;
    }
    Ok(found)
}

/// Frames at least this wide get the second pass (at 1280 a quarter is
/// seen at 1.9 times the whole frame's scale; narrower frames already
/// show their plates large enough).
pub const TILE_FROM_WIDTH: f32 = 1280.0;

/// A centre scoring this much, short of [`MIN_SCORE`], in a large frame's
/// first pass gets a closer look when that pass found a plate elsewhere.
/// Chosen with [`MAX_LOOKS`] on the train stand-ins
/// (`training/us_composites.py --part train`): 0.1 and four looks found
/// 98.5 % of the two-car set's plates against 97.2 % with 0.2 and two,
/// for 2.5 ms more a 1080p photo; 0.05 and six found 98.9 % for 3 ms
/// more again (`docs/BENCHMARKS.md`).
pub const HINT_SCORE: f32 = 0.1;
/// Most closer looks per frame around hints (six found no more).
pub const MAX_LOOKS: usize = 4;
/// A plate seen only in a look around a hint must score this much, not
/// just [`MIN_SCORE`]: looks from hints at 0.1 also find sign lettering
/// and bumper stickers. At 0.6 the train stand-ins' readings that are no
/// labelled plate fell below the count before hints went down to 0.1
/// (composites 179 → 175, two-car 190 → 168, small 288 → 261; at 0.3:
/// 213, 210, 295), and two of 369 small plates were lost.
pub const LOOK_MIN_SCORE: f32 = 0.6;

/// How much closer than the first pass a closer look sees: at 1080p,
/// the picture's own pixels.
pub const LOOK_ZOOM: f32 = 3.0;

/// A plate found narrower than this many input pixels (where it was
/// found: the first pass or a quarter) has its box drawn again from a
/// closer look: 60 pixels is 180 in a 1920-wide frame. Chosen on the train
/// stand-ins: drawing larger plates again made the one-car composites'
/// boxes worse (median IoU 0.820 to 0.783 at 100).
pub const REDRAW_BELOW: f32 = 60.0;
/// A plate drawn again fills at most this many of the look's 160 columns:
/// plates from 34 input pixels wide are seen closer than the first pass
/// but less than [`LOOK_ZOOM`], so that they fit with a margin.
pub const REDRAW_FILL: f32 = 100.0;

/// The window a plate found at `rect` is drawn again from: centred on
/// it, at [`LOOK_ZOOM`] times the first pass's scale `first`, or less
/// where the plate would fill more than [`REDRAW_FILL`] columns; kept in
/// the `w`×`h` frame.
fn redraw_window(rect: Rect, first: f32, w: f32, h: f32) -> Rect {
    let scale = (REDRAW_FILL / rect.w).clamp(first, first * LOOK_ZOOM);
    let size = (LOOK_W as f32 / scale, LOOK_H as f32 / scale);
    centred_window(rect.centre(), size, w, h)
}

/// A window of `lw`×`lh` centred on (`cx`, `cy`), moved as little as
/// needed to lie in the `w`×`h` frame.
fn centred_window((cx, cy): (f32, f32), (lw, lh): (f32, f32), w: f32, h: f32) -> Rect {
    Rect {
        x: (cx - lw / 2.0).clamp(0.0, (w - lw).max(0.0)),
        y: (cy - lh / 2.0).clamp(0.0, (h - lh).max(0.0)),
        w: lw,
        h: lh,
    }
}

/// The box a closer look draws for the plate found at `was`: the
/// best-scoring of the look's `boxes` that overlaps it, or `was` if none
/// does (the look then saw too little of it to say).
fn redrawn(was: Rect, boxes: &[Detection]) -> Rect {
    boxes
        .iter()
        .filter(|b| iou(&b.rect, &was) > 0.3)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map_or(was, |b| b.rect)
}

/// Windows of `size` in a `w`×`h` frame centred on the strongest hints
/// that are not on a plate already found, one window for hints it
/// already holds.
fn closer_looks(
    found: &[Detection],
    mut hints: Vec<Detection>,
    (lw, lh): (f32, f32),
    w: f32,
    h: f32,
) -> Vec<Rect> {
    hints.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut looks: Vec<Rect> = Vec::new();
    for hint in hints {
        if looks.len() >= MAX_LOOKS {
            break;
        }
        let (cx, cy) = hint.rect.centre();
        let inside = |r: &Rect| cx >= r.x && cx < r.x + r.w && cy >= r.y && cy < r.y + r.h;
        if found.iter().any(|d| inside(&d.rect)) || looks.iter().any(|l| inside(&inner(l))) {
            continue;
        }
        looks.push(centred_window((cx, cy), (lw, lh), w, h));
    }
    looks
}

/// The middle of a look, where a plate is seen whole.
fn inner(r: &Rect) -> Rect {
    Rect {
        x: r.x + r.w * 0.15,
        y: r.y + r.h * 0.15,
        w: r.w * 0.7,
        h: r.h * 0.7,
    }
}

/// Sets the constant shapes of the detector's 2x upsamplings (written as
/// Reshape -> Expand -> Reshape for one input size by
/// `training/expand_upsample.py`) for an `h`×`w` input: every such shape
/// scales with the input, so each must come out a whole number.
fn upsampling_for(
    proto: &mut tract_onnx::pb::ModelProto,
    h: i64,
    w: i64,
) -> Result<(), VisionError> {
    let bad = |m: &str| VisionError::Model(format!("resizing the detector to {h}x{w}: {m}"));
    let graph = proto.graph.as_mut().ok_or_else(|| bad("no graph"))?;
    if h <= 0 || w <= 0 || h % DEEPEST as i64 != 0 || w % DEEPEST as i64 != 0 {
        return Err(bad(&format!("sides must be multiples of {DEEPEST}")));
    }
    let mut edited = 0;
    for t in &mut graph.initializer {
        // [1, C, H, 1, W, 1], [1, C, H, 2, W, 2] and [1, C, 2H, 2W].
        let (at_h, at_w) = if t.name.ends_with("_x2_split") || t.name.ends_with("_x2_twice") {
            (2, 4)
        } else if t.name.ends_with("_x2_joined") {
            (2, 3)
        } else {
            continue;
        };
        let mut v: Vec<i64> = if t.raw_data.is_empty() {
            t.int64_data.clone()
        } else {
            t.raw_data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect()
        };
        for (i, to, from) in [(at_h, h, INPUT_H as i64), (at_w, w, INPUT_W as i64)] {
            let d = v.get_mut(i).ok_or_else(|| bad(&t.name))?;
            if (*d * to) % from != 0 {
                return Err(bad(&t.name));
            }
            *d = *d * to / from;
        }
        t.raw_data = v.iter().flat_map(|d| d.to_le_bytes()).collect();
        t.int64_data.clear();
        edited += 1;
    }
    if edited != 6 {
        return Err(bad(&format!("{edited} upsampling shapes, not 6")));
    }
    Ok(())
}

/// Four overlapping quarters of a `w`×`h` frame, each 55 % of its width
/// and height, so a plate on a border between quarters is whole in one.
fn quarters(w: f32, h: f32) -> [Rect; 4] {
    let (tw, th) = (w * 0.55, h * 0.55);
    let (x1, y1) = (w - tw, h - th);
    [(0.0, 0.0), (x1, 0.0), (0.0, y1), (x1, y1)].map(|(x, y)| Rect { x, y, w: tw, h: th })
}

/// The best-scoring boxes, none overlapping another kept one much, at
/// most [`MAX_PLATES`].
fn suppress(mut found: Vec<Detection>) -> Vec<Detection> {
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

/// Every local 3x3 maximum of the centre map scoring `least` or more on
/// a grid row `keep_row` accepts, as a box in the input's pixels divided
/// by `scale`.
fn peaks(
    heat: &[f32],
    geom: &[f32],
    gw: usize,
    gh: usize,
    scale: f32,
    least: f32,
    keep_row: impl Fn(usize) -> bool,
) -> Vec<Detection> {
    let plane = gw * gh;
    let mut found = Vec::new();
    for gy in (0..gh).filter(|&gy| keep_row(gy)) {
        for gx in 0..gw {
            let s = heat[gy * gw + gx];
            if s < least {
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
    found
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
        let got = suppress(peaks(&heat, &geom, gw, gh, 0.5, MIN_SCORE, |_| true));
        assert_eq!(got.len(), 1);
        let r = got[0].rect;
        // Centre (2.5 * 8, 3.5 * 8) = (20, 28) at scale 0.5 → (40, 56).
        assert!((r.x + r.w / 2.0 - 40.0).abs() < 1e-3 && (r.y + r.h / 2.0 - 56.0).abs() < 1e-3);
        assert!((r.w - 128.0).abs() < 1e-3 && (r.h - 32.0).abs() < 1e-3);
    }

    /// Issue 27 item 1: a plate 42 pixels wide in a 1920×1080 frame is
    /// found, alone and beside a nearer car's plate four times its size.
    #[test]
    fn plates_from_about_40_pixels_wide_are_found_in_a_1080p_frame() {
        let det = Detector::load(crate::DETECTOR_ONNX).unwrap();
        let scene = scene();
        // The scene's plate is 200×100 at (540, 450) of 1280×720.
        let at = |scale: f32, x: f32, y: f32| Rect {
            x: x + 540.0 * scale,
            y: y + 450.0 * scale,
            w: 200.0 * scale,
            h: 100.0 * scale,
        };
        let shrunk = |w: u32, h: u32| {
            image::imageops::resize(&scene, w, h, image::imageops::FilterType::Triangle)
        };
        let far = at(42.0 / 200.0, 1300.0, 600.0);
        let mut alone = RgbImage::from_pixel(1920, 1080, image::Rgb([110, 110, 110]));
        image::imageops::replace(&mut alone, &shrunk(269, 151), 1300, 600);
        let mut two = alone.clone();
        image::imageops::replace(&mut two, &shrunk(1075, 605), 0, 300);
        let near = at(1075.0 / 1280.0, 0.0, 300.0);
        let best = |found: &[Detection], truth: &Rect| {
            found
                .iter()
                .map(|d| iou(&d.rect, truth))
                .fold(0.0, f32::max)
        };
        // Item 2: the far plate's box is drawn again from a closer look,
        // tighter than the pass that found it draws it.
        let found = det.detect(&alone).unwrap();
        let all = Rect {
            x: 0.0,
            y: 0.0,
            w: 1920.0,
            h: 1080.0,
        };
        let mut unrefined = det.pass(&alone, all, MIN_SCORE).unwrap();
        if unrefined.is_empty() {
            for q in quarters(1920.0, 1080.0) {
                unrefined.extend(det.pass(&alone, q, MIN_SCORE).unwrap());
            }
        }
        let (tight, loose) = (best(&found, &far), best(&unrefined, &far));
        assert!(
            tight >= 0.65 && tight > loose + 0.1,
            "{tight} {loose}: {found:?} {unrefined:?}"
        );
        let found = det.detect(&two).unwrap();
        assert!(
            best(&found, &far) >= 0.65 && best(&found, &near) >= 0.65,
            "{found:?}"
        );
    }

    fn scene() -> RgbImage {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/scene_4PLN730.jpg"
        ))
        .unwrap();
        crate::decode(&bytes).unwrap()
    }

    /// The closer looks' network is the first pass's with its upsampling
    /// shapes made for a quarter of the input: on the same part of a
    /// picture, at the same scale, both draw the same box.
    #[test]
    fn the_look_network_is_the_first_pass_network_on_a_smaller_input() {
        let det = Detector::load(crate::DETECTOR_ONNX).unwrap();
        assert_eq!(det.look.shape(), [1, 3, LOOK_H, LOOK_W]);
        let scene = scene();
        // The scene's plate is 200×100 at (540, 450) of 1280×720; both
        // windows are seen at half the picture's scale.
        let small = Rect {
            x: 480.0,
            y: 404.0,
            w: 320.0,
            h: 192.0,
        };
        let large = Rect {
            x: 0.0,
            y: 0.0,
            w: 1280.0,
            h: 720.0,
        };
        let a = det.look_at(&scene, small, MIN_SCORE).unwrap();
        let b = det.pass(&scene, large, MIN_SCORE).unwrap();
        // The best of each (a sticker may score too in the closer view).
        let (a, b) = (suppress(a), suppress(b));
        assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
        assert!(iou(&a[0].rect, &b[0].rect) > 0.8, "{a:?} {b:?}");
        let truth = Rect {
            x: 540.0,
            y: 450.0,
            w: 200.0,
            h: 100.0,
        };
        assert!(iou(&a[0].rect, &truth) > 0.6, "{a:?}");
    }

    #[test]
    fn the_upsampling_shapes_are_only_resized_to_whole_feature_cells() {
        let onnx = parse(crate::DETECTOR_ONNX).unwrap();
        for (h, w) in [(192, 400), (100, 160), (200, 640), (0, 0), (-32, 640)] {
            let mut p = onnx.clone();
            assert!(upsampling_for(&mut p, h, w).is_err(), "{h}x{w}");
        }
        for (h, w) in [(192, 320), (224, 640), (768, 1280)] {
            let mut p = onnx.clone();
            upsampling_for(&mut p, h, w).unwrap();
        }
        // A graph without the rewritten upsampling is refused, not run
        // with shapes of another size.
        let mut bare = onnx;
        bare.graph
            .as_mut()
            .unwrap()
            .initializer
            .retain(|t| !t.name.contains("_x2_"));
        assert!(upsampling_for(&mut bare, 192, 320).is_err());
    }

    /// The first pass worked in two bands finds what the network on the
    /// whole 640×384 input finds, each plate once, also one whose centre
    /// lies on the seam between the bands.
    #[test]
    fn the_banded_first_pass_finds_what_the_whole_input_finds() {
        let det = Detector::load(crate::DETECTOR_ONNX).unwrap();
        let whole_net = Net::load(crate::DETECTOR_ONNX, &[1, 3, INPUT_H, INPUT_W]).unwrap();
        let scene = scene();
        // 1920×1080 frames with the scene (its 200×100 plate at 540, 450)
        // moved down the frame so that the plate's centre crosses the seam
        // (content row 176 of 360: frame row 528).
        for plate_cy in [300i64, 500, 528, 560, 800] {
            let top = plate_cy - 500;
            let mut frame = RgbImage::from_pixel(1920, 1080, image::Rgb([110, 110, 110]));
            image::imageops::replace(&mut frame, &scene, 300, top);
            let truth = Rect {
                x: 840.0,
                y: (top + 450) as f32,
                w: 200.0,
                h: 100.0,
            };
            let all = Rect {
                x: 0.0,
                y: 0.0,
                w: 1920.0,
                h: 1080.0,
            };
            let banded = det.pass(&frame, all, MIN_SCORE).unwrap();
            let (input, scale, _) = letterbox(&frame, all, INPUT_W, INPUT_H);
            let whole = infer(&whole_net, input, scale, (0.0, 0.0), MIN_SCORE, |_| true).unwrap();
            let on = |found: &[Detection]| -> Vec<Detection> {
                found
                    .iter()
                    .filter(|d| iou(&d.rect, &truth) > 0.3)
                    .copied()
                    .collect()
            };
            let (b, w) = (on(&banded), on(&whole));
            assert_eq!(b.len(), 1, "plate centre at {plate_cy}: {banded:?}");
            assert_eq!(w.len(), 1, "plate centre at {plate_cy}: {whole:?}");
            assert!(iou(&b[0].rect, &w[0].rect) > 0.9, "{b:?} {w:?}");
            assert!((b[0].score - w[0].score).abs() < 0.1, "{b:?} {w:?}");
        }
    }

    #[test]
    fn closer_looks_go_where_no_plate_was_found_once_per_place() {
        let det = |x: f32, y: f32, score: f32| Detection {
            rect: Rect {
                x,
                y,
                w: 40.0,
                h: 20.0,
            },
            score,
        };
        let found = [det(1000.0, 600.0, 0.9)];
        let hints = vec![
            det(1005.0, 602.0, 0.25), // on the plate found: no look
            det(300.0, 500.0, 0.15),  // a look here
            det(320.0, 510.0, 0.12),  // inside that look: none more
            det(1700.0, 100.0, 0.2),  // the strongest elsewhere: first
            det(900.0, 100.0, 0.11),
            det(1400.0, 900.0, 0.105),
            det(600.0, 950.0, 0.104), // beyond MAX_LOOKS
        ];
        let looks = closer_looks(&found, hints, (480.0, 270.0), 1920.0, 1080.0);
        assert_eq!(looks.len(), MAX_LOOKS);
        // Centred on the hint, kept inside the frame.
        assert_eq!((looks[0].x, looks[0].y), (1920.0 - 480.0, 0.0));
        assert_eq!((looks[1].x, looks[1].y), (320.0 - 240.0, 510.0 - 135.0));
        assert_eq!((looks[1].w, looks[1].h), (480.0, 270.0));
        assert!(looks.iter().all(|l| l.y + l.h < 950.0 || l.x > 640.0));
    }

    /// Issue 27 item 2: a small plate's window is centred on it at three
    /// times the first pass's scale; a larger plate's at less, so that it
    /// fills at most REDRAW_FILL of the look's columns; never farther
    /// than the first pass; always inside the frame.
    #[test]
    fn small_plates_are_drawn_again_from_a_window_around_them() {
        let first = 1.0 / 3.0; // a 1920×1080 frame
        let plate = |x: f32, w: f32| Rect {
            x,
            y: 500.0,
            w,
            h: w / 2.0,
        };
        let small = redraw_window(plate(900.0, 40.0), first, 1920.0, 1080.0);
        assert!((small.w - LOOK_W as f32).abs() < 1e-3 && (small.h - LOOK_H as f32).abs() < 1e-3);
        assert_eq!(small.centre(), plate(900.0, 40.0).centre());
        let mid = redraw_window(plate(900.0, 150.0), first, 1920.0, 1080.0);
        assert!(
            (150.0 * LOOK_W as f32 / mid.w - REDRAW_FILL).abs() < 1e-2,
            "{mid:?}"
        );
        let huge = redraw_window(plate(900.0, 900.0), first, 1920.0, 1080.0);
        assert!((huge.w - LOOK_W as f32 / first).abs() < 1e-2, "{huge:?}");
        let edge = redraw_window(plate(1900.0, 40.0), first, 1920.0, 1080.0);
        assert!((edge.x + edge.w - 1920.0).abs() < 1e-3, "{edge:?}");
    }

    #[test]
    fn a_redrawn_box_is_the_looks_best_box_on_the_plate_or_the_old_one() {
        let at = |x: f32, score: f32| Detection {
            rect: Rect {
                x,
                y: 100.0,
                w: 60.0,
                h: 30.0,
            },
            score,
        };
        let was = at(100.0, 0.5).rect;
        let looks = [at(110.0, 0.6), at(104.0, 0.8), at(400.0, 0.95)];
        assert_eq!(redrawn(was, &looks), looks[1].rect);
        assert_eq!(redrawn(was, &looks[2..]), was, "elsewhere: kept");
        assert_eq!(redrawn(was, &[]), was);
    }

    #[test]
    fn quarters_cover_the_frame_and_overlap() {
        let q = quarters(1920.0, 1080.0);
        assert_eq!((q[0].x, q[0].y), (0.0, 0.0));
        assert!((q[3].x + q[3].w - 1920.0).abs() < 1e-3 && (q[3].y + q[3].h - 1080.0).abs() < 1e-3);
        // A 90-pixel plate centred on the vertical middle line is whole in
        // the left or the right quarter.
        let plate = (960.0 - 45.0, 960.0 + 45.0);
        assert!(q.iter().any(|t| t.x <= plate.0 && plate.1 <= t.x + t.w));
        // Each quarter is seen at about twice the whole frame's scale.
        let whole = (640.0f32 / 1920.0).min(384.0 / 1080.0);
        let tile = (640.0f32 / q[0].w).min(384.0 / q[0].h);
        assert!(tile / whole > 1.8);
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
