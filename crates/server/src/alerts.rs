//! Alerts (SPEC R3.3, R3.4): pushed over Server-Sent Events the moment a
//! read hits a hot list, re-sent until someone acknowledges them, and
//! closed with a disposition.
//!
//! * `GET /api/v1/alerts/stream` — SSE, one `alert` event per hit (and per
//!   re-send), to every signed-in person allowed to see alerts; optionally
//!   only hits within `near_m` metres of the person's last position.
//! * `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}` — the alert record.
//! * `POST /api/v1/alerts/{id}/read` — the read behind the alert, with its
//!   images: an access, logged (kind `alert_view`).
//! * `POST /api/v1/alerts/{id}/ack`, `POST /api/v1/alerts/{id}/disposition`.
//! * `POST /api/v1/me/position` — where the person is, for `near_m`.
//!
//! The first delivery of an alert to a person is written to the audit log
//! (category `access`, kind `alert_delivered`): batched off the delivery
//! path, so a slow disk never delays an alert; once per person and alert,
//! however many streams or re-sends carry it. Streams are capped per
//! person and in all.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use platekeeper_core::hotlist::Disposition;
use platekeeper_core::{Area, GeoPoint, Purpose, Right};
use platekeeper_store::{AccessKind, Alert, AlertStatus, NewEntry, Store};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::{access, Person};
use crate::json::ApiJson;
use crate::search::{path_param, result_of, ReadResult};
use crate::{blocking, ApiError, AppState};

/// Alerts buffered for a slow client before it is told it lagged.
const CHANNEL_CAPACITY: usize = 4_096;
/// How often a stream re-checks that its session is still valid.
pub const SESSION_RECHECK: Duration = Duration::from_secs(30);
/// A position older than this does not place the person anywhere.
const POSITION_FRESH_MS: i64 = 30 * 60_000;
/// How long a stream uses the position it read from the store before
/// reading it again.
const POSITION_RECHECK: Duration = Duration::from_secs(10);
/// Streams one person may hold open (a car's laptop, a phone, a desk and
/// one to spare): each costs the server a task and a connection.
pub const MAX_STREAMS_PER_PERSON: usize = 4;
/// Streams everyone together may hold open.
pub const MAX_STREAMS: usize = 2_048;
/// Alerts whose deliveries are remembered, so a person is logged once per
/// alert however many streams and re-sends carry it (the oldest are
/// forgotten first).
const REMEMBERED_ALERTS: usize = 16_384;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/stream", get(stream))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/read", post(alert_read))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/alerts/{id}/disposition", post(disposition))
        .route("/api/v1/me/position", post(set_position))
}

/// One alert delivered to one person, waiting to be logged.
struct Delivery {
    alert_id: i64,
    plate: String,
    username: String,
    affiliation: String,
    role: String,
    client: Option<String>,
    at_ms: i64,
}

/// Fans alerts out to connected streams.
pub struct AlertHub {
    tx: broadcast::Sender<Arc<Alert>>,
    positions: Mutex<HashMap<String, (GeoPoint, i64)>>,
    connected: AtomicUsize,
    /// Open streams by username.
    streams: Mutex<HashMap<String, usize>>,
    /// Who was already logged as having been delivered each recent alert.
    delivered: Mutex<std::collections::BTreeMap<i64, std::collections::HashSet<String>>>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    session_recheck: Duration,
}

impl AlertHub {
    /// Creates the hub and starts the task that logs deliveries.
    pub fn start(store: Arc<Store>) -> Arc<AlertHub> {
        AlertHub::start_with(store, SESSION_RECHECK)
    }

    /// As [`AlertHub::start`], re-checking sessions every `session_recheck`.
    pub fn start_with(store: Arc<Store>, session_recheck: Duration) -> Arc<AlertHub> {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (dtx, drx) = mpsc::unbounded_channel();
        tokio::spawn(log_deliveries(store.clone(), drx));
        let hub = Arc::new(AlertHub {
            tx,
            positions: Mutex::new(HashMap::new()),
            connected: AtomicUsize::new(0),
            streams: Mutex::new(HashMap::new()),
            delivered: Mutex::new(Default::default()),
            deliveries: dtx,
            session_recheck,
        });
        // Alerts other nodes raise or re-send (PostgreSQL; issue 26): the
        // listener hands over their ids, this node loads and sends them.
        let (rtx, rrx) = mpsc::unbounded_channel();
        store.on_other_nodes_alerts(Box::new(move |ids| {
            let _ = rtx.send(ids);
        }));
        tokio::spawn(relay_other_nodes(store, Arc::downgrade(&hub), rrx));
        hub
    }

