//! The listener on real sockets (issue 22 finding 4): slow clients are
//! cut off after the header and body timeouts, connection caps per
//! address and in all keep `/healthz` and camera ingest answering while
//! slow connections hold every place, and long responses (the alert
//! stream) are not cut by any of it. Clients come from several loopback
//! addresses (Linux answers on all of 127/8) to stand for attacker and
//! camera.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use platekeeper_server::net::{self, NetLimits};
use serde_json::{json, Value};
use support::{api, Api, NOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const OTHER_ATTACKER: [u8; 4] = [127, 0, 0, 3];
const CAMERA: [u8; 4] = [127, 0, 0, 2];

/// Serves the test API on 127.0.0.1 with `limits`; returns its address.
async fn start(api: &Api, limits: NetLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(net::serve(
        listener,
        api.app.clone(),
        limits,
        std::future::pending(),
    ));
    addr
}

fn short_limits(max_connections: usize, per_address: usize) -> NetLimits {
    NetLimits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        send_timeout: Duration::from_secs(1),
        max_connections,
        max_connections_per_address: per_address,
    }
}

async fn connect_from(src: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((src, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// A client that sends half a request head and then nothing.
async fn slow_client(src: [u8; 4], to: SocketAddr) -> TcpStream {
    let mut s = connect_from(src, to).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: platekeeper\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Whether the server closes `s` within `within` (without answering).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// One whole request, `Connection: close`; the status, the headers (lower
/// case) and the body as JSON.
async fn exchange(
    src: [u8; 4],
    to: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, Value) {
    let mut s = connect_from(src, to).await;
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: platekeeper\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    parse(&answer)
}

fn parse(answer: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn reads(n: u32, plate: &str) -> Value {
    json!({"reads": [{
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "plate": plate,
        "state": "CA",
        "ts": platekeeper_core::read::format_time_ms(NOW - 30_000),
    }]})
}

#[tokio::test]
async fn slow_clients_cannot_keep_health_checks_or_cameras_out() {
    // Issue 22 finding 4: 3 connections per address, 6 in all, headers
    // due within 2 s.
    let api = api().await;
    let key = api.camera_key("cam-net").await;
    let addr = start(&api, short_limits(6, 3)).await;

    // One address opens more slow connections than it may hold: each one
    // over its cap takes the place of its own oldest.
    let opened = Instant::now();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(slow_client(ATTACKER, addr).await);
    }
    let mut second = Vec::new();
    for _ in 0..3 {
        second.push(slow_client(ATTACKER, addr).await);
    }
    for s in &mut first {
        assert!(
            closed_within(s, Duration::from_millis(1500)).await,
            "a connection over the address's cap replaced its oldest"
        );
    }
    assert!(
        opened.elapsed() < Duration::from_secs(2),
        "before any timeout"
    );

    // A second address fills the server.
    let mut third = Vec::new();
    for _ in 0..3 {
        third.push(slow_client(OTHER_ATTACKER, addr).await);
    }

    // Health checks and the camera still get in, at once.
    let asked = Instant::now();
    let (status, _, health) = exchange(CAMERA, addr, "GET", "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, _, report) = exchange(
        CAMERA,
        addr,
        "POST",
        "/api/v1/reads",
        Some(&key),
        Some(&reads(1, "8NET001")),
    )
    .await;
    assert_eq!((status, &report["accepted"]), (200, &json!(1)), "{report}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "answered without waiting for the slow clients: {:?}",
        asked.elapsed()
    );

    // Every slow connection still open is closed by the header timeout.
    for s in second.iter_mut().chain(third.iter_mut()) {
        assert!(
            closed_within(s, Duration::from_secs(4)).await,
            "a slow head is cut off after the header timeout"
        );
    }
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_with_408() {
    let api = api().await;
    let key = api.camera_key("cam-body").await;
    let addr = start(&api, short_limits(8, 8)).await;
    let mut s = connect_from(CAMERA, addr).await;
    let head = format!(
        "POST /api/v1/reads HTTP/1.1\r\nHost: platekeeper\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"reads\": ["
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let (status, head, body) = parse(&answer);
    assert_eq!(status, 408, "{head}");
    assert_eq!(body["error"]["code"], "body_timeout", "{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(sent.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn alert_streams_outlive_every_timeout_and_are_never_displaced() {
    // Long responses are not cut (the idle, header and send timeouts are
    // 1–2 s; the streams stay open past them), and connections with a
    // request in progress are never taken over: a new connection from a
    // full address is refused instead.
    let api = api().await;
    let key = api.camera_key("cam-stream").await;
    let addr = start(&api, short_limits(8, 2)).await;
    let mut streams = Vec::new();
    for token in [&api.officer, &api.admin] {
        let mut s = connect_from(ATTACKER, addr).await;
        let req = format!(
            "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: platekeeper\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        streams.push(s);
    }
    let mut third = slow_client(ATTACKER, addr).await;
    assert!(
        closed_within(&mut third, Duration::from_millis(500)).await,
        "an address whose connections are all busy gets no more"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/hotlists",
            Some(&api.admin),
            Some(json!({"name": "SVS", "kind": "stolen_vehicle", "retention_days": 60, "fuzzy": false})),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let list = v["id"].as_i64().unwrap();
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/hotlists/{list}/entries"),
            Some(&api.admin),
            Some(
                json!({"plate": "7NET777", "state": "CA", "reason": "stolen 10851 VC",
                        "case_number": "26-0042",
                        "expires_at": platekeeper_core::read::format_time_ms(NOW + 86_400_000)}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let (status, _, report) = exchange(
        CAMERA,
        addr,
        "POST",
        "/api/v1/reads",
        Some(&key),
        Some(&reads(7, "7NET777")),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    for s in &mut streams {
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !seen.contains("event: alert") && Instant::now() < deadline {
            let mut buf = vec![0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                other => panic!("the stream ended: {other:?} after {seen}"),
            }
        }
        assert!(seen.contains("7NET777"), "{seen}");
    }
}
