//! Encryption at rest (SPEC R11.1, issue 24): a copied data folder
//! without the data key shows no plate, place, time, name or secret.
//!
//! * Every SQLite file (the main database with the access log, accounts
//!   and TOTP secrets; each day's reads) is a SQLCipher database: every
//!   page, of the file and of its write-ahead log, is encrypted with
//!   AES-256-CBC and authenticated with HMAC-SHA256 (not SQLCipher's
//!   default SHA-512: SHA-256 runs on the processor's SHA instructions,
//!   and checking each page read halved the cost of a search; see
//!   docs/BENCHMARKS.md). Temporary tables and
//!   sort spills stay in memory (SQLCipher's build keeps the temporary
//!   store there), so nothing unencrypted reaches the disk on the side.
//! * Every picture file is sealed with AES-256-GCM ([`pictures`]).
//! * The data key lives outside the data folder ([`key`]); the folder's
//!   `encryption.json` names the key it needs by its public id, so a
//!   missing or wrong key is reported before any file is opened or
//!   changed.
//! * [`rekey`] encrypts a plain store, or re-encrypts one under a new
//!   key, file by file, so it can be stopped and resumed.

pub mod key;
pub mod pictures;
pub mod rekey;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use key::{DataKey, KeyError, KeyId, KEY_ENV};
pub use pictures::{PictureError, PictureKey};

use crate::StoreError;

/// The data folder's record of how it is encrypted.
pub const MARKER_FILE: &str = "encryption.json";

/// A plain SQLite file starts with these 16 bytes; an SQLCipher file
/// starts with random salt.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// What `encryption.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The id of the key every file is (or, during a change, will be)
    /// encrypted under.
    pub key_id: String,
    /// Set while a change of key is under way: the id of the key being
    /// replaced, or `plaintext` while a plain store is being encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey_from: Option<String>,
    /// For a reader of the folder: what the files are encrypted with.
    pub databases: String,
    pub pictures: String,
    /// The HMAC that authenticates each database page. Stores encrypted
    /// before this field existed used SQLCipher's default, SHA-512.
    #[serde(default = "PageHmac::sqlcipher_default")]
    pub page_hmac: PageHmac,
    /// During a change of key: the page HMAC of the files not yet done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey_from_page_hmac: Option<PageHmac>,
}

/// The HMAC SQLCipher authenticates each page with: part of the files'
/// format, so it is recorded in the marker and never changes for a store
/// except by re-encrypting it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PageHmac {
    #[default]
    Sha256,
    Sha512,
}

impl PageHmac {
    fn sqlcipher_default() -> PageHmac {
        PageHmac::Sha512
    }

    fn pragma(self) -> &'static str {
        match self {
            PageHmac::Sha256 => "PRAGMA cipher_hmac_algorithm = HMAC_SHA256;",
            PageHmac::Sha512 => "PRAGMA cipher_hmac_algorithm = HMAC_SHA512;",
        }
    }

    fn pragma_for(self, schema: &str) -> String {
        let algorithm = match self {
            PageHmac::Sha256 => "HMAC_SHA256",
            PageHmac::Sha512 => "HMAC_SHA512",
        };
        format!("PRAGMA {schema}.cipher_hmac_algorithm = {algorithm};")
    }

    fn label(self) -> &'static str {
        match self {
            PageHmac::Sha256 => "SQLCipher 4 (AES-256-CBC, HMAC-SHA256 per page)",
            PageHmac::Sha512 => "SQLCipher 4 (AES-256-CBC, HMAC-SHA512 per page)",
        }
    }
}

/// How a plain store is named in `rekey_from`.
pub(crate) const PLAINTEXT: &str = "plaintext";

impl Marker {
    pub(crate) fn new(key_id: &KeyId, rekey_from: Option<String>, page_hmac: PageHmac) -> Marker {
        Marker {
            key_id: key_id.0.clone(),
            rekey_from,
            databases: page_hmac.label().into(),
            pictures: "AES-256-GCM, a key per file".into(),
            page_hmac,
            rekey_from_page_hmac: None,
        }
    }

    pub(crate) fn read(dir: &Path) -> Result<Option<Marker>, StoreError> {
        let path = dir.join(MARKER_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StoreError::Encryption(format!(
                    "{} is not readable ({e}); it names the data key this folder needs",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Replaces the marker durably (a new file renamed over the old).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(MARKER_FILE);
        let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| StoreError::Encryption(e.to_string()))?;
        crate::private::write(&tmp, &json)?;
        let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        sync(dir).map_err(|e| StoreError::io(dir, e))
    }
}

/// The keys a store's files are encrypted with, or none for a plain
/// store. Cheap to clone: every connection of a store holds one.
#[derive(Clone, Default)]
pub struct Cipher(Option<Arc<Keys>>);

struct Keys {
    id: KeyId,
    page_hmac: PageHmac,
    /// SQLCipher's raw-key form, `x'…'`: used as is, without a password
    /// derivation on every open.
    database: Zeroizing<String>,
    pictures: PictureKey,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(k) => write!(f, "Cipher({})", k.id),
            None => f.write_str("Cipher(plain)"),
        }
    }
}

