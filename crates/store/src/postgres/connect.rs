//! Connections to PostgreSQL: opened with the URL's TLS mode, errors told
//! apart (a wrong password is not an unreachable server), and a small pool
//! so a request does not pay a connection's start.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::Client;

use super::url::{DatabaseUrl, TlsMode};
use super::PgError;
use crate::StoreError;

/// Opens one connection to the database `url` names.
pub fn connect(url: &DatabaseUrl) -> Result<Client, PgError> {
    let result = match url.tls {
        TlsMode::Disable => url.config.connect(postgres::NoTls),
        TlsMode::VerifyFull => {
            let roots = url.root_cert.clone().unwrap_or_else(|| SYSTEM_ROOTS.into());
            let tls = super::tls::VerifyFull::new(&roots).map_err(|why| PgError::Tls {
                url: url.to_string(),
                why,
            })?;
            let mut config = url.config.clone();
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(tls)
        }
    };
    result.map_err(|e| classify(url, e))
}

/// A pool on a hot standby of `primary`'s database, for searches: refused
/// unless its log begins with the primary's first entry (the same store),
/// so a wrong URL cannot answer searches with another agency's reads.
pub(crate) fn open_replica(primary: &PgPool, url: &DatabaseUrl) -> Result<PgPool, StoreError> {
    let first = |pool: &PgPool| -> Result<Option<Vec<u8>>, StoreError> {
        // A database without the table holds no store: no first entry.
        let row = pool
            .get()?
            .query_opt("SELECT hash FROM log WHERE seq = 1", &[])
            .ok()
            .flatten();
        Ok(row.map(|r| r.get(0)))
    };
    let replica = PgPool::open(url)?;
    let (ours, theirs) = (first(primary)?, first(&replica)?);
    if ours.is_none() || ours != theirs {
        return Err(StoreError::Conflict {
            code: "read_database_mismatch",
            message: format!(
                "the read database {url} does not hold this store (its audit log does not begin with the primary's first entry); give a standby of {}",
                primary.url()
            ),
        });
    }
    Ok(replica)
}

/// Debian's bundle of the system's trusted roots (ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Names what went wrong with a connection or a statement.
pub(crate) fn classify(url: &DatabaseUrl, e: postgres::Error) -> PgError {
    let shown = url.to_string();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let why = db.message().to_string();
        return if *code == SqlState::INVALID_PASSWORD {
            PgError::WrongPassword {
                url: shown,
                user: url.user().to_string(),
            }
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INSUFFICIENT_PRIVILEGE && why.contains("CONNECT")
        {
            PgError::NotAllowed {
                url: shown,
                user: url.user().to_string(),
                why,
            }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            PgError::NoDatabase { url: shown }
        } else if classify_code(&e).is_some() {
            PgError::Unavailable { url: shown, why }
        } else {
            PgError::Query(match db.detail() {
                Some(d) => format!("{why} ({d})"),
                None => why,
            })
        };
    }
    if e.is_closed() {
        return PgError::Lost {
            url: shown,
            why: e.to_string(),
        };
    }
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    if why.contains("certificate") || why.contains("tls") || why.contains("TLS") {
        PgError::Tls { url: shown, why }
    } else {
        PgError::Unreachable { url: shown, why }
    }
}

/// Names what went wrong with a statement where the URL is not at hand
/// (the database is then named generically): a lost connection or a
/// server that cannot take the request is transient, anything else a
/// query error.
pub(crate) fn statement_error(e: postgres::Error) -> PgError {
    // Not from the server and not the connection: a value that did not
    // fit its column or parameter — a fault in the statement, not "try
    // again later".
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.as_db_error().is_none() && !e.is_closed() && !io {
        return PgError::Query(match std::error::Error::source(&e) {
            Some(why) => format!("{e}: {why}"),
            None => e.to_string(),
        });
    }
    if e.is_closed() || e.as_db_error().is_none() {
        return PgError::Lost {
            url: "the database".into(),
            why: e.to_string(),
        };
    }
    match classify_code(&e) {
        Some(why) => PgError::Unavailable {
            url: "the database".into(),
            why,
        },
        None => PgError::Query(
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string()),
        ),
    }
}

/// The message of a database error that means "not now".
fn classify_code(e: &postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    let code = db.code();
    (*code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION)
        .then(|| db.message().to_string())
}

