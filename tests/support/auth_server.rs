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

use super::device::{self, DeviceGrant};
use super::random_token;

/// RFC 8628's grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
use super::record::{self, Recorder, Served};
use super::token::{self, oauth_error, unregistered_scope};

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
    /// Holds each token request until [`AsState::release_token`] (then answers normally).
    Hold,
}

/// How the token endpoint reads the client's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthRule {
    /// Basic or form fields (RFC 6749 §2.3.1).
    Any,
    /// Only `client_id` / `client_secret` form fields; Basic is ignored, and a request without
    /// them gets FastAPI's 422 validation error (LiteLLM's documented M2M mock).
    FormOnly,
    /// Basic or form, but `client_id` must be in the body either way, or 401 `invalid_client`
    /// "Missing client_id" (servers built on the MCP Python SDK, FastMCP's among them).
    ClientIdInBody,
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
    /// `(error, error_description)`: `/authorize` (by redirect) and `/token` refuse any request
    /// carrying a `resource` parameter with this OAuth error (Entra ID v2 answers
    /// `invalid_target` with AADSTS901002; see [`super::providers`]).
    pub refuse_resource: Option<(String, String)>,
    /// Issue a refresh token only when the granted scope includes `offline_access` (as Entra
    /// ID and other OpenID providers do).
    pub refresh_needs_offline_access: bool,
    /// Publish RFC 8414 / OIDC metadata (`false`: 404).
    pub metadata: bool,
    pub client_auth: ClientAuthRule,
    /// `token_endpoint_auth_methods_supported` in the metadata (`None` omits it).
    pub auth_methods: Option<Vec<String>>,
    /// `/authorize` refuses scopes the client was not registered with (`invalid_scope`, in the
    /// MCP SDKs' words).
    pub registered_scopes: bool,
    /// Advertise and send RFC 9207 `iss` with authorization responses (default true).
    pub iss: bool,
    /// Offer device sign-in (RFC 8628) with this polling `interval` in seconds ([`super::device`]).
    pub device_interval: Option<u64>,
    /// What a real provider does beyond the standard ([`super::providers::Rules`]).
    pub provider: super::providers::Rules,
    /// Accept the jwt-bearer grant with ID-JAGs this identity provider signed
    /// ([`super::id_jag`]); advertised in the metadata.
    pub id_jag_issuer: Option<String>,
    /// Advertise DPoP (ES256) and answer a token request carrying a `DPoP` proof header with a
    /// DPoP-bound token (`token_type: DPoP`, its key's thumbprint kept as [`IssuedToken::jkt`]),
    /// after checking the proof ([`super::dpop::verify`]: a bad one gets 400 `invalid_dpop_proof`);
    /// its refresh token is bound too, and refreshed only with a proof of the same key.
    pub dpop: bool,
    /// The only `aud` client assertions may name (`None`: the issuer or the token endpoint).
    pub assertion_audience: Option<String>,
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
            refuse_resource: None,
            refresh_needs_offline_access: false,
            metadata: true,
            client_auth: ClientAuthRule::Any,
            auth_methods: Some(vec![
                "client_secret_basic".into(),
                "client_secret_post".into(),
                "none".into(),
            ]),
            registered_scopes: false,
            iss: true,
            device_interval: None,
            provider: Default::default(),
            id_jag_issuer: None,
            dpop: false,
            assertion_audience: None,
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
    pub device_authorization: AtomicUsize,
    pub token_device_code: AtomicUsize,
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
    /// The Auth0-style `audience` asked for (at `/authorize`, or with client_credentials).
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub expires_at: Option<Instant>,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if bound.
    pub jkt: Option<String>,
}

pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) resource: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) scope: Option<String>,
    /// The authorization request carried what the provider wants before it hands out a
    /// refresh token ([`super::providers::Rules::refresh_needs_params`]).
    pub(crate) offline: bool,
}

pub(crate) struct Refresh {
    pub(crate) client_id: String,
    pub(crate) resource: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) used: bool,
    /// The DPoP key the refresh token is bound to: its refresh must prove the same key.
    pub(crate) jkt: Option<String>,
}

/// Shared state of one AS; the test upstream validates bearer tokens against it.
pub struct AsState {
    pub issuer: String,
    pub counters: AsCounters,
    pub recorder: Recorder,
    pub(crate) options: AsOptions,
    pub(crate) fault: Mutex<TokenFault>,
    pub(crate) expires_in: Mutex<Value>,
    pub(crate) clients: Mutex<HashMap<String, Option<String>>>,
    /// Every registration request's body, in order.
    pub registrations: Mutex<Vec<Value>>,
    pub(crate) codes: Mutex<HashMap<String, Code>>,
    pub(crate) access: Mutex<HashMap<String, IssuedToken>>,
    pub(crate) refresh: Mutex<HashMap<String, Refresh>>,
    pub(crate) revoked: Mutex<HashSet<String>>,
    /// Permits for held token requests ([`TokenFault::Hold`]).
    pub(crate) held: tokio::sync::Semaphore,
    /// Device codes handed out ([`super::device`]), by device code.
    pub(crate) devices: Mutex<HashMap<String, DeviceGrant>>,
    pub(crate) user_codes: Mutex<Vec<String>>,
    /// Device polls still to be answered `slow_down`.
    pub(crate) slow_downs: AtomicUsize,
    /// Workload tokens the jwt-bearer grant accepts, and what it received ([`super::workload`]).
    pub(crate) workload: Mutex<super::workload::Workload>,
    /// Every DPoP proof `jti` seen (token endpoint and upstream alike): a replay is refused.
    pub(crate) dpop_jtis: Mutex<HashSet<String>>,
    /// The key thumbprint of every proof the token endpoint accepted, in order.
    pub dpop_proofs: Mutex<Vec<String>>,
}

