//! The agency's policy settings, kept in the main database and cached in
//! memory (they are read on every request). Every change is logged with
//! each changed field's old and new values, the weakenings among them and
//! the whole new policy.

use platekeeper_core::policy::AgencyPolicy;
use platekeeper_core::policy_change::{self, Change, Weakening};

use serde::Serialize;
use serde_json::json;

use crate::accounts::Actor;
use crate::log;
use crate::sql::{Optional as _, Sql};
use crate::{Store, StoreError};

pub(crate) fn load(conn: &dyn Sql) -> Result<AgencyPolicy, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'policy'", (), |r| {
            r.get(0)
        })
        .optional()?;
    match text {
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))
        }
        None => Ok(AgencyPolicy::default()),
    }
}

/// Which weakenings a change may make (issue 22 finding 5).
#[derive(Debug, Clone, Copy)]
pub enum Confirm<'a> {
    /// Only those whose fields are named here (what a person confirmed).
    Fields(&'a [String]),
    /// All of them: for the installation's own commands (`admin create`,
    /// the demo, the benchmark), which the operator runs knowingly. The
    /// log still lists every weakening.
    All,
}

/// A policy change that was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyChange {
    pub changes: Vec<Change>,
    pub weakenings: Vec<Weakening>,
    /// The policy now in force.
    pub policy: AgencyPolicy,
}

/// What became of a policy change.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyOutcome {
    Applied(Box<PolicyChange>),
    /// Not made: these weakenings were not confirmed. Every weakening of
    /// the change is listed, so a confirmation can name them all.
    NeedsConfirmation(Vec<Weakening>),
}

/// What a policy change comes to, decided the same way on both
/// backends: refused for want of a confirmation, nothing to do, or a new
/// policy to store with its log entry.
pub(crate) enum Decision {
    /// Nothing to store: a weakening not confirmed, or no change at all.
    NothingToStore(PolicyOutcome),
    Apply {
        outcome: PolicyOutcome,
        entry: Box<log::NewEntry>,
    },
}

/// Checks `policy` (no rule can be switched off), compares it with `old`,
/// and decides (see [`Store::change_policy`]).
pub(crate) fn decide(
    old: &AgencyPolicy,
    policy: AgencyPolicy,
    confirm: Confirm<'_>,
    actor: &Actor,
    now_ms: i64,
) -> Result<Decision, StoreError> {
    policy.check().map_err(StoreError::InvalidPolicy)?;
    let changes = policy_change::changes(old, &policy);
    let weakenings = policy_change::weakenings(old, &policy);
    let (confirmed, missing) = match confirm {
        Confirm::All => ("all (installation command)", Vec::new()),
        Confirm::Fields(f) => (
            "named by the administrator",
            policy_change::unconfirmed(&weakenings, f),
        ),
    };
    if !missing.is_empty() {
        return Ok(Decision::NothingToStore(PolicyOutcome::NeedsConfirmation(
            weakenings,
        )));
    }
    if changes.is_empty() {
        return Ok(Decision::NothingToStore(PolicyOutcome::Applied(Box::new(
            PolicyChange {
                changes,
                weakenings,
                policy,
            },
        ))));
    }
    let mut details = json!({
        "changes": changes,
        "weakenings": weakenings,
        "policy": policy,
    });
    if !weakenings.is_empty() {
        details["weakenings_confirmed"] = json!(confirmed);
    }
    let entry = actor.entry(now_ms, "admin", "policy_changed", details);
    Ok(Decision::Apply {
        outcome: PolicyOutcome::Applied(Box::new(PolicyChange {
            changes,
            weakenings,
            policy,
        })),
        entry: Box::new(entry),
    })
}

