//! Signed checkpoints of the audit log (SPEC R4.5; issue 22 finding 2).
//!
//! A checkpoint is the log's head — how many entries, the hash of the
//! last, and when — signed with the agency's checkpoint key (Ed25519).
//! Copies kept away from the server (the public transparency page, every
//! audit report, files the auditor downloads) let anyone later prove that
//! the log still extends what was signed: entry `entries` must still have
//! hash `head`. The chain makes every earlier entry depend on that hash,
//! so a rewrite or a truncation at or before `entries` is caught.
//!
//! This module holds the value and its exact signed bytes, as data; the
//! store signs and verifies.

use serde::{Deserialize, Serialize};

/// What the signature covers, in this order; the first line names the
/// format so a signature can never be read as one of another message.
pub const MESSAGE_LABEL: &str = "platekeeper-log-checkpoint-v1";

/// A signed statement of the log's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Entries in the log when it was signed (the last entry's number).
    pub entries: i64,
    /// SHA-256 of entry `entries`, hex.
    pub head: String,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
    /// The log it belongs to: a random id written in the log's first
    /// entry, so a checkpoint of one store never vouches for another.
    pub store_id: String,
    /// Ed25519 signature over [`Checkpoint::message`], hex (64 bytes).
    pub signature: String,
    /// The Ed25519 public key that signed it, hex (32 bytes). Compare it
    /// with a copy of the agency's key kept elsewhere: anyone can sign a
    /// checkpoint with a key of their own.
    pub public_key: String,
}

impl Checkpoint {
    /// The bytes signed: one `name value` line per field after the label.
    pub fn message(&self) -> Vec<u8> {
        message(&self.store_id, self.entries, &self.head, &self.time)
    }
}

/// The signed bytes of a checkpoint of `store_id` at `entries`/`head`,
/// signed at `time`.
pub fn message(store_id: &str, entries: i64, head: &str, time: &str) -> Vec<u8> {
    format!("{MESSAGE_LABEL}\nstore {store_id}\nentries {entries}\nhead {head}\ntime {time}\n")
        .into_bytes()
}

/// What the server does when, at start, the log does not extend its last
/// checkpoint (or its chain is broken): part of the agency policy
/// (`audit.on_tamper`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTamper {
    /// Do not start; the operator investigates (and may start once with
    /// `--on-tamper alarm`).
    #[default]
    Refuse,
    /// Start, but alarmed: the alarm is logged, shown to the
    /// administrator and auditors, and no checkpoint is signed until one
    /// of them acknowledges it.
    Alarm,
}

impl OnTamper {
    pub fn parse(s: &str) -> Result<OnTamper, String> {
        match s.trim() {
            "refuse" => Ok(OnTamper::Refuse),
            "alarm" => Ok(OnTamper::Alarm),
            other => Err(format!(
                "on_tamper {other:?} must be \"refuse\" or \"alarm\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_every_signed_field() {
        let c = Checkpoint {
            entries: 42,
            head: "ab".repeat(32),
            time: "2026-11-18T00:53:20Z".into(),
            store_id: "s1".into(),
            signature: String::new(),
            public_key: String::new(),
        };
        let m = String::from_utf8(c.message()).unwrap();
        assert_eq!(
            m,
            format!(
                "platekeeper-log-checkpoint-v1\nstore s1\nentries 42\nhead {}\ntime 2026-11-18T00:53:20Z\n",
                "ab".repeat(32)
            )
        );
        // Changing any field changes the bytes signed.
        for other in [
            Checkpoint {
                entries: 41,
                ..c.clone()
            },
            Checkpoint {
                head: "cd".repeat(32),
                ..c.clone()
            },
            Checkpoint {
                time: "2026-11-18T00:53:21Z".into(),
                ..c.clone()
            },
            Checkpoint {
                store_id: "s2".into(),
                ..c.clone()
            },
        ] {
            assert_ne!(other.message(), c.message());
        }
    }

    #[test]
    fn on_tamper_is_refuse_or_alarm() {
        assert_eq!(OnTamper::default(), OnTamper::Refuse);
        assert_eq!(OnTamper::parse("alarm"), Ok(OnTamper::Alarm));
        assert!(OnTamper::parse("ignore").unwrap_err().contains("ignore"));
        let v: OnTamper = serde_json::from_str("\"alarm\"").unwrap();
        assert_eq!(v, OnTamper::Alarm);
        assert!(serde_json::from_str::<OnTamper>("\"ignore\"").is_err());
    }
}
