//! What a node hears of the other nodes' commits (issue 26 item 1), on a
//! session of its own, by `NOTIFY` (delivered when, and only if, the
//! transaction commits):
//!
//! * the plates another node stored, and on which days (`CHANNEL`): every
//!   node keeps the plate dictionary that pattern searches run over in
//!   its own memory, and adds them to it;
//! * which of its caches another node's change made stale (`CHANGES`:
//!   cameras, hot lists, the policy), reloaded at their next use;
//! * alerts another node raised or re-sent (`super::alert_bus`).
//!
//! A listener that loses its connection reconnects with back-off and then
//! reads every day's plates again and marks every cache stale (what it may
//! have missed meanwhile).
//! Delivery follows the commit by the time a notification takes to reach
//! the other node (milliseconds on a local network): a pattern search
//! sent to another node in that moment may miss the newest plate; an
//! exact search does not (it asks the database for a plate its node has
//! not seen).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::alert_bus::{AlertRelay, CHANNEL as ALERTS};
use super::{DatabaseUrl, PgError};
use crate::dictionary::PlateDictionary;

/// The channel the notifications go on.
pub const CHANNEL: &str = "platekeeper_plates";

/// The channel on which a committed change names the node caches it makes
/// stale: `cameras`, `hotlists`, `policy`.
pub const CHANGES: &str = "platekeeper_changes";

/// Which of a node's caches another node's change made stale; the store
/// reloads one from the database the next time it uses it.
#[derive(Default)]
pub(crate) struct Stale {
    pub cameras: Staleness,
    pub hotlists: Staleness,
    pub policy: Staleness,
}

/// One cache's state: changes heard of, and the last of them reloaded. A
/// use that finds it behind reloads it, or waits for the reload another
/// thread has begun, so no request goes on with the old cache while a
/// reload is under way (two cameras' requests at once, one reloading: the
/// other used to find the mark cleared and the new camera unknown).
#[derive(Default)]
pub(crate) struct Staleness {
    heard: AtomicU64,
    loaded: AtomicU64,
    reloading: Mutex<()>,
}

impl Staleness {
    fn mark(&self) {
        self.heard.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs `reload` if a change was heard since the last one, unless
    /// another thread's reload covered it meanwhile; `reload` says whether
    /// it replaced the cache (if not, the next use tries again).
    pub(crate) fn refresh(&self, reload: impl FnOnce() -> bool) {
        if self.loaded.load(Ordering::SeqCst) >= self.heard.load(Ordering::SeqCst) {
            return;
        }
        // A reload that panicked elsewhere must not stop reloads for good.
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let target = self.heard.load(Ordering::SeqCst);
        if self.loaded.load(Ordering::SeqCst) >= target {
            return;
        }
        if reload() {
            self.loaded.fetch_max(target, Ordering::SeqCst);
        }
    }
}

impl Stale {
    fn mark(&self, topic: &str) {
        match topic {
            "cameras" => self.cameras.mark(),
            "hotlists" => self.hotlists.mark(),
            "policy" => self.policy.mark(),
            _ => {}
        }
    }

