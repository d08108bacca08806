//! `GET /transparency` (SPEC R8.3; policy 001 § 467.3.1 g): the agency's
//! posted ALPR policy, its administrator, and live aggregate figures, for
//! anyone, without signing in. Never plate data (SPEC R7.5).
//!
//! HTML by default; JSON with `?format=json` or `Accept:
//! application/json`. The figures count every day's reads, so they are
//! computed at most once a minute. The HTML page is in English or
//! Spanish (`?lang=es`, or the browser's `Accept-Language`): many of the
//! Californians whose cars the cameras read speak Spanish. The policy
//! text itself is shown as the agency posted it.

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
    /// The newest signed checkpoint of the audit log (`{entries, head,
    /// time, store_id, signature, public_key}`): anyone may keep a copy,
    /// with which `platekeeper audit verify --checkpoint FILE` later
    /// proves that the log was not rewritten up to it.
    #[schema(value_type = Object)]
    pub checkpoint: Option<platekeeper_core::checkpoint::Checkpoint>,
}

#[derive(Deserialize, IntoParams)]
pub struct TransparencyParams {
    /// `html` (default) or `json`.
    pub format: Option<String>,
    /// The page's language, `en` or `es`; without it, the browser's
    /// `Accept-Language` decides (English where it names neither).
    pub lang: Option<String>,
}

/// The languages the public page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    fn of_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim();
        if primary.eq_ignore_ascii_case("en") || primary == "*" {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("es") {
            Some(Lang::Es)
        } else {
            None
        }
    }

    fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Es => &ES,
        }
    }
}

/// The page's language: `?lang=` if it is one the page is written in,
/// else the likeliest language of `Accept-Language` the page is written
/// in, else English; with the language asked for by `?lang=` when the page
/// is not written in it (the page then says so, in English: issue 23
/// item 10; it used to answer a browser with a JSON error).
pub fn choose_lang(param: Option<&str>, accept: Option<&str>) -> (Lang, Option<String>) {
    if let Some(p) = param {
        return match p.trim().to_ascii_lowercase().as_str() {
            "en" => (Lang::En, None),
            "es" => (Lang::Es, None),
            _ => (Lang::En, Some(shown_tag(p))),
        };
    }
    (from_accept(accept), None)
}

/// A language tag as the page may repeat it: letters, digits and `-`,
/// at most 16 of them.
fn shown_tag(raw: &str) -> String {
    let tag: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect();
    if tag.is_empty() {
        "?".into()
    } else {
        tag
    }
}

/// The likeliest language of an `Accept-Language` header that the page
/// is written in; English where it names neither.
fn from_accept(accept: Option<&str>) -> Lang {
    let mut best: Option<(f32, Lang)> = None;
    // A header is short; one that is not is read no further than this.
    for item in accept.unwrap_or("").split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::of_tag) else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .map(|q| {
                q.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
            })
            .next()
            .unwrap_or(Some(1.0));
        match q {
            Some(q) if q > 0.0 && best.is_none_or(|(b, _)| q > b) => best = Some((q, lang)),
            _ => {}
        }
    }
    best.map_or(Lang::En, |(_, l)| l)
}

/// A moment (RFC 3339, as the figures carry it) as people write it:
/// "7 December 2026, 04:35 UTC" or "7 de diciembre de 2026, 04:35 UTC".
/// Anything that does not parse is shown as it is.
pub fn human_time(rfc3339: &str, lang: Lang) -> String {
    const EN_MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const ES_MONTHS: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return rfc3339.to_string();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let month = usize::from(u8::from(t.month())) - 1;
    match lang {
        Lang::En => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            EN_MONTHS[month],
            t.year(),
            t.hour(),
            t.minute()
        ),
        Lang::Es => format!(
            "{} de {} de {}, {:02}:{:02} UTC",
            t.day(),
            ES_MONTHS[month],
            t.year(),
            t.hour(),
            t.minute()
        ),
    }
}

