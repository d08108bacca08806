//! A router on a real store in a temporary folder, with a movable clock
//! and ready-made people: an administrator and an officer who are enrolled,
//! trained and approved, signed in through the API.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use platekeeper_core::account::{Training, DAY_MS};
use platekeeper_core::Role;
use platekeeper_server::{router, AppState, Clock};
use platekeeper_store::credentials::totp_code;
use platekeeper_store::{Actor, NewUser, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

/// 2026-11-18T00:53:20Z, where the clock starts.
pub const NOW: i64 = 1_795_000_000_000;
pub const LIMIT: usize = 8 * 1024 * 1024;
pub const PASSWORD: &str = "a long test password";

pub struct Api {
    pub _dir: tempfile::TempDir,
    pub app: Router,
    /// What `app` was built on, for tests that build another router on
    /// the same store with other settings.
    pub state: AppState,
    pub store: Arc<Store>,
    pub alerts: Arc<platekeeper_server::alerts::AlertHub>,
    pub clock: Arc<AtomicI64>,
    /// Session tokens of the ready-made administrator and officer.
    pub admin: String,
    pub officer: String,
    pub secrets: std::collections::HashMap<String, String>,
}

pub async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(dir.path()));
    let now = Arc::new(AtomicI64::new(NOW));
    let c = now.clone();
    let clock: Clock = Arc::new(move || c.load(Ordering::SeqCst));
    let alerts = platekeeper_server::alerts::AlertHub::start_with(
        store.clone(),
        std::time::Duration::from_millis(200),
    );
    let state = AppState {
        alerts: alerts.clone(),
        store: store.clone(),
        clock,
        recognition: Default::default(),
        ops: Default::default(),
        devices: Default::default(),
        passkey_rp: Default::default(),
    };
    let app = router(state.clone(), LIMIT);
    let mut api = Api {
        _dir: dir,
        app,
        state,
        store,
        alerts,
        clock: now,
        admin: String::new(),
        officer: String::new(),
        secrets: Default::default(),
    };
    let (_, secret) = api
        .store
        .create_administrator(
            NewUser {
                username: "capt".into(),
                name: "Dana Reyes".into(),
                role: Role::Administrator,
                title: Some("Captain".into()),
            },
            365,
            NOW - 10 * DAY_MS,
        )
        .unwrap();
    let admin_actor = Actor {
        username: "capt".into(),
        affiliation: "Test PD".into(),
        role: Some("administrator".into()),
        client: None,
    };
    api.store
        .change_password("capt", PASSWORD, &admin_actor, NOW - 10 * DAY_MS)
        .unwrap();
    api.store
        .record_training(
            "capt",
            Training {
                course: "ALPR".into(),
                completed_ms: NOW - 9 * DAY_MS,
                expires_ms: NOW + 300 * DAY_MS,
                recorded_ms: NOW - 9 * DAY_MS,
            },
            &admin_actor,
            NOW - 9 * DAY_MS,
        )
        .unwrap();
    api.secrets.insert("capt".into(), secret);
    api.ready_user("officer1", Role::Officer).await;
    api.admin = api.sign_in_ok("capt").await;
    api.officer = api.sign_in_ok("officer1").await;
    api
}

/// The data key every test store is encrypted under: the server's tests
/// run on SQLCipher files and sealed pictures, as an agency's server
/// does (issue 24).
pub fn test_key() -> std::sync::Arc<platekeeper_store::at_rest::DataKey> {
    std::sync::Arc::new(
        platekeeper_store::at_rest::DataKey::parse(&"5e".repeat(32), "test key").unwrap(),
    )
}

