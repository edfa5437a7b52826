//! A test OAuth 2.1 authorization server (see the crate docs in `mod.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::random_token;
use super::record::{self, Recorder, Served};

/// A client the AS knows from the start.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    /// `None` = public client.
    pub client_secret: Option<String>,
}

/// What the token endpoint does instead of answering normally.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenFault {
    None,
    /// 200 with an HTML page.
    Html,
    /// 200 with an empty body.
    Empty,
    /// 200, `application/json`, but the body is not JSON.
    NotJson,
    /// 200 JSON without `access_token`.
    NoAccessToken,
    /// 500 with a JSON error body.
    ServerError,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Any status with this JSON body (e.g. 401 `invalid_client`).
    Status(u16, Value),
}

#[derive(Debug, Clone)]
pub struct AsOptions {
    pub clients: Vec<TestClient>,
    /// Accept `/authorize` from client ids it does not know (public clients, no registration).
    pub open_clients: bool,
    /// `expires_in` sent with access tokens (any JSON value, to test odd ones); `Null` omits it.
    pub expires_in: Value,
    /// Advertise `code_challenge_methods_supported: ["S256"]` (false omits it entirely).
    pub advertise_pkce: bool,
    pub registration: bool,
    pub revocation: bool,
    /// Issue refresh tokens for authorization_code grants.
    pub refresh_tokens: bool,
    /// `scopes_supported` in the metadata.
    pub scopes: Vec<String>,
}

impl Default for AsOptions {
    fn default() -> Self {
        AsOptions {
            clients: vec![TestClient {
                client_id: "m2m-client".into(),
                client_secret: Some("m2m-secret".into()),
            }],
            open_clients: true,
            expires_in: json!(3600),
            advertise_pkce: true,
            registration: true,
            revocation: true,
            refresh_tokens: true,
            scopes: vec!["mcp:read".into(), "mcp:write".into()],
        }
    }
}

/// Counters of AS activity (all atomics; read with [`AsCounters::get`]).
#[derive(Debug, Default)]
pub struct AsCounters {
    pub metadata: AtomicUsize,
    pub authorize: AtomicUsize,
    pub token: AtomicUsize,
    pub token_authorization_code: AtomicUsize,
    pub token_refresh: AtomicUsize,
    pub token_client_credentials: AtomicUsize,
    pub register: AtomicUsize,
    pub revoke: AtomicUsize,
}

impl AsCounters {
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

/// What the AS knows about an access token it issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub client_id: String,
    pub grant: &'static str,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub expires_at: Option<Instant>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    resource: Option<String>,
    scope: Option<String>,
}

struct Refresh {
    client_id: String,
    resource: Option<String>,
    scope: Option<String>,
    used: bool,
}

/// Shared state of one AS; the test upstream validates bearer tokens against it.
pub struct AsState {
    pub issuer: String,
    pub counters: AsCounters,
    pub recorder: Recorder,
    options: AsOptions,
    fault: Mutex<TokenFault>,
    expires_in: Mutex<Value>,
    clients: Mutex<HashMap<String, Option<String>>>,
    codes: Mutex<HashMap<String, Code>>,
    access: Mutex<HashMap<String, IssuedToken>>,
    refresh: Mutex<HashMap<String, Refresh>>,
    revoked: Mutex<HashSet<String>>,
}

impl AsState {
    /// The issued, unexpired, unrevoked token `token`, if any.
    pub fn validate(&self, token: &str) -> Option<IssuedToken> {
        let t = self.access.lock().unwrap().get(token).cloned()?;
        match t.expires_at {
            Some(at) if at <= Instant::now() => None,
            _ => Some(t),
        }
    }

