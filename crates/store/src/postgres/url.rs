//! `--database postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]…]/DB[?sslmode=…]`:
//! read, checked, and shown without its password.
//!
//! Several hosts (a primary and its standbys, as libpq takes them) are
//! tried in order; with `target_session_attrs=read-write`, the default
//! when several are named, a connection is kept only on the one that
//! accepts writes, so after a standby is promoted every new connection
//! finds the new primary by itself (issue 26 item 2).

use std::path::PathBuf;
use std::time::Duration;

use super::PgError;

/// The environment variable that may hold the URL instead of the option.
pub const DATABASE_ENV: &str = "PLATEKEEPER_DATABASE";

/// The environment variable that may hold the read database's URL (keeps
/// its password out of the process list).
pub const READ_DATABASE_ENV: &str = "PLATEKEEPER_READ_DATABASE";

/// How the connection to the database is protected (libpq's `sslmode`
/// names). `verify-full` is what an agency should run: the server's
/// certificate is checked against the trusted roots and its host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP; allowed only to a loopback address (the tests, a
    /// database on the same machine).
    Disable,
    /// TLS, the certificate checked against the roots and the host name.
    VerifyFull,
}

/// A checked database address.
#[derive(Clone)]
pub struct DatabaseUrl {
    pub(crate) config: postgres::Config,
    pub(crate) tls: TlsMode,
    /// `sslrootcert`: the roots the server's certificate must chain to;
    /// the system's roots when absent.
    pub(crate) root_cert: Option<PathBuf>,
    shown: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Most hosts one URL may name (a primary and its standbys).
const MAX_HOSTS: usize = 8;

/// Which server a connection may stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    ReadWrite,
    Any,
}

/// How long a connection attempt may take before the server is called
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn bad(why: impl Into<String>) -> PgError {
    PgError::BadUrl(why.into())
}

impl DatabaseUrl {
    /// Reads a URL. The password, if any, never appears in an error or
    /// in how the URL is shown.
    pub fn parse(text: &str) -> Result<DatabaseUrl, PgError> {
        DatabaseUrl::parse_as(text, Session::ReadWrite)
    }

    /// Reads the URL of a database only read from (`--read-database`):
    /// with several hosts, any that answers will do (standbys take no
    /// writes), unless the URL says otherwise.
    pub fn parse_for_reading(text: &str) -> Result<DatabaseUrl, PgError> {
        DatabaseUrl::parse_as(text, Session::Any)
    }