/// The backend the tests run on: the embedded store, or (with
/// PLATEKEEPER_TEST_BACKEND=postgres, as `scripts/test` runs them a
/// second time) PostgreSQL, each store in a new database of its own.
pub fn on_postgres() -> bool {
    std::env::var("PLATEKEEPER_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The database of the store in `dir` (made on first use, so a store
/// reopened in a test finds its own again).
fn database_for(dir: &std::path::Path) -> Option<platekeeper_store::postgres::DatabaseUrl> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static MADE: Mutex<Option<HashMap<std::path::PathBuf, String>>> = Mutex::new(None);
    if !on_postgres() {
        return None;
    }
    let mut made = MADE.lock().unwrap();
    let url = made
        .get_or_insert_with(HashMap::new)
        .entry(dir.to_path_buf())
        .or_insert_with(|| {
            let app = std::env::var("PLATEKEEPER_TEST_DATABASE")
                .expect("PLATEKEEPER_TEST_BACKEND=postgres needs scripts/with-postgres");
            let admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").expect("admin url");
            let mut id = [0u8; 8];
            getrandom::fill(&mut id).unwrap();
            let name: String = std::iter::once("pk_srv_".to_string())
                .chain(id.iter().map(|b| format!("{b:02x}")))
                .collect();
            // On a thread of its own: the synchronous client cannot run
            // on the test's async runtime.
            let create = format!("CREATE DATABASE {name} OWNER platekeeper");
            std::thread::spawn(move || {
                let mut su = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
                su.batch_execute(&create).unwrap();
            })
            .join()
            .unwrap();
            let (base, _) = app.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        })
        .clone();
    Some(platekeeper_store::postgres::DatabaseUrl::parse(&url).unwrap())
}

/// How the store in `dir` is opened, as the server opens it (see
/// [`open_store`]), with the tamper policy's override and the time of
/// the entries written at open.
pub fn store_options(
    dir: &std::path::Path,
    on_tamper: Option<platekeeper_core::checkpoint::OnTamper>,
    now_ms: i64,
) -> platekeeper_store::OpenOptions {
    platekeeper_store::OpenOptions {
        checkpoint_key: Some(dir.join(platekeeper_store::checkpoint::KEY_FILE)),
        on_tamper,
        now_ms: Some(now_ms),
        key: Some(test_key()),
        database: database_for(dir),
        read_database: None,
    }
}

/// The name of the database of the store in `dir`.
fn database_name(dir: &std::path::Path) -> String {
    let url = database_for(dir).expect("a PostgreSQL store").to_string();
    url.rsplit_once('/')
        .and_then(|(_, d)| d.split('?').next())
        .unwrap()
        .to_string()
}

/// Runs `f` with a superuser's connection to the database of the store
/// in `dir` (the insider who can write it), on a thread of its own.
fn as_insider<T: Send>(
    dir: &std::path::Path,
    f: impl FnOnce(&mut postgres::Client) -> T + Send,
) -> T {
    let name = database_name(dir);
    let admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let target = format!("{base}/{name}");
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut c = postgres::Client::connect(&target, postgres::NoTls).unwrap();
            c.batch_execute("SET search_path = platekeeper").unwrap();
            f(&mut c)
        })
        .join()
        .unwrap()
    })
}

/// Runs `sql` on the store's main database behind the API's back, as an
/// attacker with access to the files (embedded) or to the database
/// (PostgreSQL) would.
pub fn tamper(dir: &std::path::Path, sql: &str) {
    if on_postgres() {
        as_insider(dir, |c| c.batch_execute(sql).unwrap());
        return;
    }
    let conn =
        platekeeper_store::at_rest::open_database(&dir.join("platekeeper.db"), Some(&test_key()))
            .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Ends every session the store in `dir` has with its database, as a
/// database restart or a network cut would (PostgreSQL only).
pub fn drop_connections(dir: &std::path::Path) {
    let name = database_name(dir);
    let admin = std::env::var("PLATEKEEPER_TEST_PG_ADMIN").unwrap();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.execute(
            // The node's listener stays: the requests' connections are
            // what this cuts.
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()
               AND application_name <> 'platekeeper-listener'",
            &[&name],
        )
        .unwrap();
    })
    .join()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// Pictures the store in `dir` keeps: (of stored days, held copies) —
