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
    /// Plate data only from agency-issued devices (a client certificate
    /// from the agency's device authority): set on when the first device
    /// is registered (issue 24 item 3).
    pub devices_required: bool,
}

/// The web interface's map: where it opens, and optional services the
/// agency runs (tiles, address search). Without them, the map is drawn
/// from local data only and no address search is offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapPolicy {
    pub center_lat: f64,
    pub center_lon: f64,
    /// Web-Mercator zoom level, 3 to 18.
    pub zoom: u8,
    /// `http(s)://host/…/{z}/{x}/{y}.png`; empty for none.
    pub tile_url: String,
    /// The agency's own geocoder, `https://host/…{query}…` (Nominatim's
    /// `/search?format=json&q={query}` or Pelias's `/v1/search?text={query}`);
    /// empty for none. Every address searched is sent to it.
    pub geocoder_url: String,
}

impl Default for MapPolicy {
    fn default() -> Self {
        // California.
        MapPolicy {
            center_lat: 37.0,
            center_lon: -119.5,
            zoom: 6,
            tile_url: String::new(),
            geocoder_url: String::new(),
        }
    }
}

impl Eq for MapPolicy {}

/// A service URL's scheme, host and port (what a Content-Security-Policy
/// names).
fn origin_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find('/').unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + host_len])
}

/// A service URL's host name, without port.
fn host_of(url: &str) -> Option<&str> {
    let host = origin_of(url)?.split("//").nth(1)?;
    Some(match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    })
}

fn is_loopback(url: &str) -> bool {
    host_of(url)
        .is_some_and(|h| h.eq_ignore_ascii_case("localhost") || h.starts_with("127.") || h == "::1")
}

/// Plain http to another machine shows every viewed area or searched
/// address to the network (and lets it change the answers): refused
/// then, and not served if a store has one from before the rule.
fn served(url: &str) -> &str {
    if url.starts_with("http://") && !is_loopback(url) {
        ""
    } else {
        url
    }
}

/// Checks a service URL the browser will call: safe characters, the
/// placeholders it needs, a host fit for a CSP header, https unless on
/// this machine.
fn check_service_url(
    field: &str,
    url: &str,
    placeholders: &[&str],
    example: &str,
) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    let safe = url.len() <= 300
        && url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&()*+,;=%{}".contains(&b))
        && placeholders.iter().all(|p| url.contains(p));
    match origin_of(url) {
        Some(origin)
            if safe
                && origin.len() > "https://".len()
                && origin.split("//").nth(1).is_some_and(|h| {
                    h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
                }) =>
        {
            if served(url).is_empty() {
                return Err(format!("{field} must use https:// for a server other than this machine (plain http:// lets the network see and change what it answers)"));
            }
            Ok(())
        }
        _ => Err(format!(
            "{field} must be an http(s) URL with {}, like {example}",
            placeholders.join(", ")
        )),
    }
}

/// A warning when `url` is a public service outside the agency.
fn public_service_warning(url: &str, what: &str) -> Option<String> {
    if served(url).is_empty() {
        return None;
    }
    let host = host_of(url)?.to_ascii_lowercase();
    let public = PUBLIC_TILE_HOSTS
        .iter()
        .any(|p| host == *p || host.ends_with(&format!(".{p}")));
    public.then(|| {
        format!(
            "The map's {what} come from {host}, a public service outside the agency: {}. \
             Run the agency's own server to keep them inside the agency.",
            if what == "tiles" {
                "every area viewed on the map is sent to it"
            } else {
                "every address searched is sent to it"
            }
        )
    })
}

impl MapPolicy {
    /// The scheme, host and port the tile URL points at, which the web
    /// pages' Content-Security-Policy then allows images from.
    pub fn tile_origin(&self) -> Option<&str> {
        origin_of(self.served_tile_url())
    }

    /// The geocoder's origin, which the pages' CSP lets them call.
    pub fn geocoder_origin(&self) -> Option<&str> {
        origin_of(self.served_geocoder_url())
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
        check_service_url(
            "map.tile_url",
            &self.tile_url,
            &["{z}", "{x}", "{y}"],
            "https://tiles.example.gov/{z}/{x}/{y}.png",
        )?;
        check_service_url(
            "map.geocoder_url",
            &self.geocoder_url,
            &["{query}"],
            "https://geo.example.gov/search?format=json&q={query}",
        )
    }

    /// The tile URL the interface may use: a policy stored before plain
    /// http:// to another machine was refused keeps working only over
    /// https (the map falls back to the grid until it is changed).
    pub fn served_tile_url(&self) -> &str {
        served(&self.tile_url)
    }

    /// The geocoder URL the interface may use (as [`Self::served_tile_url`]).
    pub fn served_geocoder_url(&self) -> &str {
        served(&self.geocoder_url)
    }

    /// The tile server's host name, without port.
    pub fn tile_host(&self) -> Option<&str> {
        host_of(&self.tile_url)
    }

    /// A warning when the tiles come from a public service outside the
    /// agency: every area an analyst views (a canvass's surroundings, a
    /// plate's trail) is then sent to that service (issue 23 item 5).
    pub fn tile_warning(&self) -> Option<String> {
        public_service_warning(&self.tile_url, "tiles")
    }

    /// The same for a public geocoder: every address searched leaves.
    pub fn geocoder_warning(&self) -> Option<String> {
        public_service_warning(&self.geocoder_url, "addresses")
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
            devices_required: false,
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

    #[test]
    fn a_geocoder_is_the_agencys_own_over_https_with_a_query_placeholder() {
        let mut m = MapPolicy::default();
        assert_eq!((m.geocoder_origin(), m.check()), (None, Ok(())));
        m.geocoder_url = "https://geo.city.gov/search?format=json&q={query}".into();
        assert!(m.check().is_ok());
        assert_eq!(m.geocoder_origin(), Some("https://geo.city.gov"));
        assert_eq!(m.geocoder_warning(), None);
        m.geocoder_url = "http://127.0.0.1:4000/v1/search?text={query}".into();
        assert!(m.check().is_ok(), "plain http on this machine");
        m.geocoder_url = "http://geo.city.gov/search?q={query}".into();
        assert!(m.check().unwrap_err().contains("https://"));
        assert_eq!(m.served_geocoder_url(), "", "never served");
        assert_eq!(m.geocoder_origin(), None);
        m.geocoder_url = "https://nominatim.openstreetmap.org/search?format=json&q={query}".into();
        assert!(m.check().is_ok());
        assert!(m
            .geocoder_warning()
            .unwrap()
            .contains("every address searched"));
        for bad in [
            "https://geo.city.gov/search?q=",
            "https://geo.city.gov/search?q={query}' 'unsafe-inline",
            "https://a;connect-src:*/{query}",
            "data:text/html,{query}",
        ] {
            m.geocoder_url = bad.into();
            assert!(m.check().is_err(), "{bad} accepted");
        }
    }
}