    pub fn set_fault(&self, fault: TokenFault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn set_expires_in(&self, value: Value) {
        *self.expires_in.lock().unwrap() = value;
    }

    /// Revokes every access and refresh token issued so far.
    pub fn revoke_all(&self) {
        let mut revoked = self.revoked.lock().unwrap();
        revoked.extend(self.access.lock().unwrap().drain().map(|(k, _)| k));
        revoked.extend(self.refresh.lock().unwrap().drain().map(|(k, _)| k));
    }

    /// Revokes only access tokens (refresh tokens keep working): the next call must refresh.
    pub fn expire_access_tokens(&self) {
        self.access.lock().unwrap().clear();
    }

    /// Issues a token directly (as if a sign-in happened earlier) and returns it.
    pub fn mint(&self, client_id: &str, resource: Option<&str>) -> String {
        let token = random_token();
        let expires_at = self.expiry();
        let issued = IssuedToken {
            client_id: client_id.into(),
            grant: "minted",
            resource: resource.map(Into::into),
            scope: None,
            expires_at,
        };
        self.access.lock().unwrap().insert(token.clone(), issued);
        token
    }

    /// Issues a refresh token directly (as if a sign-in happened earlier) and returns it.
    pub fn mint_refresh(&self, client_id: &str, resource: Option<&str>) -> String {
        let token = random_token();
        let r = Refresh {
            client_id: client_id.into(),
            resource: resource.map(Into::into),
            scope: None,
            used: false,
        };
        self.refresh.lock().unwrap().insert(token.clone(), r);
        token
    }

    pub fn issued_count(&self) -> usize {
        self.access.lock().unwrap().len()
    }

    fn expiry(&self) -> Option<Instant> {
        let secs = self.expires_in.lock().unwrap().as_i64()?;
        Some(Instant::now() + Duration::from_secs(secs.max(0) as u64))
    }
}

/// A running test AS. Dropping it stops the server.
pub struct TestAs {
    /// The issuer, without a trailing slash: `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub state: Arc<AsState>,
    served: Served,
}

impl TestAs {
    pub async fn start(options: AsOptions) -> TestAs {
        let mut state_slot = None;
        let served = record::serve(|base| {
            let clients = options
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.client_secret.clone()))
                .collect();
            let state = Arc::new(AsState {
                issuer: base,
                counters: AsCounters::default(),
                recorder: Recorder::default(),
                expires_in: Mutex::new(options.expires_in.clone()),
                options,
                fault: Mutex::new(TokenFault::None),
                clients: Mutex::new(clients),
                codes: Mutex::default(),
                access: Mutex::default(),
                refresh: Mutex::default(),
                revoked: Mutex::default(),
            });
            state_slot = Some(state.clone());
            async move { router(state) }
        })
        .await;
        let state = state_slot.expect("router built");
        TestAs {
            issuer: state.issuer.clone(),
            state,
            served,
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// Stops the server: the port refuses connections from now on.
    pub fn stop(&self) {
        self.served.stop();
    }
}

fn router(state: Arc<AsState>) -> Router {
    let recorder = state.recorder.clone();
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/register", post(register))
        .route("/revoke", post(revoke))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            recorder,
            record::record,
        ))
}

async fn metadata(State(s): State<Arc<AsState>>) -> Json<Value> {
    s.counters.metadata.fetch_add(1, Ordering::SeqCst);
    let i = &s.issuer;
    let mut doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": s.options.scopes,
    });
    if s.options.advertise_pkce {
        doc["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if s.options.registration {
        doc["registration_endpoint"] = json!(format!("{i}/register"));
    }
    if s.options.revocation {
        doc["revocation_endpoint"] = json!(format!("{i}/revoke"));
    }
    Json(doc)
}

