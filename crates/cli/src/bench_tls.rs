//! `platekeeper bench --suite tls` (issue 24): what HTTPS and the device
//! check add to an officer's exact-plate search, through the server's
//! own listener on loopback. One store serves two listeners at once,
//! plain HTTP and HTTPS; each is measured with one client connection
//! kept open (as a patrol car's browser keeps it), and with a new
//! connection (and so a full handshake) per search. The HTTPS runs are
//! made with the device rule off (TLS alone) and on, the connection
//! presenting a registered device's certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use platekeeper_core::read::TimeInput;
use platekeeper_core::{RawRead, Role};
use platekeeper_server::device_certs;
use platekeeper_store::{Actor, CameraKind, IngestItem, NewCamera, NewDevice, Store};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::bench::{percentile, round3};
use crate::now_ms;

const PLATES: usize = 10_000;

pub fn run(json_only: bool, reads: u64, queries: usize) -> anyhow::Result<()> {
    let say = |s: String| {
        if !json_only {
            eprintln!("{s}");
        }
    };
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path())?);
    let now = now_ms();
    let admin = Actor::system("bench");
    let (camera, _) = store.create_camera(
        NewCamera {
            id: "bench-tls".into(),
            name: "TLS bench".into(),
            kind: CameraKind::Fixed,
            position: Some(platekeeper_core::GeoPoint::new(37.8044, -122.2712)?),
        },
        &admin,
        now,
    )?;
    let n = reads as usize;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let items = chunk
            .iter()
            .map(|&i| {
                let raw = RawRead {
                    plate: Some(format!("7TL{:04}", i % PLATES)),
                    state: Some("CA".into()),
                    ts: Some(TimeInput::EpochMs(now - 86_400_000 + i as i64 * 50)),
                    ..RawRead::default()
                };
                Ok(IngestItem {
                    camera: camera.num,
                    read: raw.validate(now, "bench-tls")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.ingest(&items)?;
    }
    say(format!("{n} reads of {PLATES} plates ingested"));
    let password = "bench tls officer password";
    let secret = crate::demo::ready_user(
        &store,
        "officer",
        "Officer",
        Role::Officer,
        password,
        &admin,
        now,
    )?;
    let code =
        platekeeper_store::credentials::totp_code(&secret, (now / 1000) as u64).unwrap_or_default();

    // The agency's authority and one device.
    let authority = Arc::new(device_certs::DeviceAuthority::new(Vec::new()));
    let ca = authority.ensure(&store, &admin, now)?;
    let issued = device_certs::issue(&ca, "Bench MDT", now)?;
    store.register_device(
        NewDevice {
            name: "Bench MDT".into(),
            assigned_to: Some("officer".into()),
            fingerprint: issued.fingerprint,
            serial: issued.serial.clone(),
            not_after_ms: issued.not_after_ms,
        },
        &admin,
        now,
    )?;
    let (key, chain) = device_certs::open_pkcs12(&issued.pkcs12, &issued.passphrase)
        .map_err(anyhow::Error::msg)?;
    let device = (PrivateKeyDer::Pkcs8(key), chain);

    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let server_der = server.cert.der().clone();
    let tls_config = device_certs::server_config(
        server.cert.pem().as_bytes(),
        server.signing_key.serialize_pem().as_bytes(),
    )
    .map_err(anyhow::Error::msg)?;

    let rt = crate::runtime()?;
    let figures = rt.block_on(async move {
        let state = platekeeper_server::AppState {
            alerts: platekeeper_server::alerts::AlertHub::start(store.clone()),
            store: store.clone(),
            clock: platekeeper_server::system_clock(),
            recognition: Default::default(),
            ops: Default::default(),
            devices: authority,
            passkey_rp: Default::default(),
        };
        let app = platekeeper_server::router(state, 1 << 20);
        let mut limits = platekeeper_server::net::NetLimits::default();
        limits.max_connections_per_address = limits.max_connections;
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let secure = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (plain_addr, secure_addr) = (plain.local_addr()?, secure.local_addr()?);
        tokio::spawn(platekeeper_server::net::serve(plain, app.clone(), limits.clone(), std::future::pending()));
        tokio::spawn(platekeeper_server::net::serve_tls(
            secure,
            app,
            limits,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config))),
            std::future::pending(),
        ));
        let client = Client {
            server_cert: server_der,
            device,
        };
        // Sign in once (over plain HTTP; sign-in needs no device).
        let mut conn = client.plain(plain_addr).await?;
        let (status, body) = conn
            .call("POST", "/api/v1/session", None, &json!({"username": "officer", "password": password, "totp": code}))
            .await?;
        if status != 200 {
            bail!("sign-in failed: {status} {body}");
        }
        let token: String = serde_json::from_str::<serde_json::Value>(&body)?["token"]
            .as_str()
            .context("no token")?
            .to_string();
        let mut rng = crate::synthetic::Rng::new(7);
        let mut body = || {
            json!({"plate": format!("7TL{:04}", rng.below(PLATES as u64)), "limit": 100,
                   "purpose": {"case_number": "26-000001", "offense": "211 PC", "reason": "benchmark of the search over HTTPS"}})
        };
        let mut figures = serde_json::Map::new();
        let set_rule = |on: bool| {
            store.update_policy(
                |p| {
                    let mut p = p.clone();
                    p.devices_required = on;
                    Ok(p)
                },
                platekeeper_store::Confirm::All,
                &Actor::system("bench"),
                now_ms(),
            )
        };
        for (name, rule, secure, fresh) in [
            ("http_kept", false, false, false),
            ("https_kept", false, true, false),
            ("https_device_kept", true, true, false),
            ("http_new_connection", false, false, true),
            ("https_device_new_connection", true, true, true),
        ] {
            set_rule(rule)?;
            let mut times = Vec::with_capacity(queries);
            let mut kept: Option<Box<dyn Conn>> = None;
            for i in 0..queries + 20 {
                let started = Instant::now();
                if fresh || kept.is_none() {
                    kept = Some(if secure {
                        Box::new(client.tls(secure_addr).await?)
                    } else {
                        Box::new(client.plain(plain_addr).await?)
                    });
                }
                let c = kept.as_mut().context("a connection")?;
                let (status, text) = c.call("POST", "/api/v1/search", Some(&token), &body()).await?;
                if status != 200 {
                    bail!("{name}: search answered {status}: {text}");
                }
                // The first 20 warm the connection and the store.
                if i >= 20 {
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
            let (p50, p99) = (percentile(&mut times, 0.50), percentile(&mut times, 0.99));
            say(format!("{name}: p50 {p50:.3} ms, p99 {p99:.3} ms"));
            figures.insert(format!("{name}_p50_ms"), json!(round3(p50)));
            figures.insert(format!("{name}_p99_ms"), json!(round3(p99)));
        }
        figures.insert("reads".into(), json!(n));
        figures.insert("queries".into(), json!(queries));
        Ok::<_, anyhow::Error>(serde_json::Value::Object(figures))
    })?;
    println!("{figures}");
    Ok(())
}

struct Client {
    server_cert: CertificateDer<'static>,
    device: (PrivateKeyDer<'static>, Vec<CertificateDer<'static>>),
}

impl Client {
    async fn plain(&self, addr: SocketAddr) -> anyhow::Result<Stream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Stream(BufReader::new(tcp)))
    }

    async fn tls(
        &self,
        addr: SocketAddr,
    ) -> anyhow::Result<Stream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.server_cert.clone())?;
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.device.1.clone(), self.device.0.clone_key())?;
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        Ok(Stream(BufReader::new(tls)))
    }
}

