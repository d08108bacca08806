//! Agency-issued devices (issue 24 item 3; model policy 003 § Accessing
//! ALPR information: access "with LAW ENFORCEMENT AGENCY-issued
//! computers, mobile phones, or smart devices").
//!
//! Each device holds a client certificate from the agency's own
//! certificate authority, whose certificate and key are kept here. A
//! device is known by the SHA-256 of its certificate; revoking it takes
//! effect on its next request, since every request looks it up. Making
//! certificates is the server's job (`platekeeper_server::device_certs`):
//! the store only keeps what was issued and to whom.

use platekeeper_core::read::format_time_ms;
use rusqlite::params;
use serde::Serialize;

use crate::accounts::Actor;
use crate::sql::Optional as _;
use crate::{log, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_ca(
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert BLOB NOT NULL,
    key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    assigned_to TEXT,
    fingerprint BLOB NOT NULL UNIQUE,
    serial TEXT NOT NULL,
    not_after INTEGER NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT,
    revoke_reason TEXT
);
";

/// The agency's device certificate authority: its certificate and its
/// PKCS#8 key, both DER.
#[derive(Clone)]
pub struct DeviceCa {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("cert_bytes", &self.cert.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: i64,
    pub name: String,
    pub assigned_to: Option<String>,
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    pub serial: String,
    pub not_after: String,
    pub issued_by: String,
    pub issued_at: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

/// A certificate just issued, to be recorded.
pub struct NewDevice {
    pub name: String,
    pub assigned_to: Option<String>,
    pub fingerprint: [u8; 32],
    pub serial: String,
    pub not_after_ms: i64,
}

const COLUMNS: &str = "id, name, assigned_to, fingerprint, serial, not_after, issued_by, issued_at, revoked_at, revoked_by, revoke_reason";

fn device_row(r: &crate::sql::Row) -> rusqlite::Result<Device> {
    let fp: Vec<u8> = r.get(3)?;
    Ok(Device {
        id: r.get(0)?,
        name: r.get(1)?,
        assigned_to: r.get(2)?,
        fingerprint: hex::encode(fp),
        serial: r.get(4)?,
        not_after: format_time_ms(r.get(5)?),
        issued_by: r.get(6)?,
        issued_at: format_time_ms(r.get(7)?),
        revoked_at: r.get::<_, Option<i64>>(8)?.map(format_time_ms),
        revoked_by: r.get(9)?,
        revoke_reason: r.get(10)?,
    })
}

/// A device name: what the administrator calls it ("Unit 12 MDT").
fn check_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "invalid_device",
            "name must be 1 to 100 characters, without control characters",
        ));
    }
    Ok(name.to_string())
}

impl Store {
    /// The device certificate authority, if one was made.
    pub fn device_ca(&self) -> Result<Option<DeviceCa>, StoreError> {
        let conn = self.reader()?;
        conn.query_row("SELECT cert, key FROM device_ca WHERE id = 1", (), |r| {
            Ok(DeviceCa {
                cert: r.get(0)?,
                key: r.get(1)?,
            })
        })
        .optional()
    }

    /// Keeps `ca` as the agency's device authority unless one exists, and
    /// returns the one in force (two servers racing keep the first).
    pub fn keep_device_ca(
        &self,
        ca: DeviceCa,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<DeviceCa, StoreError> {
        if let Some(existing) = self.device_ca()? {
            return Ok(existing);
        }
        self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO device_ca(id, cert, key, created_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![ca.cert, ca.key, now_ms],
            )?;
            log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "admin",
                    "device_ca_created",
                    serde_json::json!({"certificate_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&ca.cert))}),
                ),
            )
        })?;
        self.device_ca()?
            .ok_or_else(|| StoreError::Corrupt("the device authority was not kept".into()))
    }

    /// Records a device certificate just issued. The person it is
    /// assigned to must have an account.
    pub fn register_device(
        &self,
        new: NewDevice,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        let name = check_name(&new.name)?;
        let assigned_to = new
            .assigned_to
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &assigned_to {
            if self.account(u)?.is_none() {
                return Err(StoreError::invalid(
                    "unknown_user",
                    format!("assigned_to {u:?} is not an account"),
                ));
            }
        }
        let (id, _) = self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO devices(name, assigned_to, fingerprint, serial, not_after, issued_by, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, assigned_to, &new.fingerprint[..], new.serial, new.not_after_ms, actor.username, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(tx, head, actor.entry(now_ms, "admin", "device_registered", serde_json::json!({
                "device_id": id, "name": name, "assigned_to": assigned_to,
                "fingerprint": hex::encode(new.fingerprint), "serial": new.serial,
                "not_after": format_time_ms(new.not_after_ms),
            })))?;
            Ok((id, e))
        })?;
        self.device(id)?
            .ok_or_else(|| StoreError::not_found("device", id))
    }

    pub fn device(&self, id: i64) -> Result<Option<Device>, StoreError> {
        let conn = self.reader()?;
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM devices WHERE id = ?1"),
            [id],
            device_row,
        )
        .optional()
    }

    /// Every device, newest first.
    pub fn devices(&self) -> Result<Vec<Device>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM devices ORDER BY id DESC"))?;
        crate::sql::collect_rows(&mut stmt, (), |r| Ok(device_row(r)?))
    }

    /// The device holding the certificate with this SHA-256, revoked or
    /// not (the caller refuses a revoked one).
    pub fn device_by_fingerprint(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<Option<Device>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM devices WHERE fingerprint = ?1"
        ))?;
        let found = stmt.query_row([&fingerprint[..]], device_row).optional()?;
        Ok(found)
    }

    /// Revokes a device: its certificate is refused from its next request.
    pub fn revoke_device(
        &self,
        id: i64,
        reason: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        let reason = crate::sharing::reason(reason, "the device is revoked")?;
        let device = self
            .device(id)?
            .ok_or_else(|| StoreError::not_found("device", id))?;
        if device.revoked_at.is_some() {
            return Err(StoreError::conflict(
                "device_revoked",
                format!("device {id} is already revoked"),
            ));
        }
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE devices SET revoked_at = ?2, revoked_by = ?3, revoke_reason = ?4 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now_ms, actor.username, reason],
            )?;
            log::append(tx, head, actor.entry(now_ms, "admin", "device_revoked", serde_json::json!({
                "device_id": id, "name": device.name, "fingerprint": device.fingerprint, "reason": reason,
            })))
        })?;
        self.device(id)?
            .ok_or_else(|| StoreError::not_found("device", id))
    }
}