impl Cipher {
    pub fn plain() -> Cipher {
        Cipher(None)
    }

    /// A new store's cipher under `key`.
    pub fn new(key: &DataKey) -> Cipher {
        Cipher::with(key, PageHmac::default())
    }

    /// The cipher under `key` with the page HMAC a store's marker names.
    pub fn with(key: &DataKey, page_hmac: PageHmac) -> Cipher {
        let database = Zeroizing::new(format!(
            "x'{}'",
            hex::encode(*key.derive(key::Purpose::Databases))
        ));
        Cipher(Some(Arc::new(Keys {
            id: key.id(),
            page_hmac,
            database,
            pictures: PictureKey::new(key),
        })))
    }

    pub fn key_id(&self) -> Option<&KeyId> {
        self.0.as_ref().map(|k| &k.id)
    }

    /// Page cache of each read-only connection, in KiB. Decrypted pages
    /// are what the cache keeps, and a page read again from the file
    /// must be checked and decrypted again (about 3 µs against 1 µs for a
    /// plain page), so an encrypted store's readers keep four times as
    /// many (docs/BENCHMARKS.md).
    pub(crate) fn reader_cache_kib(&self) -> i64 {
        if self.0.is_some() {
            8_192
        } else {
            2_048
        }
    }

    fn page_hmac(&self) -> Option<PageHmac> {
        self.0.as_ref().map(|k| k.page_hmac)
    }

    pub(crate) fn pictures(&self) -> Option<&PictureKey> {
        self.0.as_ref().map(|k| &k.pictures)
    }

    /// Gives a new connection its key; must come before anything else
    /// touches the file.
    pub(crate) fn apply(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        if let Some(k) = &self.0 {
            let sql = Zeroizing::new(format!("PRAGMA key = \"{}\";", k.database.as_str()));
            conn.execute_batch(&sql)?;
            conn.execute_batch(k.page_hmac.pragma())?;
        }
        Ok(())
    }

    /// `KEY '…'` for attaching a database under this cipher.
    pub(crate) fn attach_key(&self) -> Zeroizing<String> {
        Zeroizing::new(match &self.0 {
            Some(k) => format!("KEY \"{}\"", k.database.as_str()),
            None => "KEY ''".to_string(),
        })
    }

    /// The settings an attached database `schema` needs before its first
    /// use (an attached database starts with SQLCipher's defaults).
    pub(crate) fn attach_settings(&self, schema: &str) -> String {
        match &self.0 {
            Some(k) => k.page_hmac.pragma_for(schema),
            None => String::new(),
        }
    }
}