    fn all(&self) {
        for t in ["cameras", "hotlists", "policy"] {
            self.mark(t);
        }
    }
}

/// The caches a committed change with log entries of these kinds makes
/// stale on other nodes.
pub(crate) fn topics_of<'a>(kinds: impl Iterator<Item = &'a str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for k in kinds {
        let t = if k.starts_with("camera_") {
            "cameras"
        } else if k.starts_with("hotlist_") {
            "hotlists"
        } else if k == "policy_changed" {
            "policy"
        } else {
            continue;
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Longest payload sent (PostgreSQL's limit is 8,000 bytes).
const MAX_PAYLOAD: usize = 7_800;

/// How often a listener checks that its store is still open.
const POLL: Duration = Duration::from_millis(100);

/// Tells every node, in `tx`, the (plate code, day) pairs a batch stored:
/// `day:code,code;day:code…`, as many notifications as the limit needs.
pub(crate) fn notify(
    tx: &mut postgres::Transaction<'_>,
    stored: &[(i64, i32)],
) -> Result<(), postgres::Error> {
    let mut pairs: Vec<(i32, i64)> = stored.iter().map(|&(code, day)| (day, code)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut payload = String::new();
    let mut day_open: Option<i32> = None;
    let mut send = |payload: &mut String| -> Result<(), postgres::Error> {
        if !payload.is_empty() {
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload.as_str()])?;
            payload.clear();
        }
        Ok(())
    };
    for (day, code) in pairs {
        if payload.len() > MAX_PAYLOAD {
            send(&mut payload)?;
            day_open = None;
        }
        if day_open != Some(day) {
            if !payload.is_empty() {
                payload.push(';');
            }
            payload.push_str(&format!("{day}:{code}"));
            day_open = Some(day);
        } else {
            payload.push_str(&format!(",{code}"));
        }
    }
    send(&mut payload)
}

/// The (plate code, day) pairs of one payload; what does not parse is
/// skipped (it came from nobody who follows this format).
pub(crate) fn parse(payload: &str) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    for group in payload.split(';') {
        let Some((day, codes)) = group.split_once(':') else {
            continue;
        };
        let Ok(day) = day.parse::<i32>() else {
            continue;
        };
        out.extend(
            codes
                .split(',')
                .filter_map(|c| c.parse::<i64>().ok())
                .map(|c| (c, day)),
        );
    }
    out
}

fn apply(dictionary: &RwLock<PlateDictionary>, pairs: &[(i64, i32)]) {
    if let Ok(mut dict) = dictionary.write() {
        for &(code, day) in pairs {
            if let Some(plate) = platekeeper_core::Plate::from_code(code) {
                dict.observe(&plate, day);
            }
        }
    }
}

/// What a listener's session runs first: it names itself (so the
/// database's administrators see which sessions are listeners) and
/// listens on every channel (plates, changes, alerts).
fn listen_sql() -> String {
    format!(
        "SET application_name = 'platekeeper-listener'; LISTEN {CHANNEL}; LISTEN {CHANGES}; LISTEN {ALERTS}"
    )
}

/// A node's listener: a thread with a session of its own, stopped when
/// dropped.
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    /// Starts listening before returning, so that nothing committed after
    /// this call is missed by the dictionary the caller loads next.
    pub(crate) fn start(
        url: DatabaseUrl,
        dictionary: Arc<RwLock<PlateDictionary>>,
        stale: Arc<Stale>,
        alerts: Arc<AlertRelay>,
    ) -> Result<Listener, PgError> {
        let mut client = super::connect::connect(&url)?;
        client
            .batch_execute(&listen_sql())
            .map_err(super::connect::statement_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("plate-listener".into())
            .spawn({
                let stop = stop.clone();
                move || listen(client, url, dictionary, stale, alerts, stop)
            })
            .map_err(|e| PgError::Query(format!("starting the plate listener: {e}")))?;
        Ok(Listener {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn listen(
    mut client: postgres::Client,
    url: DatabaseUrl,
    dictionary: Arc<RwLock<PlateDictionary>>,
    stale: Arc<Stale>,
    alerts: Arc<AlertRelay>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        let lost = {
            let mut notes = client.notifications();
            let mut iter = notes.timeout_iter(POLL);
            loop {
                match iter.next() {
                    Ok(Some(n)) if n.channel() == CHANGES => stale.mark(n.payload()),
                    Ok(Some(n)) if n.channel() == ALERTS => alerts.heard(n.payload()),
                    Ok(Some(n)) => apply(&dictionary, &parse(n.payload())),
                    Ok(None) => break false,
                    Err(_) => break true,
                }
            }
        };
        if !lost && !client.is_closed() {
            continue;
        }
        // The session is gone: a new one, then every plate again.
        tracing::warn!("the plate listener lost its database connection; reconnecting");
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
            let Ok(mut fresh) = super::connect::connect(&url) else {
                continue;
            };
            if fresh.batch_execute(&listen_sql()).is_err() {
                continue;
            }
            // What changed meanwhile is unknown: every cache reloads.
            stale.all();
            if let Ok(mut dict) = dictionary.write() {
                if super::reads::load_dictionary(&mut fresh, &mut dict).is_err() {
                    continue;
                }
            }
            client = fresh;
            backoff = Duration::from_millis(100);
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_during_a_reload_waits_for_it_and_a_failed_reload_is_retried() {
        use std::sync::atomic::AtomicUsize;
        let flag = Arc::new(Staleness::default());
        let cache = Arc::new(AtomicUsize::new(1));
        flag.mark();
        let reloading = {
            let (flag, cache) = (flag.clone(), cache.clone());
            std::thread::spawn(move || {
                flag.refresh(|| {
                    std::thread::sleep(Duration::from_millis(200));
                    cache.store(2, Ordering::SeqCst);
                    true
                })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        // Another request meanwhile: it must not go on with the old cache.
        let mut reloads = 0;
        flag.refresh(|| {
            reloads += 1;
            true
        });
        assert_eq!(cache.load(Ordering::SeqCst), 2, "waited for the reload");
        assert_eq!(reloads, 0, "and did not reload again");
        reloading.join().unwrap();
        // A reload that could not replace the cache leaves it stale.
        flag.mark();
        flag.refresh(|| false);
        let mut again = false;
        flag.refresh(|| {
            again = true;
            true
        });
        assert!(again);
        let mut once_more = false;
        flag.refresh(|| {
            once_more = true;
            true
        });
        assert!(!once_more, "up to date");
    }

    #[test]
    fn payloads_round_trip_and_junk_is_skipped() {
        assert_eq!(
            parse("20400:5,7;20401:9"),
            vec![(5, 20400), (7, 20400), (9, 20401)]
        );
        assert_eq!(parse("nonsense;20400:x,3;:4"), vec![(3, 20400)]);
        assert!(parse("").is_empty());
    }
}
