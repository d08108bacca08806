//! Images kept by content: `images/<first two hex digits>/<sha256>.<ext>`.
//!
//! The same picture sent twice is stored once; a row holds only the hash,
//! so the database stays small and an evidence manifest can name each
//! file by the digest it is stored under.

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
}

impl ImageStore {
    pub(crate) fn open(root: PathBuf) -> Result<ImageStore, StoreError> {
        fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        Ok(ImageStore { root })
    }

    pub fn path(&self, r: &ImageRef) -> PathBuf {
        let hex = hex::encode(r.sha256);
        self.root
            .join(&hex[..2])
            .join(format!("{hex}.{}", r.kind.extension()))
    }

    /// Stores the bytes (once per content) and makes them durable before
    /// returning, so a committed row never points at a missing file.
    pub fn put(&self, kind: ImageKind, bytes: &[u8]) -> Result<ImageRef, StoreError> {
        let r = ImageRef {
            sha256: Sha256::digest(bytes).into(),
            kind,
        };
        let path = self.path(&r);
        if path.exists() {
            return Ok(r);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        // A name no other writer uses: two requests carrying the same
        // picture must not truncate each other's temporary file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            hex::encode(&r.sha256[..8]),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = File::options().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&dir)?.sync_all()
        };
        write().map_err(|e| StoreError::io(&path, e))?;
        Ok(r)
    }

    pub fn read(&self, r: &ImageRef) -> Result<Vec<u8>, StoreError> {
        let path = self.path(r);
        fs::read(&path).map_err(|e| StoreError::io(&path, e))
    }
}