/// One kept-alive HTTP/1.1 connection.
struct Stream<S>(BufReader<S>);

/// An answer to come: its status and body.
type Answer<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<(u16, String)>> + 'a>>;

/// A kept-alive HTTP/1.1 connection, plain or TLS.
trait Conn {
    fn call<'a>(
        &'a mut self,
        method: &'a str,
        path: &'a str,
        token: Option<&'a str>,
        body: &'a serde_json::Value,
    ) -> Answer<'a>;
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn for Stream<S> {
    fn call<'a>(
        &'a mut self,
        method: &'a str,
        path: &'a str,
        token: Option<&'a str>,
        body: &'a serde_json::Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<(u16, String)>> + 'a>>
    {
        Box::pin(async move {
            let body = body.to_string();
            let auth = token
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            self.0.get_mut().write_all(req.as_bytes()).await?;
            let mut line = String::new();
            self.0.read_line(&mut line).await?;
            let status: u16 = line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
            let mut length = 0usize;
            loop {
                line.clear();
                self.0.read_line(&mut line).await?;
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse()?;
                    }
                }
            }
            let mut buf = vec![0u8; length];
            self.0.read_exact(&mut buf).await?;
            Ok((status, String::from_utf8_lossy(&buf).into_owned()))
        })
    }
}
