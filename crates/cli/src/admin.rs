//! `platekeeper admin create`, `platekeeper admin unlock` and
//! `platekeeper audit verify`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use platekeeper_store::admin_requests::{self, AdminAction, AdminRequest};
use platekeeper_store::{Actor, NewUser};
use serde_json::json;

use crate::import::lock_data_dir;
use crate::keys::{self, KeyArgs};
use crate::now_ms;

/// Creates the first ALPR Administrator and records their name and title
/// as the agency's administrator (SPEC R5.5).
pub fn create(
    data: &Path,
    key: &KeyArgs,
    username: &str,
    name: &str,
    title: &str,
) -> anyhow::Result<()> {
    let (_lock, store) = keys::open_locked(data, key)?;
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

/// How long `admin unlock` waits for a running server to answer.
const SERVER_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The OS user running the command, as the log names it.
fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Lifts an account's lock (issue 22 finding 7), also an administrator's
/// while the server runs: with no server on the folder, under its lock
/// and directly; beside a running server, by a request the server applies
/// (it alone appends to the audit log; see
/// `platekeeper_store::admin_requests`). Logged as `account_unlocked` by
/// `cli:<OS user>`.
pub fn unlock(data: &Path, key: &KeyArgs, username: &str) -> anyhow::Result<()> {
    if !data.join("platekeeper.db").is_file() {
        bail!("{} holds no Platekeeper data", data.display());
    }
    let req = AdminRequest {
        action: AdminAction::Unlock {
            username: username.trim().to_string(),
        },
        os_user: os_user(),
        requested_at_ms: now_ms(),
    };
    let outcome = match lock_data_dir(data) {
        Ok(_lock) => {
            let store = keys::open(data, key.load()?)?;
            store.apply_admin_request(&req, None, now_ms())
        }
        Err(_) => {
            let id = admin_requests::submit(data, &req)
                .with_context(|| format!("leaving the request in {}", data.display()))?;
            let deadline = std::time::Instant::now() + SERVER_ANSWER_WAIT;
            loop {
                if let Some(o) = admin_requests::take_outcome(data, &id)? {
                    break o;
                }
                if std::time::Instant::now() >= deadline {
                    if admin_requests::withdraw(data, &id)? {
                        bail!(
                            "the server on {} did not take the request within {} s; it was withdrawn and nothing changed",
                            data.display(),
                            SERVER_ANSWER_WAIT.as_secs()
                        );
                    }
                    bail!(
                        "the server took the request but has not answered yet; look for account_unlocked in the audit log"
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    if outcome.ok {
        println!("{}", outcome.message);
        Ok(())
    } else {
        bail!("{} ({})", outcome.message, outcome.code.unwrap_or_default())
    }
}

/// Verifies the audit log's chain and head, and with `checkpoint` that
/// the log extends that signed checkpoint (issue 22 finding 2); exit 1 if
/// either fails.
/// `audit verify --database URL [--checkpoint FILE]`: walks the
/// PostgreSQL log's chain in one snapshot and checks its end against the
/// head row and, given one, a signed checkpoint kept outside the database
/// (issue 25). Opening brings the schema up to date first, as a server
/// start would.
pub fn verify_postgres(
    url: &platekeeper_store::postgres::DatabaseUrl,
    checkpoint: Option<&Path>,
) -> anyhow::Result<()> {
    let (pool, _) = platekeeper_store::postgres::open(url)?;
    let mut conn = pool.get()?;
    let Some(file) = checkpoint else {
        let v = platekeeper_store::postgres::log::verify(&mut conn, None)
            .map_err(|e| pool.error(e))
            .with_context(|| format!("reading the audit log in {url}"))?;
        println!("{}", serde_json::to_string(&v)?);
        if v.ok {
            println!("audit log intact: {} entries, head {}", v.entries, v.head);
            return Ok(());
        }
        bail!(
            "audit log check FAILED at entry {}: {}",
            v.first_bad.unwrap_or(0),
            v.problem.unwrap_or_default()
        )
    };
    let c = read_checkpoint(file)?;
    let (v, problem) = platekeeper_store::postgres::log::prove(&mut conn, &c)
        .with_context(|| format!("reading the audit log in {url}"))?;
    println!(
        "checkpoint: entry {} with head {}, signed {} by public key {}",
        c.entries, c.head, c.time, c.public_key
    );
    println!("compare that public key with the agency's copy kept elsewhere: anyone can sign with a key of their own");
    println!("{}", serde_json::to_string(&v)?);
    match problem {
        None => {
            println!(
                "audit log intact ({} entries) and extends the checkpoint of entry {}",
                v.entries, c.entries
            );
            Ok(())
        }
        Some(p) => bail!("audit log check against the checkpoint FAILED: {p}"),
    }
}

/// A checkpoint saved from the API, the transparency page or a report.
fn read_checkpoint(file: &Path) -> anyhow::Result<platekeeper_core::checkpoint::Checkpoint> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the checkpoint {}", file.display()))?;
    Ok(
        serde_json::from_str::<platekeeper_server::checkpoints::CheckpointDocument>(&text)
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a checkpoint: expected a JSON object with entries, head, time, store_id, \
                     signature and public_key (or one holding it under \"checkpoint\" or \"log_checkpoint\")",
                    file.display()
                )
            })?
            .into_checkpoint(),
    )
}

pub fn verify(data: &Path, key: &KeyArgs, checkpoint: Option<&Path>) -> anyhow::Result<()> {
    let key = key.load()?;
    let Some(file) = checkpoint else {
        let v = platekeeper_store::log::verify_dir(data, key.as_deref())
            .with_context(|| format!("reading the audit log in {}", data.display()))?;
        if v.ok {
            println!("audit log intact: {} entries, head {}", v.entries, v.head);
            println!("{}", serde_json::to_string(&v)?);
            return Ok(());
        }
        println!("{}", serde_json::to_string(&v)?);
        bail!(
            "audit log check FAILED at entry {}: {}",
            v.first_bad.unwrap_or(0),
            v.problem.unwrap_or_default()
        )
    };
    let c = read_checkpoint(file)?;
    let p = platekeeper_store::checkpoint::prove_dir(data, key.as_deref(), &c)
        .with_context(|| format!("reading the audit log in {}", data.display()))?;
    println!(
        "checkpoint: entry {} with head {}, signed {} by public key {}",
        c.entries, c.head, c.time, c.public_key
    );
    println!("compare that public key with the agency's copy kept elsewhere: anyone can sign with a key of their own");
    if let Some(note) = &p.note {
        println!("note: {note}");
    }
    println!("{}", serde_json::to_string(&p)?);
    if p.ok {
        println!(
            "audit log intact ({} entries) and extends the checkpoint of entry {}",
            p.log.entries, c.entries
        );
        Ok(())
    } else {
        bail!("checkpoint check FAILED: {}", p.problem.unwrap_or_default())
    }
}

/// `platekeeper migrate`: the embedded store in `data` into the database
/// `to`, with a line per step and the comparison at the end.
pub fn migrate(data: &Path, key_file: Option<PathBuf>, to: Option<&str>) -> anyhow::Result<()> {
    let url =
        platekeeper_store::postgres::DatabaseUrl::from_option_or_env(to)?.ok_or_else(|| {
            anyhow::anyhow!("name the target database with --to URL (or PLATEKEEPER_DATABASE)")
        })?;
    let keys = crate::keys::KeyArgs {
        key_file,
        database: None,
    };
    let (_lock, store) = crate::keys::open_locked(data, &keys)?;
    let started = std::time::Instant::now();
    let report = store.transfer_to(&url, |step| {
        eprintln!("  {step} ({:.0} s)", started.elapsed().as_secs_f64());
    })?;
    for (table, a, b) in &report.tables {
        if a != b {
            eprintln!("  {table}: {a} rows here, {b} there");
        }
    }
    println!(
        "{} reads ({} there), {} pictures ({} there), log head {} ({} there){}",
        report.reads_source,
        report.reads_target,
        report.pictures_source,
        report.pictures_target,
        report.head_source,
        report.head_target,
        if report.resumed {
            "; an earlier run finished"
        } else {
            ""
        }
    );
    println!("{}", serde_json::to_string(&report)?);
    if !report.matches() {
        anyhow::bail!("the target does not match the store yet: run the command again to finish");
    }
    println!(
        "moved {} into {url} in {:.0} s; start the server with --database and the same --key-file and checkpoint key",
        data.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
