//! The HTTP listener: accepts connections, bounds how many there are and
//! how long a client may take to send its request, and hands requests to
//! the router (issue 22 finding 4).
//!
//! `axum::serve` reads headers and bodies for as long as a client cares
//! to take and accepts connections until the process runs out of
//! descriptors, so a few hundred slow clients stopped every camera. Here:
//!
//! - a client has `header_timeout` to send a complete request head, from
//!   the moment it connects (or, on a kept-alive connection, from the
//!   first byte of the next request);
//! - a kept-alive connection may wait `idle_timeout` for its next request;
//! - a request body must have arrived `body_timeout` after its head (else
//!   408 `body_timeout` and the connection closes);
//! - a response that makes no progress for `send_timeout` (the client
//!   reads nothing) ends the connection; a response that keeps moving —
//!   the alert stream, a large evidence zip — is never cut;
//! - at most `max_connections` connections, and `max_connections_per_address`
//!   from one address (IPv6: one /64). A new connection over either cap
//!   takes the place of the oldest connection that has no request in
//!   progress (under that address, or anywhere); only when every one is
//!   busy is it refused. Slow clients are never "in progress" (their
//!   request has not arrived), so they cannot keep anyone else out.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::ApiError;

/// How long clients may take, and how many connections there may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLimits {
    /// From connecting (or from the first byte of a kept-alive
    /// connection's next request) to the end of the request head.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a response may make no progress (the client not reading).
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// Per client address; IPv6 addresses count per /64.
    pub max_connections_per_address: usize,
}

impl Default for NetLimits {
    fn default() -> NetLimits {
        NetLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_address: 64,
        }
    }
}

/// Settings that cannot work, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetLimitsError {
    #[error("{0} must be at least 1 second")]
    TooShort(&'static str),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

impl NetLimits {
    pub fn check(&self) -> Result<(), NetLimitsError> {
        for (name, d) in [
            ("header timeout", self.header_timeout),
            ("body timeout", self.body_timeout),
            ("idle timeout", self.idle_timeout),
            ("send timeout", self.send_timeout),
        ] {
            if d < Duration::from_secs(1) {
                return Err(NetLimitsError::TooShort(name));
            }
        }
        if self.max_connections == 0 {
            return Err(NetLimitsError::Zero("max connections"));
        }
        if self.max_connections_per_address == 0 {
            return Err(NetLimitsError::Zero("max connections per address"));
        }
        Ok(())
    }
}

/// How long a stopping server waits for requests in progress (a long
/// download or an alert stream would otherwise hold it forever).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then waits up
/// to [`DRAIN_LIMIT`] for the requests in progress. Handlers see the
/// client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_tls(listener, app, limits, None, shutdown).await
}

/// The client certificates a TLS connection presented (none: the
/// extension is absent), for the device check of each request.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<rustls::pki_types::CertificateDer<'static>>>);

/// Whether the request came over TLS (then responses carry HSTS).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// As [`serve`], over TLS when `tls` is given: the handshake must finish
/// within the header timeout, and each request carries the client's
/// certificates ([`PeerCertificates`]).
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry {
        listener: listener
            .local_addr()
            .map_or_else(|_| "unknown".into(), |a| a.to_string()),
        ..Registry::default()
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Responses and TLS handshake flights go out as written: with
        // Nagle's algorithm a second small write waits for the client's
        // delayed ACK (40 ms on Linux), measured on every new HTTPS
        // connection before this was set.
        let _ = stream.set_nodelay(true);
        let conn = match registry.admit(peer, &limits) {
            Ok(conn) => conn,
            Err(refusal) => {
                refused(refusal, peer);
                continue; // dropping the stream closes it
            }
        };
        match &tls {
            None => {
                tokio::spawn(run_connection(
                    stream,
                    peer,
                    conn,
                    app.clone(),
                    limits.clone(),
                    registry.clone(),
                    None,
                ));
            }
            Some(acceptor) => {
                let (acceptor, app, limits, registry) = (
                    acceptor.clone(),
                    app.clone(),
                    limits.clone(),
                    registry.clone(),
                );
                tokio::spawn(async move {
                    // A client that never finishes its handshake is a slow
                    // client like any other.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let certs = tls.get_ref().1.peer_certificates().map(|c| {
                                PeerCertificates(Arc::new(
                                    c.iter().map(|c| c.clone().into_owned()).collect(),
                                ))
                            });
                            run_connection(tls, peer, conn, app, limits, registry, Some(certs))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            registry.release(conn.id);
                        }
                        Err(_) => {
                            metrics::counter!("platekeeper_connections_timed_out_total")
                                .increment(1);
                            registry.release(conn.id);
                        }
                    }
                });
            }
        }
    }
    registry.close_all();
    let _ = tokio::time::timeout(DRAIN_LIMIT, registry.drained()).await;
    Ok(())
}