    fn parse_as(text: &str, several: Session) -> Result<DatabaseUrl, PgError> {
        let text = text.trim();
        if text.len() > 4096 {
            return Err(bad("the database URL is longer than 4096 characters"));
        }
        let rest = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
            .ok_or_else(|| {
                bad("the database URL must start with postgres:// (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")
            })?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = main
            .split_once('/')
            .ok_or_else(|| bad("the database URL names no database (…@HOST/DATABASE)"))?;
        if database.is_empty() || database.contains('/') {
            return Err(bad("the database URL names no database (…@HOST/DATABASE)"));
        }
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("the database URL names no user (postgres://USER@HOST/DATABASE)"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if user.is_empty() {
            return Err(bad(
                "the database URL names no user (postgres://USER@HOST/DATABASE)",
            ));
        }
        if hostport.is_empty() {
            return Err(bad(
                "the database URL must name a host (postgres://USER@HOST[:PORT][,HOST[:PORT]…]/DATABASE)",
            ));
        }
        let mut hosts = Vec::new();
        for one in hostport.split(',') {
            if one.is_empty() {
                return Err(bad(
                    "the database URL names an empty host in its list (HOST[:PORT],HOST[:PORT]…)",
                ));
            }
            let (host, port) = split_host_port(one)?;
            hosts.push((unescape(host, "host")?, port));
        }
        if hosts.len() > MAX_HOSTS {
            return Err(bad(format!(
                "the database URL names {} hosts; at most {MAX_HOSTS}",
                hosts.len()
            )));
        }
        let user = unescape(user, "user")?;
        let database = unescape(database, "database")?;

        let mut config = postgres::Config::new();
        config.user(&user).dbname(&database);
        for (host, port) in &hosts {
            config.host(host).port(*port);
        }
        config
            .application_name("platekeeper")
            // Every table is in the schema `platekeeper` (see `migrate`).
            .options("-c search_path=platekeeper")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true);
        if let Some(p) = password {
            config.password(unescape(p, "password")?);
        }

        let is_loopback = |host: &str| {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        };
        let loopback = hosts.iter().all(|(h, _)| is_loopback(h));
        let not_loopback = hosts
            .iter()
            .find(|(h, _)| !is_loopback(h))
            .map(|(h, _)| h.clone())
            .unwrap_or_default();
        // With several hosts, only the one that takes writes will do,
        // unless the URL says otherwise (a read-only replica's URL).
        let mut session = if hosts.len() > 1 {
            several
        } else {
            Session::Any
        };
        let mut tls = if loopback {
            TlsMode::Disable
        } else {
            TlsMode::VerifyFull
        };
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("the database URL's option {pair:?} has no value")))?;
            let value = unescape(value, key)?;
            match key {
                "sslmode" => {
                    tls = match value.as_str() {
                        "verify-full" => TlsMode::VerifyFull,
                        "disable" if loopback => TlsMode::Disable,
                        "disable" => {
                            return Err(bad(format!(
                                "sslmode=disable is allowed only to a loopback address, not {not_loopback}: plate data and passwords would cross the network in clear"
                            )))
                        }
                        "allow" | "prefer" | "require" | "verify-ca" => {
                            return Err(bad(format!(
                                "sslmode={value} does not check whose database this is; use sslmode=verify-full (with sslrootcert=FILE for the agency's own certificate authority)"
                            )))
                        }
                        other => {
                            return Err(bad(format!(
                                "sslmode={other:?} is not a mode (use verify-full, or disable on loopback)"
                            )))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                "connect_timeout" => {
                    let s: u64 = value.parse().ok().filter(|s| (1..=600).contains(s)).ok_or_else(
                        || bad(format!("connect_timeout={value:?} is not a number of seconds from 1 to 600")),
                    )?;
                    config.connect_timeout(Duration::from_secs(s));
                }
                "application_name" => {
                    config.application_name(&value);
                }
                "target_session_attrs" => {
                    session = match value.as_str() {
                        "read-write" => Session::ReadWrite,
                        "any" => Session::Any,
                        other => {
                            return Err(bad(format!(
                                "target_session_attrs={other:?} is not one Platekeeper knows (read-write, any)"
                            )))
                        }
                    }
                }
                other => {
                    return Err(bad(format!(
                        "the database URL's option {other:?} is not one Platekeeper knows (sslmode, sslrootcert, connect_timeout, application_name, target_session_attrs)"
                    )))
                }
            }
        }
        config.target_session_attrs(match session {
            Session::ReadWrite => postgres::config::TargetSessionAttrs::ReadWrite,
            Session::Any => postgres::config::TargetSessionAttrs::Any,
        });
        let shown_hosts: Vec<String> = hosts
            .iter()
            .map(|(host, port)| {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            })
            .collect();
        let shown = format!(
            "postgres://{user}@{}/{database}{}{}",
            shown_hosts.join(","),
            match tls {
                TlsMode::Disable => "?sslmode=disable",
                TlsMode::VerifyFull => "?sslmode=verify-full",
            },
            match (hosts.len() > 1, session) {
                (true, Session::Any) => "&target_session_attrs=any",
                (true, Session::ReadWrite) => "&target_session_attrs=read-write",
                (false, Session::ReadWrite) => "&target_session_attrs=read-write",
                (false, Session::Any) => "",
            }
        );
        Ok(DatabaseUrl {
            config,
            tls,
            root_cert,
            shown,
        })
    }

    /// The read database's URL from `--read-database` or, when that is
    /// absent, [`READ_DATABASE_ENV`].
    pub fn reading_from_option_or_env(
        option: Option<&str>,
    ) -> Result<Option<DatabaseUrl>, PgError> {
        match option {
            Some(u) => DatabaseUrl::parse_for_reading(u).map(Some),
            None => match std::env::var(READ_DATABASE_ENV) {
                Ok(u) if !u.trim().is_empty() => DatabaseUrl::parse_for_reading(&u).map(Some),
                _ => Ok(None),
            },
        }
    }

    /// The URL from `--database` or, when that is absent, the environment.
    pub fn from_option_or_env(option: Option<&str>) -> Result<Option<DatabaseUrl>, PgError> {
        match option {
            Some(u) => DatabaseUrl::parse(u).map(Some),
            None => match std::env::var(DATABASE_ENV) {
                Ok(u) if !u.trim().is_empty() => DatabaseUrl::parse(&u).map(Some),
                _ => Ok(None),
            },
        }
    }

    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    pub(crate) fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, u16), PgError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("the database URL's IPv6 host has no closing ]"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the database URL names no host"));
    }
    let port = match port {
        None => 5432,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("{p:?} is not a port number")))?,
    };
    Ok((host, port))
}