/// Runs `f` where the synchronous PostgreSQL client may block: on this
/// thread, or, when this thread drives an async runtime (the server's,
/// a test's), on a thread of its own for the call. The client runs each
/// call on a small runtime of its own, which tokio refuses to start
/// inside another; the server hands store work to blocking threads, so
/// the extra thread is only for the few calls made from async code.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Reusable connections to one database, at most `max` of them open at
/// once (a database's `max_connections` is shared by every node and
/// tool): a request that finds them all busy waits up to `wait` for one,
/// then gets a transient error (503 with `Retry-After`), rather than
/// opening connections until the database refuses everyone.
pub struct PgPool {
    url: DatabaseUrl,
    max: usize,
    wait: Duration,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Client>,
    /// Connections open: idle ones and those lent out.
    open: usize,
}

/// Connections a node keeps open at most, unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// How long a request waits for a busy pool before it is told to retry.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(5);

impl PgPool {
    /// A pool whose first connection is opened now, so a wrong address,
    /// password or database is reported at start, not at the first
    /// request.
    pub fn open(url: &DatabaseUrl) -> Result<PgPool, PgError> {
        PgPool::with_limits(url, DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_WAIT)
    }

    /// As [`PgPool::open`], with at most `max` connections (at least 1)
    /// and `wait` for a free one.
    pub fn with_limits(url: &DatabaseUrl, max: usize, wait: Duration) -> Result<PgPool, PgError> {
        let first = connect(url)?;
        Ok(PgPool {
            url: url.clone(),
            max: max.max(1),
            wait,
            state: Mutex::new(PoolState {
                idle: vec![first],
                open: 1,
            }),
            freed: Condvar::new(),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection: an idle one that still works, a new one while fewer
    /// than `max` are open, or the next one given back within `wait`.
    pub fn get(&self) -> Result<PgConn<'_>, PgError> {
        let deadline = std::time::Instant::now() + self.wait;
        let mut state = self.state.lock().map_err(|_| PgError::Poisoned)?;
        loop {
            while let Some(c) = state.idle.pop() {
                if !c.is_closed() {
                    return Ok(PgConn {
                        pool: self,
                        client: Some(c),
                    });
                }
                off_runtime(move || drop(c));
                // Closed by the server (a restart, an idle timeout).
                state.open -= 1;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match off_runtime(|| connect(&self.url)) {
                    Ok(c) => Ok(PgConn {
                        pool: self,
                        client: Some(c),
                    }),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(PgError::Unavailable {
                    url: self.url.to_string(),
                    why: format!(
                        "all {} of this node's connections stayed busy for {} ms",
                        self.max,
                        self.wait.as_millis()
                    ),
                });
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .map_err(|_| PgError::Poisoned)?
                .0;
        }
    }

    /// One connection fewer is open (it closed, or failed to open).
    fn release_slot(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    /// Names an error from a statement run on this pool's database.
    pub fn error(&self, e: postgres::Error) -> PgError {
        classify(&self.url, e)
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        // Closing a connection talks to the server.
        if let Ok(state) = self.state.get_mut() {
            let idle = std::mem::take(&mut state.idle);
            off_runtime(move || drop(idle));
        }
    }
}

/// A connection lent by a [`PgPool`]; given back when dropped unless it
/// was closed. (A transaction left unfinished was rolled back when its
/// `Transaction` was dropped, so a returned connection holds none.)
pub struct PgConn<'a> {
    pool: &'a PgPool,
    client: Option<Client>,
}

impl Deref for PgConn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl DerefMut for PgConn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for PgConn<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            // A session lost while in use: its server most likely went
            // (a restart, a fail-over), and with it every idle session
            // opened to it. They are dropped now rather than each failing
            // one request later; the next requests connect afresh, to the
            // new primary where the URL names several hosts (issue 26).
            let idle = match self.pool.state.lock() {
                Ok(mut state) => {
                    let idle = std::mem::take(&mut state.idle);
                    state.open = state.open.saturating_sub(idle.len() + 1);
                    idle
                }
                Err(_) => Vec::new(),
            };
            off_runtime(move || drop((client, idle)));
            self.pool.freed.notify_all();
            return;
        }
        if let Ok(mut state) = self.pool.state.lock() {
            state.idle.push(client);
        }
        self.pool.freed.notify_one();
    }
}
