//! The agency's policy settings, kept in the main database and cached in
//! memory (they are read on every request). Every change is logged with
//! the whole new policy.

use platekeeper_core::policy::AgencyPolicy;
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use crate::accounts::Actor;
use crate::log;
use crate::{Store, StoreError};

pub(crate) fn load(conn: &Connection) -> Result<AgencyPolicy, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'policy'", [], |r| {
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

impl Store {
    pub fn policy(&self) -> AgencyPolicy {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Replaces the policy (checked first: no rule can be switched off).
    pub fn set_policy(
        &self,
        policy: AgencyPolicy,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        policy.check().map_err(StoreError::InvalidPolicy)?;
        let text =
            serde_json::to_string(&policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('policy', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [&text],
            )?;
            let e = log::append(
                tx,
                head,
                log::NewEntry {
                    ts_ms: now_ms,
                    category: "admin",
                    kind: "policy_changed".into(),
                    username: actor.username.clone(),
                    affiliation: actor.affiliation.clone(),
                    role: actor.role.clone(),
                    client: actor.client.clone(),
                    details: json!({"policy": policy}),
                    purpose: None,
                },
            )?;
            Ok(((), e))
        })?;
        *self.policy.write().map_err(|_| StoreError::Poisoned)? = policy;
        Ok(())
    }
}
