//! Short-lived state every node must see alike (issue 26 item 1): the
//! download links not yet fetched, the sign-in failures counted by
//! client address, and where each officer last said they were (for
//! alerts near them). Both lived in one server's memory; with several nodes
//! behind a load balancer, a link made on one node must be good on
//! another, and a guesser must not get a fresh allowance by reaching
//! another node. Kept in the main database on both backends (written
//! once, against [`crate::sql`]), outside the audit log: neither is an
//! access or a change of anything an auditor looks at (what a link
//! downloads is logged when it is fetched; a throttled sign-in is logged
//! by the server).
//!
//! A link's row never holds what would let a database reader use it: it
//! is found by the SHA-256 of the link's secret, and the session and the
//! target it carries are sealed (AES-256-GCM) with a key derived from that
//! secret, which only the person holding the link has.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::{Digest, Sha256};

use rusqlite::params;

use crate::sql::Optional as _;
use crate::{credentials, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS download_links(
    hash BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    client TEXT,
    sealed BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signin_failures(
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signin_failures_last ON signin_failures(last_failure_at);
CREATE TABLE IF NOT EXISTS positions(
    username TEXT PRIMARY KEY,
    lat INTEGER NOT NULL,
    lon INTEGER NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Most sign-in failure counters kept: past it the longest-quiet go first
/// (someone spraying from many addresses cannot grow the table without
/// end; at about 100 bytes a row, 10 MB).
pub const MAX_FAILURE_ROWS: i64 = 100_000;

/// How long an officer's position counts (and is kept).
pub const POSITION_KEPT_MS: i64 = 30 * 60_000;

/// A download link as it was stored, opened with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    pub username: String,
    /// The address that asked for it.
    pub client: Option<String>,
    /// What the server sealed into it (its session and target).
    pub payload: Vec<u8>,
}

/// Why a link was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyLinks {
    /// Unfetched, unexpired links the person holds.
    pub held: usize,
}

/// The key that seals a link's payload: derived from its secret, apart
/// from the hash that finds its row (`credentials::token_hash`).
fn link_key(secret: &str) -> Result<LessSafeKey, StoreError> {
    let mut h = Sha256::new();
    h.update(b"platekeeper download link key\0");
    h.update(secret.trim().as_bytes());
    let unbound = UnboundKey::new(&AES_256_GCM, &h.finalize())
        .map_err(|_| StoreError::Corrupt("the download link key is unusable".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// Each key seals one payload only, so a fixed nonce is safe.
fn nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN])
}

impl Store {
    /// Stores a download link for `username` under its `secret`, unless
    /// the person already holds `per_person` unexpired links or everyone
    /// together `max`. Expired links are cleared on the way. The count and
    /// the insert are one transaction (on PostgreSQL under a table lock, so
    /// two nodes cannot both pass the same last free place).
    #[allow(clippy::too_many_arguments)]
    pub fn put_link(
        &self,
        secret: &str,
        link: &StoredLink,
        expires_ms: i64,
        now_ms: i64,
        per_person: usize,
        max: usize,
    ) -> Result<Result<(), TooManyLinks>, StoreError> {
        let mut sealed = link.payload.clone();
        link_key(secret)?
            .seal_in_place_append_tag(nonce(), Aad::from(link.username.as_bytes()), &mut sealed)
            .map_err(|_| StoreError::Corrupt("sealing a download link failed".into()))?;
        let hash = credentials::token_hash(secret);
        self.unlogged(|tx| {
            if tx.dialect() == crate::sql::Dialect::Postgres {
                tx.execute("LOCK TABLE download_links IN EXCLUSIVE MODE", ())?;
            }
            tx.execute(
                "DELETE FROM download_links WHERE expires_at <= ?1",
                [now_ms],
            )?;
            let held: i64 = tx.query_row(
                "SELECT count(*) FROM download_links WHERE username = ?1",
                [link.username.as_str()],
                |r| r.get(0),
            )?;
            let all: i64 = tx.query_row("SELECT count(*) FROM download_links", (), |r| r.get(0))?;
            let held = usize::try_from(held).unwrap_or(usize::MAX);
            if held >= per_person || usize::try_from(all).unwrap_or(usize::MAX) >= max {
                return Ok(Err(TooManyLinks { held }));
            }
            tx.execute(
                "INSERT INTO download_links(hash, username, client, sealed, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &hash[..],
                    link.username.as_str(),
                    link.client.as_deref(),
                    &sealed[..],
                    expires_ms
                ],
            )?;
            Ok(Ok(()))
        })
    }

    /// Takes the link `secret` names, once, if it has not expired (on
    /// any node: the row is deleted as it is read). A secret that names
    /// no link, or one whose payload does not open, gives `None`.
    pub fn take_link(&self, secret: &str, now_ms: i64) -> Result<Option<StoredLink>, StoreError> {
        let hash = credentials::token_hash(secret);
        let row: Option<(String, Option<String>, Vec<u8>, i64)> = self.unlogged(|tx| {
            tx.query_opt(
                "DELETE FROM download_links WHERE hash = ?1
                 RETURNING username, client, sealed, expires_at",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })?;
        let Some((username, client, mut sealed, expires)) = row else {
            return Ok(None);
        };
        if expires <= now_ms {
            return Ok(None);
        }
        let Ok(payload) =
            link_key(secret)?.open_in_place(nonce(), Aad::from(username.as_bytes()), &mut sealed)
        else {
            return Ok(None);
        };
        Ok(Some(StoredLink {
            username,
            client,
            payload: payload.to_vec(),
        }))
    }

    /// The latest end of a wait that any of `keys` is in at `now_ms`.
    pub fn failures_blocked_until(
        &self,
        keys: &[&str],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        let mut until = None;
        for key in keys {
            let u: Option<i64> = conn
                .query_row(
                    "SELECT blocked_until FROM signin_failures WHERE key = ?1 AND blocked_until > ?2",
                    params![*key, now_ms],
                    |r| r.get(0),
                )
                .optional()?;
            until = until.max(u);
        }
        Ok(until)
    }

    /// Counts a failure against `key` (one row, updated in place: two
    /// nodes counting at once both count) and starts the wait `delay`
    /// gives for the new count, if any. A key quiet for `forget_after_ms`
    /// starts again from one; rows quiet that long are removed on the way.
    /// Returns the count and the wait's end.
    pub fn count_address_failure(
        &self,
        key: &str,
        now_ms: i64,
        forget_after_ms: i64,
        delay: impl Fn(u32) -> i64,
    ) -> Result<(u32, Option<i64>), StoreError> {
        self.unlogged(|tx| {
            tx.execute(
                "DELETE FROM signin_failures WHERE last_failure_at <= ?1",
                [now_ms - forget_after_ms],
            )?;
            let failures: i64 = tx.query_row(
                "INSERT INTO signin_failures(key, failures, last_failure_at, blocked_until)
                 VALUES (?1, 1, ?2, 0)
                 ON CONFLICT(key) DO UPDATE SET
                     failures = CASE WHEN ?2 - signin_failures.last_failure_at >= ?3 THEN 1
                                     ELSE signin_failures.failures + 1 END,
                     last_failure_at = ?2
                 RETURNING failures",
                params![key, now_ms, forget_after_ms],
                |r| r.get(0),
            )?;
            let rows: i64 =
                tx.query_row("SELECT count(*) FROM signin_failures", (), |r| r.get(0))?;
            if rows > MAX_FAILURE_ROWS {
                tx.execute(
                    "DELETE FROM signin_failures WHERE key IN (
                         SELECT key FROM signin_failures WHERE key <> ?2
                         ORDER BY last_failure_at LIMIT ?1)",
                    params![rows - MAX_FAILURE_ROWS, key],
                )?;
            }
            let failures = u32::try_from(failures).unwrap_or(u32::MAX);
            let wait = delay(failures);
            if wait <= 0 {
                return Ok((failures, None));
            }
            let until = now_ms.saturating_add(wait);
            tx.execute(
                "UPDATE signin_failures SET blocked_until = ?2 WHERE key = ?1",
                params![key, until],
            )?;
            Ok((failures, Some(until)))
        })
    }

    /// Where `username` is now (only the last position is kept: no trail
    /// of an officer's movements).
    pub fn set_position(
        &self,
        username: &str,
        at: platekeeper_core::GeoPoint,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (lat, lon) = at.to_micro();
        self.unlogged(|tx| {
            // Positions that no longer count are not kept either.
            tx.execute(
                "DELETE FROM positions WHERE at <= ?1",
                [now_ms - POSITION_KEPT_MS],
            )?;
            tx.execute(
                "INSERT INTO positions(username, lat, lon, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(username) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, at = excluded.at",
                params![username, lat, lon, now_ms],
            )
        })?;
        Ok(())
    }

    /// The last position `username` sent, and when, if it is newer than
    /// `since_ms`.
    pub fn position(
        &self,
        username: &str,
        since_ms: i64,
    ) -> Result<Option<(platekeeper_core::GeoPoint, i64)>, StoreError> {
        let conn = self.reader()?;
        let row: Option<(i32, i32, i64)> = conn
            .query_row(
                "SELECT lat, lon, at FROM positions WHERE username = ?1 AND at > ?2",
                params![username, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(lat, lon, at)| (platekeeper_core::GeoPoint::from_micro(lat, lon), at)))
    }

    /// Forgets where everyone was more than [`POSITION_KEPT_MS`] ago
    /// (the scheduled work calls it; a position that old no longer counts).
    pub fn forget_old_positions(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.unlogged(|tx| {
            tx.execute(
                "DELETE FROM positions WHERE at <= ?1",
                [now_ms - POSITION_KEPT_MS],
            )
        })
    }

    /// Forgets `key`'s failures.
    pub fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        self.unlogged(|tx| tx.execute("DELETE FROM signin_failures WHERE key = ?1", [key]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn link(user: &str) -> StoredLink {
        StoredLink {
            username: user.into(),
            client: Some("192.0.2.1".into()),
            payload: b"{\"session\":\"pks_x\"}".to_vec(),
        }
    }

    #[test]
    fn a_link_opens_once_with_its_secret_and_its_row_shows_nothing_usable() {
        let (dir, s) = store();
        s.put_link("pkl_aa", &link("ana"), 2_000, 1_000, 4, 256)
            .unwrap()
            .unwrap();
        let raw: Vec<u8> = rusqlite::Connection::open(dir.path().join("platekeeper.db"))
            .unwrap()
            .query_row("SELECT sealed FROM download_links", [], |r| r.get(0))
            .unwrap();
        assert!(!raw.windows(5).any(|w| w == b"pks_x"), "sealed");
        assert_eq!(s.take_link("pkl_ab", 1_500).unwrap(), None, "wrong secret");
        assert_eq!(s.take_link("pkl_aa", 1_500).unwrap(), Some(link("ana")));
        assert_eq!(s.take_link("pkl_aa", 1_500).unwrap(), None, "once");
        s.put_link("pkl_bb", &link("ana"), 2_000, 1_000, 4, 256)
            .unwrap()
            .unwrap();
        assert_eq!(s.take_link("pkl_bb", 2_000).unwrap(), None, "expired");
    }

    #[test]
    fn links_are_counted_per_person_and_in_all() {
        let (_dir, s) = store();
        for i in 0..2 {
            s.put_link(&format!("pkl_{i}"), &link("ana"), 100, 0, 2, 3)
                .unwrap()
                .unwrap();
        }
        assert_eq!(
            s.put_link("pkl_9", &link("ana"), 100, 0, 2, 3).unwrap(),
            Err(TooManyLinks { held: 2 })
        );
        s.put_link("pkl_b", &link("bo"), 100, 0, 2, 3)
            .unwrap()
            .unwrap();
        assert!(s
            .put_link("pkl_c", &link("cy"), 100, 0, 2, 3)
            .unwrap()
            .is_err());
        // Expired ones make room.
        s.put_link("pkl_d", &link("ana"), 300, 100, 2, 3)
            .unwrap()
            .unwrap();
    }

    #[test]
    fn only_the_last_position_is_kept_and_an_old_one_is_not_given() {
        let (_dir, s) = store();
        let here = platekeeper_core::GeoPoint::new(37.8044, -122.2712).unwrap();
        let there = platekeeper_core::GeoPoint::new(34.0522, -118.2437).unwrap();
        assert_eq!(s.position("ana", 0).unwrap(), None);
        s.set_position("ana", here, 1_000).unwrap();
        s.set_position("ana", there, 2_000).unwrap();
        assert_eq!(s.position("ana", 0).unwrap(), Some((there, 2_000)));
        assert_eq!(s.position("ana", 2_000).unwrap(), None, "too old");
        assert_eq!(s.position("bo", 0).unwrap(), None);
    }

    #[test]
    fn the_failure_counters_have_a_size() {
        let (dir, s) = store();
        {
            let mut c = rusqlite::Connection::open(dir.path().join("platekeeper.db")).unwrap();
            let tx = c.transaction().unwrap();
            for i in 0..MAX_FAILURE_ROWS {
                tx.execute(
                    "INSERT INTO signin_failures VALUES (?1, 1, ?2, 0)",
                    params![format!("a 10.{i}"), 1_000 + i],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let delay = |_| 0;
        assert_eq!(
            s.count_address_failure("a new", 2_000_000, 3_600_000_000, delay)
                .unwrap()
                .0,
            1
        );
        let c = rusqlite::Connection::open(dir.path().join("platekeeper.db")).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            count("SELECT count(*) FROM signin_failures"),
            MAX_FAILURE_ROWS
        );
        assert_eq!(
            count("SELECT count(*) FROM signin_failures WHERE key = 'a new'"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM signin_failures WHERE key = 'a 10.0'"),
            0,
            "the longest-quiet went"
        );
    }

    #[test]
    fn positions_older_than_half_an_hour_are_not_kept() {
        let (dir, s) = store();
        let here = platekeeper_core::GeoPoint::new(37.8044, -122.2712).unwrap();
        s.set_position("ana", here, 1_000).unwrap();
        s.set_position("bo", here, 2_000 + POSITION_KEPT_MS)
            .unwrap();
        let rows = || -> i64 {
            rusqlite::Connection::open(dir.path().join("platekeeper.db"))
                .unwrap()
                .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(), 1, "ana's went when bo's came");
        assert_eq!(
            s.forget_old_positions(3_000 + 2 * POSITION_KEPT_MS)
                .unwrap(),
            1
        );
        assert_eq!(rows(), 0);
    }

    #[test]
    fn failures_count_start_waits_and_are_forgotten() {
        let (_dir, s) = store();
        let delay = |n: u32| if n >= 3 { 1_000 * i64::from(n) } else { 0 };
        assert_eq!(
            s.count_address_failure("k", 10, 3_600, delay).unwrap(),
            (1, None)
        );
        assert_eq!(
            s.count_address_failure("k", 11, 3_600, delay).unwrap(),
            (2, None)
        );
        assert_eq!(
            s.count_address_failure("k", 12, 3_600, delay).unwrap(),
            (3, Some(3_012))
        );
        assert_eq!(
            s.failures_blocked_until(&["other", "k"], 100).unwrap(),
            Some(3_012)
        );
        assert_eq!(s.failures_blocked_until(&["k"], 3_012).unwrap(), None);
        // An hour quiet starts again at one.
        assert_eq!(
            s.count_address_failure("k", 3_612, 3_600, delay).unwrap(),
            (1, None)
        );
        s.clear_failures("k").unwrap();
        assert_eq!(
            s.count_address_failure("k", 3_613, 3_600, delay).unwrap(),
            (1, None)
        );
    }
}
