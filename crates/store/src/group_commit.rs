//! Group commit: many logged writes, one durable commit (issue 28).
//!
//! Every change that is logged — an access to plate data, a sign-in, an
//! administrative change — appends to the one hash chain in the main
//! database, and each must be durable (`synchronous = FULL`: the commit
//! waits for the disk) before its caller goes on. One commit per change
//! makes the disk's sync time the ceiling on searches per second, however
//! many officers search at once.
//!
//! Here the writing connection is shared by a *batch*: the first writer to
//! arrive opens a transaction; each writer runs its own change inside a
//! savepoint, on its own thread, while holding the connection, and
//! appends its entries to the chain in the order it got the connection. A
//! writer that finds nobody else queued for the connection commits the
//! batch (one sync for every change in it); one that finds others queued
//! leaves the batch open for them and waits until a later writer commits
//! it. Nobody is answered before the commit holding their change is
//! durable, the chain is appended in exactly the order the connection was
//! held, and a change that fails is rolled back to its savepoint without
//! touching the others in its batch. A batch is also committed once it
//! holds [`MAX_BATCH`] changes or has been open [`MAX_OPEN`], and a waiter
//! that finds its batch still open after [`WAIT_SLICE`] commits it
//! itself, so a batch never waits on a writer that went away.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::log::{self, Head};
use crate::StoreError;

/// Most changes in one batch.
pub(crate) const MAX_BATCH: usize = 256;
/// Longest a batch stays open for writers still queued.
pub(crate) const MAX_OPEN: Duration = Duration::from_millis(20);
/// How long a waiter sleeps before checking that its batch still has
/// someone to commit it.
const WAIT_SLICE: Duration = Duration::from_millis(25);
/// Failed batches remembered for their waiters.
const FAILURES_KEPT: usize = 1024;

/// The main database's one writing connection and the log's head.
pub(crate) struct Writer {
    state: Mutex<State>,
    resolved: Condvar,
    /// Writers between asking for the connection and getting it.
    queued: AtomicUsize,
}

struct State {
    conn: Connection,
    /// The head including the open batch's entries.
    head: Head,
    /// The head as of the last commit.
    durable: Head,
    /// The open batch's number, while a transaction is open.
    open: Option<u64>,
    members: usize,
    opened_at: Instant,
    next_batch: u64,
    /// Every batch up to this number has been committed or has failed.
    resolved_through: u64,
    /// Batches committed, and the changes they held, since open.
    commits: u64,
    changes: u64,
    /// Batches that failed: why, and whether the disk was full.
    failed: VecDeque<(u64, String, bool)>,
}

/// How many durable commits the logged changes since open took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CommitStats {
    pub commits: u64,
    pub changes: u64,
}

/// The writing connection held alone, with no batch open: for writes that
/// are not logged (sessions, alert rows) and for reading the head.
pub(crate) struct Exclusive<'a>(MutexGuard<'a, State>);

impl Deref for Exclusive<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

impl DerefMut for Exclusive<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0.conn
    }
}

impl Exclusive<'_> {
    /// The log's head, durable (no batch is open while this is held).
    pub(crate) fn durable_head(&self) -> Head {
        self.0.durable
    }
}

/// Results of a logged change that carry the log's new head.
pub(crate) trait HasHead {
    fn head(&self) -> Option<Head>;
}

impl HasHead for log::LogEntry {
    fn head(&self) -> Option<Head> {
        Some(Head {
            seq: self.seq,
            hash: self.hash,
        })
    }
}

impl<T> HasHead for (T, log::LogEntry) {
    fn head(&self) -> Option<Head> {
        self.1.head()
    }
}

impl Writer {
    pub(crate) fn new(conn: Connection, head: Head) -> Writer {
        Writer {
            state: Mutex::new(State {
                conn,
                head,
                durable: head,
                open: None,
                members: 0,
                opened_at: Instant::now(),
                next_batch: 1,
                resolved_through: 0,
                commits: 0,
                changes: 0,
                failed: VecDeque::new(),
            }),
            resolved: Condvar::new(),
            queued: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let got = self.state.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        got.map_err(|_| StoreError::Poisoned)
    }

    /// Batches committed and the logged changes they held, since open.
    pub(crate) fn stats(&self) -> Result<CommitStats, StoreError> {
        let st = self.state.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(CommitStats {
            commits: st.commits,
            changes: st.changes,
        })
    }

    /// The connection alone: the open batch, if any, is committed first.
    pub(crate) fn exclusive(&self, dir: &Path) -> Result<Exclusive<'_>, StoreError> {
        let mut st = self.lock()?;
        self.commit(&mut st, dir);
        Ok(Exclusive(st))
    }

