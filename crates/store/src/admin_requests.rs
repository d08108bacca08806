//! Administration from the command line while a server runs on the same
//! data folder (`platekeeper admin unlock`; issue 22 finding 7).
//!
//! The server owns the folder (its lock file) and keeps the audit log's
//! head in memory: a second process appending to the log would fork the
//! hash chain, and the server's next entry would then no longer follow
//! the last one written. So the command line never writes the database
//! beside a server. It leaves a request in `DATA/admin-requests/`; the
//! server picks it up within a second, applies it through its own store
//! (logged like any change, by `cli:<the OS user>`), and leaves the
//! outcome beside it for the command to read. With no server running,
//! the command takes the folder's lock and applies the request itself
//! through [`Store::apply_admin_request`], the same code.
//!
//! Who may ask: whoever can write into `admin-requests/`, a folder the
//! server keeps to its own OS user (mode 0700): the same people who could
//! stop the server and edit its files. A folder others may write into is
//! refused, not served.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::accounts::Actor;
use crate::{Store, StoreError};

/// The folder under the data folder.
pub const DIR: &str = "admin-requests";

/// A request older than this is not applied: its command has given up
/// waiting (and said so), and nobody expects it to happen later.
pub const MAX_AGE_MS: i64 = 5 * 60_000;