/// Errors of `accept` that concern one connection (the client gave up)
/// are skipped; others (out of descriptors) pause the loop briefly rather
/// than spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    warn_rarely(
        &LAST_ACCEPT_WARNING,
        || tracing::warn!(error = %e, "accepting a connection failed; pausing 100 ms"),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
}

static LAST_ACCEPT_WARNING: AtomicI64 = AtomicI64::new(i64::MIN);
static LAST_REFUSAL_WARNING: AtomicI64 = AtomicI64::new(i64::MIN);

/// Logs at most once a minute: under attack a line per connection would
/// flood the log.
fn warn_rarely(last: &AtomicI64, log: impl FnOnce()) {
    let now = (crate::system_clock())();
    let prev = last.load(Ordering::Relaxed);
    if now.saturating_sub(prev) >= 60_000
        && last
            .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        log();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Every connection from this address has a request in progress.
    AddressFull,
    /// Every connection has a request in progress.
    ServerFull,
}

fn refused(refusal: Refusal, peer: SocketAddr) {
    let reason = match refusal {
        Refusal::AddressFull => "address_full",
        Refusal::ServerFull => "server_full",
    };
    metrics::counter!("platekeeper_connections_refused_total", "reason" => reason).increment(1);
    tracing::debug!(%peer, reason, "connection refused");
    warn_rarely(
        &LAST_REFUSAL_WARNING,
        || tracing::warn!(%peer, reason, "refusing connections: every connection has a request in progress (see platekeeper_connections_refused_total)"),
    );
}

/// The address a connection counts against: IPv4 as is, IPv6 by its /64
/// (one subscriber usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

const NONE: u64 = u64::MAX;

/// What one connection is doing, shared by its task, its socket wrapper,
/// its requests and the registry. All in milliseconds since `opened`.
struct ConnState {
    id: u64,
    key: IpAddr,
    opened: Instant,
    /// Requests handed to the router whose response has not ended.
    busy: AtomicUsize,
    /// When the connection began waiting for its next request.
    waiting_since: AtomicU64,
    /// When the request head now awaited began (NONE: no byte of it yet).
    head_since: AtomicU64,
    /// The last write found the client's window closed: bytes are waiting.
    write_stalled: AtomicBool,
    /// The registry or a stopping server asks the connection to close.
    close: AtomicBool,
    wake: Notify,
}

impl ConnState {
    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Closing now loses nothing: no request in progress, no response
    /// bytes waiting to be sent.
    fn droppable(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && !self.write_stalled.load(Ordering::Acquire)
    }

