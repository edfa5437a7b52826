//! The few HTML pages the authorization server shows (consent, waiting for upstream sign-in,
//! errors). No scripts, no third-party resources, never framed.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::words::Problem;

/// HTML-escapes untrusted text (client names, URIs, error messages).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The dashboard's colours (light and dark), inlined: the pages load nothing from elsewhere.
const PALETTE: &str = include_str!("../../ui/palette.css");

const STYLE: &str = "*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--text)}\
main{max-width:36rem;margin:3rem auto;padding:24px 28px;background:var(--panel);border:1px solid var(--line);border-radius:12px}\
.brand{display:flex;align-items:center;gap:10px;color:var(--muted);font-weight:600;margin-bottom:12px}\
h1{font-size:20px;margin:0 0 12px}dl{margin:12px 0}dt{font-weight:600;color:var(--muted);font-size:12.5px;margin-top:10px}\
dd{margin:2px 0 0;overflow-wrap:anywhere}small,.muted{color:var(--muted)}.warn{color:var(--warn)}\
.ready{color:var(--ok);font-weight:600}.problem{margin:14px 0;padding:12px 14px;border-radius:8px;background:var(--bad-bg);border:1px solid var(--bad)}\
.problem p{margin:0}details{margin-top:8px}summary{cursor:pointer;color:var(--muted)}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;font:12.5px ui-monospace,Menlo,monospace;margin:6px 0 0}\
.buttons{display:flex;gap:12px;align-items:center;margin-top:18px}select{font:inherit;color:inherit;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:5px 8px}\
button{font:inherit;color:inherit;border:1px solid var(--line);background:var(--panel);border-radius:6px;padding:7px 16px;cursor:pointer}\
button.primary{background:var(--accent);color:var(--accent-text);border-color:var(--accent)}a{color:var(--accent)}\
:focus-visible{outline:3px solid var(--focus);outline-offset:1px}";

/// The app icon as a `data:` URI (allowed by the pages' `img-src data:`).
fn icon_uri() -> &'static str {
    static URI: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        let png = include_bytes!("../../icons/128x128.png");
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    });
    &URI
}

/// A page with the anti-framing, no-referrer and no-store headers, in the app's look.
pub fn page(
    status: StatusCode,
    title: &str,
    body_html: &str,
    refresh_secs: Option<u32>,
) -> Response {
    let refresh = refresh_secs
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title>{refresh}<style>{PALETTE}{STYLE}</style></head><body><main>\
<div class=\"brand\"><img src=\"{icon}\" alt=\"\" width=\"32\" height=\"32\">MCP Auth Broker</div><h1>{title}</h1>{body_html}</main></body></html>",
        title = escape(title),
        icon = icon_uri(),
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(message)), None)
}

/// A problem as the pages show it: what happened and what to do, the raw cause behind "Details".
pub fn problem_html(p: &Problem) -> String {
    format!(
        "<div class=\"problem\" data-kind=\"{kind}\"><p>{sentence}</p><details><summary>Details</summary><pre>{details}</pre></details></div>",
        kind = escape(&serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
        sentence = escape(&p.sentence),
        details = escape(&p.details),
    )
}

/// A page for a problem: `intro` (plain text), then the problem and its fix.
pub fn problem_page(status: StatusCode, title: &str, intro: &str, p: &Problem) -> Response {
    let body = format!(
        "<p>{}</p>{}<p class=\"muted\">You can close this tab.</p>",
        escape(intro),
        problem_html(p)
    );
    page(status, title, &body, None)
}

/// What the consent page shows; every field is untrusted or user-facing text (escaped here).
pub struct ConsentView<'a> {
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub redirect_host: &'a str,
    pub redirect_uri: &'a str,
    /// The chosen server, or the servers to pick from.
    pub server: Result<&'a str, &'a [String]>,
    /// What approving does for the server; or why it cannot be signed in now (then there is no
    /// Approve, only the fix).
    pub upstream: Result<&'a str, &'a Problem>,
    pub metadata_document: bool,
}

pub fn consent_page(v: &ConsentView<'_>) -> Response {
    let server_html = match v.server {
        Ok(s) => format!("<dd><b>{}</b></dd>", escape(s)),
        Err(choices) => {
            let options: String = choices
                .iter()
                .map(|s| format!("<option value=\"{0}\">{0}</option>", escape(s)))
                .collect();
            format!("<dd><select name=\"server\" required>{options}</select> <small>(the app did not say which server it wants)</small></dd>")
        }
    };
    let redirect_warn = if v.redirect_uri.starts_with("https://") {
        "<p class=\"warn\">This app receives its access on a web site, not on this computer. Allow it only if you recognise that site.</p>"
    } else {
        ""
    };
    let cimd = if v.metadata_document {
        format!(" <small>(identified by {})</small>", escape(v.client_id))
    } else {
        String::new()
    };
    let hidden = format!(
        "<input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(v.request_id),
        escape(v.csrf)
    );
    let (status_html, fix, buttons, title) = match v.upstream {
        Ok(status) => (
            format!("<dt>Server sign-in</dt><dd>{}</dd>", escape(status)),
            String::new(),
            "<button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>",
            "Allow this app to use your server?",
        ),
        Err(p) => (
            "<dt>Server sign-in</dt><dd>Not possible right now: fix the problem below, then try again.</dd>".to_string(),
            problem_html(p),
            "<a href=\"\">Try again</a><button type=\"submit\" name=\"decision\" value=\"deny\">Tell the app no</button>",
            "This server cannot be used yet",
        ),
    };
    let body = format!(
        "<p>An app on this computer asks to use an MCP server through MCP Auth Broker, with your sign-in. The broker keeps your sign-in; the app gets its own access to this one server.</p>\
<form method=\"post\" action=\"/consent\"><dl>\
<dt>App</dt><dd>{name}{cimd}</dd>\
<dt>Server</dt>{server_html}{status_html}\
<dt>The app's address</dt><dd>{host} <small>({uri})</small></dd></dl>{fix}{redirect_warn}\
{hidden}<div class=\"buttons\">{buttons}</div></form>",
        name = escape(v.client_name),
        host = escape(v.redirect_host),
        uri = escape(v.redirect_uri),
    );
    page(StatusCode::OK, title, &body, None)
}

/// Shown while the upstream sign-in (opened in another tab) completes; reloads itself.
pub fn waiting_page(server: &str, authorize_url: &str) -> Response {
    let body = format!(
        "<p>Sign in to <b>{}</b> in the browser tab that just opened. This page goes on by itself when you are done.</p>\
<p class=\"muted\">No new tab? <a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">Open the sign-in page</a>.</p>",
        escape(server),
        escape(authorize_url)
    );
    page(StatusCode::OK, "Waiting for sign-in", &body, Some(1))
}
