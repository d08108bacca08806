//! The data folder is private to the account that runs Platekeeper (issue
//! 22 finding 3; SPEC R4.2, R4.5): it holds every read, every picture,
//! the TOTP secrets and the access log, so no other local account may read
//! it, and none may write to it.
//!
//! Folders are made 0700 and files 0600. A folder left readable by others
//! (by an older release, a restore, a careless `cp`) is closed at start
//! with a warning. A folder that another account can *write* is refused:
//! whatever it holds may have been changed by someone else, so an
//! administrator looks before Platekeeper trusts it again.
//!
//! What this does not cover: root, and anyone who can read the disk
//! itself (encryption at rest is a separate issue). Pictures inside
//! `images/` are not walked one by one at start (there may be millions);
//! the folder's own 0700 mode keeps others out of all of them, and new
//! ones are written 0600.

use std::fs;
use std::path::Path;

use crate::StoreError;

/// Mode of every folder Platekeeper makes.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Platekeeper makes.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its missing parents) private to this account.
pub fn create_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| StoreError::io(dir, e))
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))
}

/// Options that create a new file readable and writable by this account
/// only.
pub fn new_file() -> fs::OpenOptions {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Writes `bytes` to a new or existing file, which ends up 0600.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    let mut f = o.open(path).map_err(|e| StoreError::io(path, e))?;
    close_file(path)?;
    f.write_all(bytes).map_err(|e| StoreError::io(path, e))
}

/// Makes sure an SQLite database file exists with mode 0600 before SQLite
/// opens it: SQLite creates its `-wal` and `-shm` files with the
/// database's own mode, so they are private too.
pub(crate) fn precreate(path: &Path) -> Result<(), StoreError> {
    match new_file().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Narrows a file that exists to 0600 (a no-op when it already is).
fn close_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
                .map_err(|e| StoreError::io(path, e))?;
        }
    }
    Ok(())
}

/// What [`secure`] found and mended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mended {
    /// Paths that other accounts could read, now closed.
    pub closed: Vec<String>,
}

/// Checks the data folder at start: creates it private if missing,
/// refuses it if it belongs to another account or if another account
/// can write to it (or to anything checked inside), and closes what
/// others can read. Checked: the folder, every entry directly in it, the
/// day files in `reads/`, and the `images/` folders of days and holds.
pub fn secure(dir: &Path) -> Result<Mended, StoreError> {
    create_dir(dir)?;
    let mut mended = Mended::default();
    #[cfg(unix)]
    {
        check(dir, true, &mut mended)?;
        for sub in [dir.to_path_buf(), dir.join("reads"), dir.join("images")] {
            let entries = match fs::read_dir(&sub) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&sub, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io(&sub, e))?;
                check(&entry.path(), false, &mut mended)?;
            }
        }
    }
    Ok(mended)
}

/// One path: refused if another account owns it or may write to it;
/// closed (0700 or 0600) if others may read it.
#[cfg(unix)]
fn check(path: &Path, is_root: bool, mended: &mut Mended) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // The folder itself may be a link to where the agency keeps data;
    // nothing inside it may be.
    let meta = if is_root {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    }
    .map_err(|e| StoreError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    let me = effective_uid();
    if meta.uid() != me {
        return Err(StoreError::Insecure(format!(
            "{} belongs to user id {}, not to this account (user id {me}); the data folder and \
             everything in it must belong to the account that runs Platekeeper",
            path.display(),
            meta.uid()
        )));
    }
    if meta.file_type().is_symlink() {
        return Err(StoreError::Insecure(format!(
            "{} is a symbolic link; the data folder holds no links (one could point anywhere)",
            path.display()
        )));
    }
    if mode & 0o022 != 0 {
        return Err(StoreError::Insecure(format!(
            "another account can write to {} (mode {mode:04o}); what it holds may have been \
             changed by someone else. Check it, then `chmod go-w` it (Platekeeper makes \
             folders 0700 and files 0600)",
            path.display()
        )));
    }
    if mode & 0o077 != 0 {
        let to = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
        fs::set_permissions(path, fs::Permissions::from_mode(to))
            .map_err(|e| StoreError::io(path, e))?;
        mended
            .closed
            .push(format!("{} ({mode:04o} -> {to:04o})", path.display()));
    }
    Ok(())
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn set(p: &Path, m: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_new_folder_is_private_and_new_files_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        assert_eq!(secure(&dir).unwrap(), Mended::default());
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("x");
        write(&f, b"1").unwrap();
        assert_eq!(mode(&f), 0o600);
        precreate(&dir.join("y.db")).unwrap();
        assert_eq!(mode(&dir.join("y.db")), 0o600);
    }

    #[test]
    fn a_readable_folder_and_files_are_closed_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir_all(dir.join("reads")).unwrap();
        fs::write(dir.join("platekeeper.db"), b"").unwrap();
        fs::write(dir.join("reads/2026-11-18.db"), b"").unwrap();
        for (p, m) in [
            (dir.clone(), 0o755),
            (dir.join("reads"), 0o755),
            (dir.join("platekeeper.db"), 0o644),
            (dir.join("reads/2026-11-18.db"), 0o640),
        ] {
            set(&p, m);
        }
        let mended = secure(&dir).unwrap();
        assert_eq!(mended.closed.len(), 4, "{mended:?}");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("reads")), 0o700);
        assert_eq!(mode(&dir.join("platekeeper.db")), 0o600);
        assert_eq!(mode(&dir.join("reads/2026-11-18.db")), 0o600);
        assert_eq!(secure(&dir).unwrap(), Mended::default(), "once is enough");
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir_all(dir.join("reads")).unwrap();
        set(&dir, 0o777);
        let err = secure(&dir).unwrap_err().to_string();
        assert!(err.contains("another account can write"), "{err}");
        set(&dir, 0o700);
        fs::write(dir.join("reads/2026-11-18.db"), b"").unwrap();
        set(&dir.join("reads/2026-11-18.db"), 0o666);
        let err = secure(&dir).unwrap_err().to_string();
        assert!(err.contains("2026-11-18.db"), "{err}");
        assert_eq!(
            mode(&dir.join("reads/2026-11-18.db")),
            0o666,
            "not mended: refused"
        );
    }

    #[test]
    fn a_link_inside_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("platekeeper.db")).unwrap();
        let err = secure(&dir).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