async fn authorize(
    State(s): State<Arc<AsState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.counters.authorize.fetch_add(1, Ordering::SeqCst);
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return (
            StatusCode::BAD_REQUEST,
            "client_id and redirect_uri are required",
        )
            .into_response();
    };
    if !s.options.open_clients && !s.clients.lock().unwrap().contains_key(client_id) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let back = |params: &[(&str, &str)]| {
        let mut url = url::Url::parse(redirect_uri).expect("redirect_uri is a URL");
        url.query_pairs_mut()
            .extend_pairs(params)
            .append_pair("state", &state)
            .append_pair("iss", &s.issuer);
        (StatusCode::FOUND, [("location", url.to_string())]).into_response()
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return back(&[("error", "unsupported_response_type")]);
    }
    let (Some(challenge), Some("S256")) = (
        q.get("code_challenge"),
        q.get("code_challenge_method").map(String::as_str),
    ) else {
        return back(&[
            ("error", "invalid_request"),
            ("error_description", "PKCE S256 is required"),
        ]);
    };
    let code = random_token();
    let entry = Code {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        challenge: challenge.clone(),
        resource: q.get("resource").cloned(),
        scope: q.get("scope").cloned(),
    };
    s.codes.lock().unwrap().insert(code.clone(), entry);
    back(&[("code", &code)])
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The client id and secret from Basic auth or the form.
fn client_auth(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        if let Some((id, secret)) = STANDARD
            .decode(basic)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
        {
            let dec = |t: &str| {
                url::form_urlencoded::parse(format!("x={t}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            return (Some(dec(&id)), Some(dec(&secret)));
        }
    }
    (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    )
}

async fn token(
    State(s): State<Arc<AsState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.counters.token.fetch_add(1, Ordering::SeqCst);
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let by_grant = match grant.as_str() {
        "authorization_code" => Some(&s.counters.token_authorization_code),
        "refresh_token" => Some(&s.counters.token_refresh),
        "client_credentials" => Some(&s.counters.token_client_credentials),
        _ => None,
    };
    if let Some(counter) = by_grant {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    let fault = s.fault.lock().unwrap().clone();
    match fault {
        TokenFault::None => {}
        TokenFault::Html => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><body>Login</body></html>",
            )
                .into_response()
        }
        TokenFault::Empty => {
            return (StatusCode::OK, [("content-type", "application/json")], "").into_response()
        }
        TokenFault::NotJson => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "access_token=nope",
            )
                .into_response()
        }
        TokenFault::NoAccessToken => {
            return Json(json!({ "token_type": "Bearer", "expires_in": 3600 })).into_response()
        }
        TokenFault::ServerError => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the test AS is failing on purpose",
            )
        }
        TokenFault::Slow(d) => tokio::time::sleep(d).await,
        TokenFault::Status(code, body) => {
            return (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
        }
    }
    let (client_id, client_secret) = client_auth(&headers, &form);
    let Some(client_id) = client_id else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client authentication",
        );
    };
    let known = s.clients.lock().unwrap().get(&client_id).cloned();
    match (&known, &client_secret) {
        (Some(Some(expected)), Some(given)) if expected == given => {}
        (Some(Some(_)), _) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "wrong client secret",
            )
        }
        (Some(None), _) => {}
        (None, _) if s.options.open_clients && grant != "client_credentials" => {}
        (None, _) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client")
        }
    }
    let (resource, scope, refresh) = match grant.as_str() {
        "authorization_code" => {
            let Some(code) = form
                .get("code")
                .and_then(|c| s.codes.lock().unwrap().remove(c))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != code.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if code.client_id != client_id || form.get("redirect_uri") != Some(&code.redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "client_id or redirect_uri mismatch",
                );
            }
            (code.resource, code.scope, s.options.refresh_tokens)
        }
        "refresh_token" => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            let mut refresh = s.refresh.lock().unwrap();
            let Some(entry) = refresh.get_mut(&given) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token unknown or revoked",
                );
            };
            if entry.used || entry.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token already used",
                );
            }
            entry.used = true;
            (
                form.get("resource").cloned().or(entry.resource.clone()),
                entry.scope.clone(),
                true,
            )
        }
        "client_credentials" => (
            form.get("resource").cloned(),
            form.get("scope").cloned(),
            false,
        ),
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?}"),
            )
        }
    };
    let access = random_token();
    let issued = IssuedToken {
        client_id: client_id.clone(),
        grant: grant_name(&grant),
        resource: resource.clone(),
        scope: scope.clone(),
        expires_at: s.expiry(),
    };
    s.access.lock().unwrap().insert(access.clone(), issued);
    let mut body = json!({ "access_token": access, "token_type": "Bearer" });
    let expires_in = s.expires_in.lock().unwrap().clone();
    if !expires_in.is_null() {
        body["expires_in"] = expires_in;
    }
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    if refresh {
        let rt = random_token();
        s.refresh.lock().unwrap().insert(
            rt.clone(),
            Refresh {
                client_id,
                resource,
                scope: body.get("scope").and_then(Value::as_str).map(Into::into),
                used: false,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    ([("cache-control", "no-store")], Json(body)).into_response()
}

fn grant_name(grant: &str) -> &'static str {
    match grant {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        _ => "client_credentials",
    }
}

async fn register(State(s): State<Arc<AsState>>, Json(body): Json<Value>) -> Response {
    s.counters.register.fetch_add(1, Ordering::SeqCst);
    if !s.options.registration {
        return StatusCode::NOT_FOUND.into_response();
    }
    if body
        .get("redirect_uris")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris is required",
        );
    }
    let public = body
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        == Some("none");
    let client_id = random_token();
    let secret = (!public).then(random_token);
    s.clients
        .lock()
        .unwrap()
        .insert(client_id.clone(), secret.clone());
    let mut out = body.clone();
    out["client_id"] = json!(client_id);
    out["client_id_issued_at"] = json!(0);
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn revoke(
    State(s): State<Arc<AsState>>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    s.counters.revoke.fetch_add(1, Ordering::SeqCst);
    if let Some(token) = form.get("token") {
        s.access.lock().unwrap().remove(token);
        s.refresh.lock().unwrap().remove(token);
        s.revoked.lock().unwrap().insert(token.clone());
    }
    StatusCode::OK
}
