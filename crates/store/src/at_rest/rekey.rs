//! Encrypting a plain store, and re-encrypting a store under a new key.
//!
//! The store is changed one file at a time, each replaced whole by a
//! rename, so an interruption (a crash, Ctrl-C, a full disk) leaves every
//! file readable under either the old key or the new one. The folder's
//! marker names both keys until the last file is done, and the server
//! refuses to start meanwhile; running the same command again finds each
//! file's key by trying the new one first and finishes the rest.
//!
//! Run with the server stopped (the command line holds the folder's
//! lock). Old copies of files are unlinked, not overwritten: their blocks
//! stay on the disk until reused (see docs/OPERATIONS.md).

use std::fs;
use std::path::{Path, PathBuf};

use super::{pictures, Cipher, DataKey, Marker, PageHmac, PLAINTEXT};
use crate::StoreError;

/// Suffix of a database's re-encrypted copy while it is being written.
const TEMP_SUFFIX: &str = "rekey";

/// How far a change of key has come, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What a change of key did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub databases: u64,
    pub pictures: u64,
    /// Files already under the new key (done by an interrupted run).
    pub already_done: u64,
    pub bytes: u64,
}

/// Encrypts the plain store in `dir` under `to` (`from` = `None`), or
/// re-encrypts it from `from` to `to`. Resumes an interrupted change
/// given the same keys. `progress` is called after each file.
pub fn rekey(
    dir: &Path,
    from: Option<&DataKey>,
    to: &DataKey,
    mut progress: impl FnMut(Progress),
) -> Result<RekeyReport, StoreError> {
    let from_name = from.map(|k| k.id().0).unwrap_or_else(|| PLAINTEXT.into());
    let to_id = to.id();
    let old_hmac = match Marker::read(dir)? {
        Some(m) if m.rekey_from.is_some() => {
            if m.key_id != to_id.0 || m.rekey_from.as_deref() != Some(&from_name) {
                return Err(StoreError::Encryption(format!(
                    "an unfinished change of key from {} to {} is under way in {}; run it again with those two keys",
                    m.rekey_from.unwrap_or_default(),
                    m.key_id,
                    dir.display()
                )));
            }
            m.rekey_from_page_hmac.unwrap_or(PageHmac::Sha512)
        }
        Some(m) => match from {
            None => {
                return Err(StoreError::Encryption(format!(
                    "{} is already encrypted (key {}); to change its key use `platekeeper keys rotate`",
                    dir.display(),
                    m.key_id
                )))
            }
            Some(k) if k.id().0 != m.key_id => {
                return Err(StoreError::WrongKey {
                    given: k.id().0,
                    expected: m.key_id,
                })
            }
            Some(_) if m.key_id == to_id.0 => {
                return Err(StoreError::Encryption(
                    "the new key is the key the store already has; make a new one with `platekeeper keys init`".into(),
                ))
            }
            Some(_) => m.page_hmac,
        },
        None => {
            match super::is_plain_database(&dir.join("platekeeper.db"))? {
                None => {
                    return Err(StoreError::Encryption(format!(
                        "{} holds no store",
                        dir.display()
                    )))
                }
                Some(false) => {
                    return Err(StoreError::Encryption(format!(
                        "{} is encrypted but its {} is missing; restore that file first",
                        dir.display(),
                        super::MARKER_FILE
                    )))
                }
                Some(true) => {}
            }
            if from.is_some() {
                return Err(StoreError::NotEncrypted);
            }
            PageHmac::default()
        }
    };
    // From here on the server refuses the folder until the change ends.
    let mut marker = Marker::new(&to_id, Some(from_name), PageHmac::default());
    marker.rekey_from_page_hmac = Some(old_hmac);
    marker.write(dir)?;
    // Each file is first tried under the new key; SQLCipher would print
    // every expected failure of that try as an error.
    super::quiet_sqlcipher();

    let old = from.map(|k| Cipher::with(k, old_hmac)).unwrap_or_default();
    let new = Cipher::new(to);
    // Each file's size once: for the total, then for the progress.
    let sized = |paths: Vec<std::path::PathBuf>| -> Vec<(std::path::PathBuf, u64)> {
        paths
            .into_iter()
            .map(|p| {
                let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, size)
            })
            .collect()
    };
    let databases = sized(database_files(dir)?);
    let pictures = sized(picture_files(&dir.join("images"))?);
    let mut at = Progress {
        files_total: (databases.len() + pictures.len()) as u64,
        bytes_total: databases.iter().chain(&pictures).map(|(_, n)| n).sum(),
        ..Progress::default()
    };
    progress(at);
    let mut report = RekeyReport::default();
    let mut touched_dirs = std::collections::BTreeSet::new();
    let files = databases
        .iter()
        .map(|(p, n)| (p, *n, true))
        .chain(pictures.iter().map(|(p, n)| (p, *n, false)));
    for (path, size, is_database) in files {
        let changed = if is_database {
            rekey_database(path, &old, &new)?
        } else {
            rekey_picture(path, &old, &new)?
        };
        match (changed, is_database) {
            (false, _) => report.already_done += 1,
            (true, true) => report.databases += 1,
            (true, false) => {
                report.pictures += 1;
                if let Some(d) = path.parent() {
                    touched_dirs.insert(d.to_path_buf());
                }
            }
        }
        at.files_done += 1;
        at.bytes_done += size;
        report.bytes += size;
        progress(at);
    }
    for d in touched_dirs {
        sync_dir(&d)?;
    }
    Marker::new(&to_id, None, PageHmac::default()).write(dir)?;
    Ok(report)
}

