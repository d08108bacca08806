//! The agency's policy settings, as one value the administrator edits
//! (`GET|PUT /api/v1/policy`) and every rule reads.

use serde::{Deserialize, Serialize};

use crate::account::AccountPolicy;
use crate::audit_report::AuditPolicy;
use crate::purpose::PurposePolicy;
use crate::retention::RetentionPolicy;

/// Longest public policy text (SPEC R8.3), in bytes.
pub const MAX_PUBLIC_POLICY_BYTES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgencyPolicy {
    /// The agency's name, recorded as the affiliation of its users.
    pub agency_name: String,
    /// The ALPR Administrator's name and title (SPEC R5.5).
    pub administrator_name: String,
    pub administrator_title: String,
    pub accounts: AccountPolicy,
    pub purpose: PurposePolicy,
    pub alerts: AlertPolicy,
    /// How long each class of data is kept (SPEC R6.1).
    pub retention: RetentionPolicy,
    /// How the periodic audit reads times and volumes (SPEC R8.1).
    pub audit: AuditPolicy,
    /// The usage and privacy policy posted at `/transparency`, in
    /// Markdown (SPEC R8.3).
    pub public_policy_markdown: String,
    /// How the web interface draws its map (no internet needed).
    pub map: MapPolicy,
}

/// The web interface's map: where it opens, and an optional tile server
/// the agency runs. Without one, the map is drawn from local data only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapPolicy {
    pub center_lat: f64,
    pub center_lon: f64,
    /// Web-Mercator zoom level, 3 to 18.
    pub zoom: u8,
    /// `http(s)://host/…/{z}/{x}/{y}.png`; empty for none.
    pub tile_url: String,
}

impl Default for MapPolicy {
    fn default() -> Self {
        // California.
        MapPolicy {
            center_lat: 37.0,
            center_lon: -119.5,
            zoom: 6,
            tile_url: String::new(),
        }
    }
}

impl Eq for MapPolicy {}

impl MapPolicy {
    /// The scheme, host and port the tile URL points at, which the web
    /// pages' Content-Security-Policy then allows images from.
    pub fn tile_origin(&self) -> Option<&str> {
        if self.tile_url.is_empty() {
            return None;
        }
        let rest = self
            .tile_url
            .strip_prefix("https://")
            .or_else(|| self.tile_url.strip_prefix("http://"))?;
        let host_len = rest.find('/').unwrap_or(rest.len());
        let scheme_len = self.tile_url.len() - rest.len();
        Some(&self.tile_url[..scheme_len + host_len])
    }

