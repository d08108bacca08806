//! Sign-in throttling by client address (issue 22 finding 7).
//!
//! An account locks after a few failed sign-ins in a row (SPEC R4.6): that
//! stops guessing one person's password, but it also let anyone lock out
//! every administrator. Throttling by address slows guessing before it
//! reaches an account's lock, and costs a refused attempt almost nothing:
//! a throttled attempt is answered 429 `too_many_attempts` with
//! `Retry-After` before any password is checked, so it neither counts
//! toward the account's lock nor spends the server's CPU on Argon2, nor
//! writes the audit log.
//!
//! Two back-offs, each doubling with every failure past a free allowance:
//!
//! * per address *and* username: 3 free failures, then 2 s, 4 s, … up to
//!   15 minutes. Guessing one account from one place slows to a crawl.
//! * per address: 20 free failures, then 1 s, 2 s, … up to 60 s. Trying a
//!   few passwords on many accounts (spraying) is bounded too, while
//!   people sharing the address (a station's NAT, a VPN) are held up at
//!   most a minute by someone else's failures.
//!
//! An IPv6 client counts by its /64 (one subscriber's network), so a
//! client cannot escape by changing the low bits of its address. The
//! counters are in the store (`platekeeper_store::shared_state`), so every
//! node of a cluster counts the same failures and a guesser gains nothing
//! by reaching another node (issue 26). These functions block: call them
//! off the async threads. Failures are forgotten after an hour without
//! one.

use std::net::IpAddr;
use std::sync::Arc;

use platekeeper_store::Store;

/// One back-off schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Failures allowed before any wait.
    pub free: u32,
    /// The first wait, in ms; each later failure doubles it.
    pub first_ms: i64,
    /// The longest wait, in ms.
    pub max_ms: i64,
}

impl Schedule {
    /// How long to wait after the `n`-th failure in a row (0: none).
    pub fn delay_ms(&self, n: u32) -> i64 {
        if n <= self.free {
            return 0;
        }
        let doublings = (n - self.free - 1).min(40);
        self.first_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_ms)
    }
}

/// Guessing one account from one address.
pub const PER_USER: Schedule = Schedule {
    free: 3,
    first_ms: 2_000,
    max_ms: 15 * 60_000,
};

/// Anything from one address.
pub const PER_ADDRESS: Schedule = Schedule {
    free: 20,
    first_ms: 1_000,
    max_ms: 60_000,
};

/// Failures are forgotten after this long without another.
pub const FORGET_AFTER_MS: i64 = 3_600_000;

/// Where a wait came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    AddressAndUser,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::AddressAndUser => "address_and_username",
        }
    }
}

/// A wait that has just begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub scope: Scope,
    pub until_ms: i64,
    pub failures: u32,
}

/// The part of an address that identifies a client: the whole IPv4
/// address, an IPv6 address's /64.
pub fn address_key(client: Option<&str>) -> String {
    match client.and_then(|c| c.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".into(),
    }
}

/// The counters' keys: `a ADDRESS` and `p ADDRESS USERNAME`.
fn keys(client: Option<&str>, username: &str) -> (String, String) {
    let a = address_key(client);
    let user: String = username.trim().to_lowercase().chars().take(64).collect();
    (format!("a {a}"), format!("p {a} {user}"))
}

/// When the client may try again, if it must wait now.
pub fn wait_until(
    store: &Store,
    client: Option<&str>,
    username: &str,
    now_ms: i64,
) -> Result<Option<i64>, platekeeper_store::StoreError> {
    let (a, p) = keys(client, username);
    store.failures_blocked_until(&[&a, &p], now_ms)
}

/// Records a failed sign-in; returns the wait it starts, if any (the
/// longer of the two).
pub fn failed(store: &Store, client: Option<&str>, username: &str, now_ms: i64) -> Option<Backoff> {
    let (a, p) = keys(client, username);
    let count = |key: &str, schedule: Schedule, scope: Scope| match store.count_address_failure(
        key,
        now_ms,
        FORGET_AFTER_MS,
        |n| schedule.delay_ms(n),
    ) {
        Ok((failures, until)) => until.map(|until_ms| Backoff {
            scope,
            until_ms,
            failures,
        }),
        Err(e) => {
            tracing::error!(error = %e, "counting a failed sign-in failed");
            None
        }
    };
    let pair = count(&p, PER_USER, Scope::AddressAndUser);
    let address = count(&a, PER_ADDRESS, Scope::Address);
    match (pair, address) {
        (Some(p), Some(a)) => Some(if a.until_ms > p.until_ms { a } else { p }),
        (p, a) => p.or(a),
    }
}

/// A successful sign-in clears the failures of its own username from
/// its address (a person who mistyped), not the address's: a valid
/// account must not reset the spraying allowance.
pub fn succeeded(store: &Store, client: Option<&str>, username: &str) {
    let (_, p) = keys(client, username);
    if let Err(e) = store.clear_failures(&p) {
        tracing::error!(error = %e, "clearing sign-in failures failed");
    }
}