/// A count with its thousands grouped: "12,345" in English, "12 345"
/// (a no-break space, as the Real Academia advises) in Spanish.
pub fn grouped(n: i64, lang: Lang) -> String {
    let sep = match lang {
        Lang::En => ",",
        Lang::Es => "\u{a0}",
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(d);
    }
    out
}

/// Every word the public page shows, in one language.
pub struct Words {
    title: &'static str,
    heading: &'static str,
    administrator: &'static str,
    not_recorded: &'static str,
    figures: &'static str,
    as_of: &'static str,
    aggregates_only: &'static str,
    reads_kept: &'static str,
    oldest_read: &'static str,
    none_f: &'static str,
    none_m: &'static str,
    days_old: fn(f64) -> String,
    days: fn(i64) -> String,
    reads_kept_for: &'static str,
    images_kept_for: &'static str,
    hotlist_hits: &'static str,
    searches: &'static str,
    holds_open: &'static str,
    records_requests: &'static str,
    shared: &'static str,
    shared_by_agency: &'static str,
    agency: &'static str,
    transfers: &'static str,
    reads: &'static str,
    policy: &'static str,
    /// Said above the agency's policy text where it may be in another
    /// language than the page.
    policy_as_posted: Option<&'static str>,
    no_policy: &'static str,
    checkpoint: &'static str,
    checkpoint_about: &'static str,
    no_checkpoint: &'static str,
    entries: &'static str,
    signed_at: &'static str,
}

const EN: Words = Words {
    title: "ALPR transparency",
    heading: "Automated License Plate Readers at",
    administrator: "ALPR Administrator",
    not_recorded: "(not recorded)",
    figures: "Figures",
    as_of: "As of",
    aggregates_only: "Aggregates only: this page never shows a plate, a place or a search.",
    reads_kept: "Reads kept",
    oldest_read: "Oldest read kept",
    none_f: "none",
    none_m: "none",
    days_old: |d| format!("{d} days old"),
    days: |d| format!("{d} days"),
    reads_kept_for: "Reads are kept for",
    images_kept_for: "Images are kept for",
    hotlist_hits: "Hot-list hits this month",
    searches: "Searches this month",
    holds_open: "Open legal holds",
    records_requests: "Public-records requests this year",
    shared: "Data shared with other agencies",
    shared_by_agency: "Data shared, by agency",
    agency: "Agency",
    transfers: "Transfers",
    reads: "Reads",
    policy: "Usage and privacy policy",
    policy_as_posted: None,
    no_policy: "The agency has not posted its policy text here yet.",
    checkpoint: "Audit log checkpoint",
    checkpoint_about: "Every search of plate data is recorded in a hash-chained audit log. This is its latest state, signed by the system. Keep a copy (the same values are in this page's JSON, ?format=json): an auditor can later prove with it that no record up to this point was rewritten or removed.",
    no_checkpoint: "No checkpoint has been signed yet.",
    entries: "Entries",
    signed_at: "Signed",
};

