//! The few HTML pages the authorization server shows (consent, waiting for upstream sign-in,
//! errors). No scripts, no third-party resources, never framed.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}\
dt{font-weight:600;margin-top:.6rem}dd{margin:0;word-break:break-all}.warn{color:#8a4b00}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.8rem}";

/// A page with the anti-framing, no-referrer and no-store headers.
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
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>{refresh}<style>{STYLE}</style></head><body><h1>{}</h1>{body_html}</body></html>",
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(message)), None)
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
    pub upstream_status: &'a str,
    pub metadata_document: bool,
}

pub fn consent_page(v: &ConsentView<'_>) -> Response {
    let server_html = match v.server {
        Ok(s) => format!("<dd>{}</dd>", escape(s)),
        Err(choices) => {
            let options: String = choices
                .iter()
                .map(|s| format!("<option value=\"{0}\">{0}</option>", escape(s)))
                .collect();
            format!("<dd><select name=\"server\" required>{options}</select> (this app did not say which server it wants)</dd>")
        }
    };
    let redirect_warn = if v.redirect_uri.starts_with("https://") {
        "<p class=\"warn\">This app receives its tokens on a web site, not on this computer. Approve only if you recognise that site.</p>"
    } else {
        ""
    };
    let cimd = if v.metadata_document {
        format!(" (identified by {})", escape(v.client_id))
    } else {
        String::new()
    };
    let body = format!(
        "<p>An application asks to use an MCP server through MCP Auth Broker, with your sign-in.</p>\
<form method=\"post\" action=\"/consent\"><dl>\
<dt>Application</dt><dd>{name}{cimd}</dd>\
<dt>Tokens will be sent to</dt><dd>{host} <small>({uri})</small></dd>\
<dt>Server</dt>{server_html}\
<dt>Upstream sign-in</dt><dd>{status}</dd></dl>{redirect_warn}\
<input type=\"hidden\" name=\"request\" value=\"{rid}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<p><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p></form>",
        name = escape(v.client_name),
        host = escape(v.redirect_host),
        uri = escape(v.redirect_uri),
        status = escape(v.upstream_status),
        rid = escape(v.request_id),
        csrf = escape(v.csrf),
    );
    page(StatusCode::OK, "Allow this application?", &body, None)
}

/// Shown while the upstream sign-in (opened in another tab) completes; reloads itself.
pub fn waiting_page(server: &str, authorize_url: &str) -> Response {
    let body = format!(
        "<p>Sign in to <b>{}</b> in the browser tab that just opened. This page continues by itself when you are done.</p>\
<p>No tab? <a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">Open the sign-in page</a>.</p>",
        escape(server),
        escape(authorize_url)
    );
    page(StatusCode::OK, "Waiting for sign-in", &body, Some(1))
}