/// What a sign-in's outcome does to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// A wrong password or code, or a locked account: a failed guess.
    Failed,
    /// Anything else (training lapsed, …): not a guess.
    Other,
}

/// [`wait_until`], off the async threads. A throttle that cannot be read
/// refuses the attempt (503, as the store's error says), rather than let
/// it through unthrottled: a flood that keeps the database busy must not
/// also switch the throttle off.
pub async fn check(
    store: &Arc<Store>,
    client: Option<&str>,
    username: &str,
    now_ms: i64,
) -> Result<Option<i64>, crate::ApiError> {
    let (s, c, u) = (
        store.clone(),
        client.map(str::to_owned),
        username.to_owned(),
    );
    crate::blocking(move || Ok(wait_until(&s, c.as_deref(), &u, now_ms)?)).await
}

/// Counts a sign-in's outcome, off the async threads; returns the wait a
/// failure starts.
pub async fn record(
    store: &Arc<Store>,
    client: Option<&str>,
    username: &str,
    outcome: Outcome,
    now_ms: i64,
) -> Option<Backoff> {
    let (s, c, u) = (
        store.clone(),
        client.map(str::to_owned),
        username.to_owned(),
    );
    tokio::task::spawn_blocking(move || match outcome {
        Outcome::Succeeded => {
            succeeded(&s, c.as_deref(), &u);
            None
        }
        Outcome::Failed => failed(&s, c.as_deref(), &u, now_ms),
        Outcome::Other => None,
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000_000;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn back_off_doubles_after_the_free_failures_up_to_a_cap() {
        assert_eq!(PER_USER.delay_ms(3), 0);
        assert_eq!(PER_USER.delay_ms(4), 2_000);
        assert_eq!(PER_USER.delay_ms(5), 4_000);
        assert_eq!(PER_USER.delay_ms(12), 512_000);
        assert_eq!(PER_USER.delay_ms(13), 15 * 60_000);
        assert_eq!(PER_USER.delay_ms(u32::MAX), 15 * 60_000);
        assert_eq!(PER_ADDRESS.delay_ms(21), 1_000);
        assert_eq!(PER_ADDRESS.delay_ms(40), 60_000);
    }

    #[test]
    fn one_address_guessing_one_account_waits() {
        let (_d, t) = store();
        let ip = Some("203.0.113.9");
        for i in 0..3 {
            assert_eq!(wait_until(&t, ip, "capt", T + i).unwrap(), None);
            assert_eq!(failed(&t, ip, "capt", T + i), None);
        }
        let b = failed(&t, ip, "capt", T + 3).unwrap();
        assert_eq!(b.scope, Scope::AddressAndUser);
        assert_eq!(b.until_ms, T + 3 + 2_000);
        assert_eq!(wait_until(&t, ip, "CAPT ", T + 4).unwrap(), Some(T + 2_003));
        assert_eq!(wait_until(&t, ip, "capt", T + 2_003).unwrap(), None);
        // Another address, or another account from this one, is not held.
        assert_eq!(
            wait_until(&t, Some("203.0.113.10"), "capt", T + 4).unwrap(),
            None
        );
        assert_eq!(wait_until(&t, ip, "officer1", T + 4).unwrap(), None);
        // An hour quiet forgets.
        assert_eq!(failed(&t, ip, "capt", T + 4 + FORGET_AFTER_MS), None);
    }

    #[test]
    fn spraying_many_accounts_from_one_address_waits_and_ipv6_counts_by_64() {
        let (_d, t) = store();
        let mut last = None;
        for i in 0..21 {
            // Each from another address of the same /64.
            let ip = format!("2001:db8:1:2::{i:x}");
            last = failed(&t, Some(&ip), &format!("user{i}"), T + i as i64);
        }
        let b = last.unwrap();
        assert_eq!(b.scope, Scope::Address);
        assert_eq!(b.failures, 21);
        assert!(
            wait_until(&t, Some("2001:db8:1:2:ffff::1"), "anyone", T + 30)
                .unwrap()
                .is_some()
        );
        assert!(wait_until(&t, Some("2001:db8:1:3::1"), "anyone", T + 30)
            .unwrap()
            .is_none());
        assert_eq!(address_key(Some("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn success_clears_the_persons_failures_not_the_addresses() {
        let (_d, t) = store();
        let ip = Some("198.51.100.7");
        for i in 0..4 {
            failed(&t, ip, "jdoe", T + i);
        }
        assert!(wait_until(&t, ip, "jdoe", T + 5).unwrap().is_some());
        succeeded(&t, ip, "jdoe");
        assert!(wait_until(&t, ip, "jdoe", T + 5).unwrap().is_none());
        // The address's own count goes on: the 21st failure starts its wait.
        for i in 0..16 {
            assert!(wait_until(&t, ip, "x", T + 6 + i).unwrap().is_none());
            failed(&t, ip, &format!("other{i}"), T + 6 + i);
        }
        let b = failed(&t, ip, "other16", T + 30).unwrap();
        assert_eq!((b.scope, b.failures), (Scope::Address, 21));
    }
}