impl AsState {
    /// The issued, unexpired, unrevoked token `token`, if any.
    pub fn validate(&self, token: &str) -> Option<IssuedToken> {
        let t = self.access.lock().unwrap().get(token).cloned()?;
        if !self.options.provider.accepts(&t) {
            return None;
        }
        match t.expires_at {
            Some(at) if at <= Instant::now() => None,
            _ => Some(t),
        }
    }

    pub fn set_fault(&self, fault: TokenFault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Lets one held token request ([`TokenFault::Hold`]) continue.
    pub fn release_token(&self) {
        self.held.add_permits(1);
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
            audience: None,
            scope: None,
            expires_at,
            jkt: None,
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
            audience: None,
            scope: None,
            used: false,
            jkt: None,
        };
        self.refresh.lock().unwrap().insert(token.clone(), r);
        token
    }

    /// Checks a DPoP proof ([`super::dpop::verify`]) with this AS's record of used `jti`s.
    pub fn check_proof(&self, proof: &str, expect: &super::dpop::Expect) -> Result<String, String> {
        super::dpop::verify(proof, expect, &mut self.dpop_jtis.lock().unwrap())
    }

    /// Forgets a registered client, as an authorization server that lost its registrations.
    pub fn forget_client(&self, client_id: &str) {
        self.clients.lock().unwrap().remove(client_id);
        self.forget_keys(client_id);
    }

    pub fn issued_count(&self) -> usize {
        self.access.lock().unwrap().len()
    }

    pub(crate) fn expiry(&self) -> Option<Instant> {
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
                registrations: Mutex::default(),
                codes: Mutex::default(),
                access: Mutex::default(),
                refresh: Mutex::default(),
                revoked: Mutex::default(),
                held: tokio::sync::Semaphore::new(0),
                devices: Mutex::default(),
                user_codes: Mutex::default(),
                slow_downs: AtomicUsize::new(0),
                workload: Mutex::default(),
                dpop_jtis: Mutex::default(),
                dpop_proofs: Mutex::default(),
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
        .route("/token", post(token::token))
        .route("/register", post(token::register))
        .route("/revoke", post(token::revoke))
        .route("/device_authorization", post(device::authorization))
        .route("/device", get(device::verify))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            recorder,
            record::record,
        ))
}

async fn metadata(State(s): State<Arc<AsState>>) -> Response {
    s.counters.metadata.fetch_add(1, Ordering::SeqCst);
    if !s.options.metadata {
        return StatusCode::NOT_FOUND.into_response();
    }
    let i = &s.issuer;
    let mut doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "authorization_response_iss_parameter_supported": s.options.iss,
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
    if s.options.device_interval.is_some() {
        doc["device_authorization_endpoint"] = json!(format!("{i}/device_authorization"));
        doc["grant_types_supported"]
            .as_array_mut()
            .expect("a list")
            .push(json!(DEVICE_GRANT));
    }
    if s.options.id_jag_issuer.is_some() {
        let grants = doc["grant_types_supported"].as_array_mut().expect("a list");
        grants.push(json!(super::workload::JWT_BEARER));
    }
    if let Some(methods) = &s.options.auth_methods {
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    if s.options.dpop {
        doc["dpop_signing_alg_values_supported"] = json!(["ES256"]);
    }
    Json(doc).into_response()
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
    let Ok(redirect) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let state = q.get("state").cloned();
    let back = |params: &[(&str, &str)]| {
        let mut url = redirect.clone();
        url.query_pairs_mut().extend_pairs(params);
        if let Some(state) = &state {
            url.query_pairs_mut().append_pair("state", state);
        }
        if s.options.iss {
            url.query_pairs_mut().append_pair("iss", &s.issuer);
        }
        (StatusCode::FOUND, [("location", url.to_string())]).into_response()
    };
    if let (Some((error, description)), Some(_)) = (&s.options.refuse_resource, q.get("resource")) {
        return back(&[("error", error), ("error_description", description)]);
    }
    if let Some(refusal) = s.options.provider.refuses_redirect(redirect_uri) {
        return refusal;
    }
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
    if let Some(refused) = unregistered_scope(&s, client_id, q.get("scope")) {
        let why = format!("Client was not registered with scope {refused}");
        return back(&[("error", "invalid_scope"), ("error_description", &why)]);
    }
    let code = random_token();
    let entry = Code {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        challenge: challenge.clone(),
        resource: q.get("resource").cloned(),
        audience: q.get("audience").cloned(),
        scope: q.get("scope").cloned(),
        offline: s.options.provider.offline(&q),
    };
    s.codes.lock().unwrap().insert(code.clone(), entry);
    back(&[("code", &code)])
}
