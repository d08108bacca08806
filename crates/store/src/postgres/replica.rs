//! The hot standby searches of reads may run on (`--read-database`,
//! issue 26). A standby is a convenience, never a dependency: it is
//! opened when first needed (a node starts while it is down), skipped for
//! a while after any failure, and skipped while it replays too far behind
//! the primary (a broken or paused replication would otherwise answer
//! searches without the newest reads, with reads retention has already
//! removed, and with plates as they were before a correction). Searches
//! then run on the primary.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::connect::{open_replica, PgPool};
use super::{now_ms, DatabaseUrl};
use crate::StoreError;

/// How long a standby that failed is left alone.
const SKIP_AFTER_FAILURE_MS: i64 = 30_000;
/// How often how far behind it is gets asked.
const LAG_CHECK_EVERY_MS: i64 = 1_000;
/// Behind by more WAL than this, searches go to the primary (16 MiB: at
/// the measured ~110 bytes of row and index per read, about 150,000
/// reads).
pub const MAX_LAG_BYTES: i64 = 16 << 20;

pub(crate) struct Replica {
    url: DatabaseUrl,
    pool: Mutex<Option<Arc<PgPool>>>,
    skip_until_ms: AtomicI64,
    lag_checked_ms: AtomicI64,
    /// The WAL bytes it was behind at the last check (-1: unknown).
    lag_bytes: AtomicI64,
}

/// Says `what` at most once a minute (a search a second must not write a
/// warning a second).
fn warn_now_and_then(what: &str, e: &dyn std::fmt::Display) {
    static LAST_SAID: AtomicI64 = AtomicI64::new(0);
    let minute = now_ms() / 60_000;
    if LAST_SAID.swap(minute, Ordering::Relaxed) != minute {
        tracing::warn!(error = %e, "{what}; searching on the primary");
    }
}

impl Replica {
    /// A standby of `primary`'s store: opened and checked now if it
    /// answers; refused only if it answers and holds another store.
    pub(crate) fn open(primary: &PgPool, url: &DatabaseUrl) -> Result<Replica, StoreError> {
        let replica = Replica {
            url: url.clone(),
            pool: Mutex::new(None),
            skip_until_ms: AtomicI64::new(0),
            lag_checked_ms: AtomicI64::new(0),
            lag_bytes: AtomicI64::new(-1),
        };
        match open_replica(primary, url) {
            Ok(pool) => {
                *replica.pool.lock().map_err(|_| StoreError::Poisoned)? = Some(Arc::new(pool))
            }
            Err(e @ StoreError::Conflict { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, read_database = %url, "the read database does not answer; searches run on the primary until it does");
                replica.failed();
            }
        }
        Ok(replica)
    }

    /// The standby to search on now, or `None` (search on the primary).
    pub(crate) fn usable(&self, primary: &PgPool) -> Option<Arc<PgPool>> {
        let now = now_ms();
        if now < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let pool = {
            let mut held = self.pool.lock().ok()?;
            if held.is_none() {
                match open_replica(primary, &self.url) {
                    Ok(p) => *held = Some(Arc::new(p)),
                    Err(e) => {
                        warn_now_and_then("the read database cannot be used", &e);
                        drop(held);
                        self.failed();
                        return None;
                    }
                }
            }
            held.clone()?
        };
        let last = self.lag_checked_ms.load(Ordering::Relaxed);
        if now - last >= LAG_CHECK_EVERY_MS
            && self
                .lag_checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            match behind(primary, &pool) {
                Ok(bytes) => self.lag_bytes.store(bytes, Ordering::Relaxed),
                Err(e) => {
                    warn_now_and_then("the read database did not say how far behind it is", &e);
                    self.failed();
                    return None;
                }
            }
        }
        let lag = self.lag_bytes.load(Ordering::Relaxed);
        if lag > MAX_LAG_BYTES {
            warn_now_and_then(
                "the read database replays too far behind the primary",
                &format!("{lag} bytes of WAL behind"),
            );
            return None;
        }
        Some(pool)
    }

    /// Leaves the standby alone for a while (it failed a search).
    pub(crate) fn failed(&self) {
        self.skip_until_ms
            .store(now_ms() + SKIP_AFTER_FAILURE_MS, Ordering::Relaxed);
        self.lag_bytes.store(-1, Ordering::Relaxed);
    }

    /// WAL bytes behind at the last check (`None`: not known).
    pub(crate) fn lag_bytes(&self) -> Option<i64> {
        Some(self.lag_bytes.load(Ordering::Relaxed)).filter(|b| *b >= 0)
    }

    /// Whether searches go to the standby now (not skipped after a
    /// failure or for its lag).
    pub(crate) fn in_use(&self) -> bool {
        now_ms() >= self.skip_until_ms.load(Ordering::Relaxed)
            && self.lag_bytes().is_none_or(|b| b <= MAX_LAG_BYTES)
    }

    pub(crate) fn pool(&self) -> Option<Arc<PgPool>> {
        self.pool.lock().ok()?.clone()
    }
}

/// How many bytes of WAL the standby has yet to replay: the primary's
/// position less the standby's (0 for a read database that is not in
/// recovery).
fn behind(primary: &PgPool, replica: &PgPool) -> Result<i64, StoreError> {
    let replayed: Option<String> = replica
        .get()?
        .query_one("SELECT pg_last_wal_replay_lsn()::text", &[])
        .map_err(|e| replica.error(e))?
        .get(0);
    let Some(replayed) = replayed else {
        return Ok(0);
    };
    let behind: Option<i64> = primary
        .get()?
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::bigint",
            &[&replayed],
        )
        .map_err(|e| primary.error(e))?
        .get(0);
    Ok(behind.unwrap_or(0).max(0))
}
