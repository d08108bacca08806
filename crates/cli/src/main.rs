//! The `platekeeper` command: serve, demo, import, bench.

mod admin;
mod bench;
mod bench_audit;
mod bench_cluster;
mod bench_evidence;
mod bench_hotlists;
mod bench_postgres;
mod bench_tls;
mod demo;
mod import;
mod keys;
mod limits;
mod retention;
mod synthetic;
mod vision;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "platekeeper",
    version,
    about = "ALPR read store, search and accountability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; boxing `serve`'s options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server with its embedded database (or on PostgreSQL, with
    /// --database).
    Serve {
        /// Data folder (created on first start).
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Largest request body accepted, in MiB.
        #[arg(long, default_value_t = 32)]
        max_body_mb: usize,
        /// The audit log's checkpoint signing key (created if missing);
        /// default DATA/checkpoint.key. Keep it off the data folder's
        /// backups and readable only by the server's user.
        #[arg(long)]
        checkpoint_key: Option<PathBuf>,
        /// What to do, this start only, if the audit log fails its check
        /// against its last checkpoint: refuse, or alarm (start, alarmed,
        /// until an administrator or auditor acknowledges it). Without
        /// it, the policy's audit.on_tamper decides (default refuse).
        #[arg(long, value_parser = parse_on_tamper)]
        on_tamper: Option<platekeeper_core::checkpoint::OnTamper>,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        /// Clients may then present an agency device certificate.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// A TLS-terminating proxy's address whose `x-client-cert` header
        /// (the client's device certificate, URL-escaped PEM) is believed;
        /// repeat for several. No other address can set it.
        #[arg(long)]
        trusted_proxy: Vec<std::net::IpAddr>,
        /// The address people open Platekeeper at (https://HOST[:PORT]);
        /// passkeys are bound to its host name. Without it passkeys work
        /// only on localhost.
        #[arg(long, value_parser = platekeeper_server::passkeys::parse_public_url)]
        public_url: Option<platekeeper_server::passkeys::Url>,
        /// This node's name in its log lines, health check and metrics
        /// (or PLATEKEEPER_NODE_NAME); the machine's name by default.
        /// Give each node of a cluster its own.
        #[arg(long, value_name = "NAME")]
        node_name: Option<String>,
        /// A hot standby of --database that searches of reads run on (or
        /// PLATEKEEPER_READ_DATABASE; the access is still logged on the
        /// primary first); searches go to the primary while it cannot be
        /// reached, for 30 s after it fails, and while it is more than
        /// 16 MiB of WAL behind. A standby replays a little behind: a read
        /// acknowledged a moment ago may not be found yet.
        #[arg(long, value_name = "URL")]
        read_database: Option<String>,
        #[command(flatten)]
        limits: ServeLimits,
    },
    /// Start a server on a throw-away data folder filled with sample data.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Sample reads to generate.
        #[arg(long, default_value_t = 1_000_000)]
        reads: u64,
    },
    /// Bulk imports.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// The performance benchmark (see docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Administration.
    Admin {
        #[command(subcommand)]
        what: AdminWhat,
    },
    /// Print the current two-factor code for a TOTP secret (for the demo
    /// and scripts; an authenticator app does the same).
    Totp {
        #[arg(long)]
        secret: String,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        what: AuditWhat,
    },
    /// Moves an embedded store (the server stopped) into an empty
    /// PostgreSQL database: every read, picture, account, the whole log
    /// with its chain unchanged, hot lists, holds, sharing records,
    /// settings. Resumable: run it again to finish a stopped run.
    Migrate {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        /// The data key of an encrypted store (--key-file or
        /// PLATEKEEPER_DATA_KEY).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The target database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB
        /// (or PLATEKEEPER_DATABASE).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
    /// Applies retention now: removes what is past each class's period
    /// (the server also does this daily).
    Purge {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        /// Show what would go; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Shows, or sets, the retention period of each class of data.
    Retention(retention::RetentionArgs),
    /// Reads the plates in pictures (JPEG or PNG); one JSON line per image.
    Recognize {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Each picture is already one plate (skip detection).
        #[arg(long)]
        crop: bool,
    },
    /// Scores the recognizer on a labelled folder (plate crops with
    /// groundtruth.csv, or road photos with NAME.txt boxes); the last line
    /// is one JSON object.
    Eval {
        #[arg(long)]
        dataset: PathBuf,
        /// all, held (images the models never trained on) or train.
        #[arg(long, default_value = "all")]
        split: String,
        /// One line per image on stderr.
        #[arg(long)]
        verbose: bool,
        /// Score this character model (ONNX, as `training/` exports it)
        /// instead of the one built in.
        #[arg(long)]
        ocr_model: Option<PathBuf>,
        /// Score this plate detector (ONNX, as `training/` exports it)
        /// instead of the one built in.
        #[arg(long)]
        detector_model: Option<PathBuf>,
    },
    /// Evidence packages.
    Evidence {
        #[command(subcommand)]
        what: EvidenceWhat,
    },
    /// The data key of an encrypted store (see README, Encryption at
    /// rest).
    Keys {
        #[command(subcommand)]
        what: KeysWhat,
    },
}

#[derive(Subcommand)]
enum KeysWhat {
    /// Make a new data key in a new file (mode 0600). Keep it outside the
    /// data folder and its backups.
    Init {
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Encrypt a plain store (the server stopped) under the key in FILE,
    /// made if missing; shows progress and can be run again to finish
    /// an interrupted run.
    Encrypt {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// A store in this PostgreSQL database (or PLATEKEEPER_DATABASE):
        /// its pictures are sealed under the key too.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Re-encrypt a store (the server stopped) from its current key
    /// (--key-file or PLATEKEEPER_DATA_KEY) to the key in
    /// --new-key-file, made if missing; can be run again to finish an
    /// interrupted run.
    Rotate {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// The listener's timeouts and caps, `/metrics` access, the disk floor
/// and the bounds on plate reading (issue 22 findings 4, 10, 11, 14).
#[derive(clap::Args)]
struct ServeLimits {
    /// Seconds a client has to send a request's headers, from connecting
    /// (or from the first byte of its next request).
    #[arg(long, default_value_t = 10)]
    header_timeout_s: u64,
    /// Seconds a client has to send a request's body, after its headers.
    #[arg(long, default_value_t = 60)]
    body_timeout_s: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value_t = 60)]
    idle_timeout_s: u64,
    /// Seconds a response may make no progress (the client reading
    /// nothing) before its connection is closed.
    #[arg(long, default_value_t = 60)]
    send_timeout_s: u64,
    /// Most connections at once (lowered to fit the descriptor limit).
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Most connections from one client address (IPv6: one /64). Behind
    /// a reverse proxy every client has the proxy's address: raise it.
    #[arg(long, default_value_t = 64)]
    max_connections_per_address: usize,
    /// Bearer token for GET /metrics (16 characters or more). Prefer the
    /// environment variable PLATEKEEPER_METRICS_TOKEN: a flag shows in
    /// the process list. Without a token or --metrics-listen, /metrics
    /// answers 404.
    #[arg(long)]
    metrics_token: Option<String>,
    /// Serve /metrics only on this separate address (keep it private).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Ingest answers 507 storage_full while less than this many MiB are
    /// free on the data disk (0: only when a write fails).
    #[arg(long, default_value_t = 256)]
    min_free_mb: u64,
    /// Most pictures of one camera waiting for, or in, plate reading;
    /// more are refused with 429 recognition_busy and Retry-After.
    #[arg(long, default_value_t = 8)]
    recognition_queue: usize,
    /// Pictures read at once, all cameras together [default: the cores].
    #[arg(long)]
    recognition_workers: Option<usize>,
}

impl ServeLimits {
    fn apply(self, config: &mut platekeeper_server::Config) {
        use std::time::Duration;
        config.net = platekeeper_server::net::NetLimits {
            header_timeout: Duration::from_secs(self.header_timeout_s),
            body_timeout: Duration::from_secs(self.body_timeout_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            send_timeout: Duration::from_secs(self.send_timeout_s),
            max_connections: limits::fit_descriptors(self.max_connections),
            max_connections_per_address: self.max_connections_per_address,
        };
        config.metrics_token = self
            .metrics_token
            .or_else(|| std::env::var("PLATEKEEPER_METRICS_TOKEN").ok())
            .filter(|t| !t.is_empty());
        config.metrics_listen = self.metrics_listen;
        config.min_free_bytes = self.min_free_mb.saturating_mul(1024 * 1024);
        config.recognition.per_camera = self.recognition_queue;
        if let Some(w) = self.recognition_workers {
            config.recognition.workers = w;
        }
    }
}

#[derive(Subcommand)]
enum EvidenceWhat {
    /// Checks every file of a package against its manifest; exit 1 if
    /// anything is missing, altered or unlisted.
    Verify { file: PathBuf },
}

#[derive(Subcommand)]
enum AdminWhat {
    /// Create the first ALPR Administrator (run with the server stopped).
    /// The last line of output is JSON: {username, one_time_password, totp_secret}.
    Create {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        #[arg(long)]
        username: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Title, e.g. "Captain".
        #[arg(long)]
        title: String,
    },
    /// Unlock an account locked by failed sign-ins, an administrator's
    /// too. Works while the server runs (the server applies the request
    /// within a second); logged as account_unlocked by cli:<OS user>.
    Unlock {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum AuditWhat {
    /// Check the whole access log's hash chain (read-only; safe while the
    /// server runs). Exit 0 if intact, 1 naming the first bad entry.
    Verify {
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
        /// Also prove that the log extends this signed checkpoint, saved
        /// earlier (from GET /api/v1/audit/checkpoint, the transparency
        /// page's JSON or an audit report's JSON).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
}

fn parse_on_tamper(s: &str) -> Result<platekeeper_core::checkpoint::OnTamper, String> {
    platekeeper_core::checkpoint::OnTamper::parse(s)
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Import reads from CSV: id,plate,state,ts,lat,lon,camera,confidence
    Reads {
        file: PathBuf,
        #[arg(long, default_value = "./platekeeper-data")]
        data: PathBuf,
        #[command(flatten)]
        key: keys::KeyArgs,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// As [`init_logging`], every line starting `node=NAME` so that the logs
/// of a cluster's nodes, gathered in one place, say which node wrote
/// what (issue 26).
fn init_node_logging(node: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let prefix: &'static [u8] = Box::leak(format!("node={node} ").into_bytes().into_boxed_slice());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || NodeLine(prefix))
        .init();
}

/// Writes each log event to stderr after the node's name, in one write
/// (the formatter hands over a whole event at a time).
struct NodeLine(&'static [u8]);

impl std::io::Write for NodeLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = Vec::with_capacity(self.0.len() + buf.len());
        line.extend_from_slice(self.0);
        line.extend_from_slice(buf);
        std::io::stderr().lock().write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Keeps glibc from returning the recognizer's buffers to the kernel
/// after every photo. Each network layer allocates a tensor of a few MB;
/// by default glibc serves those with fresh `mmap`s and trims the heap
/// when they are freed, so every photo paid for faulting in and zeroing
/// its memory again: a fifth of the time per photo (perf). With these
/// limits the freed buffers stay in the heap (at most 64 MiB of it idle)
/// and are reused: 58 → 42 ms median on 1280×720 photos (BENCHMARKS.md).
/// Whatever this process creates (a package written with `-o`, a file
/// a library makes on its own) is this account's alone: the store sets
/// its own files' modes, and this covers everything else (issue 22
/// finding 3).
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    private_files();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            data,
            key,
            listen,
            max_body_mb,
            checkpoint_key,
            on_tamper,
            tls_cert,
            tls_key,
            trusted_proxy,
            public_url,
            limits,
            node_name,
            read_database,
        } => {
            let node = platekeeper_server::node_name(
                &node_name
                    .or_else(|| std::env::var("PLATEKEEPER_NODE_NAME").ok())
                    .unwrap_or_default(),
            );
            init_node_logging(&node);
            let data_key = key.load()?;
            let _lock = keys::check_and_lock(&data, data_key.as_deref())?;
            let mut config = platekeeper_server::Config::new(data.clone(), listen);
            config.data_key = data_key;
            config.database = key.database()?;
            config.read_database =
                platekeeper_store::postgres::DatabaseUrl::reading_from_option_or_env(
                    read_database.as_deref(),
                )?;
            if config.read_database.is_some() && config.database.is_none() {
                anyhow::bail!("--read-database needs --database (or PLATEKEEPER_DATABASE): searches go to a standby of the primary");
            }
            config.max_body_bytes = max_body_mb.saturating_mul(1024 * 1024);
            limits.apply(&mut config);
            config.checkpoint_key = checkpoint_key;
            config.on_tamper = on_tamper;
            config.tls = tls_cert
                .zip(tls_key)
                .map(|(cert, key)| platekeeper_server::TlsFiles { cert, key });
            config.trusted_proxies = trusted_proxy;
            config.public_url = public_url;
            config.node_name = node;
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            runtime()?.block_on(platekeeper_server::serve(config, |addr| {
                tracing::info!(data = %data.display(), "listening on {scheme}://{addr}");
                println!("platekeeper listening on {scheme}://{addr}");
            }))
        }
        Command::Demo { listen, reads } => {
            init_logging();
            demo::run(listen, reads)
        }
        Command::Import {
            what: ImportWhat::Reads { file, data, key },
        } => import::reads(&file, &data, &key),
        Command::Bench(args) => bench::run(args),
        Command::Admin {
            what:
                AdminWhat::Create {
                    data,
                    key,
                    username,
                    name,
                    title,
                },
        } => admin::create(&data, &key, &username, &name, &title),
        Command::Admin {
            what:
                AdminWhat::Unlock {
                    data,
                    key,
                    username,
                },
        } => admin::unlock(&data, &key, &username),
        Command::Audit {
            what:
                AuditWhat::Verify {
                    data,
                    key,
                    checkpoint,
                },
        } => match key.database()? {
            Some(url) => admin::verify_postgres(&url, checkpoint.as_deref()),
            None => admin::verify(&data, &key, checkpoint.as_deref()),
        },
        Command::Purge { data, key, dry_run } => retention::purge(&data, &key, dry_run),
        Command::Migrate { data, key_file, to } => admin::migrate(&data, key_file, to.as_deref()),
        Command::Keys { what } => match what {
            KeysWhat::Init { key_file } => keys::init(&key_file),
            KeysWhat::Encrypt {
                data,
                key_file,
                database,
            } => keys::encrypt(&data, &key_file, database.as_deref()),
            KeysWhat::Rotate {
                data,
                key,
                new_key_file,
            } => keys::rotate(&data, &key, &new_key_file),
        },
        Command::Retention(args) => retention::retention(&args),
        Command::Evidence {
            what: EvidenceWhat::Verify { file },
        } => retention::verify_evidence(&file),
        Command::Recognize { images, crop } => vision::recognize(&images, crop),
        Command::Eval {
            dataset,
            split,
            verbose,
            ocr_model,
            detector_model,
        } => vision::evaluate(
            &dataset,
            &split,
            verbose,
            vision::Models {
                ocr: ocr_model.as_deref(),
                detector: detector_model.as_deref(),
            },
        ),
        Command::Totp { secret } => {
            let now = (now_ms() / 1000).max(0) as u64;
            match platekeeper_store::credentials::totp_code(secret.trim(), now) {
                Some(code) => {
                    println!("{code}");
                    Ok(())
                }
                None => anyhow::bail!("--secret is not a base32 TOTP secret of at least 128 bits"),
            }
        }
    }
}

/// The wall clock in epoch milliseconds (the server's own clock).
pub(crate) fn now_ms() -> i64 {
    (platekeeper_server::system_clock())()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
