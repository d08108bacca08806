//! What the command line's tests share: a server process, HTTP helpers,
//! the first administrator's sign-in, and a database of its own per test
//! on the PostgreSQL that scripts/with-postgres starts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_platekeeper");

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `platekeeper <args>` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start platekeeper");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(i) = line
                    .find("listening on http://")
                    .map(|i| i + "listening on ".len())
                {
                    let _ = tx.send(
                        line[i..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string(),
                    );
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("server printed its address");
        Server { child, url }
    }

    pub fn serve(data: &Path) -> Server {
        Server::start(&[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn post(url: &str, key: Option<&str>, body: &Value) -> Result<Value, (u16, Value)> {
    let mut req = ureq::post(url).timeout(Duration::from_secs(30));
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    match req.send_json(body.clone()) {
        Ok(r) => Ok(r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_json().unwrap_or(Value::Null))),
        Err(e) => Err((0, json!(e.to_string()))),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn ts(ms: i64) -> String {
    platekeeper_core::read::format_time_ms(ms)
}

pub const PASSWORD: &str = "a long admin password";

/// `platekeeper admin create` on a stopped data folder; returns
/// (username, one-time password, TOTP secret).
pub fn admin_create(data: &Path) -> (String, String, String) {
    admin_create_with(data, &[])
}

/// As [`admin_create`], with more arguments (`--database URL`).
pub fn admin_create_with(data: &Path, extra: &[&str]) -> (String, String, String) {
    let mut args = vec![
        "admin",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--username",
        "capt",
        "--name",
        "Dana Reyes",
        "--title",
        "Captain",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    (
        v["username"].as_str().unwrap().into(),
        v["one_time_password"].as_str().unwrap().into(),
        v["totp_secret"].as_str().unwrap().into(),
    )
}

pub fn code(secret: &str, ahead_s: u64) -> String {
    platekeeper_store::credentials::totp_code(secret, (now_ms() / 1000) as u64 + ahead_s).unwrap()
}

/// Signs the administrator in for the first time, changes the one-time
/// password, signs in again, and records the administrator's own training
/// so searches are allowed. Returns the session token.
pub fn admin_session(url: &str, admin: &(String, String, String)) -> String {
    let (user, otp, secret) = admin;
    let first = post(
        &format!("{url}/api/v1/session"),
        None,
        &json!({"username": user, "password": otp, "totp": code(secret, 0)}),
    )
    .expect("first sign-in");
    assert_eq!(first["next"], json!(["change_password"]));
    let t = first["token"].as_str().unwrap();
    post(
        &format!("{url}/api/v1/me/password"),
        Some(t),
        &json!({"current": otp, "new": PASSWORD}),
    )
    .expect("password changed");
    // The next time step's code: the one above cannot be used twice.
    let second = post(
        &format!("{url}/api/v1/session"),
        None,
        &json!({"username": user, "password": PASSWORD, "totp": code(secret, 30)}),
    )
    .expect("second sign-in");
    assert_eq!(second["next"], json!([]));
    let token = second["token"].as_str().unwrap().to_string();
    let today = ts(now_ms())[..10].to_string();
    let next_year = ts(now_ms() + 300 * 86_400_000)[..10].to_string();
    post(
        &format!("{url}/api/v1/users/{user}/training"),
        Some(&token),
        &json!({"course": "ALPR use and privacy", "completed_on": today, "expires_on": next_year}),
    )
    .expect("training recorded");
    token
}

pub fn create_camera(url: &str, token: &str, id: &str) -> String {
    let cam = post(
        &format!("{url}/api/v1/cameras"),
        Some(token),
        &json!({"id": id, "name": "Test camera", "kind": "fixed", "lat": 37.8044, "lon": -122.2712}),
    )
    .expect("camera created");
    cam["api_key"].as_str().unwrap().to_string()
}

pub fn purpose() -> Value {
    json!({"case_number": "26-000999", "offense": "10851 VC", "reason": "durability test"})
}

/// A search for `plate` (exact or pattern) between `from` and `to`, with
/// the test purpose; the first page of results.
pub fn search_plate(
    url: &str,
    token: &str,
    plate: &str,
    from: i64,
    to: i64,
) -> Result<Value, (u16, Value)> {
    post(
        &format!("{url}/api/v1/search"),
        Some(token),
        &json!({"plate": plate, "from": ts(from), "to": ts(to), "purpose": purpose()}),
    )
}

/// Every read a camera can see in the last `window_ms`, by paging.
pub fn all_reads(url: &str, token: &str, camera: &str, from: i64, to: i64) -> Vec<Value> {
    let mut body = json!({"camera": camera, "from": ts(from), "to": ts(to), "limit": 1000, "purpose": purpose()});
    let mut out = Vec::new();
    loop {
        let page = post(&format!("{url}/api/v1/search"), Some(token), &body).expect("search");
        out.extend(page["results"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => body["cursor"] = json!(c),
            None => return out,
        }
    }
}

pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run platekeeper");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A database of its own for one test, owned by the application's role:
/// its URL, and the same database's URL for the superuser. `None` (the
/// test skipped) without scripts/with-postgres, unless
/// PLATEKEEPER_REQUIRE_POSTGRES is set.
pub fn fresh_database() -> Option<(String, String)> {
    let (Ok(app), Ok(admin)) = (
        std::env::var("PLATEKEEPER_TEST_DATABASE"),
        std::env::var("PLATEKEEPER_TEST_PG_ADMIN"),
    ) else {
        skip(
            "PLATEKEEPER_REQUIRE_POSTGRES",
            "no PostgreSQL (run under scripts/with-postgres)",
        );
        return None;
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "pk_cli_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let out = psql(&admin, &format!("CREATE DATABASE {name} OWNER platekeeper"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = app.rsplit_once('/').expect("url");
    let (admin_base, _) = admin.rsplit_once('/').expect("url");
    Some((format!("{base}/{name}"), format!("{admin_base}/{name}")))
}

/// `psql -XAt URL -c SQL` with the test server's own client.
pub fn psql(url: &str, sql: &str) -> std::process::Output {
    let bin = std::env::var("PLATEKEEPER_TEST_PG_BIN").expect("PLATEKEEPER_TEST_PG_BIN");
    Command::new(format!("{bin}/psql"))
        .args(["-XAt", url, "-c", sql])
        .output()
        .expect("psql")
}

/// A test whose server the test scripts start is skipped without it,
/// unless `require` is set: the scripts set it, and there a missing
/// server is a failure, not a skip.
pub fn skip(require: &str, missing: &str) {
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set, but {missing}"
    );
    eprintln!("skipped: {missing}");
}