    /// When the connection's wait for a request runs out (none while a
    /// request is in progress).
    fn deadline(&self, limits: &NetLimits) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Acquire);
        let at = if head != NONE {
            Duration::from_millis(head) + limits.header_timeout
        } else {
            Duration::from_millis(self.waiting_since.load(Ordering::Acquire)) + limits.idle_timeout
        };
        Some(self.opened + at)
    }

    /// Bytes arrived: on a waiting connection they start a request head.
    fn on_read(&self) {
        if self.busy.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Acquire) == NONE
        {
            self.head_since.store(self.now(), Ordering::Release);
        }
    }

    fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Release);
    }

    fn request_ended(&self) {
        if self.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiting_since.store(self.now(), Ordering::Release);
            self.head_since.store(NONE, Ordering::Release);
        }
    }

    fn ask_to_close(&self) {
        self.close.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The open connections, oldest first, and how many per address.
#[derive(Default)]
struct Registry {
    /// The listening address, labelling the open-connections gauge (the
    /// API and the metrics listener each have one).
    listener: String,
    inner: Mutex<Open>,
    emptied: Notify,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    conns: BTreeMap<u64, Arc<ConnState>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Open {
    /// Takes a connection out of the count and asks it to close.
    fn evict(&mut self, id: u64) {
        if let Some(c) = self.remove(id) {
            metrics::counter!("platekeeper_connections_evicted_total").increment(1);
            c.ask_to_close();
        }
    }

    fn remove(&mut self, id: u64) -> Option<Arc<ConnState>> {
        let c = self.conns.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&c.key) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&c.key);
            }
        }
        Some(c)
    }

    /// The oldest connection (of `key`, if given) that can close now.
    fn oldest_droppable(&self, key: Option<IpAddr>) -> Option<u64> {
        self.conns
            .values()
            .find(|c| key.is_none_or(|k| c.key == k) && c.droppable())
            .map(|c| c.id)
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // The map stays consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(&self, peer: SocketAddr, limits: &NetLimits) -> Result<Arc<ConnState>, Refusal> {
        let key = address_key(peer.ip());
        let mut open = self.lock();
        if open.per_address.get(&key).copied().unwrap_or(0) >= limits.max_connections_per_address {
            let victim = open
                .oldest_droppable(Some(key))
                .ok_or(Refusal::AddressFull)?;
            open.evict(victim);
        }
        if open.conns.len() >= limits.max_connections {
            let victim = open.oldest_droppable(None).ok_or(Refusal::ServerFull)?;
            open.evict(victim);
        }
        let id = open.next_id;
        open.next_id += 1;
        let conn = Arc::new(ConnState {
            id,
            key,
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(0),
            // The first request's head is due header_timeout after connecting.
            head_since: AtomicU64::new(0),
            write_stalled: AtomicBool::new(false),
            close: AtomicBool::new(false),
            wake: Notify::new(),
        });
        open.conns.insert(id, conn.clone());
        *open.per_address.entry(key).or_insert(0) += 1;
        self.gauge(open.conns.len());
        Ok(conn)
    }

    fn gauge(&self, open: usize) {
        metrics::gauge!("platekeeper_connections_open", "listener" => self.listener.clone())
            .set(open as f64);
    }

    fn release(&self, id: u64) {
        let mut open = self.lock();
        open.remove(id);
        self.gauge(open.conns.len());
        if open.conns.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Asks every connection to close; each stays counted until it has
    /// ended, so `drained` waits for them.
    fn close_all(&self) {
        for c in self.lock().conns.values() {
            c.ask_to_close();
        }
    }

    async fn drained(&self) {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.lock().conns.is_empty() {
                return;
            }
            emptied.await;
        }
    }
}

/// Serves one connection until it ends, times out or is asked to close.
/// `tls`: `None` for plain HTTP, else the client's certificates if any.
async fn run_connection<S>(
    stream: S,
    peer: SocketAddr,
    state: Arc<ConnState>,
    app: Router,
    limits: Arc<NetLimits>,
    registry: Arc<Registry>,
    tls: Option<Option<PeerCertificates>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Watched::new(stream, state.clone(), limits.send_timeout));
    let service = {
        let state = state.clone();
        let limits = limits.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            handle(
                req,
                peer,
                state.clone(),
                app.clone(),
                limits.body_timeout,
                tls.clone(),
            )
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own head timer is a backstop only: ours (above) measures a
    // kept-alive connection's idle wait and its head separately.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut wait = Box::pin(tokio::time::sleep(limits.idle_timeout));
    let mut wake = Box::pin(state.wake.notified());
    let mut graceful = false;
    let end = poll_fn(|cx| loop {
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|e| e.to_string()));
        }
        if state.close.load(Ordering::Acquire) {
            if state.droppable() {
                return Poll::Ready(Ok(()));
            }
            if !graceful {
                // Finish the request in progress, then close.
                graceful = true;
                conn.as_mut().graceful_shutdown();
                continue;
            }
        }
        if wake.as_mut().poll(cx).is_ready() {
            wake.set(state.wake.notified());
            continue;
        }
        if let Some(deadline) = state.deadline(&limits) {
            let deadline = tokio::time::Instant::from_std(deadline);
            if wait.deadline() != deadline {
                wait.as_mut().reset(deadline);
            }
            if wait.as_mut().poll(cx).is_ready() && state.droppable() {
                metrics::counter!("platekeeper_connections_timed_out_total").increment(1);
                return Poll::Ready(Ok(()));
            }
        }
        return Poll::Pending;
    })
    .await;
    if let Err(e) = end {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    registry.release(state.id);
}

