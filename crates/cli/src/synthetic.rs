//! Realistic synthetic reads for the benchmark and the demo.
//!
//! The shape follows what agencies report: one metro area, mostly fixed
//! cameras plus patrol cars, California plates with some from nearby
//! states, and heavy repetition — a resident population seen again and
//! again (a few cars thousands of times: commuters past the same camera)
//! and a stream of plates seen once. Everything derives from a seed, so a
//! run can be repeated exactly.

use platekeeper_core::read::TimeInput;
use platekeeper_core::{GeoPoint, RawRead};
use platekeeper_store::{CameraKind, NewCamera};

/// Oakland, California: the demo metro's centre.
pub const CENTER: (f64, f64) = (37.8044, -122.2712);
/// Cameras sit within this distance of the centre.
const METRO_RADIUS_M: f64 = 25_000.0;
pub const CAMERAS: usize = 500;
/// One camera in five is a patrol car.
const MOBILE_EVERY: usize = 5;
/// Share of reads drawn from the resident population.
const RESIDENT_SHARE: f64 = 0.7;
/// Offset of the resident popularity law P(k) ∝ 1/(k + K): with K = 1000
/// the most-read plate is seen about 8,000 times in 100M reads.
const POPULARITY_OFFSET: f64 = 1000.0;

/// SplitMix64: tiny, fast, good enough for synthetic data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A fixed-size sample in which every item offered so far is equally
/// likely (reservoir sampling): what the benchmarks' queries draw from.
pub struct Reservoir<T> {
    items: Vec<T>,
    cap: usize,
    seen: u64,
    rng: Rng,
}

impl<T> Reservoir<T> {
    pub fn new(cap: usize, seed: u64) -> Reservoir<T> {
        Reservoir {
            items: Vec::with_capacity(cap),
            cap,
            seen: 0,
            rng: Rng::new(seed),
        }
    }

    /// Offers one item; `make` runs only if it is kept.
    pub fn offer(&mut self, make: impl FnOnce() -> T) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(make());
        } else {
            let j = self.rng.below(self.seen) as usize;
            if j < self.cap {
                self.items[j] = make();
            }
        }
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

fn letter(v: u64) -> char {
    // California skips I, O and Q on standard plates.
    const L: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    L[(v % L.len() as u64) as usize] as char
}

fn digit(v: u64) -> char {
    (b'0' + (v % 10) as u8) as char
}

/// A plate and its state from 64 random bits: mostly California
/// `1ABC234`, some Nevada, Oregon and Arizona formats.
pub fn plate_from(bits: u64) -> (String, &'static str) {
    let mut r = Rng::new(bits);
    let kind = r.below(100);
    let mut s = String::with_capacity(8);
    let (fmt, state): (&str, &str) = match kind {
        0..=87 => ("#@@@###", "CA"),
        88..=91 => ("#@#####", "CA"), // commercial
        92..=95 => ("###@###", "NV"),
        96..=97 => ("###@@@", "OR"),
        _ => ("@@@####", "AZ"),
    };
    for c in fmt.chars() {
        let v = r.next_u64();
        s.push(if c == '#' { digit(v) } else { letter(v) });
    }
    (s, state)
}

/// The cameras: positions spread over the metro, every fifth one mobile.
pub fn cameras(seed: u64) -> Vec<NewCamera> {
    let mut r = Rng::new(seed ^ 0xCA3E);
    (0..CAMERAS)
        .map(|i| {
            let p = point_near(&mut r, CENTER, METRO_RADIUS_M);
            let mobile = i % MOBILE_EVERY == 0;
            NewCamera {
                id: format!("{}-{i:03}", if mobile { "car" } else { "cam" }),
                name: if mobile {
                    format!("Patrol unit {i}")
                } else {
                    format!("Fixed site {i}")
                },
                kind: if mobile {
                    CameraKind::Mobile
                } else {
                    CameraKind::Fixed
                },
                position: (!mobile).then_some(p),
            }
        })
        .collect()
}