const ES: Words = Words {
    title: "Transparencia de ALPR",
    heading: "Lectores automáticos de placas (ALPR) en",
    administrator: "Administrador de ALPR",
    not_recorded: "(no registrado)",
    figures: "Cifras",
    as_of: "Al",
    aggregates_only: "Solo totales: esta página nunca muestra una placa, un lugar ni una búsqueda.",
    reads_kept: "Lecturas conservadas",
    oldest_read: "Lectura más antigua conservada",
    none_f: "ninguna",
    none_m: "ninguno",
    // A decimal comma, as Spanish writes it.
    days_old: |d| format!("de hace {} días", d.to_string().replace('.', ",")),
    days: |d| format!("{d} días"),
    reads_kept_for: "Las lecturas se conservan durante",
    images_kept_for: "Las imágenes se conservan durante",
    hotlist_hits: "Coincidencias con listas de alerta este mes",
    searches: "Búsquedas este mes",
    holds_open: "Retenciones legales abiertas",
    records_requests: "Solicitudes de registros públicos este año",
    shared: "Datos compartidos con otras agencias",
    shared_by_agency: "Datos compartidos, por agencia",
    agency: "Agencia",
    transfers: "Transferencias",
    reads: "Lecturas",
    policy: "Política de uso y privacidad",
    policy_as_posted: Some("El texto de la política se muestra tal como la agencia lo publicó."),
    no_policy: "La agencia aún no ha publicado aquí el texto de su política.",
    checkpoint: "Punto de control del registro de auditoría",
    checkpoint_about: "Cada búsqueda de datos de placas queda anotada en un registro de auditoría encadenado por hashes. Este es su último estado, firmado por el sistema. Guarde una copia (los mismos valores están en el JSON de esta página, ?format=json): con ella un auditor puede demostrar después que ningún registro hasta este punto fue reescrito ni eliminado.",
    no_checkpoint: "Aún no se ha firmado ningún punto de control.",
    entries: "Entradas",
    signed_at: "Firmado",
};

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
    let (lang, unsupported) = choose_lang(
        p.lang.as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let policy = state.store.policy();
    let figures = figures(&state).await?;
    let store = state.store.clone();
    let checkpoint = blocking(move || Ok(store.latest_checkpoint()?)).await?;
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
        checkpoint,
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
            (header::CONTENT_LANGUAGE, lang.code()),
            (header::VARY, "Accept-Language"),
        ],
        page(&t, lang, unsupported.as_deref()),
    )
        .into_response())
}

/// Markdown to HTML with any raw HTML in the source shown as text, and
/// links and pictures kept only where they lead somewhere safe (see
/// [`safe_url`]; an unsafe link keeps its words, without the link): the
/// policy is written by the agency, but the page must never run markup or
/// script pasted into it, whatever the page's CSP (issue 22 finding 13).
pub fn markdown_html(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    // Links do not nest in Markdown, nor do pictures: one flag each.
    let (mut in_bad_link, mut in_bad_image) = (false, false);
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).filter_map(move |e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link { ref dest_url, .. }) if !safe_url(dest_url) => {
            in_bad_link = true;
            None
        }
        Event::End(TagEnd::Link) if in_bad_link => {
            in_bad_link = false;
            None
        }
        Event::Start(Tag::Image { ref dest_url, .. }) if !safe_url(dest_url) => {
            in_bad_image = true;
            None
        }
        Event::End(TagEnd::Image) if in_bad_image => {
            in_bad_image = false;
            None
        }
        e => Some(e),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Whether a link in the posted policy may be followed: a relative link
/// or fragment, or an `http`, `https`, `mailto` or `tel` one. Browsers
/// ignore tabs, line breaks and leading spaces or control characters in a
/// scheme (`java\tscript:`), so those are removed before it is read.
pub fn safe_url(url: &str) -> bool {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect();
    let scheme_end = cleaned.find([':', '/', '?', '#']);
    match scheme_end {
        Some(i) if cleaned[i..].starts_with(':') => matches!(
            cleaned[..i].to_ascii_lowercase().as_str(),
            "http" | "https" | "mailto" | "tel"
        ),
        _ => true,
    }
}

