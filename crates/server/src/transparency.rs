//! `GET /transparency` (SPEC R8.3; policy 001 § 467.3.1 g): the agency's
//! posted ALPR policy, its administrator, and live aggregate figures, for
//! anyone, without signing in. Never plate data (SPEC R7.5).
//!
//! HTML by default; JSON with `?format=json` or `Accept:
//! application/json`. The figures count every day's reads, so they are
//! computed at most once a minute.

use std::sync::Mutex;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use platekeeper_core::audit_report::esc;
use platekeeper_store::PublicFigures;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/transparency", get(transparency))
}

/// Figures older than this are recomputed.
const FIGURES_TTL_MS: i64 = 60_000;

static CACHE: Mutex<Option<(i64, String, PublicFigures)>> = Mutex::new(None);

#[derive(Serialize, ToSchema)]
pub struct Transparency {
    pub agency: String,
    pub administrator_name: String,
    pub administrator_title: String,
    /// The posted usage and privacy policy, Markdown.
    pub policy_markdown: String,
    #[schema(value_type = Object)]
    pub figures: PublicFigures,
}

#[derive(Deserialize, IntoParams)]
pub struct TransparencyParams {
    /// `html` (default) or `json`.
    pub format: Option<String>,
}

async fn figures(state: &AppState) -> Result<PublicFigures, ApiError> {
    let now = state.now_ms();
    let dir = state.store.dir().display().to_string();
    if let Ok(c) = CACHE.lock() {
        if let Some((at, d, f)) = c.as_ref() {
            if *d == dir && now - at < FIGURES_TTL_MS && now >= *at {
                return Ok(f.clone());
            }
        }
    }
    let store = state.store.clone();
    let f = blocking(move || Ok(store.public_figures(now)?)).await?;
    if let Ok(mut c) = CACHE.lock() {
        *c = Some((now, dir, f.clone()));
    }
    Ok(f)
}

/// The public page: policy, administrator and aggregate figures.
#[utoipa::path(get, path = "/transparency", params(TransparencyParams),
    responses((status = 200, body = Transparency, description = "HTML by default; JSON on request")), tag = "public")]
pub async fn transparency(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<TransparencyParams>,
) -> Result<Response, ApiError> {
    let policy = state.store.policy();
    let figures = figures(&state).await?;
    let wants_json = p.format.as_deref() == Some("json")
        || (p.format.is_none()
            && headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/json") && !a.contains("text/html")));
    let t = Transparency {
        agency: policy.agency_name.clone(),
        administrator_name: policy.administrator_name.clone(),
        administrator_title: policy.administrator_title.clone(),
        policy_markdown: policy.public_policy_markdown.clone(),
        figures,
    };
    if wants_json {
        return Ok(Json(t).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
            ),
        ],
        page(&t),
    )
        .into_response())
}

/// Markdown to HTML with any raw HTML in the source shown as text: the
/// policy is written by the agency, but the page must never run markup
/// pasted into it.
pub fn markdown_html(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

fn page(t: &Transparency) -> String {
    let f = &t.figures;
    let n = |v: i64| v.to_string();
    let mut rows = vec![
        ("Reads kept".to_string(), f.reads_kept.to_string()),
        (
            "Oldest read kept".to_string(),
            f.oldest_read_age_days
                .map_or("none".into(), |d| format!("{d} days old")),
        ),
        (
            "Reads are kept for".to_string(),
            format!("{} days", f.reads_retention_days),
        ),
        (
            "Images are kept for".to_string(),
            format!("{} days", f.images_retention_days),
        ),
        (
            "Hot-list hits this month".to_string(),
            n(f.hotlist_hits_this_month),
        ),
        ("Searches this month".to_string(), n(f.searches_this_month)),
        ("Open legal holds".to_string(), n(f.legal_holds_open)),
        (
            "Public-records requests this year".to_string(),
            n(f.records_requests_this_year),
        ),
    ];
    if f.shares_by_agency.is_empty() {
        rows.push(("Data shared with other agencies".into(), "none".into()));
    }
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ALPR transparency — {agency}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
         table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}</style></head><body>\
         <h1>Automated License Plate Readers at {agency}</h1>\
         <p>ALPR Administrator: <strong>{name}</strong>{title}</p>\
         <h2>Figures</h2><p>As of {as_of}. Aggregates only: this page never shows a plate, a place or a search.</p><table>",
        agency = esc(&t.agency),
        name = esc(if t.administrator_name.is_empty() { "(not recorded)" } else { &t.administrator_name }),
        title = if t.administrator_title.is_empty() {
            String::new()
        } else {
            format!(", {}", esc(&t.administrator_title))
        },
        as_of = esc(&f.as_of),
    );
    for (k, v) in rows {
        h.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td></tr>",
            esc(&k),
            esc(&v)
        ));
    }
    h.push_str("</table>");
    if !f.shares_by_agency.is_empty() {
        h.push_str("<h2>Data shared, by agency</h2><table><tr><th>Agency</th><th>Transfers</th><th>Reads</th></tr>");
        for s in &f.shares_by_agency {
            h.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&s.agency),
                s.transfers,
                s.reads
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Usage and privacy policy</h2>");
    if t.policy_markdown.trim().is_empty() {
        h.push_str("<p>The agency has not posted its policy text here yet.</p>");
    } else {
        h.push_str(&markdown_html(&t.policy_markdown));
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_but_raw_html_is_shown_as_text() {
        let html = markdown_html(
            "# Policy\n\nReads are kept **365 days**.\n\n<script>alert(1)</script>\n",
        );
        assert!(html.contains("<h1>Policy</h1>"));
        assert!(html.contains("<strong>365 days</strong>"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }
}
