//! `platekeeper purge`, `platekeeper retention` and `platekeeper evidence
//! verify`: retention from the command line (SPEC R6). Each takes the
//! data folder's lock, so it refuses to run beside a server on the same
//! folder (use `POST /api/v1/purge` and `PUT /api/v1/policy` there).

use std::path::Path;

use anyhow::Context;
use platekeeper_store::{Actor, Confirm, PolicyOutcome};

use crate::keys::{self, KeyArgs};
use crate::now_ms;

/// Applies retention now (or, with `dry_run`, shows what would go).
pub fn purge(data: &Path, key: &KeyArgs, dry_run: bool) -> anyhow::Result<()> {
    let (_lock, store) = keys::open_locked(data, key)?;
    let report = store.purge(now_ms(), dry_run, &Actor::system("purge-command"))?;
    println!(
        "{} at {}:",
        if dry_run {
            "Would purge (dry run)"
        } else {
            "Purged"
        },
        report.at
    );
    for c in &report.classes {
        println!(
            "  {:<16} {:>12}  (kept {} days; cutoff {})",
            c.class, c.count, c.retention_days, c.cutoff
        );
    }
    if !report.days_removed.is_empty() {
        println!("  day files: {}", report.days_removed.join(", "));
        println!(
            "  plates read only on those days (gone from searches): {}",
            report.plates_forgotten
        );
    }
    println!(
        "  held reads kept: {}; downloads overdue for destruction: {}",
        report.held_reads_kept, report.overdue_downloads
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Retention periods a command line may set; `None` leaves one as is.
#[derive(clap::Args, Debug, Default)]
pub struct RetentionArgs {
    #[arg(long, default_value = "./platekeeper-data")]
    pub data: std::path::PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    #[arg(long)]
    pub reads_days: Option<i64>,
    #[arg(long)]
    pub images_days: Option<i64>,
    #[arg(long)]
    pub hotlists_days: Option<i64>,
    #[arg(long)]
    pub access_log_days: Option<i64>,
    #[arg(long)]
    pub audit_documents_days: Option<i64>,
    #[arg(long)]
    pub downloads_days: Option<i64>,
    /// Make a change that weakens a rule (a retention shortened, or reads
    /// and images kept longer): refused without it, naming each.
    #[arg(long)]
    pub confirm_weakening: bool,
}

/// Shows the retention periods, changing those given (logged).
pub fn retention(args: &RetentionArgs) -> anyhow::Result<()> {
    let (_lock, store) = keys::open_locked(&args.data, &args.key)?;
    let mut policy = store.policy();
    let r = &mut policy.retention;
    let mut changed = false;
    for (slot, value) in [
        (&mut r.reads_days, args.reads_days),
        (&mut r.images_days, args.images_days),
        (&mut r.hotlists_days, args.hotlists_days),
        (&mut r.access_log_days, args.access_log_days),
        (&mut r.audit_documents_days, args.audit_documents_days),
        (&mut r.downloads_days, args.downloads_days),
    ] {
        if let Some(v) = value {
            *slot = v;
            changed = true;
        }
    }
    if changed {
        let confirm = if args.confirm_weakening {
            Confirm::All
        } else {
            Confirm::Fields(&[])
        };
        let outcome = store
            .change_policy(
                policy.clone(),
                confirm,
                &Actor::system("retention-command"),
                now_ms(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let PolicyOutcome::NeedsConfirmation(w) = outcome {
            let all: Vec<_> = w.iter().collect();
            anyhow::bail!(
                "not changed: {}. Run again with --confirm-weakening to make this change (issue 22 finding 5)",
                platekeeper_core::policy_change::describe(&all)
            );
        }
        println!("retention updated (logged as a policy change)");
    }
    println!("{}", serde_json::to_string_pretty(&policy.retention)?);
    Ok(())
}

/// Checks an evidence package; exit 1 when anything is wrong.
pub fn verify_evidence(file: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let check = platekeeper_store::evidence::verify(std::io::BufReader::new(f));
    if check.ok {
        println!(
            "OK: {} — {} files match the manifest ({} reads)",
            file.display(),
            check.files,
            check.reads.map_or("?".into(), |n| n.to_string())
        );
    } else {
        println!("FAILED: {}", file.display());
        for p in &check.problems {
            println!("  - {p}");
        }
    }
    println!("{}", serde_json::to_string(&check)?);
    if !check.ok {
        std::process::exit(1);
    }
    Ok(())
}
