//! `platekeeper admin create` and `platekeeper audit verify`.

use std::path::Path;

use anyhow::{bail, Context};
use platekeeper_store::{Actor, NewUser, Store};
use serde_json::json;

use crate::import::lock_data_dir;
use crate::now_ms;

/// Creates the first ALPR Administrator and records their name and title
/// as the agency's administrator (SPEC R5.5).
pub fn create(data: &Path, username: &str, name: &str, title: &str) -> anyhow::Result<()> {
    let _lock = lock_data_dir(data)?;
    let store =
        Store::open(data).with_context(|| format!("opening the store in {}", data.display()))?;
    let now = now_ms();
    let policy = store.policy();
    let (otp, secret) = store.create_administrator(
        NewUser {
            username: username.trim().to_string(),
            name: name.to_string(),
            role: platekeeper_core::Role::Administrator,
            title: Some(title.to_string()),
        },
        policy.accounts.approval_days,
        now,
    )?;
    let mut policy = policy;
    policy.administrator_name = name.to_string();
    policy.administrator_title = title.to_string();
    store.set_policy(policy, &Actor::system("admin-create"), now)?;
    eprintln!(
        "Created ALPR Administrator {username}. Sign in with the one-time password and a code from an \
         authenticator app holding the TOTP secret below; you will be asked to choose a new password."
    );
    println!(
        "{}",
        json!({"username": username, "one_time_password": otp, "totp_secret": secret})
    );
    Ok(())
}

/// Verifies the audit log's chain and head; exit 1 if it fails.
pub fn verify(data: &Path) -> anyhow::Result<()> {
    let v = platekeeper_store::log::verify_dir(data)
        .with_context(|| format!("reading the audit log in {}", data.display()))?;
    if v.ok {
        println!("audit log intact: {} entries, head {}", v.entries, v.head);
        println!("{}", serde_json::to_string(&v)?);
        Ok(())
    } else {
        println!("{}", serde_json::to_string(&v)?);
        bail!(
            "audit log check FAILED at entry {}: {}",
            v.first_bad.unwrap_or(0),
            v.problem.unwrap_or_default()
        )
    }
}