    /// Sends alerts to every connected stream.
    pub fn publish(&self, alerts: Vec<Alert>) {
        for a in alerts {
            // No receiver is not an error: the alert is stored, and is
            // re-sent until acknowledged.
            let _ = self.tx.send(Arc::new(a));
        }
    }

    /// Streams open now.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Counts a new stream for `username`, or refuses it past the caps
    /// (issue 22 finding 12: streams were unbounded).
    fn open_stream(self: &Arc<Self>, username: &str) -> Result<Connected, ApiError> {
        let mut streams = self
            .streams
            .lock()
            .map_err(|_| ApiError::internal("the alert streams' table is unusable"))?;
        let mine = streams.get(username).copied().unwrap_or(0);
        let all: usize = streams.values().sum();
        if mine >= MAX_STREAMS_PER_PERSON || all >= MAX_STREAMS {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "{mine} alert streams are open for you (at most {MAX_STREAMS_PER_PERSON}, \
                     {MAX_STREAMS} for everyone); close one (a tab or device) and try again"
                ),
            ));
        }
        *streams.entry(username.to_string()).or_insert(0) += 1;
        self.connected.fetch_add(1, Ordering::Relaxed);
        Ok(Connected(self.clone(), username.to_string()))
    }

    /// Whether this is the first delivery of `alert` to `username` (the
    /// one that is logged): one entry per person per alert, not one per
    /// stream or re-send.
    fn first_delivery(&self, alert: i64, username: &str) -> bool {
        let Ok(mut seen) = self.delivered.lock() else {
            // Unusable table: log every delivery rather than none.
            return true;
        };
        let first = seen.entry(alert).or_default().insert(username.to_string());
        while seen.len() > REMEMBERED_ALERTS {
            seen.pop_first();
        }
        first
    }

    /// Whether a stream of `username` carried `alert` (since start-up).
    fn was_delivered(&self, alert: i64, username: &str) -> bool {
        self.delivered
            .lock()
            .map(|seen| seen.get(&alert).is_some_and(|who| who.contains(username)))
            .unwrap_or(false)
    }

    /// The position this node was last sent for `username`, and when.
    fn position(&self, username: &str) -> Option<(GeoPoint, i64)> {
        let map = self.positions.lock().ok()?;
        map.get(username).copied()
    }
}

/// Counts a stream (and its person's) from its start to its drop, however
/// it ends.
struct Connected(Arc<AlertHub>, String);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut streams) = self.0.streams.lock() {
            if let Some(n) = streams.get_mut(&self.1) {
                *n -= 1;
                if *n == 0 {
                    streams.remove(&self.1);
                }
            }
        }
    }
}

/// Sends down this node's streams the alerts other nodes announced; ends
/// with the hub.
async fn relay_other_nodes(
    store: Arc<Store>,
    hub: std::sync::Weak<AlertHub>,
    mut ids: mpsc::UnboundedReceiver<Vec<i64>>,
) {
    while let Some(mut batch) = ids.recv().await {
        while let Ok(more) = ids.try_recv() {
            batch.extend(more);
        }
        let Some(hub) = hub.upgrade() else {
            return;
        };
        // A burst (a re-send of many) goes in pieces, each sent as soon
        // as it is loaded.
        for piece in batch.chunks(500) {
            let (s, piece) = (store.clone(), piece.to_vec());
            match tokio::task::spawn_blocking(move || s.alerts_to_relay(&piece)).await {
                Ok(Ok(alerts)) => {
                    metrics::counter!("platekeeper_alerts_relayed_total")
                        .increment(alerts.len() as u64);
                    hub.publish(alerts);
                }
                Ok(Err(e)) => tracing::error!(error = %e, "loading another node's alerts failed"),
                Err(e) => tracing::error!(error = %e, "relaying another node's alerts failed"),
            }
        }
    }
}

