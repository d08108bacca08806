//! `platekeeper bench --suite audit [--reads N]`: the quarterly audit
//! report over N access-log entries (default 1M; SPEC R8.1 target: ≤ 10 s).
//!
//! The log is written through the store's own append path (hash chain,
//! durable batches) with a realistic mix: searches with their result
//! entries, image views, alert deliveries, refused purposes, hot-list
//! changes and sign-ins, by 200 users over the current quarter; then
//! `Store::audit_report` — the function behind `GET
//! /api/v1/audit/report` — runs on it.

use std::time::Instant;

use anyhow::Context;
use platekeeper_core::account::Training;
use platekeeper_core::audit_report::Period;
use platekeeper_core::Role;
use platekeeper_store::{Actor, NewEntry, NewUser, Store};
use serde_json::json;

use crate::bench::{peak_rss_mb, round3};
use crate::now_ms;
use crate::synthetic::Rng;

const USERS: usize = 200;

pub fn run(json_only: bool, seed: u64, entries: u64) -> anyhow::Result<()> {
    let entries = if entries == 1_000_000 || entries == 0 {
        1_000_000
    } else {
        entries
    };
    let say = |s: String| {
        if !json_only {
            eprintln!("{s}");
        }
    };
    let dir = std::env::temp_dir().join(format!("platekeeper-bench-audit-{}", std::process::id()));
    let store = Store::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let now = now_ms();
    let policy = store.policy();
    let period_label = {
        let t = time::OffsetDateTime::from_unix_timestamp(now / 1000)?;
        format!("{}Q{}", t.year(), (u8::from(t.month()) - 1) / 3 + 1)
    };
    let period = Period::parse(&period_label, &policy.audit).map_err(|e| anyhow::anyhow!(e))?;
    let (from, to) = (period.from_ms, period.to_ms.min(now));
    let admin = Actor::system("bench");
    for u in 0..USERS {
        let username = format!("user{u:03}");
        let t = from - 30 * 86_400_000;
        store.create_user(
            NewUser {
                username: username.clone(),
                name: format!("User {u}"),
                role: if u % 10 == 0 {
                    Role::Analyst
                } else {
                    Role::Officer
                },
                title: None,
            },
            &admin,
            t,
        )?;
        // A few users' training lapses mid-quarter: findings to report.
        let expires = if u % 25 == 0 {
            from + (to - from) / 2
        } else {
            to + 86_400_000
        };
        store.record_training(
            &username,
            Training {
                course: "ALPR".into(),
                completed_ms: t,
                expires_ms: expires,
                recorded_ms: t,
            },
            &admin,
            t,
        )?;
        store.record_approval(&username, to + 86_400_000, &admin, t)?;
    }
    say(format!(
        "writing {entries} log entries over {period_label} …"
    ));
    let mut rng = Rng::new(seed ^ 0xA0D1);
    let started = Instant::now();
    let batch = 10_000u64;
    let mut written = 0u64;
    while written < entries {
        let n = batch.min(entries - written);
        let mut list = Vec::with_capacity(n as usize);
        for i in 0..n {
            let k = written + i;
            let ts = from + ((to - from) as u128 * k as u128 / entries as u128) as i64;
            // A few heavy users: user u is picked with weight ~ 1/(u+1).
            let u = (rng.below(1 << 16) as f64 / 65_536.0).powi(3) * USERS as f64;
            let username = format!("user{:03}", u as usize);
            let r = rng.below(1000);
            let (category, kind, details, purpose) = match r {
                0..=449 => ("access", "search", json!({"plate": "7ABC123"}), true),
                450..=849 => ("access", "result", json!({"result_count": 3}), false),
                850..=929 => ("access", "image_view", json!({"read_id": "x"}), true),
                930..=969 => ("access", "alert_delivered", json!({"alert": k}), false),
                970..=979 => (
                    "refused",
                    "purpose_insufficient",
                    json!({"detail": "generic_reason"}),
                    true,
                ),
                980..=984 => (
                    "admin",
                    "hotlist_entry_added",
                    json!({"plate": "8XYZ000"}),
                    false,
                ),
                _ => ("auth", "sign_in", json!({}), false),
            };
            list.push(NewEntry {
                ts_ms: ts,
                category,
                kind: kind.into(),
                username,
                affiliation: "Bench PD".into(),
                role: Some("officer".into()),
                client: Some("10.0.0.1".into()),
                details,
                purpose: purpose.then(|| json!({"case_number": "26-000123", "offense": "211 PC", "reason": "robbery follow-up"})),
            });
        }
        store.log_events(list)?;
        written += n;
    }
    let write_s = started.elapsed().as_secs_f64();
    say(format!(
        "wrote {written} entries in {write_s:.1} s; building the report …"
    ));
    let started = Instant::now();
    let (_, report) = store.audit_report(period, &admin, now)?;
    let report_s = started.elapsed().as_secs_f64();
    let json_bytes = serde_json::to_vec(&report)?.len();
    let started = Instant::now();
    let csv = report.to_csv().len();
    let html = report.to_html("Bench PD").len();
    let render_ms = started.elapsed().as_secs_f64() * 1e3;
    let figures = json!({
        "log_entries": written,
        "log_write_entries_per_s": (written as f64 / write_s).round(),
        "report_s": round3(report_s),
        "report_entries_examined": report.entries_examined,
        "report_accesses": report.accesses,
        "report_unqualified": report.unqualified_accesses.count,
        "report_after_hours": report.after_hours.count,
        "report_unusual_days": report.unusual_volume.len(),
        "report_json_bytes": json_bytes,
        "report_csv_bytes": csv,
        "report_html_bytes": html,
        "render_csv_html_ms": round3(render_ms),
        "peak_rss_mb": peak_rss_mb().round(),
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    if !json_only {
        eprintln!("{}", serde_json::to_string_pretty(&figures)?);
    }
    println!("{figures}");
    Ok(())
}
