//! Reads that arrive as pictures only (SPEC R9.1, R1.2): the server reads
//! the plate itself before the read is validated and stored.
//!
//! Reading a picture costs a core for about half a second, so the work is
//! bounded (issue 22 finding 14): at most `workers` pictures are read at
//! once, each camera's pictures one at a time, and at most `per_camera`
//! of one camera's pictures wait or are being read. A picture over that
//! is refused at once as `recognition_busy` (the camera sends it again
//! after `Retry-After`), so one camera cannot queue work that makes the
//! others wait, and waiting requests do not pile up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use platekeeper_core::RawRead;
use platekeeper_vision::Recognizer;
use tokio::sync::Semaphore;

use crate::json::FieldError;

/// How much recognition work may be waiting or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecognitionLimits {
    /// Pictures of one camera waiting or being read.
    pub per_camera: usize,
    /// Pictures being read at once, all cameras together.
    pub workers: usize,
}

impl Default for RecognitionLimits {
    fn default() -> RecognitionLimits {
        RecognitionLimits {
            per_camera: 8,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// The recognizer, loaded the first time a picture-only read arrives (the
/// models take a moment to plan, which servers that never see one skip),
/// and the bounds on its work.
#[derive(Clone)]
pub struct Recognition {
    cell: Arc<OnceLock<Result<Recognizer, String>>>,
    gate: Arc<Gate>,
}

impl Default for Recognition {
    fn default() -> Recognition {
        Recognition::new(RecognitionLimits::default())
    }
}

struct Gate {
    limits: RecognitionLimits,
    workers: Arc<Semaphore>,
    cameras: Mutex<HashMap<u32, CameraQueue>>,
    /// Recent mean time to read one picture, for `Retry-After`.
    mean_ms: AtomicU64,
}

struct CameraQueue {
    /// Pictures admitted and not yet read.
    pending: usize,
    /// One picture of this camera is read at a time.
    turn: Arc<Semaphore>,
}

impl Recognition {
    pub fn new(limits: RecognitionLimits) -> Recognition {
        let limits = RecognitionLimits {
            per_camera: limits.per_camera.max(1),
            workers: limits.workers.max(1),
        };
        Recognition {
            cell: Default::default(),
            gate: Arc::new(Gate {
                limits,
                workers: Arc::new(Semaphore::new(limits.workers)),
                cameras: Mutex::new(HashMap::new()),
                mean_ms: AtomicU64::new(600),
            }),
        }
    }

    pub fn limits(&self) -> RecognitionLimits {
        self.gate.limits
    }

    fn get(&self) -> Result<&Recognizer, String> {
        self.cell
            .get_or_init(|| Recognizer::embedded().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cameras(&self) -> std::sync::MutexGuard<'_, HashMap<u32, CameraQueue>> {
        // Counts only: still right after a panic elsewhere.
        self.gate.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to `wanted` of `camera`'s places; the ticket says how
    /// many were free and gives back what it does not use.
    pub fn admit(&self, camera: u32, wanted: usize) -> Ticket {
        let mut cameras = self.cameras();
        let q = cameras.entry(camera).or_insert_with(|| CameraQueue {
            pending: 0,
            turn: Arc::new(Semaphore::new(1)),
        });
        let admitted = wanted.min(self.gate.limits.per_camera.saturating_sub(q.pending));
        q.pending += admitted;
        Ticket {
            recognition: self.clone(),
            camera,
            places: admitted,
            turn: q.turn.clone(),
        }
    }

    /// Pictures of `camera` admitted and not yet read.
    pub fn pending(&self, camera: u32) -> usize {
        self.cameras().get(&camera).map_or(0, |q| q.pending)
    }

    /// Pictures being read now, all cameras together.
    pub fn in_progress(&self) -> usize {
        self.gate.limits.workers - self.gate.workers.available_permits()
    }

    /// Seconds after which a refused picture of `camera` is likely to
    /// find a place: its queue's length times the recent reading time.
    pub fn retry_after_s(&self, camera: u32) -> u64 {
        let queued = self.pending(camera) as u64 + 1;
        let ms = queued * self.gate.mean_ms.load(Ordering::Relaxed);
        ms.div_ceil(1000).max(1)
    }

    fn release(&self, camera: u32, places: usize) {
        if places == 0 {
            return;
        }
        let mut cameras = self.cameras();
        if let Some(q) = cameras.get_mut(&camera) {
            q.pending = q.pending.saturating_sub(places);
            if q.pending == 0 {
                cameras.remove(&camera);
            }
        }
    }

    fn record_ms(&self, ms: u64) {
        // A moving mean over about the last eight pictures.
        let old = self.gate.mean_ms.load(Ordering::Relaxed);
        self.gate
            .mean_ms
            .store((old * 7 + ms) / 8, Ordering::Relaxed);
    }
}

/// Places for one request's pictures in its camera's queue.
pub struct Ticket {
    recognition: Recognition,
    camera: u32,
    places: usize,
    turn: Arc<Semaphore>,
}

impl Ticket {
    /// Places not yet used.
    pub fn places(&self) -> usize {
        self.places
    }

    /// Reads the plate of one picture-only read (see [`read_plate`]) in
    /// one of the ticket's places: after the camera's previous picture,
    /// when a worker is free, off the async threads. `None` when the
    /// ticket has no place left.
    pub async fn read(&mut self, raw: RawRead) -> Option<Result<RawRead, FieldError>> {
        if self.places == 0 {
            return None;
        }
        let rec = self.recognition.clone();
        let done = async {
            // Never closed; the permits move into the worker so that a
            // request that goes away cannot leave work running unbounded.
            let turn = self.turn.clone().acquire_owned().await.ok()?;
            let worker = rec.gate.workers.clone().acquire_owned().await.ok()?;
            let started = std::time::Instant::now();
            let r = rec.clone();
            let done = tokio::task::spawn_blocking(move || {
                let _permits = (turn, worker);
                let mut raw = raw;
                read_plate(&r, &mut raw).map(|()| raw)
            })
            .await
            .ok()?;
            rec.record_ms(started.elapsed().as_millis() as u64);
            Some(done)
        }
        .await
        .unwrap_or_else(|| {
            Err((
                "vehicle_image",
                "recognizer_unavailable",
                "plate recognition failed on the server; send the read again".to_string(),
            ))
        });
        self.places -= 1;
        self.recognition.release(self.camera, 1);
        Some(done)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.recognition.release(self.camera, self.places);
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