    fn check(&self) -> Result<(), String> {
        if !(-85.0..=85.0).contains(&self.center_lat)
            || !(-180.0..=180.0).contains(&self.center_lon)
        {
            return Err("map.center_lat must be -85 to 85 and map.center_lon -180 to 180".into());
        }
        if !(3..=18).contains(&self.zoom) {
            return Err("map.zoom must be 3 to 18".into());
        }
        if self.tile_url.is_empty() {
            return Ok(());
        }
        let safe = self.tile_url.len() <= 300
            && self
                .tile_url
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&()*+,;=%{}".contains(&b))
            && ["{z}", "{x}", "{y}"]
                .iter()
                .all(|p| self.tile_url.contains(p));
        match self.tile_origin() {
            // The origin goes into a CSP header: host and port only.
            Some(origin)
                if safe
                    && origin.len() > "https://".len()
                    && origin
                        .split("//")
                        .nth(1)
                        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))) =>
            {
                // Plain http would show every viewed area to the network
                // (and let it swap the map): only on this machine.
                if self.tile_url.starts_with("http://") && !self.tile_host_is_loopback() {
                    return Err("map.tile_url must use https:// for a server other than this machine (plain http:// lets the network see and change the map)".into());
                }
                Ok(())
            }
            _ => Err("map.tile_url must be an http(s) URL with {z}, {x} and {y}, like https://tiles.example.gov/{z}/{x}/{y}.png".into()),
        }
    }

    /// The tile URL the interface may use: a policy stored before plain
    /// http:// to another machine was refused keeps working only over
    /// https (the map falls back to the grid until it is changed).
    pub fn served_tile_url(&self) -> &str {
        if self.tile_url.starts_with("http://") && !self.tile_host_is_loopback() {
            ""
        } else {
            &self.tile_url
        }
    }

    /// The tile server's host name, without port.
    pub fn tile_host(&self) -> Option<&str> {
        let origin = self.tile_origin()?;
        let host = origin.split("//").nth(1)?;
        Some(match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        })
    }

    fn tile_host_is_loopback(&self) -> bool {
        self.tile_host().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost") || h.starts_with("127.") || h == "::1"
        })
    }

    /// A warning when the tiles come from a public service outside the
    /// agency: every area an analyst views (a canvass's surroundings, a
    /// plate's trail) is then sent to that service (issue 23 item 5).
    pub fn tile_warning(&self) -> Option<String> {
        if self.served_tile_url().is_empty() {
            return None;
        }
        let host = self.tile_host()?.to_ascii_lowercase();
        let public = PUBLIC_TILE_HOSTS
            .iter()
            .any(|p| host == *p || host.ends_with(&format!(".{p}")));
        public.then(|| {
            format!(
                "The map's tiles come from {host}, a public service outside the agency: \
                 every area viewed on the map is sent to it. Run the agency's own tile \
                 server to keep searched areas inside the agency."
            )
        })
    }
}

/// Public tile services (and their subdomains) that are not the agency's.
pub const PUBLIC_TILE_HOSTS: &[&str] = &[
    "openstreetmap.org",
    "openstreetmap.fr",
    "openstreetmap.de",
    "cartocdn.com",
    "stadiamaps.com",
    "mapbox.com",
    "googleapis.com",
    "google.com",
    "arcgisonline.com",
    "arcgis.com",
    "thunderforest.com",
    "maptiler.com",
    "here.com",
    "opentopomap.org",
    "wikimedia.org",
    "tomtom.com",
];

/// How alerts are pushed (SPEC R3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertPolicy {
    /// An alert nobody has acknowledged is sent again after this many
    /// seconds.
    pub resend_after_s: i64,
    /// Sends of one alert at most (the first included).
    pub max_sends: i64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            resend_after_s: 60,
            max_sends: 10,
        }
    }
}

impl Default for AgencyPolicy {
    fn default() -> Self {
        AgencyPolicy {
            agency_name: "Agency".into(),
            administrator_name: String::new(),
            administrator_title: String::new(),
            accounts: AccountPolicy::default(),
            purpose: PurposePolicy::default(),
            alerts: AlertPolicy::default(),
            retention: RetentionPolicy::default(),
            audit: AuditPolicy::default(),
            public_policy_markdown: String::new(),
            map: MapPolicy::default(),
        }
    }
}