/// One request: the client's address for the handlers, the body's
/// deadline, and the connection's count of requests in progress (which
/// ends when the response body does).
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: Arc<ConnState>,
    app: Router,
    body_timeout: Duration,
    tls: Option<Option<PeerCertificates>>,
) -> Result<Response<Body>, Infallible> {
    use hyper::service::Service;
    state.request_started();
    let busy = Busy(state);
    let (parts, body) = req.into_parts();
    let timed_out = Arc::new(AtomicBool::new(false));
    let body = if body.is_end_stream() {
        Body::new(body)
    } else {
        Body::new(Deadline {
            inner: body,
            sleep: Box::pin(tokio::time::sleep(body_timeout)),
            limit: body_timeout,
            timed_out: timed_out.clone(),
        })
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(ConnectInfo(peer));
    let over_tls = tls.is_some();
    if let Some(certs) = tls {
        req.extensions_mut().insert(OverTls);
        if let Some(c) = certs {
            req.extensions_mut().insert(c);
        }
    }
    let mut resp = hyper_util::service::TowerToHyperService::new(app)
        .call(req)
        .await?;
    if over_tls {
        // Browsers that once reached the server over TLS never try plain
        // HTTP to it again (for a year).
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    let resp = if timed_out.load(Ordering::Acquire) {
        // Whatever the handler made of a cut-off body, the client's
        // problem is the time it took: say so and close.
        let mut r = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s; send it faster or in smaller parts",
                body_timeout.as_secs()
            ),
        )
        .into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else {
        resp
    };
    Ok(resp.map(|b| {
        Body::new(Tracked {
            inner: b,
            _busy: busy,
        })
    }))
}

/// Counts a request in progress until dropped.
struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its request counted until it is done.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body took longer than the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(Duration);

/// A request body that fails once its deadline passes.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, watched: reads start a request head's clock; a write that
/// cannot proceed for `send_timeout` fails the connection.
pub struct Watched<S> {
    io: S,
    state: Option<Arc<ConnState>>,
    send_timeout: Duration,
    stall: Pin<Box<tokio::time::Sleep>>,
    stalled: bool,
}

impl<S> Watched<S> {
    fn new(io: S, state: Arc<ConnState>, send_timeout: Duration) -> Watched<S> {
        Watched {
            io,
            state: Some(state),
            send_timeout,
            stall: Box::pin(tokio::time::sleep(send_timeout)),
            stalled: false,
        }
    }

    /// Only the send timeout, for a socket outside a connection's
    /// bookkeeping.
    pub fn send_timeout_only(io: S, send_timeout: Duration) -> Watched<S> {
        Watched {
            io,
            state: None,
            send_timeout,
            stall: Box::pin(tokio::time::sleep(send_timeout)),
            stalled: false,
        }
    }

    fn set_stalled(&mut self, stalled: bool) {
        self.stalled = stalled;
        if let Some(s) = &self.state {
            s.write_stalled.store(stalled, Ordering::Release);
        }
    }

    /// The write is blocked: start (or check) the stall clock.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.stalled {
            let at = tokio::time::Instant::now() + self.send_timeout;
            self.stall.as_mut().reset(at);
            self.set_stalled(true);
        }
        if self.stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s",
                    self.send_timeout.as_secs()
                ),
            )));
        }
        Poll::Pending
    }

    fn progressed<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if self.stalled {
            self.set_stalled(false);
        }
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if let Some(s) = &self.state {
                s.on_read();
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.blocked(cx),
            r => self.progressed(r),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.blocked(cx),
            r => self.progressed(r),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.blocked(cx),
            r => self.progressed(r),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.blocked(cx),
            r => self.progressed(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn limits_below_a_second_or_zero_are_refused() {
        let mut l = NetLimits::default();
        assert_eq!(l.check(), Ok(()));
        l.body_timeout = Duration::from_millis(500);
        assert_eq!(l.check(), Err(NetLimitsError::TooShort("body timeout")));
        let l = NetLimits {
            max_connections_per_address: 0,
            ..NetLimits::default()
        };
        assert_eq!(
            l.check(),
            Err(NetLimitsError::Zero("max connections per address"))
        );
    }

    /// A client that reads nothing: the write blocks once the pipe is
    /// full, and fails after the send timeout rather than waiting forever.
    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_send_timeout() {
        let (server, _client) = tokio::io::duplex(1024);
        let mut w = Watched::send_timeout_only(server, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let err = w.write_all(&vec![7u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 60);
    }

    /// A client that reads slowly but steadily is never cut, however long
    /// the whole response takes (an evidence zip, the alert stream).
    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut() {
        use tokio::io::AsyncReadExt;
        let (server, mut client) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let mut w = Watched::send_timeout_only(server, Duration::from_secs(60));
        w.write_all(&vec![7u8; 16 * 1024]).await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap(), 16 * 1024);
    }
}
