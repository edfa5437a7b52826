//! Discovery against purpose-built servers on 127.0.0.1: the spec's lookup order, identity
//! checks, the 2025-03-26 fallbacks, and the URL guards (no cross-origin redirects, no unsafe
//! metadata URLs).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use mcp_auth_broker::config::{validate, RawConfig, ServerConfig};
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::upstream::{Upstream, UpstreamDeps};
use mcp_auth_broker::vault::Vault;
use serde_json::{json, Value};
use url::Url;

type Handler = Arc<dyn Fn(&str, &str) -> Response + Send + Sync>;

/// A server answering every request through `handler(base, path)` and recording paths.
struct Mock {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn mock(handler: impl Fn(&str, &str) -> Response + Send + Sync + 'static) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(vec![]));
    let (h, b, s): (Handler, String, _) = (Arc::new(handler), base.clone(), seen.clone());
    let app = Router::new().fallback(move |uri: axum::http::Uri, _headers: HeaderMap| {
        let (h, b, s) = (h.clone(), b.clone(), s.clone());
        async move {
            s.lock().unwrap().push(uri.path().to_string());
            h(&b, uri.path())
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Mock { base, seen }
}

fn json_at(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn unauthorized(challenge: Option<String>) -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    if let Some(c) = challenge {
        r.headers_mut()
            .insert("www-authenticate", c.parse().unwrap());
    }
    r
}

fn as_doc(issuer: &str) -> Value {
    json!({
        "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"), "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"), "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]
    })
}

fn upstream() -> (Upstream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = tokio::sync::broadcast::channel(16);
    let deps = UpstreamDeps {
        vault: Vault::in_memory(),
        redirect_uri: Url::parse("http://127.0.0.1:9/oauth/callback").unwrap(),
        data_dir: dir.path().to_path_buf(),
        events,
    };
    (Upstream::new(deps), dir)
}

fn server(url: &str) -> ServerConfig {
    let raw: RawConfig =
        serde_json::from_value(json!({"mcp_servers": {"s": {"url": url}}})).unwrap();
    validate(&raw)
        .unwrap()
        .config
        .servers
        .into_values()
        .next()
        .unwrap()
}

#[tokio::test]
async fn as_metadata_is_looked_up_in_the_spec_order_down_to_oidc_path_appending() {
    let m = mock(|base, path| match path {
        "/mcp" => unauthorized(Some("Bearer".into())),
        "/.well-known/oauth-protected-resource/mcp" => json_at(json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/tenant1")]})),
        "/tenant1/.well-known/openid-configuration" => json_at(as_doc(&format!("{base}/tenant1"))),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    assert_eq!(
        d.metadata.as_ref().unwrap().issuer,
        format!("{}/tenant1", m.base)
    );
    assert_eq!(
        *m.seen.lock().unwrap(),
        [
            "/mcp",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server/tenant1",
            "/.well-known/openid-configuration/tenant1",
            "/tenant1/.well-known/openid-configuration"
        ]
    );
}

#[tokio::test]
async fn the_challenge_resource_metadata_url_is_tried_first_and_its_scope_wins() {
    let m = mock(|base, path| match path {
        "/mcp" => unauthorized(Some(format!("Bearer error=\"invalid_token\", resource_metadata=\"{base}/custom/prm\", scope=\"files:read\""))),
        "/custom/prm" => json_at(json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["a", "b"]})),
        "/.well-known/oauth-authorization-server" => json_at(as_doc(base)),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    assert!(d.prm.is_some() && d.metadata.is_some(), "{:?}", d.notes);
    assert_eq!(m.seen.lock().unwrap()[1], "/custom/prm");
    assert!(!m
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.starts_with("/.well-known/oauth-protected-resource")));
    assert_eq!(
        d.scope(&["configured".into()]).as_deref(),
        Some("files:read configured"),
        "the challenge scope wins over the PRM's; configured scopes extend it"
    );
}

#[tokio::test]
async fn metadata_with_another_issuer_and_prm_for_another_resource_are_not_used() {
    let m = mock(|base, path| match path {
        "/mcp" => unauthorized(None),
        "/.well-known/oauth-protected-resource/mcp" => json_at(json!({"resource": "http://127.0.0.1:1/elsewhere", "authorization_servers": [base]})),
        "/.well-known/oauth-protected-resource" => json_at(json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["x"]})),
        "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => json_at(as_doc("https://evil.example")),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    assert_eq!(
        d.prm.as_ref().unwrap().scopes_supported.as_deref(),
        Some(&["x".to_string()][..]),
        "the root PRM, not the mismatched one"
    );
    assert!(d.metadata.is_none());
    assert!(
        d.notes.iter().any(|n| n.contains("does not match")),
        "{:?}",
        d.notes
    );
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("issuer \"https://evil.example\"")),
        "{:?}",
        d.notes
    );
}

#[tokio::test]
async fn a_2025_03_26_server_without_metadata_signs_in_through_the_default_endpoints() {
    let m = mock(|base, path| match path {
        "/mcp" => unauthorized(None),
        "/authorize" => (StatusCode::BAD_REQUEST, "client_id is required").into_response(),
        "/register" => (
            StatusCode::CREATED,
            axum::Json(
                json!({"client_id": "legacy-client", "redirect_uris": [format!("{base}/cb")]}),
            ),
        )
            .into_response(),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let s = server(&format!("{}/mcp", m.base));
    let d = u.discover(&s).await;
    assert!(d.legacy_defaults);
    let opened = Arc::new(Mutex::new(vec![]));
    let o = opened.clone();
    let opener = Opener::Custom(Arc::new(move |url: Url| o.lock().unwrap().push(url)));
    let sign_in = u.sign_in(&s, &opener).await.expect("legacy sign-in starts");
    assert_eq!(sign_in.authorize_url.path(), "/authorize");
    assert_eq!(sign_in.authorize_url.origin().ascii_serialization(), m.base);
    assert!(sign_in
        .authorize_url
        .query()
        .unwrap()
        .contains("client_id=legacy-client"));
    assert!(m.seen.lock().unwrap().contains(&"/register".to_string()));
    assert_eq!(opened.lock().unwrap().len(), 1);
    let warned = sign_in.warnings.join(" ");
    assert!(
        warned.contains("guessed") && warned.contains(&format!("{}/authorize", m.base)),
        "the person is told the endpoints were guessed: {warned}"
    );
    assert!(
        warned.contains("\"authorization_url\" and \"token_url\""),
        "{warned}"
    );
}

#[tokio::test]
async fn a_guessed_authorization_endpoint_that_does_not_exist_is_refused_before_the_browser() {
    let m = mock(|_, path| match path {
        "/mcp" => unauthorized(None),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let s = server(&format!("{}/mcp", m.base));
    let opened = Arc::new(Mutex::new(vec![]));
    let o = opened.clone();
    let opener = Opener::Custom(Arc::new(move |url: Url| o.lock().unwrap().push(url)));
    let refused = u
        .sign_in(&s, &opener)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        refused.contains(&format!("{}/authorize", m.base)) && refused.contains("HTTP 404"),
        "{refused}"
    );
    assert!(
        refused.contains("set \"authorization_url\" and \"token_url\""),
        "{refused}"
    );
    assert!(
        opened.lock().unwrap().is_empty(),
        "no browser for a missing page"
    );
    assert!(
        !m.seen.lock().unwrap().contains(&"/register".to_string()),
        "nothing registered for a sign-in that cannot happen"
    );
    let steps = u.timeline(&s.name);
    let failed = steps.iter().rev().find(|st| !st.ok).expect("a failed step");
    assert!(failed.detail.contains("HTTP 404"), "{steps:?}");
}

#[tokio::test]
async fn redirects_to_another_origin_and_unsafe_metadata_urls_are_never_fetched() {
    let elsewhere = mock(|_, _| json_at(json!({"resource": "x"}))).await;
    let target = format!("{}/prm", elsewhere.base);
    let m = mock(move |_base, path| match path {
        "/mcp" => unauthorized(Some("Bearer resource_metadata=\"http://169.254.169.254/latest/meta-data\"".into())),
        "/.well-known/oauth-protected-resource/mcp" => (StatusCode::FOUND, [("location", target.clone())]).into_response(),
        "/.well-known/oauth-protected-resource" => json_at(json!({"resource": "ignored", "authorization_servers": ["file:///etc/passwd", "http://10.0.0.1/"]})),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    assert!(
        elsewhere.seen.lock().unwrap().is_empty(),
        "the other origin was contacted"
    );
    assert!(
        d.notes.iter().any(|n| n.contains("cross-origin")),
        "{:?}",
        d.notes
    );
    assert!(
        d.notes.iter().any(|n| n.contains("169.254.169.254")),
        "{:?}",
        d.notes
    );
    assert!(d.metadata.is_none());
}

#[tokio::test]
async fn a_server_error_to_the_anonymous_probe_is_unreachable_with_the_status_not_no_auth() {
    let m = mock(|_, path| match path {
        "/mcp" => (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response(),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let s = server(&format!("{}/mcp", m.base));
    let c = u.classify(&s).await.unwrap();
    let said = c.evidence.join(" ");
    assert!(
        said.starts_with("unreachable") && said.contains("503"),
        "{said}"
    );
    assert!(!said.contains("no auth needed"), "{said}");
    let d = u.discover(&s).await;
    assert!(d
        .unreachable
        .as_deref()
        .is_some_and(|u| u.contains("HTTP 503")));
    let refused = u
        .sign_in(&s, &Opener::Print)
        .await
        .err()
        .expect("not signed in");
    assert!(
        refused.to_string().contains("unreachable") && refused.to_string().contains("503"),
        "{refused}"
    );
    let steps = u.timeline(&s.name);
    assert!(
        steps.iter().any(|st| !st.ok && st.detail.contains("503")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_reported_not_guessed() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", l.local_addr().unwrap().port());
    drop(l);
    let (u, _d) = upstream();
    let c = u.classify(&server(&url)).await.unwrap();
    assert_eq!(c.flow, Some(mcp_auth_broker::upstream::Flow::None));
    assert!(c.evidence[0].starts_with("unreachable"), "{:?}", c.evidence);
}

#[tokio::test]
async fn metadata_urls_at_link_local_addresses_are_refused_in_any_spelling_even_over_https() {
    let m = mock(move |base, path| match path {
        "/mcp" => unauthorized(Some("Bearer resource_metadata=\"https://169.254.169.254/latest/meta-data\"".into())),
        "/.well-known/oauth-protected-resource/mcp" => json_at(json!({"resource": format!("{base}/mcp"), "authorization_servers": ["https://[::ffff:a9fe:a9fe]/", "https://0xa9.0xfe.0xa9.0xfe/"]})),
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    let link_local = d
        .notes
        .iter()
        .filter(|n| n.contains("link-local address, which the broker never contacts"))
        .count();
    assert!(link_local >= 2, "{:?}", d.notes);
    assert!(d.metadata.is_none());
}

#[tokio::test]
async fn cloud_metadata_addresses_outside_link_local_are_refused_in_any_spelling() {
    let spellings = [
        "https://100.100.100.200/",
        "https://1684301000/",
        "https://0x64.0x64.0x64.0xc8/",
        "https://0144.0144.0144.0310/",
        "https://[::ffff:6464:64c8]/",
        "https://[64:ff9b::6464:64c8]/",
        "https://[fd00:ec2::254]/",
        "https://[FD00:0EC2:0:0:0:0:0:0254]/",
        "https://[64:ff9b::a9fe:a9fe]/",
    ];
    let m = mock(move |base, path| match path {
        "/mcp" => unauthorized(Some(format!("Bearer resource_metadata=\"{base}/prm\""))),
        "/prm" => {
            json_at(json!({"resource": format!("{base}/mcp"), "authorization_servers": spellings}))
        }
        _ => not_found(),
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{}/mcp", m.base))).await;
    let refused = d
        .notes
        .iter()
        .filter(|n| n.contains("which the broker never contacts"))
        .count();
    assert!(refused >= spellings.len(), "{:?}", d.notes);
    assert!(
        !d.notes.iter().any(|n| n.contains("could not be reached")),
        "nothing was contacted: {:?}",
        d.notes
    );
    assert!(d.metadata.is_none());
}

#[tokio::test]
async fn a_server_named_by_host_name_is_reached_through_the_guarded_resolver() {
    let m = mock(move |base, path| match path {
        "/mcp" => unauthorized(Some(format!("Bearer resource_metadata=\"{base}/prm\""))),
        _ => not_found(),
    })
    .await;
    let port = m.base.rsplit(':').next().unwrap();
    let (u, _d) = upstream();
    let d = u
        .discover(&server(&format!("http://localhost:{port}/mcp")))
        .await;
    assert!(d.unreachable.is_none(), "{:?}", d.notes);
    let seen = m.seen.lock().unwrap().clone();
    assert!(seen.contains(&"/mcp".to_string()), "{seen:?}");
}

/// What a JSON-RPC mock saw of one request: path, `Mcp-Method` and `MCP-Protocol-Version`
/// headers, whether it had credentials, and the body's method.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    mcp_method: Option<String>,
    version: Option<String>,
    authorized: bool,
    method: Option<String>,
    meta_version: Option<String>,
}

type RpcHandler = Arc<dyn Fn(&str, &Seen) -> Response + Send + Sync>;

/// Like [`mock`], but the handler also sees the request's MCP headers and body.
async fn rpc_mock(
    handler: impl Fn(&str, &Seen) -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(vec![]));
    let (h, b, s): (RpcHandler, String, _) = (Arc::new(handler), base.clone(), seen.clone());
    let app = Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (h, b, s) = (h.clone(), b.clone(), s.clone());
            async move {
                let text = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let one = Seen {
                    path: uri.path().to_string(),
                    mcp_method: text("mcp-method"),
                    version: text("mcp-protocol-version"),
                    authorized: headers.contains_key("authorization"),
                    method: msg["method"].as_str().map(str::to_string),
                    meta_version: msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
                        .as_str()
                        .map(str::to_string),
                };
                s.lock().unwrap().push(one.clone());
                h(&b, &one)
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn rpc_refusal(code: i64, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message, "data": {"supported": ["2026-07-28"]}}})),
    )
        .into_response()
}

/// PRM, AS metadata and registration of a server that is its own authorization server.
fn oauth_documents(base: &str, path: &str) -> Option<Response> {
    match path {
        "/.well-known/oauth-protected-resource/mcp" => Some(json_at(
            json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
        )),
        "/.well-known/oauth-authorization-server" => Some(json_at(as_doc(base))),
        "/register" => Some(
            (
                StatusCode::CREATED,
                axum::Json(json!({"client_id": "modern-client", "redirect_uris": ["http://127.0.0.1:9/oauth/callback"]})),
            )
                .into_response(),
        ),
        _ => None,
    }
}

#[tokio::test]
async fn a_stateless_server_that_refuses_initialize_with_400_still_starts_sign_in() {
    // Validates the protocol before authentication (as the conformance suite's 2026-07-28
    // servers do): a legacy `initialize` is a 400, only a proper modern request earns the 401.
    let (base, seen) = rpc_mock(|base, r| {
        if let Some(doc) = oauth_documents(base, &r.path) {
            return doc;
        }
        if r.path != "/mcp" {
            return not_found();
        }
        if r.version.as_deref() != Some("2026-07-28") || r.method.as_deref() == Some("initialize")
        {
            return rpc_refusal(-32022, "unsupported protocol version");
        }
        if r.mcp_method != r.method || r.meta_version.as_deref() != Some("2026-07-28") {
            return rpc_refusal(-32020, "headers do not match the body");
        }
        if !r.authorized {
            return unauthorized(Some(format!(
                "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read\""
            )));
        }
        json_at(json!({"jsonrpc": "2.0", "id": 0, "result": {}}))
    })
    .await;
    let (u, _d) = upstream();
    let s = server(&format!("{base}/mcp"));
    let c = u.classify(&s).await.unwrap();
    assert_eq!(
        c.flow,
        Some(mcp_auth_broker::upstream::Flow::AuthorizationCode),
        "{:?}",
        c.evidence
    );
    let d = u.discover(&s).await;
    assert_eq!(d.probe_status, Some(401));
    assert_eq!(
        d.bearer.as_ref().and_then(|b| b.scope.as_deref()),
        Some("mcp:read")
    );
    assert!(d.prm.is_some() && d.metadata.is_some(), "{:?}", d.notes);
    let opened = Arc::new(Mutex::new(vec![]));
    let o = opened.clone();
    let opener = Opener::Custom(Arc::new(move |url: Url| o.lock().unwrap().push(url)));
    let sign_in = u.sign_in(&s, &opener).await.expect("sign-in starts");
    assert_eq!(
        sign_in.authorize_url.as_str().split('?').next(),
        Some(format!("{base}/authorize").as_str())
    );
    assert_eq!(opened.lock().unwrap().len(), 1);
    let probes: Vec<Seen> = (seen.lock().unwrap().iter())
        .filter(|r| r.path == "/mcp")
        .cloned()
        .collect();
    assert!(!probes.is_empty());
    for p in &probes {
        assert_eq!(p.method.as_deref(), Some("server/discover"), "{p:?}");
        assert_eq!(p.mcp_method.as_deref(), Some("server/discover"), "{p:?}");
        assert!(!p.authorized, "discovery sends no credential: {p:?}");
    }
}

#[tokio::test]
async fn a_legacy_server_that_refuses_server_discover_is_probed_again_with_initialize() {
    // A 2025 server that checks its session before authentication: `server/discover` (no
    // session) is a plain 400, which the era detection reads as legacy.
    let (base, seen) = rpc_mock(|base, r| {
        if let Some(doc) = oauth_documents(base, &r.path) {
            return doc;
        }
        match (r.path.as_str(), r.method.as_deref()) {
            ("/mcp", Some("initialize")) => unauthorized(Some(format!(
                "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
            ))),
            ("/mcp", _) => (
                StatusCode::BAD_REQUEST,
                "Bad Request: Server not initialized",
            )
                .into_response(),
            _ => not_found(),
        }
    })
    .await;
    let (u, _d) = upstream();
    let d = u.discover(&server(&format!("{base}/mcp"))).await;
    assert_eq!(d.probe_status, Some(401));
    assert!(d.prm.is_some() && d.metadata.is_some(), "{:?}", d.notes);
    let methods: Vec<(Option<String>, Option<String>)> = (seen.lock().unwrap().iter())
        .filter(|r| r.path == "/mcp")
        .map(|r| (r.method.clone(), r.version.clone()))
        .collect();
    assert_eq!(
        methods,
        [
            (Some("server/discover".into()), Some("2026-07-28".into())),
            (Some("initialize".into()), Some("2025-11-25".into()))
        ]
    );
}

#[tokio::test]
async fn a_modern_server_without_auth_is_not_probed_with_initialize() {
    let (base, seen) = rpc_mock(|_, r| match r.method.as_deref() {
        Some("server/discover") => json_at(json!({"jsonrpc": "2.0", "id": 0, "result": {
            "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}})),
        _ => rpc_refusal(-32022, "unsupported protocol version"),
    })
    .await;
    let (u, _d) = upstream();
    let c = u.classify(&server(&format!("{base}/mcp"))).await.unwrap();
    assert_eq!(
        c.flow,
        Some(mcp_auth_broker::upstream::Flow::None),
        "{:?}",
        c.evidence
    );
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first.method.as_deref(), Some("server/discover"));
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method.as_deref() == Some("initialize")),
        "a modern answer needs no legacy probe"
    );
}