impl AgencyPolicy {
    /// Refuses settings that would switch a rule off.
    pub fn check(&self) -> Result<(), String> {
        let a = &self.accounts;
        if !(1..=24).contains(&a.session_hours) {
            return Err("accounts.session_hours must be 1 to 24".into());
        }
        if !(3..=10).contains(&a.lockout_attempts) {
            return Err("accounts.lockout_attempts must be 3 to 10".into());
        }
        if a.lockout_minutes > 1_440 {
            return Err(
                "accounts.lockout_minutes must be 0 (until the administrator unlocks) to 1440"
                    .into(),
            );
        }
        if !(1..=1_440).contains(&a.admin_lockout_minutes) {
            return Err("accounts.admin_lockout_minutes must be 1 to 1440 (an administrator's lock always lifts on its own)".into());
        }
        if !(30..=365).contains(&a.inactivity_days) {
            return Err("accounts.inactivity_days must be 30 to 365 (policy: suspend after 12 months unused)".into());
        }
        if !(30..=365).contains(&a.approval_days) {
            return Err("accounts.approval_days must be 30 to 365 (policy: approvals are reviewed annually)".into());
        }
        if !(30..=1096).contains(&a.training_days) {
            return Err(
                "accounts.training_days must be 30 to 1096 (training is repeated periodically)"
                    .into(),
            );
        }
        if !(12..=128).contains(&a.min_password_len) {
            return Err("accounts.min_password_len must be 12 to 128".into());
        }
        if !(10..=3_600).contains(&self.alerts.resend_after_s) {
            return Err("alerts.resend_after_s must be 10 to 3600".into());
        }
        if !(1..=100).contains(&self.alerts.max_sends) {
            return Err("alerts.max_sends must be 1 to 100".into());
        }
        self.retention.check()?;
        self.audit.check()?;
        self.map.check()?;
        if self.public_policy_markdown.len() > MAX_PUBLIC_POLICY_BYTES {
            return Err(format!(
                "public_policy_markdown is {} bytes; at most {MAX_PUBLIC_POLICY_BYTES}",
                self.public_policy_markdown.len()
            ));
        }
        if self.agency_name.trim().is_empty() || self.agency_name.chars().count() > 200 {
            return Err("agency_name must be 1 to 200 characters".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_weakening_is_refused() {
        assert!(AgencyPolicy::default().check().is_ok());
        let mut p = AgencyPolicy::default();
        p.accounts.inactivity_days = 1000;
        assert!(p.check().is_err());
        let mut p = AgencyPolicy::default();
        p.accounts.lockout_attempts = 100;
        assert!(p.check().is_err());
    }

    #[test]
    fn a_tile_server_must_be_a_plain_http_url_with_placeholders() {
        let mut m = MapPolicy::default();
        assert_eq!(m.tile_origin(), None);
        m.tile_url = "https://tiles.city.gov:8443/osm/{z}/{x}/{y}.png".into();
        assert!(m.check().is_ok());
        assert_eq!(m.tile_origin(), Some("https://tiles.city.gov:8443"));
        // Plain http only to this machine (issue 23 item 5).
        m.tile_url = "http://localhost:8080/{z}/{x}/{y}.png".into();
        assert!(m.check().is_ok());
        m.tile_url = "http://127.0.0.1/{z}/{x}/{y}.png".into();
        assert!(m.check().is_ok());
        m.tile_url = "http://tiles.city.gov/{z}/{x}/{y}.png".into();
        assert!(m.check().unwrap_err().contains("https://"));
        // A public service is allowed, with a warning that names it.
        m.tile_url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into();
        assert!(m.check().is_ok());
        assert!(m.tile_warning().unwrap().contains("tile.openstreetmap.org"));
        m.tile_url = "https://a.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png".into();
        assert!(m.tile_warning().is_some());
        m.tile_url = "https://tiles.city.gov:8443/osm/{z}/{x}/{y}.png".into();
        assert_eq!(m.tile_warning(), None, "the agency's own server");
        m.tile_url = "https://notopenstreetmap.org.evil.example/{z}/{x}/{y}.png".into();
        assert_eq!(m.tile_warning(), None, "a suffix match is on whole labels");
        for bad in [
            "ftp://tiles/{z}/{x}/{y}.png",
            "https://tiles.city.gov/{z}/{x}.png",
            "https://tiles.city.gov/{z}/{x}/{y}.png' data:",
            "https:///{z}/{x}/{y}",
            "javascript:alert(1)//{z}{x}{y}",
            "https://a;script-src:*/{z}/{x}/{y}",
        ] {
            m.tile_url = bad.into();
            assert!(m.check().is_err(), "{bad} accepted");
        }
        let mut m = MapPolicy {
            zoom: 30,
            ..MapPolicy::default()
        };
        assert!(m.check().is_err());
        m.zoom = 6;
        m.center_lat = f64::NAN;
        assert!(m.check().is_err());
    }
}