/// A uniformly random point within `radius_m` of `c`.
pub fn point_near(r: &mut Rng, c: (f64, f64), radius_m: f64) -> GeoPoint {
    let d = radius_m * r.unit().sqrt();
    let a = r.unit() * std::f64::consts::TAU;
    let lat = c.0 + d * a.cos() / 111_320.0;
    let lon = c.1 + d * a.sin() / (111_320.0 * c.0.to_radians().cos());
    GeoPoint { lat, lon }
}

/// Generates `n` reads spread over `days` days ending at `end_ms`, in
/// roughly the order cameras would send them.
pub struct ReadGenerator {
    rng: Rng,
    n: u64,
    i: u64,
    start_ms: i64,
    span_ms: i64,
    pool: u64,
    cameras: Vec<(u32, NewCamera)>,
}

impl ReadGenerator {
    /// `cameras` pairs each registered camera's number with its details.
    pub fn new(seed: u64, n: u64, end_ms: i64, days: i64, cameras: Vec<(u32, NewCamera)>) -> Self {
        let span_ms = days * 86_400_000;
        ReadGenerator {
            rng: Rng::new(seed),
            n,
            i: 0,
            start_ms: end_ms - span_ms,
            span_ms,
            pool: (n / 20).max(100),
            cameras,
        }
    }

    /// A plate of the resident population, by popularity rank.
    fn resident(&mut self) -> u64 {
        let k = POPULARITY_OFFSET;
        let u = self.rng.unit();
        let rank = k * ((self.pool as f64 / k + 1.0).powf(u) - 1.0);
        (rank as u64).min(self.pool - 1)
    }
}

impl Iterator for ReadGenerator {
    /// The camera's number and the read as a camera would send it.
    type Item = (u32, RawRead);

    fn next(&mut self) -> Option<(u32, RawRead)> {
        if self.i >= self.n {
            return None;
        }
        let r = &mut self.rng;
        let mut ts =
            self.start_ms + (self.i as i128 * self.span_ms as i128 / self.n as i128) as i64;
        ts += r.below(5_000) as i64;
        // One read in a hundred comes from a unit that was offline.
        if r.below(100) == 0 {
            ts -= r.below(6 * 3_600_000) as i64;
        }
        self.i += 1;
        let bits = if self.rng.unit() < RESIDENT_SHARE {
            let rank = self.resident();
            rank.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED
        } else {
            self.rng.next_u64()
        };
        let (plate, state) = plate_from(bits);
        let r = &mut self.rng;
        let (num, cam) = &self.cameras[r.below(self.cameras.len() as u64) as usize];
        let pos = match cam.position {
            Some(p) => p,
            None => point_near(r, CENTER, METRO_RADIUS_M),
        };
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&r.next_u64().to_le_bytes());
        id[8..].copy_from_slice(&r.next_u64().to_le_bytes());
        let id = uuid::Builder::from_random_bytes(id).into_uuid();
        let mobile = cam.kind == CameraKind::Mobile;
        Some((
            *num,
            RawRead {
                id: Some(id.to_string()),
                plate: Some(plate),
                state: Some(state.to_string()),
                ts: Some(TimeInput::EpochMs(ts)),
                lat: Some(pos.lat),
                lon: Some(pos.lon),
                heading: mobile.then(|| r.below(360) as f64),
                confidence: Some(70.0 + r.below(30) as f64),
                plate_image: None,
                vehicle_image: None,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_are_valid_and_repeat() {
        for i in 0..1000 {
            let (p, _) = plate_from(i);
            assert!(platekeeper_core::Plate::parse(&p).is_ok(), "{p}");
        }
        let cams: Vec<(u32, NewCamera)> = cameras(1)
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as u32, c))
            .collect();
        let gen = ReadGenerator::new(7, 20_000, 1_795_000_000_000, 30, cams);
        let mut counts = std::collections::HashMap::new();
        for (_, r) in gen {
            *counts.entry(r.plate.unwrap()).or_insert(0u32) += 1;
        }
        let max = counts.values().max().copied().unwrap_or(0);
        let once = counts.values().filter(|c| **c == 1).count();
        assert!(max >= 20, "a popular plate repeats: {max}");
        assert!(once * 2 > counts.len(), "most plates are seen once");
    }
}