impl Store {
    pub fn policy(&self) -> AgencyPolicy {
        self.refresh_stale();
        // Never the defaults in place of the agency's settings: a lock
        // poisoned by a panic elsewhere still holds the last policy set
        // (the defaults would, for one, shorten retention at the next
        // purge; issue 22 finding 5's class of flaw).
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the policy, as the installation's own commands do (every
    /// weakening counts as confirmed; each is logged). People's changes go
    /// through [`Store::change_policy`].
    pub fn set_policy(
        &self,
        policy: AgencyPolicy,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.change_policy(policy, Confirm::All, actor, now_ms)
            .map(|_| ())
    }

    /// Replaces the policy: checked first (no rule can be switched off),
    /// then compared with the one in force. A change that weakens a rule
    /// (see `platekeeper_core::policy_change::WEAKENING_RULES`) is made only
    /// when `confirm` covers it. Logged as `policy_changed` with each
    /// changed field's old and new value; nothing is logged when nothing
    /// changed.
    pub fn change_policy(
        &self,
        policy: AgencyPolicy,
        confirm: Confirm<'_>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<PolicyOutcome, StoreError> {
        self.update_policy(|_| Ok(policy), confirm, actor, now_ms)
    }

    /// As [`Store::change_policy`], with the new policy made from the one
    /// in force by `f` inside the change's transaction: a partial change
    /// (a merge patch) never undoes another made meanwhile.
    pub fn update_policy(
        &self,
        f: impl FnOnce(&AgencyPolicy) -> Result<AgencyPolicy, StoreError>,
        confirm: Confirm<'_>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<PolicyOutcome, StoreError> {
        // Compared inside the log's transaction, so two administrators'
        // changes are each judged against the policy the other left.
        let (outcome, _) = self.with_log(|tx, head| {
            let old = load(tx)?;
            match decide(&old, f(&old)?, confirm, actor, now_ms)? {
                Decision::NothingToStore(outcome) => Ok((outcome, None)),
                Decision::Apply { outcome, entry } => {
                    let PolicyOutcome::Applied(c) = &outcome else {
                        return Ok((outcome, None));
                    };
                    let text = serde_json::to_string(&c.policy)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT INTO meta(key, value) VALUES ('policy', ?1)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        [&text],
                    )?;
                    let e = log::append(tx, head, *entry)?;
                    Ok((outcome, Some(e)))
                }
            }
        })?;
        if let PolicyOutcome::Applied(c) = &outcome {
            *self.policy.write().map_err(|_| StoreError::Poisoned)? = c.policy.clone();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Actor {
        Actor {
            username: "capt".into(),
            affiliation: "Test PD".into(),
            role: Some("administrator".into()),
            client: None,
        }
    }

    #[test]
    fn a_weakening_waits_for_its_confirmation_and_is_logged_with_old_and_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut p = store.policy();
        p.retention.access_log_days = 400;
        let out = store
            .change_policy(p.clone(), Confirm::Fields(&[]), &admin(), 1_000)
            .unwrap();
        let PolicyOutcome::NeedsConfirmation(w) = out else {
            panic!("{out:?}")
        };
        assert_eq!(w[0].field, "retention.access_log_days");
        assert_eq!(store.policy().retention.access_log_days, 730, "not applied");
        assert!(store
            .log_entries(None, None, 10)
            .unwrap()
            .iter()
            .all(|e| e.kind != "policy_changed"));

        let confirm = ["retention.access_log_days".to_string()];
        let out = store
            .change_policy(p, Confirm::Fields(&confirm), &admin(), 2_000)
            .unwrap();
        assert!(matches!(out, PolicyOutcome::Applied(ref c) if c.changes.len() == 1));
        assert_eq!(store.policy().retention.access_log_days, 400);
        let e = store
            .log_entries(None, None, 1)
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        assert_eq!(e.kind, "policy_changed");
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["changes"][0]["field"], "retention.access_log_days");
        assert_eq!(d["changes"][0]["old"], 730);
        assert_eq!(d["changes"][0]["new"], 400);
        assert_eq!(d["weakenings"][0]["field"], "retention.access_log_days");
        assert_eq!(d["weakenings_confirmed"], "named by the administrator");
        // The same policy again changes nothing and logs nothing.
        let before = store.log_entries(None, None, 1).unwrap()[0].seq;
        let again = store.policy();
        store.set_policy(again, &admin(), 3_000).unwrap();
        assert_eq!(store.log_entries(None, None, 1).unwrap()[0].seq, before);
    }
}