    /// Runs `f` in the open batch with the log's head, and returns its
    /// result once the batch holding it is durable; `f`'s changes are
    /// undone alone if it fails.
    pub(crate) fn with_log<T: HasHead>(
        &self,
        dir: &Path,
        f: impl FnOnce(&Connection, Head) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut st = self.lock()?;
        let out = self.run(&mut st, f);
        let full = st.members >= MAX_BATCH || st.opened_at.elapsed() >= MAX_OPEN;
        if full || self.queued.load(Ordering::SeqCst) == 0 {
            self.commit(&mut st, dir);
        }
        let (value, batch) = out?;
        loop {
            if st.resolved_through >= batch {
                return match st.failed.iter().find(|(b, _, _)| *b == batch) {
                    Some((_, why, full)) => Err(StoreError::CommitFailed {
                        why: why.clone(),
                        storage_full: *full,
                    }),
                    None => Ok(value),
                };
            }
            let (next, waited) = self
                .resolved
                .wait_timeout(st, WAIT_SLICE)
                .map_err(|_| StoreError::Poisoned)?;
            st = next;
            if waited.timed_out() && st.open == Some(batch) {
                self.commit(&mut st, dir);
            }
        }
    }

    /// Runs one change inside a savepoint of the open batch (opening one
    /// if none is): its value and batch, or its error with its changes
    /// undone.
    fn run<T: HasHead>(
        &self,
        st: &mut State,
        f: impl FnOnce(&Connection, Head) -> Result<T, StoreError>,
    ) -> Result<(T, u64), StoreError> {
        let batch = match st.open {
            Some(b) => b,
            None => {
                st.conn.execute_batch("BEGIN")?;
                let b = st.next_batch;
                st.next_batch += 1;
                st.open = Some(b);
                st.members = 0;
                st.opened_at = Instant::now();
                b
            }
        };
        st.conn.execute_batch("SAVEPOINT change")?;
        match f(&st.conn, st.head) {
            Ok(value) => {
                if let Err(e) = st.conn.execute_batch("RELEASE change") {
                    let e = StoreError::from(e);
                    self.abort(st, batch, &e);
                    return Err(e);
                }
                if let Some(h) = value.head() {
                    st.head = h;
                }
                st.members += 1;
                Ok((value, batch))
            }
            Err(e) => {
                if let Err(undo) = st.conn.execute_batch("ROLLBACK TO change; RELEASE change") {
                    self.abort(st, batch, &undo.into());
                }
                Err(e)
            }
        }
    }

    /// Commits the open batch, if any, and tells its waiters.
    fn commit(&self, st: &mut State, dir: &Path) {
        let Some(batch) = st.open else {
            return;
        };
        match st.conn.execute_batch("COMMIT") {
            Ok(()) => {
                st.open = None;
                if st.members > 0 {
                    st.commits += 1;
                    st.changes += st.members as u64;
                }
                let moved = st.head != st.durable;
                st.durable = st.head;
                if moved {
                    // The entries are durable; a head file that cannot be
                    // written fails the batch's callers all the same, so
                    // nothing is released that `verify` would then doubt.
                    if let Err(e) = log::write_head(dir, st.head) {
                        let full = e.is_storage_full();
                        remember(
                            st,
                            batch,
                            format!("the log head was not recorded: {e}"),
                            full,
                        );
                    }
                }
                self.resolve(st, batch);
            }
            Err(e) => self.abort(st, batch, &e.into()),
        }
    }

    /// Gives up the open batch: everything in it is rolled back and its
    /// waiters are told why.
    fn abort(&self, st: &mut State, batch: u64, why: &StoreError) {
        if !st.conn.is_autocommit() {
            let _ = st.conn.execute_batch("ROLLBACK");
        }
        st.open = None;
        st.head = st.durable;
        remember(st, batch, why.to_string(), why.is_storage_full());
        tracing::error!(batch, error = %why, "a batch of logged changes failed to commit");
        self.resolve(st, batch);
    }

    fn resolve(&self, st: &mut State, batch: u64) {
        st.members = 0;
        st.resolved_through = st.resolved_through.max(batch);
        self.resolved.notify_all();
    }
}

