//! Images kept by day and content:
//! `images/YYYY-MM-DD/<first two hex digits>/<sha256>.<ext>`.
//!
//! The same picture sent twice on one day is stored once; a row holds only
//! the hash, so the database stays small and an evidence manifest can name
//! each file by the digest it is stored under. Pictures live under the day
//! of their read so that retention removes a day's folder whole, without
//! asking which other day might share a file (SPEC R6.1). Pictures of
//! reads on legal hold are linked into `images/held/` when the hold is
//! placed and stay there until the hold is lifted and purged (SPEC R6.2).

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use platekeeper_core::ImageKind;
use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef {
    pub sha256: [u8; 32],
    pub kind: ImageKind,
}

impl ImageRef {
    pub fn kind_code(&self) -> i64 {
        match self.kind {
            ImageKind::Jpeg => 1,
            ImageKind::Png => 2,
        }
    }

    /// The picture named by two columns of a row (hash, kind), if any.
    pub(crate) fn in_row(
        row: &impl crate::sql::Get,
        sha: usize,
        kind: usize,
    ) -> rusqlite::Result<Option<ImageRef>> {
        let sha: Option<Vec<u8>> = row.col(sha)?;
        let kind: Option<i64> = row.col(kind)?;
        Ok(sha.zip(kind).and_then(|(s, k)| ImageRef::from_parts(&s, k)))
    }

    /// The plate and vehicle pictures of a row whose columns from `at`
    /// are plate hash, plate kind, vehicle hash, vehicle kind.
    pub(crate) fn pair_in_row(
        row: &impl crate::sql::Get,
        at: usize,
    ) -> rusqlite::Result<[Option<ImageRef>; 2]> {
        Ok([
            Self::in_row(row, at, at + 1)?,
            Self::in_row(row, at + 2, at + 3)?,
        ])
    }

    pub fn from_parts(sha: &[u8], kind: i64) -> Option<ImageRef> {
        let kind = match kind {
            1 => ImageKind::Jpeg,
            2 => ImageKind::Png,
            _ => return None,
        };
        Some(ImageRef {
            sha256: sha.try_into().ok()?,
            kind,
        })
    }
}

pub struct ImageStore {
    root: PathBuf,
    /// Seals every picture written, and opens every picture read, in an
    /// encrypted store ([`crate::at_rest`]).
    cipher: crate::at_rest::Cipher,
    /// A store on PostgreSQL keeps its pictures there
    /// ([`crate::postgres::pictures`]), not in `root`.
    database: Option<std::sync::Arc<crate::postgres::PgPool>>,
}

impl ImageStore {
    pub(crate) fn open(
        root: PathBuf,
        cipher: crate::at_rest::Cipher,
    ) -> Result<ImageStore, StoreError> {
        crate::private::create_dir(&root)?;
        Ok(ImageStore {
            root,
            cipher,
            database: None,
        })
    }

    /// Pictures kept in PostgreSQL, sealed with `cipher`'s key.
    pub(crate) fn in_database(
        pool: std::sync::Arc<crate::postgres::PgPool>,
        cipher: crate::at_rest::Cipher,
    ) -> ImageStore {
        ImageStore {
            root: PathBuf::new(),
            cipher,
            database: Some(pool),
        }
    }

    /// Runs `f` on a connection of the store's database, if it has one.
    fn on_database<T: Send>(
        &self,
        f: impl FnOnce(
                &mut postgres::Client,
                Option<&crate::at_rest::pictures::PictureKey>,
            ) -> Result<T, crate::postgres::PgError>
            + Send,
    ) -> Option<Result<T, StoreError>> {
        let pool = self.database.as_ref()?;
        let key = self.cipher.pictures();
        Some(crate::postgres::connect::off_runtime(|| {
            let mut conn = pool.get()?;
            Ok(f(&mut conn, key)?)
        }))
    }

    fn file_in(dir: PathBuf, r: &ImageRef) -> PathBuf {
        let hex = hex::encode(r.sha256);
        dir.join(&hex[..2])
            .join(format!("{hex}.{}", r.kind.extension()))
    }

    /// The folder of a day's pictures.
    pub fn day_dir(&self, day: i32) -> PathBuf {
        self.root
            .join(crate::partition::file_name(day).trim_end_matches(".db"))
    }

    /// Where a picture of a read on `day` is stored.
    pub fn path(&self, day: i32, r: &ImageRef) -> PathBuf {
        Self::file_in(self.day_dir(day), r)
    }

    /// Where a held picture is kept.
    pub fn held_path(&self, r: &ImageRef) -> PathBuf {
        Self::file_in(self.root.join("held"), r)
    }

    /// Where releases before day folders kept it.
    fn legacy_path(&self, r: &ImageRef) -> PathBuf {
        Self::file_in(self.root.clone(), r)
    }