fn page(t: &Transparency, lang: Lang, unsupported: Option<&str>) -> String {
    let w = lang.words();
    let f = &t.figures;
    let n = |v: i64| grouped(v, lang);
    let mut rows = vec![
        (w.reads_kept, grouped(f.reads_kept as i64, lang)),
        (
            w.oldest_read,
            f.oldest_read_age_days
                .map_or(w.none_f.into(), |d| (w.days_old)(d)),
        ),
        (w.reads_kept_for, (w.days)(f.reads_retention_days)),
        (w.images_kept_for, (w.days)(f.images_retention_days)),
        (w.hotlist_hits, n(f.hotlist_hits_this_month)),
        (w.searches, n(f.searches_this_month)),
        (w.holds_open, n(f.legal_holds_open)),
        (w.records_requests, n(f.records_requests_this_year)),
    ];
    if f.shares_by_agency.is_empty() {
        rows.push((w.shared, w.none_m.into()));
    }
    // Each language's name in itself; the page's own is not a link.
    let switch = [(Lang::En, "English"), (Lang::Es, "Español")]
        .iter()
        .map(|&(l, name)| {
            if l == lang {
                format!(
                    "<strong lang=\"{c}\" aria-current=\"page\">{name}</strong>",
                    c = l.code()
                )
            } else {
                format!(
                    "<a href=\"?lang={c}\" hreflang=\"{c}\" lang=\"{c}\">{name}</a>",
                    c = l.code()
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let mut h = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {agency}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
         table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}nav{{text-align:right}}</style></head><body>\
         <nav>{switch}</nav>{note}\
         <h1>{heading} {agency}</h1>\
         <p>{administrator}: <strong>{name}</strong>{admin_title}</p>\
         <h2>{figures}</h2><p>{as_of} {when}. {aggregates}</p><table>",
        lang = lang.code(),
        title = w.title,
        heading = w.heading,
        administrator = w.administrator,
        figures = w.figures,
        as_of = w.as_of,
        aggregates = w.aggregates_only,
        agency = esc(&t.agency),
        name = esc(if t.administrator_name.is_empty() { w.not_recorded } else { &t.administrator_name }),
        admin_title = if t.administrator_title.is_empty() {
            String::new()
        } else {
            format!(", {}", esc(&t.administrator_title))
        },
        when = esc(&human_time(&f.as_of, lang)),
        note = unsupported.map_or(String::new(), |tag| format!(
            "<p role=\"note\"><em>This page is not written in “{}”; it is shown in English. \
             <span lang=\"es\">También está <a href=\"?lang=es\" hreflang=\"es\">en español</a>.</span></em></p>",
            esc(tag)
        )),
    );
    for (k, v) in rows {
        h.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(&v)
        ));
    }
    h.push_str("</table>");
    if !f.shares_by_agency.is_empty() {
        h.push_str(&format!(
            "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            w.shared_by_agency, w.agency, w.transfers, w.reads
        ));
        for s in &f.shares_by_agency {
            h.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&s.agency),
                grouped(s.transfers, lang),
                grouped(s.reads, lang)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str(&format!("<h2>{}</h2>", w.policy));
    if t.policy_markdown.trim().is_empty() {
        h.push_str(&format!("<p>{}</p>", w.no_policy));
    } else {
        if let Some(note) = w.policy_as_posted {
            h.push_str(&format!("<p><em>{note}</em></p>"));
        }
        // The agency's text, in whatever language it was written.
        h.push_str("<div lang=\"\">");
        h.push_str(&markdown_html(&t.policy_markdown));
        h.push_str("</div>");
    }
    h.push_str(&format!(
        "<h2>{}</h2><p>{}</p>",
        w.checkpoint, w.checkpoint_about
    ));
    match &t.checkpoint {
        Some(c) => {
            h.push_str("<table>");
            for (k, v) in [
                (w.entries, grouped(c.entries, lang)),
                (w.signed_at, human_time(&c.time, lang)),
                ("head", c.head.clone()),
                ("store_id", c.store_id.clone()),
                ("public_key", c.public_key.clone()),
                ("signature", c.signature.clone()),
            ] {
                h.push_str(&format!(
                    "<tr><th scope=\"row\">{}</th><td><code style=\"word-break:break-all\">{}</code></td></tr>",
                    esc(k),
                    esc(&v)
                ));
            }
            h.push_str("</table>");
        }
        None => h.push_str(&format!("<p>{}</p>", w.no_checkpoint)),
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_language_is_the_parameter_or_the_browsers_likeliest() {
        let lang = |p: Option<&str>, a: Option<&str>| choose_lang(p, a).0;
        assert_eq!(lang(None, None), Lang::En);
        assert_eq!(lang(Some("es"), Some("en")), Lang::Es);
        assert_eq!(lang(Some(" EN "), Some("es")), Lang::En);
        // A language the page is not written in: English, and the tag to
        // say so, made safe to repeat (issue 23 item 10).
        for (bad, shown) in [
            ("fr", "fr"),
            ("", "?"),
            ("es-MX", "es-MX"),
            ("<script>", "script"),
            (&"e".repeat(10_000), "eeeeeeeeeeeeeeee"),
        ] {
            assert_eq!(
                choose_lang(Some(bad), Some("es")),
                (Lang::En, Some(shown.to_string())),
                "{bad}"
            );
        }
        assert_eq!(lang(None, Some("es-MX,es;q=0.9,en;q=0.8")), Lang::Es);
        assert_eq!(lang(None, Some("en-US,en;q=0.9,es;q=0.8")), Lang::En);
        assert_eq!(lang(None, Some("fr-FR, es;q=0.5, en;q=0.4")), Lang::Es);
        assert_eq!(lang(None, Some("en;q=0.2, es_US;q=0.7")), Lang::Es);
        assert_eq!(lang(None, Some("fr, de")), Lang::En, "neither: English");
        assert_eq!(lang(None, Some("es;q=0, fr")), Lang::En, "q=0 refuses");
        assert_eq!(
            lang(None, Some("es;q=2, en;q=0.1")),
            Lang::En,
            "a bad q is not read"
        );
        assert_eq!(lang(None, Some("es;q=abc")), Lang::En);
        assert_eq!(lang(None, Some(";;,,;q=,es")), Lang::Es);
        let long = format!("{}es", "fr,".repeat(100));
        assert_eq!(
            lang(None, Some(&long)),
            Lang::En,
            "read no further than 32 entries"
        );
    }

    use super::*;

    #[test]
    fn times_and_numbers_are_written_for_people() {
        assert_eq!(
            human_time("2026-12-07T04:35:09.123Z", Lang::En),
            "7 December 2026, 04:35 UTC"
        );
        assert_eq!(
            human_time("2026-01-31T23:05:00Z", Lang::Es),
            "31 de enero de 2026, 23:05 UTC"
        );
        assert_eq!(human_time("not a time", Lang::En), "not a time");
        assert_eq!(grouped(0, Lang::En), "0");
        assert_eq!(grouped(999, Lang::En), "999");
        assert_eq!(grouped(1_000, Lang::En), "1,000");
        assert_eq!(grouped(12_345_678, Lang::En), "12,345,678");
        assert_eq!(grouped(-1_234, Lang::En), "-1,234");
        assert_eq!(grouped(12_345, Lang::Es), "12\u{a0}345");
    }

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

    #[test]
    fn links_with_unsafe_schemes_keep_their_words_but_not_the_link() {
        let md = "[one](javascript:alert(1)) [two](JavaScript:alert(1)) [three](java\tscript:x) \
                  [four](%20javascript:x) [five](data:text/html,<b>x</b>) [six](vbscript:x) \
                  [seven]( javascript:x) ![pic](javascript:x) <javascript:alert(1)> \
                  [ok](https://agency.example/policy) [rel](/transparency?lang=es) [mail](mailto:alpr@agency.example) [frag](#retention)";
        let html = markdown_html(md);
        for bad in [
            "javascript",
            "JavaScript",
            "vbscript",
            "data:",
            "java\tscript",
        ] {
            assert!(!html.contains(&format!("href=\"{bad}")), "{bad}: {html}");
            assert!(!html.contains(&format!("src=\"{bad}")), "{bad}: {html}");
        }
        for words in ["one", "two", "three", "five", "six", "seven", "pic"] {
            assert!(html.contains(words), "{words}: {html}");
        }
        for good in [
            "href=\"https://agency.example/policy\"",
            "href=\"/transparency?lang=es\"",
            "href=\"mailto:alpr@agency.example\"",
            "href=\"#retention\"",
        ] {
            assert!(html.contains(good), "{good}: {html}");
        }
        assert!(!html.contains("<a href=\"javascript"), "{html}");
    }

    #[test]
    fn safe_url_reads_the_scheme_as_a_browser_would() {
        for ok in [
            "https://x",
            "HTTP://x",
            "/a:b",
            "a/b:c",
            "?q=a:b",
            "#x:y",
            "",
            "mailto:a@b",
            "tel:+15105550100",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:x",
            " javascript:x",
            "\u{1}javascript:x",
            "java\nscript:x",
            "data:x",
            "file:///etc/passwd",
            "blob:x",
            "x:y",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
    }
}