/// Writes delivery records in batches: whatever arrived within ~200 ms,
/// in one transaction.
async fn log_deliveries(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut batch = vec![first];
        while let Ok(d) = rx.try_recv() {
            batch.push(d);
        }
        let entries: Vec<NewEntry> = batch
            .into_iter()
            .map(|d| NewEntry {
                ts_ms: d.at_ms,
                category: "access",
                kind: "alert_delivered".into(),
                username: d.username,
                affiliation: d.affiliation,
                role: Some(d.role),
                client: d.client,
                details: serde_json::json!({"alert": d.alert_id, "plate": d.plate}),
                purpose: None,
            })
            .collect();
        // A failed write is tried again (a full disk, a busy database):
        // deliveries are accesses and must reach the log.
        let mut wait = Duration::from_millis(200);
        loop {
            let store = store.clone();
            let batch = entries.clone();
            match tokio::task::spawn_blocking(move || store.log_events(batch)).await {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "logging alert deliveries failed; retrying")
                }
                Err(e) => tracing::error!(error = %e, "alert delivery logger failed; retrying"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct StreamParams {
    /// Only alerts within this many metres of the position last sent to
    /// `POST /api/v1/me/position` (alerts are all sent while no recent
    /// position is known).
    pub near_m: Option<f64>,
}

/// Alerts as they happen (Server-Sent Events): each `alert` event's data
/// is the alert as JSON, with its `verify_notice`. A `lagged` event means
/// the client fell behind and should re-read `GET /api/v1/alerts`; an
/// `end` event means the session ended.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/stream",
    params(StreamParams),
    responses(
        (status = 200, description = "text/event-stream of `alert` events", content_type = "text/event-stream"),
        (status = 401, description = "Not signed in", body = crate::error::ErrorBody),
        (status = 403, description = "Role may not see alerts, or training/approval lapsed", body = crate::error::ErrorBody),
        (status = 429, description = "too_many_streams: the person (or everyone) holds the most streams allowed", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn stream(
    State(state): State<AppState>,
    who: Person,
    headers: axum::http::HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let params = crate::search::query_param(params)?;
    if let Some(m) = params.near_m {
        if !(m > 0.0 && m <= platekeeper_core::geo::MAX_RADIUS_M) {
            return Err(ApiError::unprocessable(
                "invalid_near",
                format!("near_m is {m}; it must be above 0 and at most 50000"),
            ));
        }
    }
    who.require_plate_data(&state, Right::ViewAlerts)?;
    let token = crate::accountability::bearer_from_headers(&headers).unwrap_or_default();
    let hub = state.alerts.clone();
    let guard = hub.open_stream(&who.account.username)?;
    let rx = hub.tx.subscribe();
    let mut recheck = tokio::time::interval(hub.session_recheck);
    recheck.reset();
    let st = StreamState {
        state,
        who,
        hub,
        rx,
        recheck,
        token,
        near_m: params.near_m,
        stored_position: None,
        position_asked: None,
        _guard: guard,
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let event = st.next_event().await?;
        Some((Ok(event), st))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One open stream: what it needs to pick, send and log the next event.
struct StreamState {
    state: AppState,
    who: Person,
    hub: Arc<AlertHub>,
    rx: broadcast::Receiver<Arc<Alert>>,
    recheck: tokio::time::Interval,
    token: String,
    near_m: Option<f64>,
    /// The person's position as the store had it (sent through any
    /// node), and when it was last asked for.
    stored_position: Option<(GeoPoint, i64)>,
    position_asked: Option<std::time::Instant>,
    _guard: Connected,
    done: bool,
}

impl StreamState {
    /// The next event, or `None` to end the stream.
    async fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        loop {
            tokio::select! {
                got = self.rx.recv() => match got {
                    Ok(alert) => {
                        let now = self.state.now_ms();
                        self.ask_position(&alert).await;
                        if !self.wants(&alert, now) {
                            continue;
                        }
                        let data = serde_json::to_string(&*alert).ok()?;
                        if self.hub.first_delivery(alert.id, &self.who.account.username) {
                            let _ = self.hub.deliveries.send(Delivery {
                            alert_id: alert.id,
                            plate: alert.plate.clone(),
                            username: self.who.account.username.clone(),
                            affiliation: self.who.affiliation.clone(),
                            role: self.who.account.role.as_str().to_string(),
                            client: self.who.client.clone(),
                            at_ms: now,
                            });
                        }
                        return Some(Event::default().event("alert").id(alert.id.to_string()).data(data));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        return Some(Event::default().event("lagged").data(format!("{{\"missed\":{n}}}")));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.recheck.tick() => {
                    let store = self.state.store.clone();
                    let now = self.state.now_ms();
                    let token = self.token.clone();
                    let device = match &self.who.device {
                        crate::accountability::DeviceSeen::Device(d) => Some(d.id),
                        crate::accountability::DeviceSeen::NotADevice(_) => None,
                    };
                    // Still signed in, and still allowed plate data
                    // (training, approval, role may have changed), and
                    // still on a device in service if devices are required
                    // (a revocation, or the rule turned on, ends it).
                    let live = tokio::task::spawn_blocking(move || {
                        let Some(session) = store.session(&token, now).ok().flatten() else {
                            return Some("session_ended");
                        };
                        let Some(account) = store.account(&session.username).ok().flatten() else {
                            return Some("session_ended");
                        };
                        let policy = store.policy();
                        let allowed = account.role.may(Right::ViewAlerts)
                            && account.state().check_usable(&policy.accounts, now).is_ok()
                            && account.state().check_plate_data(&policy.accounts, now).is_ok();
                        if !allowed {
                            return Some("session_ended");
                        }
                        let in_service = |id: i64| {
                            store.device(id).ok().flatten().is_some_and(|d| d.revoked_at.is_none())
                        };
                        if policy.devices_required && !device.is_some_and(in_service) {
                            return Some("device_not_registered");
                        }
                        None
                    })
                    .await
                    .unwrap_or(Some("session_ended"));
                    if let Some(reason) = live {
                        self.done = true;
                        return Some(Event::default().event("end").data(format!("{{\"reason\":\"{reason}\"}}")));
                    }
                }
            }
        }
    }

    /// Reads the person's position from the store when an alert needs it
    /// and the copy is older than [`POSITION_RECHECK`]: a car may send its
    /// position to another node of a cluster than the one holding this
    /// stream (issue 26).
    async fn ask_position(&mut self, alert: &Alert) {
        if self.near_m.is_none() || alert.position.is_none() {
            return;
        }
        if self
            .position_asked
            .is_some_and(|t| t.elapsed() < POSITION_RECHECK)
        {
            return;
        }
        self.position_asked = Some(std::time::Instant::now());
        let store = self.state.store.clone();
        let user = self.who.account.username.clone();
        let since = self.state.now_ms() - POSITION_FRESH_MS;
        match tokio::task::spawn_blocking(move || store.position(&user, since)).await {
            Ok(Ok(p)) => self.stored_position = p,
            Ok(Err(e)) => tracing::warn!(error = %e, "reading a position failed"),
            Err(e) => tracing::warn!(error = %e, "reading a position failed"),
        }
    }

    /// Whether this person gets the alert: all of them, unless they asked
    /// for alerts near them and a recent position puts this one too far.
    /// The newest position known wins: the one sent to this node, or the
    /// store's (sent to any node).
    fn wants(&self, alert: &Alert, now_ms: i64) -> bool {
        let (Some(m), Some(at)) = (self.near_m, alert.position) else {
            return true;
        };
        let here = self.hub.position(&self.who.account.username);
        let newest = match (here, self.stored_position) {
            (Some(a), Some(b)) => Some(if a.1 >= b.1 { a } else { b }),
            (a, b) => a.or(b),
        };
        match newest.filter(|(_, t)| now_ms - t <= POSITION_FRESH_MS) {
            Some((me, _)) => Area::circle(me, m).map(|a| a.contains(at)).unwrap_or(true),
            None => true,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// Only alerts without a disposition.
    #[serde(default)]
    pub open: bool,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AlertList {
    /// The access this listing was logged under.
    pub access_id: i64,
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<Alert>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The access an alert view is logged under: its purpose is the alerts
/// themselves (they were raised by the system, not sought by the person).
fn alert_access(
    who: &Person,
    query: serde_json::Value,
    case_number: &str,
    offense: &str,
    reason: &str,
) -> Result<platekeeper_store::Access, ApiError> {
    let purpose = Purpose::new(case_number, offense, reason)
        .map_err(|e| ApiError::internal(format!("alert purpose: {e}")))?;
    Ok(access(who, AccessKind::AlertView, query, purpose))
}

/// Recent alerts, newest first. Listing is an access (kind `alert_view`):
/// it returns plates, times and places.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    params(ListParams),
    responses((status = 200, description = "Alerts, newest first", body = AlertList)),
    tag = "alerts"
)]
pub async fn list_alerts(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let p = crate::search::query_param(params)?;
    who.require_plate_data(&state, Right::ViewAlerts)?;
    let limit = crate::search::page_limit(p.limit)?.min(500);
    let before = crate::search::id_cursor(p.cursor.as_deref())?.unwrap_or(i64::MAX);
    let access = alert_access(
        &who,
        serde_json::json!({"alerts": "list", "open": p.open, "cursor": p.cursor, "limit": limit}),
        "ALERT-REVIEW",
        "hot-list alerts",
        "reviewing hot-list alerts raised by the system",
    )?;
    let store = state.store.clone();
    let now = state.now_ms();
    let released = blocking(move || {
        let found = store.alerts(&access, before, limit, p.open)?;
        Ok(store.release(access, found, now)?)
    })
    .await?;
    let access_id = released.access_id();
    let alerts = released.into_value();
    let next_cursor = (alerts.len() >= limit)
        .then(|| alerts.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(Json(AlertList {
        access_id,
        alerts,
        next_cursor,
    }))
}

fn unknown_alert(id: i64) -> ApiError {
    ApiError::not_found("unknown_alert", format!("alert {id} does not exist"))
}

/// The access for opening one alert (its purpose is the alert itself).
async fn alert_view(
    state: &AppState,
    who: &Person,
    id: i64,
    what: &str,
) -> Result<platekeeper_store::Access, ApiError> {
    let store = state.store.clone();
    let (case, reason, list) = blocking(move || Ok(store.alert_purpose(id)?))
        .await?
        .ok_or_else(|| unknown_alert(id))?;
    alert_access(
        who,
        serde_json::json!({"alert": id, "view": what}),
        case.as_deref().unwrap_or(&format!("ALERT-{id}")),
        &reason,
        &format!("verifying hot-list alert {id} ({list})"),
    )
}

/// One alert. Opening it is an access (kind `alert_view`).
#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}",
    params(("id" = i64, Path, description = "alert id")),
    responses(
        (status = 200, description = "The alert", body = Object),
        (status = 404, description = "No such alert", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn get_alert(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Alert>, ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ViewAlerts)?;
    let access = alert_view(&state, &who, id, "alert").await?;
    let store = state.store.clone();
    let now = state.now_ms();
    let released = blocking(move || {
        let found = store.alert(&access, id)?;
        Ok(store.release(access, found, now)?)
    })
    .await?;
    Ok(Json(released.into_value()))
}

#[derive(serde::Serialize, ToSchema)]
pub struct AlertRead {
    pub access_id: i64,
    pub alert_id: i64,
    pub read: Option<ReadResult>,
    pub verify_notice: &'static str,
}

/// Opens the read behind an alert, with links to its images. This is an
/// access (kind `alert_view`), logged before anything is returned; its
/// purpose is the alert itself (the hot-list entry's case number, or the
/// alert number, and the list's reason).
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/read",
    params(("id" = i64, Path, description = "alert id")),
    responses(
        (status = 200, description = "The read, under a new access", body = AlertRead),
        (status = 404, description = "No such alert", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn alert_read(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<AlertRead>, ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ViewAlerts)?;
    let access = alert_view(&state, &who, id, "read").await?;
    let store = state.store.clone();
    let now = state.now_ms();
    let released = blocking(move || {
        let found = store.alert_with_read(&access, id)?;
        Ok(store.release(access, found, now)?)
    })
    .await?;
    let access_id = released.access_id();
    let (_, read) = released.into_value();
    Ok(Json(AlertRead {
        access_id,
        alert_id: id,
        read: read.as_ref().map(|r| result_of(r, access_id)),
        verify_notice: platekeeper_core::hotlist::VERIFY_NOTICE,
    }))
}

/// Refuses unless `who` saw alert `id`: it reached one of their streams,
/// or an access of theirs opened it. Acknowledging stops the re-sends for
/// everyone and a disposition is final, so neither may be done blind, by
/// walking alert ids (issue 22 finding 1's sweep).
async fn require_seen(state: &AppState, who: &Person, id: i64) -> Result<(), ApiError> {
    if state.alerts.was_delivered(id, &who.account.username) {
        return Ok(());
    }
    let store = state.store.clone();
    let username = who.account.username.clone();
    if blocking(move || Ok(store.has_opened_alert(&username, id)?)).await? {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "alert_not_seen",
        format!(
            "you have not seen alert {id}: open it first (GET /api/v1/alerts/{id}), \
             then acknowledge it or record what verification found"
        ),
    ))
}

/// Marks the alert as seen: it is not re-sent after this. Only someone
/// the alert reached, or who opened it, may.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    params(("id" = i64, Path, description = "alert id")),
    responses(
        (status = 200, description = "The alert, acknowledged", body = Object),
        (status = 404, description = "No such alert", body = crate::error::ErrorBody),
        (status = 403, description = "alert_not_seen: the alert neither reached nor was opened by this person", body = crate::error::ErrorBody),
        (status = 409, description = "Already acknowledged", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<AlertStatus>, ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ViewAlerts)?;
    require_seen(&state, &who, id).await?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.acknowledge_alert(id, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct DispositionBody {
    /// `confirmed`, `wrong_state`, `misread`, `not_wanted`, `dismissed` or
    /// `other` (a note is required for the last two).
    pub disposition: String,
    /// What was found; required for `other`.
    #[serde(default)]
    pub note: String,
}

/// Records what verification found (SPEC R3.4). Only someone the alert
/// reached, or who opened it, may.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/disposition",
    params(("id" = i64, Path, description = "alert id")),
    request_body = DispositionBody,
    responses(
        (status = 200, description = "The alert, closed", body = Object),
        (status = 404, description = "No such alert", body = crate::error::ErrorBody),
        (status = 403, description = "alert_not_seen: the alert neither reached nor was opened by this person", body = crate::error::ErrorBody),
        (status = 409, description = "Already has a disposition", body = crate::error::ErrorBody),
        (status = 422, description = "Unknown disposition, or a missing note", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn disposition(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<DispositionBody>,
) -> Result<Json<AlertStatus>, ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ViewAlerts)?;
    let d = Disposition::parse(&body.disposition).ok_or_else(|| {
        let known: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
        ApiError::unprocessable(
            "invalid_disposition",
            format!(
                "disposition {:?} must be one of {}",
                body.disposition,
                known.join(", ")
            ),
        )
    })?;
    require_seen(&state, &who, id).await?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.set_alert_disposition(id, d, &body.note, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct PositionBody {
    pub lat: f64,
    pub lon: f64,
}

/// Where the person is now (a patrol car's GPS), for `near_m` alert
/// filtering: counts for 30 minutes. Kept in the store, the last one only
/// (no trail), so a stream held on another node of a cluster uses it
/// within 10 s.
#[utoipa::path(
    post,
    path = "/api/v1/me/position",
    request_body = PositionBody,
    responses(
        (status = 204, description = "Recorded"),
        (status = 422, description = "Coordinates out of range", body = crate::error::ErrorBody),
    ),
    tag = "alerts"
)]
pub async fn set_position(
    State(state): State<AppState>,
    who: Person,
    ApiJson(body): ApiJson<PositionBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    who.require(Right::ViewAlerts)?;
    let p = GeoPoint::new(body.lat, body.lon)
        .map_err(|e| ApiError::unprocessable("invalid_position", e.to_string()))?;
    let now = state.now_ms();
    let store = state.store.clone();
    let user = who.account.username.clone();
    blocking(move || Ok(store.set_position(&user, p, now)?)).await?;
    state
        .alerts
        .positions
        .lock()
        .map_err(|_| ApiError::internal("position table poisoned"))?
        .insert(who.account.username.clone(), (p, now));
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Re-sends alerts nobody acknowledged within the policy's time (run
/// every few seconds by the server).
pub async fn resend_due(state: &AppState) {
    let store = state.store.clone();
    let now = state.now_ms();
    let policy = store.policy();
    let after = policy.alerts.resend_after_s * 1_000;
    let max = policy.alerts.max_sends;
    match tokio::task::spawn_blocking(move || store.alerts_to_resend(now, after, max)).await {
        Ok(Ok(due)) if !due.is_empty() => {
            metrics::counter!("platekeeper_alerts_resent_total").increment(due.len() as u64);
            state.alerts.publish(due);
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "re-sending alerts failed"),
        Err(e) => tracing::error!(error = %e, "re-send task failed"),
    }
}