/// Undoes %XX escapes (a password may hold `@`, `:` or `/` that way).
fn unescape(text: &str, what: &str) -> Result<String, PgError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("the database URL's {what} has a broken %-escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out)
        .map_err(|_| bad(format!("the database URL's {what} is not UTF-8")))?;
    if s.chars().any(char::is_control) {
        return Err(bad(format!(
            "the database URL's {what} holds a control character"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        DatabaseUrl::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn reads_the_parts_and_never_shows_the_password() {
        let u = DatabaseUrl::parse("postgres://pk:s%40cret@127.0.0.1:5433/platekeeper").unwrap();
        assert_eq!(u.config.get_user(), Some("pk"));
        assert_eq!(u.config.get_password(), Some(&b"s@cret"[..]));
        assert_eq!(u.config.get_dbname(), Some("platekeeper"));
        assert_eq!(u.config.get_ports(), &[5433]);
        assert_eq!(u.tls(), TlsMode::Disable);
        assert_eq!(
            u.to_string(),
            "postgres://pk@127.0.0.1:5433/platekeeper?sslmode=disable"
        );
        assert!(!format!("{u:?}").contains("cret"));

        let remote = DatabaseUrl::parse("postgresql://pk@db.agency.gov/alpr").unwrap();
        assert_eq!(remote.tls(), TlsMode::VerifyFull);
        assert_eq!(remote.config.get_ports(), &[5432]);
        let v6 = DatabaseUrl::parse("postgres://pk@[::1]:6000/alpr").unwrap();
        assert_eq!(v6.tls(), TlsMode::Disable);
        assert_eq!(
            v6.to_string(),
            "postgres://pk@[::1]:6000/alpr?sslmode=disable"
        );
    }

    #[test]
    fn several_hosts_are_tried_in_order_and_only_a_primary_is_kept() {
        let u = DatabaseUrl::parse("postgres://pk:pw@127.0.0.1:5433,[::1]:5434/alpr").unwrap();
        assert_eq!(u.config.get_ports(), &[5433, 5434]);
        assert_eq!(u.config.get_hosts().len(), 2);
        assert_eq!(
            u.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(u.tls(), TlsMode::Disable, "every host is loopback");
        assert_eq!(
            u.to_string(),
            "postgres://pk@127.0.0.1:5433,[::1]:5434/alpr?sslmode=disable&target_session_attrs=read-write"
        );
        let r = DatabaseUrl::parse(
            "postgres://pk@db1.agency.gov,db2.agency.gov/alpr?target_session_attrs=any",
        )
        .unwrap();
        assert_eq!(r.tls(), TlsMode::VerifyFull);
        assert_eq!(r.config.get_ports(), &[5432, 5432]);
        assert_eq!(
            r.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::Any
        );
        let standbys =
            DatabaseUrl::parse_for_reading("postgres://pk@127.0.0.1:1,127.0.0.1:2/alpr").unwrap();
        assert_eq!(
            standbys.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::Any,
            "any standby will do for reading"
        );
        let one = DatabaseUrl::parse("postgres://pk@127.0.0.1/alpr").unwrap();
        assert_eq!(
            one.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::Any
        );
    }

    #[test]
    fn refuses_what_is_not_a_safe_database_address() {
        for (text, says) in [
            ("mysql://pk@h/db", "must start with postgres://"),
            ("", "must start with postgres://"),
            ("postgres://pk@h", "names no database"),
            ("postgres://pk@h/", "names no database"),
            ("postgres://h/db", "names no user"),
            ("postgres://:pw@h/db", "names no user"),
            ("postgres://pk@/db", "must name a host"),
            ("postgres://pk@a,,b/db", "empty host"),
            ("postgres://pk@a,b:x/db", "not a port"),
            (
                "postgres://pk@127.0.0.1,db.agency.gov/db?sslmode=disable",
                "only to a loopback",
            ),
            (
                "postgres://pk@h/db?target_session_attrs=primary",
                "read-write, any",
            ),
            ("postgres://pk@h:0/db", "not a port"),
            ("postgres://pk@h:99999/db", "not a port"),
            ("postgres://pk@h:x/db", "not a port"),
            ("postgres://pk:%zz@h/db", "broken %-escape"),
            ("postgres://pk%00@h/db", "control character"),
            (
                "postgres://pk@db.agency.gov/db?sslmode=disable",
                "only to a loopback",
            ),
            (
                "postgres://pk@db.agency.gov/db?sslmode=require",
                "verify-full",
            ),
            ("postgres://pk@h/db?sslmode=bogus", "not a mode"),
            ("postgres://pk@h/db?sslmode", "has no value"),
            (
                "postgres://pk@h/db?options=-c%20x",
                "not one Platekeeper knows",
            ),
            ("postgres://pk@h/db?connect_timeout=0", "connect_timeout"),
        ] {
            let e = err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(err(&format!("postgres://pk@h/{}", "d".repeat(5000))).contains("4096"));
        assert!(err(&format!("postgres://pk@{}/db", ["h"; 9].join(","))).contains("at most 8"));
        // A password in a refused URL is not repeated in the error.
        assert!(!err("postgres://pk:hunter2@h:x/db").contains("hunter2"));
    }
}
