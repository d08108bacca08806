//! Plate data only on the agency's own devices (issue 24 item 3), over a
//! real TLS listener: HTTPS from the binary's own listener, a device's
//! certificate issued as PKCS#12 and installed by a client, refusals
//! without one, with a stranger's, with a revoked one, and the device
//! named in the access log. A trusted proxy's header stands in for TLS.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use platekeeper_server::device_certs::{self, DeviceAuthority};
use platekeeper_server::net::{self, NetLimits};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use support::{api, Api, NOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAY: i64 = 86_400_000;

fn purpose() -> Value {
    json!({"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"})
}

/// The server's own certificate for `localhost` (PEM cert, PEM key, DER).
fn server_identity() -> (String, String, CertificateDer<'static>) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (
        c.cert.pem(),
        c.signing_key.serialize_pem(),
        c.cert.der().clone(),
    )
}

struct Tls {
    addr: SocketAddr,
    server_cert: CertificateDer<'static>,
}

/// The test API served over TLS on 127.0.0.1.
async fn start_tls(api: &Api) -> Tls {
    let (cert, key, der) = server_identity();
    let config = device_certs::server_config(cert.as_bytes(), key.as_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(net::serve_tls(
        listener,
        api.app.clone(),
        NetLimits::default(),
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        std::future::pending(),
    ));
    Tls {
        addr,
        server_cert: der,
    }
}

/// One HTTP/1.1 request over a new TLS connection, presenting `device`
/// (a key and its chain) if given: the status, headers and JSON body.
async fn tls_call(
    tls: &Tls,
    device: Option<&(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>)>,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.server_cert.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match device {
        Some((key, chain)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(tls.addr).await.unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    // Bodies are small here: chunked or not, the JSON is between braces.
    let json = rest
        .find('{')
        .and_then(|a| rest.rfind('}').map(|b| &rest[a..=b]))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    (status, head.to_string(), json)
}

async fn seed(api: &Api) {
    let key = api.camera_key("cam-1").await;
    let (s, v) = api
        .post_reads(
            &key,
            json!([{"id": "00000000-0000-4000-8000-000000000001", "plate": "7ABC120",
            "state": "CA", "ts": platekeeper_core::read::format_time_ms(NOW - DAY)}]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Registers a device as the administrator; the answer and the installed
/// key and chain.
async fn register(
    api: &Api,
    name: &str,
    assigned_to: Option<&str>,
) -> (
    Value,
    (PrivateKeyDer<'static>, Vec<CertificateDer<'static>>),
) {
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/devices",
            Some(&api.admin),
            Some(json!({"name": name, "assigned_to": assigned_to})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(v["pkcs12_base64"].as_str().unwrap())
        .unwrap();
    let passphrase = v["passphrase"].as_str().unwrap();
    assert!(
        device_certs::open_pkcs12(&p12, "wrong passphrase").is_err(),
        "the passphrase matters"
    );
    let (key, chain) = device_certs::open_pkcs12(&p12, passphrase).unwrap();
    assert_eq!(
        chain.len(),
        2,
        "the device's certificate and the authority's"
    );
    (v, (PrivateKeyDer::Pkcs8(key), chain))
}

/// The officer's search over TLS, presenting `device` if given.
async fn search_from(
    tls: &Tls,
    device: Option<&(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>)>,
    token: &str,
) -> (u16, String, Value) {
    tls_call(
        tls,
        device,
        "POST",
        "/api/v1/search",
        token,
        Some(search_body()),
    )
    .await
}

/// A 403 `device_not_registered` whose message says `why`.
fn refused_because(status: u16, v: &Value, why: &str) {
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("device_not_registered")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains(why),
        "{v}"
    );
}

fn search_body() -> Value {
    json!({"plate": "7ABC120", "purpose": purpose()})
}

#[tokio::test]
async fn plate_data_reaches_only_registered_unrevoked_devices() {
    let api = api().await;
    seed(&api).await;
    let tls = start_tls(&api).await;
    let officer = api.officer.clone();

    // HTTPS from the binary; before any device, no device is needed.
    let (s, head, v) = search_from(&tls, None, &officer).await;
    assert_eq!(s, 200, "{head} {v}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );

    let mark = api.mark();
    let (reg, device) = register(&api, "Unit 12 MDT", Some("officer1")).await;
    assert_eq!(
        reg["devices_required"], true,
        "the first device turns the rule on"
    );
    assert_eq!(reg["device"]["assigned_to"], "officer1");
    let kinds: Vec<String> = api.since(mark).0.into_iter().map(|e| e.kind).collect();
    assert!(
        kinds.contains(&"device_ca_created".into()) && kinds.contains(&"device_registered".into()),
        "{kinds:?}"
    );
    let (_, policy) = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await;
    assert_eq!(policy["devices_required"], true);

    // A personal laptop: no certificate. Refused and on record.
    let mark = api.mark();
    let (s, _, v) = search_from(&tls, None, &officer).await;
    refused_because(s, &v, "no device certificate");
    let (entries, _) = api.since(mark);
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.category.as_str(), e.kind.as_str()))
            .collect::<Vec<_>>(),
        [("refused", "device_not_registered")]
    );
    // What needs no plate data works from anywhere.
    let (s, _, v) = tls_call(&tls, None, "GET", "/api/v1/me", &officer, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["devices_required"].as_bool(), v["device"].is_null()),
        (Some(true), true),
        "{v}"
    );
    assert!(
        v["device_problem"]
            .as_str()
            .unwrap()
            .contains("no device certificate"),
        "{v}"
    );
    let (_, _, v) = tls_call(&tls, Some(&device), "GET", "/api/v1/me", &officer, None).await;
    assert_eq!(
        v["device"]["name"], "Unit 12 MDT",
        "the page can say which device this is: {v}"
    );

    // The agency's device: the search, with the device in the log.
    let mark = api.mark();
    let (s, _, v) = search_from(&tls, Some(&device), &officer).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    let (entries, _) = api.since(mark);
    let access = entries.iter().find(|e| e.category == "access").unwrap();
    let device_id = reg["device"]["id"].as_i64().unwrap();
    assert!(
        access
            .client
            .as_deref()
            .unwrap_or("")
            .contains(&format!("device {device_id} (Unit 12 MDT)")),
        "{access:?}"
    );

    // The period report shows both: the refusal, and the device's access.
    let (s, report) = api
        .call(
            "GET",
            "/api/v1/audit/report?period=2026Q4&format=json",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["device_refusals"]["count"], 1, "{report}");
    assert!(
        report["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |d| d["device"] == format!("device {device_id} (Unit 12 MDT)")
                    && d["accesses"] == 1
            ),
        "{}",
        report["devices"]
    );

    // A download link is checked where it is fetched: a link asked for on
    // the device, fetched from elsewhere, gives nothing.
    let link_for = |_: ()| json!({"search_export": {"search": search_body()}});
    let (s, _, link) = tls_call(
        &tls,
        Some(&device),
        "POST",
        "/api/v1/download-links",
        &officer,
        Some(link_for(())),
    )
    .await;
    assert_eq!(s, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    let (s, _, v) = tls_call(&tls, None, "GET", &url, "", None).await;
    refused_because(s, &v, "no device certificate");
    let (_, _, link) = tls_call(
        &tls,
        Some(&device),
        "POST",
        "/api/v1/download-links",
        &officer,
        Some(link_for(())),
    )
    .await;
    let (s, head, _) = tls_call(
        &tls,
        Some(&device),
        "GET",
        link["url"].as_str().unwrap(),
        "",
        None,
    )
    .await;
    assert_eq!(s, 200, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/csv"),
        "{head}"
    );

    // Another authority's certificate, though well formed and held.
    let stranger_ca = device_certs::new_authority("Elsewhere PD", NOW).unwrap();
    let issued = device_certs::issue(&stranger_ca, "Unit 12 MDT", NOW).unwrap();
    let (key, chain) = device_certs::open_pkcs12(&issued.pkcs12, &issued.passphrase).unwrap();
    let stranger = (PrivateKeyDer::Pkcs8(key), chain);
    let (s, _, v) = search_from(&tls, Some(&stranger), &officer).await;
    refused_because(s, &v, "not the agency's");

    // A stolen administrator's login on a personal laptop can neither
    // issue itself a device, nor revoke the agency's, nor switch the
    // rule off: those too need a device once devices are required.
    let admin = api.admin.clone();
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/devices",
            Some(&admin),
            Some(json!({"name": "my laptop"})),
        )
        .await;
    refused_because(s.as_u16(), &v, "no device certificate");
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/api/v1/devices/{device_id}?reason=x"),
            Some(&admin),
            None,
        )
        .await;
    refused_because(s.as_u16(), &v, "no device certificate");
    let (s, v) = api
        .call(
            "PATCH",
            "/api/v1/policy",
            Some(&admin),
            Some(json!({"devices_required": false, "confirm_weakening": ["devices_required"]})),
        )
        .await;
    refused_because(s.as_u16(), &v, "no device certificate");
    // From the device, switching the rule off is a weakening to confirm.
    let off = Some(json!({"devices_required": false}));
    let (s, _, v) = tls_call(&tls, Some(&device), "PATCH", "/api/v1/policy", &admin, off).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("confirmation_required")),
        "{v}"
    );

    // Revoked (from the device itself): refused from its next request.
    let (s, _, v) = tls_call(
        &tls,
        Some(&device),
        "DELETE",
        &format!("/api/v1/devices/{device_id}?reason=lost%20in%20the%20field"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["revoked_at"].is_string());
    let (s, _, v) = search_from(&tls, Some(&device), &officer).await;
    refused_because(s, &v, "revoked");
    // With no device left in service the agency can start again, as with
    // its first (registering is then open to the administrator).
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/devices",
            Some(&admin),
            Some(json!({"name": "Replacement MDT"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn registering_a_device_refuses_bad_input_and_other_roles() {
    let api = api().await;
    for (body, want) in [
        (json!({"name": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "tab\there"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "n".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "Unit 3", "assigned_to": "nobody"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x".repeat(5000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            json!({"name": "Unit 3", "pkcs12": "AAAA"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/devices",
                Some(&api.admin),
                Some(body.clone()),
            )
            .await;
        assert!(
            s == want || (want == StatusCode::UNPROCESSABLE_ENTITY && s == StatusCode::BAD_REQUEST),
            "{body}: {s} {v}"
        );
    }
    let (_, v) = api
        .call("GET", "/api/v1/devices", Some(&api.admin), None)
        .await;
    assert_eq!(
        (
            v["devices"].as_array().map(Vec::len),
            v["devices_required"].as_bool()
        ),
        (Some(0), Some(false)),
        "nothing registered"
    );
    let (s, _) = api
        .call(
            "POST",
            "/api/v1/devices",
            Some(&api.officer),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call(
            "DELETE",
            "/api/v1/devices/1?reason=x",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Behind the agency's own TLS-terminating proxy: the client's
/// certificate arrives in `x-client-cert`, believed only from the proxy.
#[tokio::test]
async fn a_trusted_proxy_passes_the_device_certificate_on() {
    let api = api().await;
    seed(&api).await;
    let (_, device) = register(&api, "Desk 4", None).await;
    let proxy: SocketAddr = "127.0.0.9:44000".parse().unwrap();
    let authority = DeviceAuthority::new(vec![proxy.ip()]);
    authority.load(&api.store).unwrap();
    let app = platekeeper_server::router(
        platekeeper_server::AppState {
            devices: Arc::new(authority),
            passkey_rp: Default::default(),
            ..api.state.clone()
        },
        1 << 20,
    );
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(&device.1[0])
    );
    let escaped: String = pem
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let send = |from: SocketAddr, cert: Option<String>| {
        let app = app.clone();
        let officer = api.officer.clone();
        async move {
            let mut req = Request::post("/api/v1/search")
                .header(header::AUTHORIZATION, format!("Bearer {officer}"))
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(c) = cert {
                req = req.header("x-client-cert", c);
            }
            let mut req = req.body(Body::from(search_body().to_string())).unwrap();
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(from));
            let res = tower::ServiceExt::oneshot(app, req).await.unwrap();
            let status = res.status();
            let body: Value =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap_or(Value::Null);
            (status, body)
        }
    };
    let (s, v) = send(proxy, Some(escaped.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The same header from anyone else is nobody's device.
    let (s, v) = send("127.0.0.1:44000".parse().unwrap(), Some(escaped.clone())).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device_not_registered"))
    );
    // From the proxy, anything but a certificate of the agency's is none.
    for bad in [
        "garbage",
        "%ZZ",
        "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----",
        &"%41".repeat(70_000),
    ] {
        let (s, v) = send(proxy, Some(bad.to_string())).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("device_not_registered")),
            "{}",
            &bad[..bad.len().min(40)]
        );
    }
}

/// An open alert stream is held to the device rule too: turned on (or the
/// device revoked) while it is open, the stream ends, saying why.
#[tokio::test]
async fn an_open_alert_stream_ends_when_devices_become_required() {
    let api = api().await;
    let mut stream = api.open_stream("/api/v1/alerts/stream", &api.officer).await;
    register(&api, "Unit 12 MDT", None).await;
    let mut ended = None;
    for _ in 0..20 {
        match stream.next(std::time::Duration::from_secs(1)).await {
            Some((name, data)) if name == "end" => {
                ended = Some(data);
                break;
            }
            Some(_) => continue,
            None => continue,
        }
    }
    assert_eq!(ended, Some(json!({"reason": "device_not_registered"})));
}