    /// Stores the bytes (once per content and day) and makes them durable
    /// before returning, so a committed row never points at a missing
    /// file.
    pub fn put(&self, day: i32, kind: ImageKind, bytes: &[u8]) -> Result<ImageRef, StoreError> {
        if let Some(done) =
            self.on_database(|c, key| crate::postgres::pictures::put(c, key, day, kind, bytes))
        {
            return done;
        }
        let r = ImageRef {
            sha256: Sha256::digest(bytes).into(),
            kind,
        };
        let path = self.path(day, &r);
        if path.exists() {
            return Ok(r);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        crate::private::create_dir(&dir)?;
        match self.cipher.pictures() {
            Some(key) => {
                let sealed = key
                    .seal(&r.sha256, bytes)
                    .map_err(|e| StoreError::Picture {
                        path: path.display().to_string(),
                        source: e,
                    })?;
                replace_file(&path, &sealed)?;
            }
            None => {
                replace_file(&path, bytes)?;
            }
        }
        Ok(r)
    }

    /// A picture of a read on `day`: from the day's folder, else from the
    /// held pictures (the day's were purged but the read is on hold).
    pub fn read(&self, day: i32, r: &ImageRef) -> Result<Vec<u8>, StoreError> {
        if let Some(done) =
            self.on_database(|c, key| crate::postgres::pictures::get(c, key, day, r))
        {
            return done?.ok_or_else(|| StoreError::Gone {
                code: "no_image",
                message: format!("picture {} is no longer stored", hex::encode(r.sha256)),
            });
        }
        let path = self.path(day, r);
        let (found, bytes) = match fs::read(&path) {
            Ok(b) => (path, b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let held = self.held_path(r);
                match fs::read(&held) {
                    Ok(b) => (held, b),
                    Err(_) => return Err(StoreError::io(&path, e)),
                }
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let picture = |source| StoreError::Picture {
            path: found.display().to_string(),
            source,
        };
        match self.cipher.pictures() {
            Some(key) => key.open(&r.sha256, bytes).map_err(picture),
            // A sealed file in a plain store: not something this store
            // wrote, so not shown as if it were the picture.
            None if crate::at_rest::pictures::sealed_under(&bytes).is_some() => {
                Err(picture(crate::at_rest::PictureError::Tampered))
            }
            None => Ok(bytes),
        }
    }

    /// Links a read's picture into the held folder (a hard link: no copy,
    /// and the picture survives its day's purge).
    pub(crate) fn hold(&self, day: i32, r: &ImageRef) -> Result<(), StoreError> {
        if let Some(done) = self.on_database(|c, _| crate::postgres::pictures::hold(c, day, r)) {
            return done;
        }
        let to = self.held_path(r);
        if to.exists() {
            return Ok(());
        }
        let from = self.path(day, r);
        let dir = to.parent().unwrap_or(&self.root).to_path_buf();
        crate::private::create_dir(&dir)?;
        match fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // A folder on another file system (or one that refuses links):
            // copy instead.
            Err(_) => {
                fs::copy(&from, &to).map_err(|e| StoreError::io(&from, e))?;
            }
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(&dir, e))
    }

    /// Removes a held picture (its hold was lifted and purged).
    pub(crate) fn release_held(&self, r: &ImageRef) -> Result<bool, StoreError> {
        if let Some(done) = self.on_database(|c, _| crate::postgres::pictures::release_held(c, r)) {
            return done;
        }
        let path = self.held_path(r);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Pictures stored for a day.
    pub(crate) fn count_day(&self, day: i32) -> Result<u64, StoreError> {
        if let Some(done) = self.on_database(|c, _| crate::postgres::pictures::count_day(c, day)) {
            return done;
        }
        Ok(count_files(&self.day_dir(day)))
    }

    /// Removes a day's folder of pictures; returns the files removed.
    pub(crate) fn remove_day(&self, day: i32) -> Result<u64, StoreError> {
        if let Some(done) = self.on_database(|c, _| {
            let n = crate::postgres::pictures::count_day(c, day)?;
            crate::postgres::pictures::drop_day(c, day)?;
            Ok(n)
        }) {
            return done;
        }
        let dir = self.day_dir(day);
        if !dir.exists() {
            return Ok(0);
        }
        let files = count_files(&dir);
        fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(files)
    }

    /// Moves pictures stored by an earlier release directly under
    /// `images/xx/` into their day's folder. `refs` yields every (day,
    /// picture) the day files name. Runs at open; a no-op once done.
    pub(crate) fn migrate_legacy(
        &self,
        refs: impl FnOnce() -> Result<Vec<(i32, ImageRef)>, StoreError>,
    ) -> Result<(), StoreError> {
        let legacy: Vec<PathBuf> = fs::read_dir(&self.root)
            .map_err(|e| StoreError::io(&self.root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .collect();
        if legacy.is_empty() {
            return Ok(());
        }
        for (day, r) in refs()? {
            let from = self.legacy_path(&r);
            let to = self.path(day, &r);
            if from.exists() && !to.exists() {
                let dir = to.parent().unwrap_or(&self.root).to_path_buf();
                crate::private::create_dir(&dir)?;
                fs::hard_link(&from, &to)
                    .or_else(|_| fs::copy(&from, &to).map(|_| ()))
                    .map_err(|e| StoreError::io(&to, e))?;
            }
        }
        for dir in legacy {
            fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        Ok(())
    }
}

/// Writes `bytes` as `path` whole or not at all: a temporary file beside
/// it (a name no other writer uses, hidden by its leading dot), made
/// durable, then renamed over it. Always `Ok(true)`, for callers that
/// count files written.
pub(crate) fn replace_file(path: &std::path::Path, bytes: &[u8]) -> Result<bool, StoreError> {
    // Two requests carrying the same picture must not truncate each
    // other's temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.get(..16).unwrap_or(&name),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = crate::private::new_file().open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })?;
    Ok(true)
}

fn count_files(dir: &std::path::Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}
