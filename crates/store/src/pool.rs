//! A small pool of read-only connections, so searches run beside ingest
//! (WAL lets readers proceed while the writer commits).

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::Connection;

use crate::{schema, StoreError};

/// Idle connections kept for reuse; more are opened under load and
/// closed when returned to a full pool.
const MAX_IDLE: usize = 4;

pub(crate) struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

pub(crate) struct PooledConnection<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    pub(crate) fn new(path: PathBuf) -> ReaderPool {
        ReaderPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let reused = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match reused {
            Some(c) => c,
            None => schema::open_connection(&self.path, schema::Role::Reader)?,
        };
        Ok(PooledConnection {
            pool: self,
            conn: Some(conn),
        })
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
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}