/// Whether a database file is a plain SQLite file (`Some(true)`), an
/// encrypted one (`Some(false)`), or absent or empty (`None`).
pub(crate) fn is_plain_database(path: &Path) -> Result<Option<bool>, StoreError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let mut head = [0u8; 16];
    match f.read_exact(&mut head) {
        Ok(()) => Ok(Some(&head == SQLITE_HEADER)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// How a data folder is to be opened, decided before anything in it is
/// opened or changed.
pub enum Decision {
    /// A plain store (or a new folder without a key).
    Plain,
    /// An encrypted store, its key given.
    Encrypted(Cipher),
    /// A new folder given a key: encrypted from the start.
    New(Cipher),
    /// Encrypted files whose marker went missing (copied without it),
    /// and the key given opens them: the marker is written back.
    MarkerLost(Cipher),
}

/// Checks a data folder against the key given, changing nothing: a
/// missing or wrong key, a key for a plain store, or an unfinished change
/// of key is an error naming the problem. The command line runs this
/// before it even takes the folder's lock.
pub fn check(dir: &Path, key: Option<&DataKey>) -> Result<Decision, StoreError> {
    let unknown = || "unknown: encryption.json is missing".to_string();
    Ok(match (Marker::read(dir)?, key) {
        (Some(m), _) if m.rekey_from.is_some() => {
            return Err(StoreError::RekeyUnfinished {
                from: m.rekey_from.unwrap_or_default(),
                to: m.key_id,
            })
        }
        (Some(m), None) => return Err(StoreError::KeyRequired { key_id: m.key_id }),
        (Some(m), Some(k)) if k.id().0 != m.key_id => {
            return Err(StoreError::WrongKey {
                given: k.id().0,
                expected: m.key_id,
            })
        }
        (Some(m), Some(k)) => Decision::Encrypted(Cipher::with(k, m.page_hmac)),
        (None, key) => match (is_plain_database(&dir.join("platekeeper.db"))?, key) {
            (None | Some(true), None) => Decision::Plain,
            (Some(true), Some(_)) => return Err(StoreError::NotEncrypted),
            (Some(false), None) => return Err(StoreError::KeyRequired { key_id: unknown() }),
            (Some(false), Some(k)) => {
                let main = dir.join("platekeeper.db");
                let Some(cipher) = [PageHmac::Sha256, PageHmac::Sha512]
                    .into_iter()
                    .map(|h| Cipher::with(k, h))
                    .find(|c| opens_under(&main, c))
                else {
                    return Err(StoreError::WrongKey {
                        given: k.id().0,
                        expected: unknown(),
                    });
                };
                Decision::MarkerLost(cipher)
            }
            (None, Some(k)) => Decision::New(Cipher::new(k)),
        },
    })
}

/// [`check`], then what its decision needs written (a new folder's
/// marker), and the cipher to open the folder's files with.
pub(crate) fn check_folder(dir: &Path, key: Option<&DataKey>) -> Result<Cipher, StoreError> {
    Ok(match check(dir, key)? {
        Decision::Plain => Cipher::plain(),
        Decision::Encrypted(c) => c,
        Decision::New(c) => {
            crate::private::create_dir(dir)?;
            write_marker_of(dir, &c)?;
            c
        }
        Decision::MarkerLost(c) => {
            tracing::warn!(
                "{MARKER_FILE} was missing; the key given opens the store, so it was written again"
            );
            write_marker_of(dir, &c)?;
            c
        }
    })
}

/// Records in the data folder of a store kept in PostgreSQL that the
/// store is now under `to` (it was under `from`, or had no key), once
/// its pictures were sealed again (`postgres::pictures::reseal`). The
/// folder holds no database of its own: a folder that does is the
/// embedded store's, whose key changes with [`rekey::rekey`].
pub fn mark_database_store(
    dir: &Path,
    from: Option<&DataKey>,
    to: &DataKey,
) -> Result<(), StoreError> {
    if dir.join("platekeeper.db").exists() {
        return Err(StoreError::Encryption(format!(
            "{} holds an embedded store: change its key without --database",
            dir.display()
        )));
    }
    match (Marker::read(dir)?, from) {
        // Done already (a run finished again).
        (Some(m), _) if m.key_id == to.id().0 => return Ok(()),
        (Some(m), Some(k)) if m.key_id != k.id().0 => {
            return Err(StoreError::WrongKey {
                given: k.id().0,
                expected: m.key_id,
            })
        }
        (Some(m), None) => {
            return Err(StoreError::Encryption(format!(
                "{} is already under key {}; to change its key use `platekeeper keys rotate`",
                dir.display(),
                m.key_id
            )))
        }
        _ => {}
    }
    crate::private::create_dir(dir)?;
    Marker::new(&to.id(), None, PageHmac::default()).write(dir)
}

fn write_marker_of(dir: &Path, cipher: &Cipher) -> Result<(), StoreError> {
    match (cipher.key_id(), cipher.page_hmac()) {
        (Some(id), Some(h)) => Marker::new(id, None, h).write(dir),
        _ => Ok(()),
    }
}

/// Stops SQLCipher's own messages on standard error for the rest of the
/// process (for commands that try keys on purpose; the server keeps them,
/// where a failed page check is worth seeing).
pub(crate) fn quiet_sqlcipher() {
    if let Ok(conn) = rusqlite::Connection::open_in_memory() {
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
    }
}

/// Whether a database file can be read under `cipher` (opened read-only,
/// so a wrong key changes nothing).
pub(crate) fn opens_under(path: &Path, cipher: &Cipher) -> bool {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    cipher.apply(&conn).is_ok()
        && conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok()
}

/// A plain connection (read-write) to one database file of a store, with
/// the key applied: for tools and tests that must reach the file itself
/// (the tamper tests do); everything else goes through the [`crate::Store`].
pub fn open_database(path: &Path, key: Option<&DataKey>) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    key.map(Cipher::new).unwrap_or_default().apply(&conn)?;
    Ok(conn)
}

/// A read-only connection to a data folder's main database, for tools
/// that run beside the server (`audit verify`): the folder is checked
/// against the key first.
pub(crate) fn open_main_read_only(
    dir: &Path,
    key: Option<&DataKey>,
) -> Result<rusqlite::Connection, StoreError> {
    let path = dir.join("platekeeper.db");
    if !path.exists() {
        return Err(StoreError::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no store in this folder"),
        ));
    }
    let cipher = check_folder(dir, key)?;
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    cipher.apply(&conn)?;
    Ok(conn)
}