/// files in its folder, or rows in its database.
pub fn pictures_stored(dir: &std::path::Path) -> (usize, usize) {
    if on_postgres() {
        return as_insider(dir, |c| {
            let mut n = |sql: &str| c.query_one(sql, &[]).unwrap().get::<_, i64>(0) as usize;
            (
                n("SELECT count(*) FROM pictures"),
                n("SELECT count(*) FROM held_pictures"),
            )
        });
    }
    fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
    let images = dir.join("images");
    let all = files(&images);
    let held = all
        .iter()
        .filter(|p| p.starts_with(images.join("held")))
        .count();
    (all.len() - held, held)
}

/// Days of reads the store in `dir` keeps: day files, or partitions.
pub fn read_days_stored(dir: &std::path::Path) -> usize {
    if on_postgres() {
        return as_insider(dir, |c| {
            c.query_one(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reads'::regclass",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0) as usize
        });
    }
    std::fs::read_dir(dir.join("reads"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "db"))
                .count()
        })
        .unwrap_or(0)
}

/// Rewrites the log behind the server's back, consistently (every hash
/// recomputed, the head file or head row moved to match): entries from
/// `keep` on are dropped, entry 2's details changed when `edit`.
pub fn rewrite_log(dir: &std::path::Path, keep: Option<i64>, edit: bool) {
    let change = move |mut log: Vec<platekeeper_store::LogEntry>| {
        if let Some(n) = keep {
            log.truncate(n as usize);
        }
        if edit {
            log[1].details = "{\"rewritten\":true}".into();
        }
        log
    };
    if on_postgres() {
        as_insider(dir, |c| {
            let log = platekeeper_store::postgres::log::read_entries(c).unwrap();
            platekeeper_store::postgres::log::forge(c, change(log)).unwrap();
        });
        return;
    }
    let conn =
        platekeeper_store::at_rest::open_database(&dir.join("platekeeper.db"), Some(&test_key()))
            .unwrap();
    let log = platekeeper_store::log::read_entries(&conn).unwrap();
    platekeeper_store::log::forge(&conn, dir, change(log)).unwrap();
}

/// The store in `dir` as the server opens it: encrypted, with a
/// checkpoint key in the folder (so checkpoints can be signed), its log
/// started before the test's clock; on PostgreSQL when the tests run
/// there (see [`on_postgres`]).
pub fn open_store(dir: &std::path::Path) -> Store {
    Store::open_with(dir, store_options(dir, None, NOW - 11 * DAY_MS)).unwrap()
}

/// Where the log stood: its newest entry and the durable commits so far.
#[derive(Debug, Clone, Copy)]
pub struct LogMark {
    seq: i64,
    commits: u64,
}

impl Api {
    /// The log as it stands, to compare with later ([`Api::since`]).
    pub fn mark(&self) -> LogMark {
        LogMark {
            seq: self.store.log_entries(None, None, 1).unwrap()[0].seq,
            commits: self.store.log_commits().unwrap().commits,
        }
    }

    /// The entries written since `mark`, oldest first, and the durable
    /// commits they took.
    pub fn since(&self, mark: LogMark) -> (Vec<platekeeper_store::LogEntry>, u64) {
        let mut entries: Vec<_> = self
            .store
            .log_entries(None, None, 10_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.seq > mark.seq)
            .collect();
        entries.reverse();
        let commits = self.store.log_commits().unwrap().commits - mark.commits;
        (entries, commits)
    }

