//! A small pool of read-only connections, so searches run beside ingest
//! (WAL lets readers proceed while the writer commits).

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::{schema, StoreError};

/// Idle connections kept for reuse per database file; more are opened
/// under load and closed when returned to a full pool.
const MAX_IDLE: usize = 4;
/// Idle connections kept across all files. A store can hold hundreds of
/// day files; keeping a few connections to each would exhaust the
/// process's file descriptors (three per connection: db, wal, shm).
const MAX_IDLE_TOTAL: usize = 64;

static IDLE_TOTAL: AtomicUsize = AtomicUsize::new(0);

pub(crate) struct ReaderPool {
    path: PathBuf,
    cipher: crate::at_rest::Cipher,
    idle: Mutex<Vec<Connection>>,
}

pub(crate) struct PooledConnection<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    pub(crate) fn new(path: PathBuf, cipher: crate::at_rest::Cipher) -> ReaderPool {
        ReaderPool {
            path,
            cipher,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let reused = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
        if reused.is_some() {
            IDLE_TOTAL.fetch_sub(1, Ordering::Relaxed);
        }
        let conn = match reused {
            Some(c) => c,
            None => schema::open_connection(&self.path, schema::Role::Reader, &self.cipher)?,
        };
        Ok(PooledConnection {
            pool: self,
            conn: Some(conn),
        })
    }
}

impl Drop for ReaderPool {
    fn drop(&mut self) {
        if let Ok(idle) = self.idle.lock() {
            IDLE_TOTAL.fetch_sub(idle.len(), Ordering::Relaxed);
        }
    }
}

impl Deref for PooledConnection<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Present from construction until drop.
        self.conn.as_ref().expect("pooled connection taken")
    }
}

impl DerefMut for PooledConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("pooled connection taken")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
            if idle.len() < MAX_IDLE && IDLE_TOTAL.load(Ordering::Relaxed) < MAX_IDLE_TOTAL {
                IDLE_TOTAL.fetch_add(1, Ordering::Relaxed);
                idle.push(conn);
            }
        }
    }
}
