//! The data key: 256 random bits kept outside the data folder, in a file
//! of its own (mode 0600) or in an environment variable. Nothing else is
//! secret: the keys SQLCipher and the picture files use are derived from
//! it, one per purpose, so no two algorithms ever share a key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;
use zeroize::Zeroizing;

/// The environment variable that may hold the data key (its 64 hex
/// digits) instead of a key file.
pub const KEY_ENV: &str = "PLATEKEEPER_DATA_KEY";

/// A key file's only line starts with this, so a file of some other kind
/// given by mistake is named as such.
const FILE_PREFIX: &str = "platekeeper-data-key-v1:";

/// A key file is one short line; anything longer is not one.
const MAX_FILE_BYTES: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {0}: not found (make one with `platekeeper keys init --key-file FILE`)")]
    Missing(PathBuf),
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {0} already exists; a data key is never overwritten (its data would be lost)"
    )]
    Exists(PathBuf),
    #[error("key file {path} can be read by other accounts (mode {mode:o}); make it readable by the server's account only: chmod 600 {path}")]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error("key file {0} is not a regular file")]
    NotAFile(PathBuf),
    #[error(
        "{0}: not a Platekeeper data key (expected one line `{FILE_PREFIX}` and 64 hex digits)"
    )]
    BadFormat(String),
    #[error("could not draw random bytes for a new key: {0}")]
    Random(String),
}

/// A short public name of a key (not secret: it is derived one-way), so a
/// data folder can say which key it needs and a wrong key is told apart
/// from damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(pub String);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The data key. Its bytes are wiped when it is dropped and are never
/// printed.
pub struct DataKey {
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id())
    }
}

/// What a derived key is for; each purpose gets its own key.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Id,
    Databases,
    Pictures,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Id => b"platekeeper/key-id/v1",
            Purpose::Databases => b"platekeeper/sqlcipher/v1",
            Purpose::Pictures => b"platekeeper/pictures/v1",
        }
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> Result<DataKey, KeyError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(DataKey { secret })
    }

    /// A key from its text: a key file's line, or the 64 hex digits alone
    /// (as the environment variable holds it). `source` names where the
    /// text came from in errors; the text itself is never repeated.
    pub fn parse(text: &str, source: &str) -> Result<DataKey, KeyError> {
        let text = text.trim();
        let digits = text.strip_prefix(FILE_PREFIX).unwrap_or(text);
        let bad = || KeyError::BadFormat(source.to_string());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, secret.as_mut()).map_err(|_| bad())?;
        Ok(DataKey { secret })
    }

    /// Reads a key file, refusing one that other accounts can read.
    pub fn load(path: &Path) -> Result<DataKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(path.to_path_buf()))
            }
            Err(e) => return Err(io(e)),
        };
        if !meta.is_file() {
            return Err(KeyError::NotAFile(path.to_path_buf()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::OpenToOthers {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(KeyError::BadFormat(path.display().to_string()));
        }
        let text = Zeroizing::new(fs::read(path).map_err(io)?);
        let text = std::str::from_utf8(&text)
            .map_err(|_| KeyError::BadFormat(path.display().to_string()))?;
        DataKey::parse(text, &path.display().to_string())
    }

    /// Makes a new key and writes it to a new file (mode 0600); an
    /// existing file is never replaced.
    pub fn create(path: &Path) -> Result<DataKey, KeyError> {
        let key = DataKey::generate()?;
        key.write_new(path)?;
        Ok(key)
    }

    /// Writes this key to a new file (mode 0600) and makes it durable.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = match crate::private::new_file().open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists(path.to_path_buf()))
            }
            Err(e) => return Err(io(e)),
        };
        let line = Zeroizing::new(format!("{FILE_PREFIX}{}\n", hex::encode(*self.secret)));
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// The key for one purpose: HMAC-SHA256 of the purpose's label under
    /// the data key.
    pub(crate) fn derive(&self, purpose: Purpose) -> Zeroizing<[u8; 32]> {
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, self.secret.as_ref()),
            purpose.label(),
        );
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(mac.as_ref());
        out
    }

    /// This key's public name: 16 hex digits.
    pub fn id(&self) -> KeyId {
        KeyId(hex::encode(&self.derive(Purpose::Id)[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_its_file_and_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.key");
        let key = DataKey::create(&path).unwrap();
        let again = DataKey::load(&path).unwrap();
        assert_eq!(key.id(), again.id());
        assert_eq!(key.id().0.len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(DataKey::create(&path), Err(KeyError::Exists(_))));
        assert_eq!(DataKey::load(&path).unwrap().id(), key.id(), "not replaced");
    }

    #[test]
    fn two_keys_differ_and_purposes_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.id(), b.id());
        assert_ne!(*a.derive(Purpose::Databases), *a.derive(Purpose::Pictures));
    }

    #[test]
    fn the_environment_form_is_the_bare_digits() {
        let a = DataKey::generate().unwrap();
        let digits = hex::encode(*a.secret);
        assert_eq!(DataKey::parse(&digits, KEY_ENV).unwrap().id(), a.id());
        assert_eq!(
            DataKey::parse(&format!("{FILE_PREFIX}{digits}\n"), "f")
                .unwrap()
                .id(),
            a.id()
        );
    }

    #[test]
    fn bad_key_files_are_named_and_their_text_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("short", "platekeeper-data-key-v1:abcd".to_string()),
            ("nothex", format!("{FILE_PREFIX}{}", "zz".repeat(32))),
            ("pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n".to_string()),
            ("huge", "a".repeat(5000)),
            (
                "binary",
                String::from_utf8_lossy(&[0xff, 0xfe, 0, 1]).into_owned(),
            ),
        ] {
            let path = dir.path().join(name);
            crate::private::write(&path, text.as_bytes()).unwrap();
            let err = DataKey::load(&path).unwrap_err();
            assert!(matches!(err, KeyError::BadFormat(_)), "{name}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(!msg.contains("MIIE") && !msg.contains("zzzz"), "{msg}");
        }
        assert!(matches!(
            DataKey::load(&dir.path().join("absent")),
            Err(KeyError::Missing(_))
        ));
        assert!(matches!(
            DataKey::load(dir.path()),
            Err(KeyError::NotAFile(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.key");
        DataKey::create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = DataKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::OpenToOthers { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }
}