/// The main database, then every day's file; stale copies of an
/// interrupted run are removed on the way.
fn database_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = vec![dir.join("platekeeper.db")];
    let reads = dir.join("reads");
    if reads.exists() {
        let mut days = Vec::new();
        for e in fs::read_dir(&reads).map_err(|e| StoreError::io(&reads, e))? {
            let path = e.map_err(|e| StoreError::io(&reads, e))?.path();
            match path.extension().and_then(|x| x.to_str()) {
                Some("db") => days.push(path),
                Some(TEMP_SUFFIX) => remove_if_present(&path)?,
                _ => {}
            }
        }
        days.sort();
        files.extend(days);
    }
    remove_if_present(&temp_path(&files[0]))?;
    Ok(files)
}

/// Every picture file under `images/` (day folders and held pictures),
/// skipping the temporary files of unfinished writes.
fn picture_files(root: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        for e in entries {
            let e = e.map_err(|e| StoreError::io(&dir, e))?;
            let path = e.path();
            let kind = e.file_type().map_err(|e| StoreError::io(&path, e))?;
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && hidden {
                remove_if_present(&path)?;
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(TEMP_SUFFIX)
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Rewrites one database under `new`; `false` if it already was.
fn rekey_database(path: &Path, old: &Cipher, new: &Cipher) -> Result<bool, StoreError> {
    if super::opens_under(path, new) {
        return Ok(false);
    }
    let unreadable = || StoreError::Unreadable {
        path: path.display().to_string(),
    };
    if !super::opens_under(path, old) {
        return Err(unreadable());
    }
    let conn = rusqlite::Connection::open(path)?;
    old.apply(&conn)?;
    // Folds a crashed server's write-ahead log in, so the copy has every
    // committed change.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let temp = temp_path(path);
    remove_if_present(&temp)?;
    crate::private::precreate(&temp)?;
    let attach = format!(
        "ATTACH DATABASE ?1 AS rekeyed {}",
        new.attach_key().as_str()
    );
    conn.execute(&attach, [temp.to_string_lossy()])?;
    conn.execute_batch(&new.attach_settings("rekeyed"))?;
    conn.query_row("SELECT sqlcipher_export('rekeyed')", [], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "PRAGMA rekeyed.user_version = {user_version}; DETACH DATABASE rekeyed;"
    ))?;
    conn.close().map_err(|(_, e)| e)?;
    fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(&temp, e))?;
    // The old file's log and index are of no use to the new file.
    for side in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(side);
        remove_if_present(Path::new(&p))?;
    }
    fs::rename(&temp, path).map_err(|e| StoreError::io(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    if !super::opens_under(path, new) {
        return Err(unreadable());
    }
    Ok(true)
}

/// Re-seals one picture under `new`; `false` if it already was.
fn rekey_picture(path: &Path, old: &Cipher, new: &Cipher) -> Result<bool, StoreError> {
    let Some(new_key) = new.pictures() else {
        return Ok(false);
    };
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    if pictures::sealed_under(&bytes).as_ref() == Some(&new_key.key_id()) {
        return Ok(false);
    }
    let sha = picture_name(path).ok_or_else(|| StoreError::Unreadable {
        path: path.display().to_string(),
    })?;
    let plain = match old.pictures() {
        Some(k) => k.open(&sha, bytes).map_err(|e| StoreError::Picture {
            path: path.display().to_string(),
            source: e,
        })?,
        None if pictures::sealed_under(&bytes).is_some() => {
            return Err(StoreError::Unreadable {
                path: path.display().to_string(),
            })
        }
        None => bytes,
    };
    let sealed = new_key
        .seal(&sha, &plain)
        .map_err(|e| StoreError::Picture {
            path: path.display().to_string(),
            source: e,
        })?;
    crate::images::replace_file(path, &sealed)
}

/// The SHA-256 a picture file is named by (`<hex>.<ext>`).
fn picture_name(path: &Path) -> Option<[u8; 32]> {
    let stem = path.file_stem()?.to_str()?;
    let mut sha = [0u8; 32];
    hex::decode_to_slice(stem, &mut sha).ok()?;
    Some(sha)
}
