//! The embedded web interface as the server delivers it (issue 7): the
//! files, their security headers, caching, the page-weight budget, the
//! public settings, the map policy's checks and the administrator's review
//! list. The pages themselves are driven in Chromium by `e2e/`.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use platekeeper_core::account::DAY_MS;
use platekeeper_core::Role;
use serde_json::json;
use support::api;

async fn get(api: &support::Api, path: &str, etag: Option<&str>) -> axum::http::Response<Body> {
    let mut b = Request::get(path);
    if let Some(t) = etag {
        b = b.header(header::IF_NONE_MATCH, t);
    }
    api.respond(b.body(Body::empty()).unwrap()).await
}

fn header_of(r: &axum::http::Response<Body>, name: header::HeaderName) -> &str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy_and_revalidated() {
    let api = api().await;
    let page = get(&api, "/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header_of(&page, header::CONTENT_TYPE).starts_with("text/html"));
    let csp = header_of(&page, header::CONTENT_SECURITY_POLICY).to_string();
    // No inline script, nothing from another host, not framed.
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header_of(&page, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header_of(&page, header::CACHE_CONTROL), "no-cache");

    let js = get(&api, "/assets/js/app.js", None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(header_of(&js, header::CONTENT_TYPE).starts_with("text/javascript"));
    let tag = header_of(&js, header::ETAG).to_string();
    assert!(tag.starts_with('"') && tag.len() > 10, "{tag}");
    let again = get(&api, "/assets/js/app.js", Some(&tag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let stale = get(&api, "/assets/js/app.js", Some("\"old\"")).await;
    assert_eq!(stale.status(), StatusCode::OK);

    // Only listed files exist: no directory walking, no source files.
    for path in [
        "/assets/../Cargo.toml",
        "/assets/js/nope.js",
        "/assets/index.html",
        "/assets/",
        "/assets/%2e%2e/src/web.rs",
    ] {
        let r = get(&api, path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn the_interface_stays_under_its_page_weight_budget() {
    // Issue 7: no page over 300 KB of assets. Every page is the same shell
    // and modules, so the sum of all files bounds each page.
    let total = platekeeper_server::web::assets_total_bytes();
    assert!(total < 300 * 1024, "{total} bytes");
    assert!(
        total > 20 * 1024,
        "the interface is embedded ({total} bytes)"
    );
}

/// Sets the policy's tile server as the administrator: the refusal's
/// message, or "" when accepted.
async fn put_tile_url(api: &support::Api, url: &str) -> String {
    let (_, mut policy) = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await;
    policy["map"]["tile_url"] = json!(url);
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&api.admin), Some(policy))
        .await;
    if s.is_success() {
        return String::new();
    }
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_tile_server_is_allowed_by_the_policy_only_when_the_agency_sets_one() {
    let api = api().await;
    let (s, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(settings["map"]["tile_url"], "");
    assert!(settings["agency_name"].is_string());

    let refused = put_tile_url(
        &api,
        "https://tiles.example.gov/{z}/{x}/{y}.png; script-src *",
    )
    .await;
    assert!(refused.contains("map.tile_url"), "{refused}");
    let (_, mut policy) = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await;
    policy["map"]["tile_url"] = json!("https://tiles.example.gov/osm/{z}/{x}/{y}.png");
    policy["map"]["center_lat"] = json!(37.8044);
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&api.admin), Some(policy))
        .await;
    assert!(s.is_success(), "{v}");
    let page = get(&api, "/", None).await;
    let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("img-src 'self' data: blob: https://tiles.example.gov;"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self';"),
        "tiles are images only: {csp}"
    );
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(settings["map"]["center_lat"], 37.8044);
    assert!(
        settings["map"]["warning"].is_null(),
        "the agency's own server"
    );

    // Issue 23 item 5: plain http only on this machine; a public service
    // is allowed but the page warns that viewed areas go to it.
    let refused = put_tile_url(&api, "http://tiles.example.gov/{z}/{x}/{y}.png").await;
    assert!(refused.contains("https://"), "{refused}");
    assert_eq!(
        put_tile_url(&api, "https://tile.openstreetmap.org/{z}/{x}/{y}.png").await,
        ""
    );
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert!(
        settings["map"]["warning"]
            .as_str()
            .unwrap()
            .contains("tile.openstreetmap.org"),
        "{settings}"
    );
}

#[tokio::test]
async fn an_address_search_uses_the_agencys_own_geocoder_when_one_is_set() {
    // Issue 23 item 5: none by default; the agency's own over https; the
    // page may call it (CSP connect-src) and nothing else.
    let api = api().await;
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(settings["map"]["geocoder_url"], "");
    let csp = header_of(&get(&api, "/", None).await, header::CONTENT_SECURITY_POLICY).to_string();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    let patch = |url: &str| {
        let api = &api;
        let body = json!({"map": {"geocoder_url": url}});
        async move {
            api.call("PATCH", "/api/v1/policy", Some(&api.admin), Some(body))
                .await
        }
    };
    let (s, v) = patch("https://geo.city.gov/search?format=json&q={query}").await;
    assert!(s.is_success(), "{v}");
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(
        settings["map"]["geocoder_url"],
        "https://geo.city.gov/search?format=json&q={query}"
    );
    assert!(settings["map"]["geocoder_warning"].is_null());
    let csp = header_of(&get(&api, "/", None).await, header::CONTENT_SECURITY_POLICY).to_string();
    assert!(
        csp.contains("connect-src 'self' https://geo.city.gov;"),
        "{csp}"
    );
    for bad in [
        "http://geo.city.gov/search?q={query}",
        "https://geo.city.gov/search?q=",
        "https://geo.city.gov/{query}; script-src *",
    ] {
        let (s, v) = patch(bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("map.geocoder_url"),
            "{v}"
        );
    }
    // A client written before the field sends every field it knew: the
    // geocoder is kept, not reset or refused.
    let (_, mut policy) = api
        .call("GET", "/api/v1/policy", Some(&api.admin), None)
        .await;
    policy["map"]
        .as_object_mut()
        .unwrap()
        .remove("geocoder_url");
    policy["agency_name"] = json!("Oakland PD");
    let (s, v) = api
        .call("PUT", "/api/v1/policy", Some(&api.admin), Some(policy))
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(
        v["map"]["geocoder_url"],
        "https://geo.city.gov/search?format=json&q={query}"
    );
    let (s, _) = patch("https://nominatim.openstreetmap.org/search?format=json&q={query}").await;
    assert!(s.is_success());
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert!(
        settings["map"]["geocoder_warning"]
            .as_str()
            .unwrap()
            .contains("every address searched"),
        "{settings}"
    );
    let (s, _) = patch("").await;
    assert!(s.is_success(), "emptied: none again");
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(settings["map"]["geocoder_url"], "");
}

#[tokio::test]
async fn the_review_list_names_lapsing_approvals_and_unfinished_enrolments() {
    // R5.3, R5.4: what the administrator must act on soon.
    let mut api = api().await;
    let soon = api.now() + 10 * DAY_MS;
    api.ready_user_until("soon", Role::Officer, soon).await;
    api.ready_user("fine", Role::Analyst).await;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(&api.admin),
            Some(json!({"username": "newbie", "name": "New Person", "role": "auditor"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let (s, v) = api
        .call("GET", "/api/v1/reviews", Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["reviews"].as_array().unwrap();
    let kinds = |u: &str| -> Vec<&str> {
        items
            .iter()
            .filter(|r| r["username"] == u)
            .map(|r| r["kind"].as_str().unwrap())
            .collect()
    };
    assert_eq!(kinds("soon"), ["approval_lapsing"]);
    assert_eq!(kinds("newbie"), ["enrolment_pending"]);
    assert!(kinds("fine").is_empty(), "{v}");
    assert_eq!(v["notice_days"], 30);
    let soon_item = items.iter().find(|r| r["username"] == "soon").unwrap();
    assert!(soon_item["message"].as_str().unwrap().contains("renew"));

    // Only the administrator sees it.
    let officer = api.sign_in_ok("fine").await;
    let (s, v) = api
        .call("GET", "/api/v1/reviews", Some(&officer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = api.call("GET", "/api/v1/reviews", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A response as a client that accepts gzip gets it: its encoding and its
/// body, inflated.
async fn gunzipped(
    api: &support::Api,
    path: &str,
    token: Option<&str>,
) -> (String, Vec<u8>, usize) {
    use http_body_util::BodyExt;
    use std::io::Read;
    let mut b = Request::get(path).header(header::ACCEPT_ENCODING, "gzip, deflate, br");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = api.respond(b.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let encoding = header_of(&r, header::CONTENT_ENCODING).to_string();
    let sent = r.into_body().collect().await.unwrap().to_bytes();
    let mut body = Vec::new();
    if encoding == "gzip" {
        flate2::read::GzDecoder::new(&sent[..])
            .read_to_end(&mut body)
            .unwrap();
    } else {
        body = sent.to_vec();
    }
    (encoding, body, sent.len())
}

#[tokio::test]
async fn text_is_gzipped_for_clients_that_accept_it_and_event_streams_are_not() {
    use http_body_util::BodyExt;
    let api = api().await;
    for path in ["/assets/js/search.js", "/", "/api/openapi.json"] {
        let plain = get(&api, path, None).await;
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "", "{path}");
        let plain = plain.into_body().collect().await.unwrap().to_bytes();
        let (encoding, body, sent) = gunzipped(&api, path, None).await;
        assert_eq!(encoding, "gzip", "{path}");
        assert_eq!(body, plain.to_vec(), "{path}: the same bytes once inflated");
        assert!(
            sent < plain.len(),
            "{path}: {sent} of {} bytes",
            plain.len()
        );
    }
    // Signed-in JSON too.
    let (encoding, body, _) = gunzipped(&api, "/api/v1/me", Some(&api.officer)).await;
    assert_eq!(encoding, "gzip");
    let me: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(me["rights"].is_array(), "{me}");
    // Live alerts must not wait in a compressor's buffer.
    let r = api
        .respond(
            Request::get("/api/v1/alerts/stream")
                .header(header::ACCEPT_ENCODING, "gzip")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.officer))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header_of(&r, header::CONTENT_TYPE).starts_with("text/event-stream"));
    assert_eq!(header_of(&r, header::CONTENT_ENCODING), "");
}

/// Issue 23 item 11: one purpose rule, said the same way by the API's
/// refusals, the settings the page reads it from, the form's hint and
/// the refusal's explanation; nothing in the page says to leave out every
/// name (the policy allows the suspect's last name).
#[tokio::test]
async fn the_purpose_rule_is_said_the_same_way_everywhere() {
    use http_body_util::BodyExt;
    let api = api().await;
    let rule = platekeeper_core::purpose::PURPOSE_RULE;
    let (_, settings) = api.call("GET", "/api/v1/ui/settings", None, None).await;
    assert_eq!(settings["purpose_rule"], rule);
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/search",
            Some(&api.officer),
            Some(json!({"plate": "7ABC123", "purpose": {"case_number": "26-004211", "offense": "211 PC", "reason": "investigation"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a case number, or the suspect's last name"),
        "{message}"
    );
    let r = get(&api, "/assets/js/search.js", None).await;
    let js = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        js.contains("settings.purpose_rule"),
        "the hint and refusals show the served rule"
    );
    for contradiction in ["leave out names", "No names"] {
        assert!(
            !js.contains(contradiction),
            "search.js still says {contradiction:?}"
        );
    }
}

/// Issue 23 item 2: installable on a phone or tablet (a manifest, and a
/// service worker served from the root), and the worker keeps only the
/// interface's own files: every one it names is served, none is an API
/// answer, and the page's policy allows the worker and the manifest.
#[tokio::test]
async fn the_interface_is_installable_and_its_worker_keeps_no_data() {
    use http_body_util::BodyExt;
    let api = api().await;
    let r = get(&api, "/manifest.webmanifest", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "application/manifest+json"
    );
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (m["start_url"].as_str(), m["display"].as_str()),
        (Some("/"), Some("standalone"))
    );
    let r = get(&api, "/sw.js", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header_of(&r, header::CONTENT_TYPE).starts_with("text/javascript"));
    let sw = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let kept: Vec<&str> = sw
        .lines()
        .filter_map(|l| l.trim().strip_prefix("'/"))
        .filter_map(|l| l.strip_suffix("',"))
        .collect();
    assert!(kept.len() >= 10, "{kept:?}");
    for path in kept {
        let path = format!("/{path}");
        assert!(!path.starts_with("/api"), "the worker keeps {path}");
        let r = get(&api, &path, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{path} is kept but not served");
    }
    let page = get(&api, "/", None).await;
    let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("worker-src 'self'") && csp.contains("manifest-src 'self'"),
        "{csp}"
    );
}
