//! The agency's policy in PostgreSQL: the same decision as the embedded
//! store (`crate::settings::decide`: checked, compared, weakenings held
//! for confirmation, logged with old and new values), made under the log
//! head's lock so two administrators' changes, on any nodes, are each
//! judged against the policy the other left.

use platekeeper_core::policy::AgencyPolicy;
use postgres::GenericClient;

use crate::settings::{decide, Confirm, Decision, PolicyOutcome};
use crate::{Actor, StoreError};

fn db(e: postgres::Error) -> StoreError {
    StoreError::Postgres(super::connect::statement_error(e))
}

/// The policy in force (the defaults until one is set).
pub fn policy(client: &mut impl GenericClient) -> Result<AgencyPolicy, StoreError> {
    let text: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE key = 'policy'", &[])
        .map_err(db)?
        .map(|r| r.get(0));
    match text {
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))
        }
        None => Ok(AgencyPolicy::default()),
    }
}

/// Replaces the policy with `f(policy in force)`, as
/// `Store::update_policy` does.
pub fn update_policy(
    client: &mut postgres::Client,
    f: impl FnOnce(&AgencyPolicy) -> Result<AgencyPolicy, StoreError>,
    confirm: Confirm<'_>,
    actor: &Actor,
    now_ms: i64,
) -> Result<PolicyOutcome, StoreError> {
    let mut tx = client.transaction().map_err(db)?;
    // The chain's lock first: the policy read below is then the one the
    // last committed change left.
    tx.execute("SELECT 1 FROM log_head FOR UPDATE", &[])
        .map_err(db)?;
    let old = policy(&mut tx)?;
    match decide(&old, f(&old)?, confirm, actor, now_ms)? {
        Decision::NothingToStore(outcome) => Ok(outcome),
        Decision::Apply { outcome, entry } => {
            if let PolicyOutcome::Applied(c) = &outcome {
                let text = serde_json::to_string(&c.policy)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('policy', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&text],
                )
                .map_err(db)?;
                super::log::append(&mut tx, *entry).map_err(db)?;
                tx.commit().map_err(db)?;
            }
            Ok(outcome)
        }
    }
}