    /// Registers a fixed camera `id` as the administrator; its API key.
    pub async fn camera_key(&self, id: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/cameras",
                Some(&self.admin),
                Some(json!({"id": id, "name": id, "kind": "fixed", "lat": 37.8044, "lon": -122.2712})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["api_key"].as_str().unwrap().to_string()
    }

    /// Sends `{"reads": reads}` as the camera holding `key`.
    pub async fn post_reads(&self, key: &str, reads: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                Request::post("/api/v1/reads")
                    .header(header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json!({ "reads": reads }).to_string()))
                    .unwrap(),
            )
            .await;
        (s, v)
    }

    /// The kinds of the newest 10,000 log entries, newest first.
    pub fn log_kinds(&self) -> Vec<String> {
        self.store
            .log_entries(None, None, 10_000)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Moves the clock (forward past a TOTP step too, so a code can be
    /// used again).
    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// A user created, enrolled, trained and approved through the store.
    pub async fn ready_user(&mut self, username: &str, role: Role) {
        let until = self.now() + 360 * DAY_MS;
        self.ready_user_until(username, role, until).await;
    }

    /// As [`Api::ready_user`], with the approval ending at `approved_until`.
    pub async fn ready_user_until(&mut self, username: &str, role: Role, approved_until: i64) {
        let t = self.now() - 5 * DAY_MS;
        let admin = Actor {
            username: "capt".into(),
            affiliation: "Test PD".into(),
            role: Some("administrator".into()),
            client: None,
        };
        self.store
            .create_user(
                NewUser {
                    username: username.into(),
                    name: format!("Test {username}"),
                    role,
                    title: None,
                },
                &admin,
                t,
            )
            .unwrap();
        self.store
            .change_password(username, PASSWORD, &admin, t)
            .unwrap();
        let secret = self.store.begin_totp(username, t).unwrap();
        let code = totp_code(&secret, (t / 1000) as u64).unwrap();
        assert!(self.store.confirm_totp(username, &code, t).unwrap());
        self.store
            .record_training(
                username,
                Training {
                    course: "ALPR".into(),
                    completed_ms: t,
                    expires_ms: t + 365 * DAY_MS,
                    recorded_ms: t,
                },
                &admin,
                t,
            )
            .unwrap();
        self.store
            .record_approval(username, approved_until, &admin, t)
            .unwrap();
        self.secrets.insert(username.into(), secret);
    }

    pub fn code(&self, username: &str) -> String {
        totp_code(&self.secrets[username], (self.now() / 1000) as u64).unwrap()
    }

    /// Signs in with the right password and code; returns the response.
    pub async fn sign_in(&self, username: &str) -> (StatusCode, Value) {
        // A code is good once: step the clock past the last one used.
        self.advance(30_000);
        let body = json!({"username": username, "password": PASSWORD, "totp": self.code(username)});
        self.call("POST", "/api/v1/session", None, Some(body)).await
    }

    pub async fn sign_in_ok(&self, username: &str) -> String {
        let (s, v) = self.sign_in(username).await;
        assert_eq!(s, StatusCode::OK, "sign-in of {username}: {v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// One request as from 127.0.0.1, the whole response back.
    pub async fn respond(&self, req: Request<Body>) -> axum::response::Response {
        self.respond_from(req, SocketAddr::from(([127, 0, 0, 1], 40000)))
            .await
    }

    /// One request as from `addr`, the whole response back.
    pub async fn respond_from(
        &self,
        mut req: Request<Body>,
        addr: SocketAddr,
    ) -> axum::response::Response {
        req.extensions_mut().insert(ConnectInfo(addr));
        self.app.clone().oneshot(req).await.unwrap()
    }

    /// A sign-in attempt as from `ip`: status, body and `Retry-After`.
    pub async fn sign_in_from(
        &self,
        ip: [u8; 4],
        body: Value,
    ) -> (StatusCode, Value, Option<String>) {
        let req = Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.respond_from(req, SocketAddr::from((ip, 40000))).await;
        let status = resp.status();
        let retry = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            retry,
        )
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value, Vec<u8>) {
        let resp = self.respond(req).await;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, bytes)
    }

    /// One request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .unwrap();
        let (s, v, _) = self.send(req).await;
        (s, v)
    }
}

/// An open Server-Sent Events response body, read event by event.
pub struct EventStream {
    body: Body,
    buf: String,
}

impl Api {
    /// Opens `GET path` as an event stream; panics unless it is a 200.
    pub async fn open_stream(&self, path: &str, token: &str) -> EventStream {
        let mut req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40001))));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        EventStream {
            body: resp.into_body(),
            buf: String::new(),
        }
    }
}

impl EventStream {
    /// The next event's name and data, or `None` if none comes within
    /// `wait` (or the stream ended).
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // a keep-alive comment
                }
                return Some((event, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(bytes) = frame.ok()?.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
