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
//! state is in memory: a restart forgets it, which only gives back the
//! free allowances. Failures are forgotten after an hour without one; the
//! tables are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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

/// Most addresses (and address-username pairs) remembered.
const MAX_SLOTS: usize = 50_000;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    failures: u32,
    last_failure_ms: i64,
    blocked_until_ms: i64,
}

#[derive(Default)]
struct Table(HashMap<String, Slot>);

impl Table {
    fn blocked_until(&self, key: &str, now_ms: i64) -> Option<i64> {
        self.0
            .get(key)
            .map(|s| s.blocked_until_ms)
            .filter(|&u| u > now_ms)
    }

    /// Records a failure; returns the new wait's end if one starts.
    fn fail(&mut self, key: String, schedule: Schedule, now_ms: i64) -> Option<i64> {
        if self.0.len() >= MAX_SLOTS && !self.0.contains_key(&key) {
            self.0
                .retain(|_, s| now_ms - s.last_failure_ms < FORGET_AFTER_MS);
            if self.0.len() >= MAX_SLOTS {
                // Still full: forget the longest-quiet one.
                if let Some(k) = self
                    .0
                    .iter()
                    .min_by_key(|(_, s)| s.last_failure_ms)
                    .map(|(k, _)| k.clone())
                {
                    self.0.remove(&k);
                }
            }
        }
        let slot = self.0.entry(key).or_default();
        if now_ms - slot.last_failure_ms >= FORGET_AFTER_MS {
            *slot = Slot::default();
        }
        slot.failures += 1;
        slot.last_failure_ms = now_ms;
        let delay = schedule.delay_ms(slot.failures);
        (delay > 0).then(|| {
            slot.blocked_until_ms = now_ms + delay;
            slot.blocked_until_ms
        })
    }
}

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

/// The server's sign-in throttle.
#[derive(Default)]
pub struct SignInThrottle {
    addresses: Mutex<Table>,
    pairs: Mutex<Table>,
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

fn pair_key(address: &str, username: &str) -> String {
    let user: String = username.trim().to_lowercase().chars().take(64).collect();
    format!("{address} {user}")
}

impl SignInThrottle {
    /// When the client may try again, if it must wait now.
    pub fn wait_until(&self, client: Option<&str>, username: &str, now_ms: i64) -> Option<i64> {
        let a = address_key(client);
        let by_address = self
            .addresses
            .lock()
            .ok()
            .and_then(|t| t.blocked_until(&a, now_ms));
        let by_pair = self
            .pairs
            .lock()
            .ok()
            .and_then(|t| t.blocked_until(&pair_key(&a, username), now_ms));
        by_address.max(by_pair)
    }

    /// Records a failed sign-in; returns the wait it starts, if any (the
    /// longer of the two).
    pub fn failed(&self, client: Option<&str>, username: &str, now_ms: i64) -> Option<Backoff> {
        let a = address_key(client);
        let pair = self.pairs.lock().ok().and_then(|mut t| {
            let key = pair_key(&a, username);
            let until = t.fail(key.clone(), PER_USER, now_ms)?;
            Some(Backoff {
                scope: Scope::AddressAndUser,
                until_ms: until,
                failures: t.0.get(&key).map_or(0, |s| s.failures),
            })
        });
        let address = self.addresses.lock().ok().and_then(|mut t| {
            let until = t.fail(a.clone(), PER_ADDRESS, now_ms)?;
            Some(Backoff {
                scope: Scope::Address,
                until_ms: until,
                failures: t.0.get(&a).map_or(0, |s| s.failures),
            })
        });
        match (pair, address) {
            (Some(p), Some(a)) => Some(if a.until_ms > p.until_ms { a } else { p }),
            (p, a) => p.or(a),
        }
    }

    /// A successful sign-in clears the failures of its own username from
    /// its address (a person who mistyped), not the address's: a valid
    /// account must not reset the spraying allowance.
    pub fn succeeded(&self, client: Option<&str>, username: &str) {
        if let Ok(mut t) = self.pairs.lock() {
            t.0.remove(&pair_key(&address_key(client), username));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000_000;

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
        let t = SignInThrottle::default();
        let ip = Some("203.0.113.9");
        for i in 0..3 {
            assert_eq!(t.wait_until(ip, "capt", T + i), None);
            assert_eq!(t.failed(ip, "capt", T + i), None);
        }
        let b = t.failed(ip, "capt", T + 3).unwrap();
        assert_eq!(b.scope, Scope::AddressAndUser);
        assert_eq!(b.until_ms, T + 3 + 2_000);
        assert_eq!(t.wait_until(ip, "CAPT ", T + 4), Some(T + 2_003));
        assert_eq!(t.wait_until(ip, "capt", T + 2_003), None);
        // Another address, or another account from this one, is not held.
        assert_eq!(t.wait_until(Some("203.0.113.10"), "capt", T + 4), None);
        assert_eq!(t.wait_until(ip, "officer1", T + 4), None);
        // An hour quiet forgets.
        assert_eq!(t.failed(ip, "capt", T + 4 + FORGET_AFTER_MS), None);
    }

    #[test]
    fn spraying_many_accounts_from_one_address_waits_and_ipv6_counts_by_64() {
        let t = SignInThrottle::default();
        let mut last = None;
        for i in 0..21 {
            // Each from another address of the same /64.
            let ip = format!("2001:db8:1:2::{i:x}");
            last = t.failed(Some(&ip), &format!("user{i}"), T + i as i64);
        }
        let b = last.unwrap();
        assert_eq!(b.scope, Scope::Address);
        assert_eq!(b.failures, 21);
        assert!(t
            .wait_until(Some("2001:db8:1:2:ffff::1"), "anyone", T + 30)
            .is_some());
        assert!(t
            .wait_until(Some("2001:db8:1:3::1"), "anyone", T + 30)
            .is_none());
        assert_eq!(address_key(Some("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn success_clears_the_persons_failures_not_the_addresses() {
        let t = SignInThrottle::default();
        let ip = Some("198.51.100.7");
        for i in 0..4 {
            t.failed(ip, "jdoe", T + i);
        }
        assert!(t.wait_until(ip, "jdoe", T + 5).is_some());
        t.succeeded(ip, "jdoe");
        assert!(t.wait_until(ip, "jdoe", T + 5).is_none());
        assert_eq!(t.addresses.lock().unwrap().0["198.51.100.7"].failures, 4);
    }
}