/// Largest request file read.
const MAX_REQUEST_BYTES: u64 = 4096;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AdminAction {
    /// Lift an account's lock (any account, administrators included).
    Unlock { username: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequest {
    #[serde(flatten)]
    pub action: AdminAction,
    /// The OS user who ran the command (as the command saw it; the
    /// server also records the file's owner).
    pub os_user: String,
    pub requested_at_ms: i64,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOutcome {
    pub ok: bool,
    /// The API's error code when not `ok` (`unknown_user`, …).
    pub code: Option<String>,
    pub message: String,
}

impl AdminOutcome {
    fn done(message: impl Into<String>) -> AdminOutcome {
        AdminOutcome {
            ok: true,
            code: None,
            message: message.into(),
        }
    }

    fn failed(code: &str, message: impl Into<String>) -> AdminOutcome {
        AdminOutcome {
            ok: false,
            code: Some(code.into()),
            message: message.into(),
        }
    }
}

/// An OS user name fit for the log: letters, digits, `.`, `_`, `-`.
fn clean_user(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64)
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

fn dir_of(data: &Path) -> PathBuf {
    data.join(DIR)
}

/// Creates the folder, for this OS user only.
pub fn ensure_dir(data: &Path) -> Result<PathBuf, StoreError> {
    let dir = dir_of(data);
    crate::private::create_dir(&dir)?;
    Ok(dir)
}

/// Writes `path` whole or not at all (a temporary file renamed), readable
/// by this OS user only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = crate::private::new_file()
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

/// Leaves a request for the running server; returns its id.
pub fn submit(data: &Path, req: &AdminRequest) -> Result<String, StoreError> {
    let dir = ensure_dir(data)?;
    let id = hex::encode(crate::credentials::random_bytes::<12>()?);
    let body = serde_json::to_vec(req).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    write_private(&dir.join(format!("{id}.request")), &body)?;
    Ok(id)
}

/// Takes back a request no server has picked up. Returns whether it was
/// still waiting (and so will never be applied).
pub fn withdraw(data: &Path, id: &str) -> Result<bool, StoreError> {
    let path = dir_of(data).join(format!("{id}.request"));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(&path, e)),
    }
}

/// The outcome of request `id`, once the server has left one (read and
/// removed).
pub fn take_outcome(data: &Path, id: &str) -> Result<Option<AdminOutcome>, StoreError> {
    let path = dir_of(data).join(format!("{id}.result"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let _ = std::fs::remove_file(&path);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))
}

/// The owner of a file, where the system says.
fn owner_of(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        Some(std::os::unix::fs::MetadataExt::uid(meta))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Whether people other than the folder's owner could write requests.
fn writable_by_others(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o022 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

impl Store {
    /// Applies one request from the command line, logged as done by
    /// `cli:<os user>` (with the request file's owner, where known).
    pub fn apply_admin_request(
        &self,
        req: &AdminRequest,
        file_owner_uid: Option<u32>,
        now_ms: i64,
    ) -> AdminOutcome {
        if now_ms - req.requested_at_ms > MAX_AGE_MS {
            return AdminOutcome::failed(
                "request_expired",
                "the request waited too long for a server and was not applied",
            );
        }
        let actor = Actor {
            username: format!("cli:{}", clean_user(&req.os_user)),
            affiliation: "Platekeeper command line".into(),
            role: None,
            client: Some(match file_owner_uid {
                Some(uid) => format!("local (uid {uid})"),
                None => "local".into(),
            }),
        };
        match &req.action {
            AdminAction::Unlock { username } => match self.unlock(username, &actor, now_ms) {
                Ok(()) => AdminOutcome::done(format!(
                    "{username} is unlocked (logged as account_unlocked by {})",
                    actor.username
                )),
                Err(StoreError::UnknownUser(u)) => AdminOutcome::failed(
                    "unknown_user",
                    format!("user {u:?} does not exist or was deleted"),
                ),
                Err(e) => AdminOutcome::failed("internal_error", e.to_string()),
            },
        }
    }

    /// Applies every request waiting in the data folder (the server polls
    /// this every second). Returns how many it answered.
    pub fn process_admin_requests(&self, now_ms: i64) -> Result<usize, StoreError> {
        let dir = ensure_dir(self.dir())?;
        let meta = std::fs::metadata(&dir).map_err(|e| StoreError::io(&dir, e))?;
        if writable_by_others(&meta) {
            return Err(StoreError::Refused {
                code: "unsafe_request_folder",
                message: format!(
                    "{} may be written by other OS users; requests in it are not served until it is mode 0700",
                    dir.display()
                ),
            });
        }
        let mut answered = 0;
        for entry in std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".request"))
                .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string)
            else {
                self.forget_stale(&path, now_ms);
                continue;
            };
            // Claimed by renaming, so a request is applied once even if
            // its command withdraws it at the same moment.
            let working = dir.join(format!("{id}.working"));
            if std::fs::rename(&path, &working).is_err() {
                continue;
            }
            let outcome = match std::fs::symlink_metadata(&working) {
                Ok(m) if m.is_file() && m.len() <= MAX_REQUEST_BYTES => {
                    match std::fs::read(&working)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<AdminRequest>(&b).ok())
                    {
                        Some(req) => self.apply_admin_request(&req, owner_of(&m), now_ms),
                        None => AdminOutcome::failed(
                            "invalid_request",
                            "the request file is not one `platekeeper admin` writes",
                        ),
                    }
                }
                _ => AdminOutcome::failed(
                    "invalid_request",
                    "the request is not a plain file of at most 4 KiB",
                ),
            };
            let _ = std::fs::remove_file(&working);
            let body =
                serde_json::to_vec(&outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            write_private(&dir.join(format!("{id}.result")), &body)?;
            answered += 1;
        }
        Ok(answered)
    }

    /// Removes an answer nobody collected, or a half-written file, once
    /// it is an hour old.
    fn forget_stale(&self, path: &Path, now_ms: i64) {
        let old = std::fs::symlink_metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|t| now_ms - (t.as_millis() as i64) > 3_600_000);
        if old {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platekeeper_core::Role;

    use crate::NewUser;

    #[test]
    fn a_request_is_applied_once_logged_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_administrator(
                NewUser {
                    username: "capt".into(),
                    name: "Dana Reyes".into(),
                    role: Role::Administrator,
                    title: None,
                },
                365,
                1_000,
            )
            .unwrap();
        let now = 10_000;
        for i in 0..5 {
            store
                .count_failure("capt", "wrong password", 5, &Actor::system("t"), now + i)
                .unwrap();
        }
        assert!(store.account("capt").unwrap().unwrap().locked);
        let req = |username: &str| AdminRequest {
            action: AdminAction::Unlock {
                username: username.into(),
            },
            os_user: "root; drop".into(),
            requested_at_ms: now,
        };
        let id = submit(dir.path(), &req("capt")).unwrap();
        let unknown = submit(dir.path(), &req("nobody")).unwrap();
        assert_eq!(take_outcome(dir.path(), &id).unwrap(), None);
        assert_eq!(store.process_admin_requests(now + 100).unwrap(), 2);
        assert_eq!(store.process_admin_requests(now + 200).unwrap(), 0);
        let out = take_outcome(dir.path(), &id).unwrap().unwrap();
        assert!(out.ok, "{out:?}");
        assert!(!store.account("capt").unwrap().unwrap().locked);
        let e = &store.log_entries(None, None, 1).unwrap()[0];
        assert_eq!(e.kind, "account_unlocked");
        assert_eq!(e.username, "cli:rootdrop");
        let out = take_outcome(dir.path(), &unknown).unwrap().unwrap();
        assert_eq!(out.code.as_deref(), Some("unknown_user"));
        assert!(store.verify_log().unwrap().ok);

        // A request withdrawn before a server took it is never applied;
        // one that waited too long is refused.
        let id = submit(dir.path(), &req("capt")).unwrap();
        assert!(withdraw(dir.path(), &id).unwrap());
        assert_eq!(store.process_admin_requests(now + 300).unwrap(), 0);
        let id = submit(dir.path(), &req("capt")).unwrap();
        store.process_admin_requests(now + MAX_AGE_MS + 1).unwrap();
        let out = take_outcome(dir.path(), &id).unwrap().unwrap();
        assert_eq!(out.code.as_deref(), Some("request_expired"));
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_others_may_write_is_not_served() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let folder = ensure_dir(dir.path()).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            store.process_admin_requests(0),
            Err(StoreError::Refused {
                code: "unsafe_request_folder",
                ..
            })
        ));
    }
}