fn remember(st: &mut State, batch: u64, why: String, storage_full: bool) {
    st.failed.push_back((batch, why, storage_full));
    while st.failed.len() > FAILURES_KEPT {
        st.failed.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::log::NewEntry;
    use crate::schema::{open_connection, Role};

    fn writer() -> (tempfile::TempDir, Arc<Writer>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(
            &dir.path().join("log.db"),
            Role::Writer,
            &Default::default(),
        )
        .unwrap();
        conn.execute_batch(log::SCHEMA).unwrap();
        (dir, Arc::new(Writer::new(conn, Head::GENESIS)))
    }

    fn entry(what: &str) -> NewEntry {
        NewEntry {
            ts_ms: 1,
            category: "access",
            kind: "search".into(),
            username: what.into(),
            affiliation: String::new(),
            role: None,
            client: None,
            details: serde_json::json!({"what": what}),
            purpose: None,
        }
    }

    /// What a second connection (another process, a crash-restarted
    /// server) finds committed, in order.
    fn committed(dir: &Path) -> Vec<log::LogEntry> {
        let conn = open_connection(&dir.join("log.db"), Role::Reader, &Default::default()).unwrap();
        log::read_entries(&conn).unwrap()
    }

    fn chained(entries: &[log::LogEntry]) -> bool {
        let mut head = Head::GENESIS;
        entries.iter().all(|e| {
            let ok = e.seq == head.seq + 1 && e.prev == head.hash && log::entry_hash(e) == e.hash;
            head = e.as_head();
            ok
        })
    }

    /// Waits until `writer` has someone queued for its connection.
    fn until_queued(writer: &Writer) {
        let start = Instant::now();
        while writer.queued.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "nobody queued");
            std::thread::yield_now();
        }
    }

    /// Issue 28: a change that finds another queued behind it leaves the
    /// batch open; the later one commits both, in one commit, and neither
    /// returns before that commit.
    #[test]
    fn a_change_queued_behind_another_shares_its_commit() {
        let (dir, w) = writer();
        let inside = Arc::new(AtomicBool::new(false));
        let first = {
            let (w, inside, path) = (w.clone(), inside.clone(), dir.path().to_path_buf());
            std::thread::spawn(move || {
                let e = w
                    .with_log(&path, |tx, head| {
                        inside.store(true, Ordering::SeqCst);
                        until_queued(&w);
                        log::append(tx, head, entry("first"))
                    })
                    .unwrap();
                // Returned only once durable: another connection sees it.
                assert!(committed(&path).iter().any(|c| c.seq == e.seq));
                e
            })
        };
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let second = w
            .with_log(dir.path(), |tx, head| {
                log::append(tx, head, entry("second"))
            })
            .unwrap();
        let first = first.join().unwrap();
        assert_eq!(
            (first.seq, second.seq),
            (1, 2),
            "appended in the order held"
        );
        assert_eq!(second.prev, first.hash);
        assert_eq!(
            w.stats().unwrap(),
            CommitStats {
                commits: 1,
                changes: 2
            }
        );
        let all = committed(dir.path());
        assert_eq!(all.len(), 2);
        assert!(chained(&all));
    }

    /// A change that fails is undone alone: the change before it in the
    /// same batch commits, and the chain goes on from that change.
    #[test]
    fn a_failed_change_is_undone_without_its_batch() {
        let (dir, w) = writer();
        let inside = Arc::new(AtomicBool::new(false));
        let first = {
            let (w, inside, path) = (w.clone(), inside.clone(), dir.path().to_path_buf());
            std::thread::spawn(move || {
                w.with_log(&path, |tx, head| {
                    let e = log::append(tx, head, entry("kept"));
                    inside.store(true, Ordering::SeqCst);
                    until_queued(&w);
                    e
                })
                .unwrap()
            })
        };
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let failed = w.with_log(dir.path(), |tx, head| -> Result<log::LogEntry, _> {
            log::append(tx, head, entry("undone"))?;
            Err(StoreError::invalid(
                "test",
                "this change fails after appending",
            ))
        });
        assert!(failed.is_err());
        let kept = first.join().unwrap();
        let next = w
            .with_log(dir.path(), |tx, head| log::append(tx, head, entry("next")))
            .unwrap();
        let all = committed(dir.path());
        let names: Vec<&str> = all.iter().map(|e| e.username.as_str()).collect();
        assert_eq!(names, ["kept", "next"]);
        assert_eq!(next.prev, kept.hash);
        assert!(chained(&all));
    }

    /// Many writers at once: every change is durable once returned, the
    /// chain has no gap or fork, and commits were shared.
    #[test]
    fn concurrent_writers_keep_one_chain() {
        let (dir, w) = writer();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (w, path) = (w.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let name = format!("{t}-{i}");
                        let e = w
                            .with_log(&path, |tx, head| log::append(tx, head, entry(&name)))
                            .unwrap();
                        assert_eq!(e.username, name);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = committed(dir.path());
        assert_eq!(all.len(), 200);
        assert!(chained(&all));
        let stats = w.stats().unwrap();
        assert_eq!(stats.changes, 200);
        assert!(stats.commits <= 200);
        // The head file names the last entry.
        let head: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(log::HEAD_FILE)).unwrap())
                .unwrap();
        assert_eq!(head["entries"], 200);
    }

    /// A writer that takes the connection alone commits the open batch
    /// first, and sees the durable head.
    #[test]
    fn exclusive_use_commits_the_open_batch_first() {
        let (dir, w) = writer();
        let e = w
            .with_log(dir.path(), |tx, head| log::append(tx, head, entry("one")))
            .unwrap();
        let conn = w.exclusive(dir.path()).unwrap();
        assert!(conn.is_autocommit(), "no batch is open");
        assert_eq!(conn.durable_head(), e.as_head());
    }
}
