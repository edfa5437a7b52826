use super::*;
use crate::health::{HealthState, ServerStatus};
use crate::health::{NEEDS_COMPANY_SIGN_IN, REFUSED_CONFIGURED, REFUSED_FRESH_TOKEN};
use crate::upstream::UpstreamError;
use crate::vault::VaultError;

fn server(json: serde_json::Value) -> ServerConfig {
    let company = serde_json::json!({"name": "Acme", "issuer": "https://idp.example.com", "client_id": "broker"});
    let text =
        serde_json::json!({ "mcp_servers": { "s": json }, "enterprise": company }).to_string();
    let raw: crate::config::raw::RawConfig = serde_json::from_str(&text).unwrap();
    let validated = crate::config::validate::validate(&raw).unwrap();
    validated.config.servers.into_values().next().unwrap()
}

fn status(state: HealthState) -> ServerStatus {
    ServerStatus {
        state,
        ..ServerStatus::unknown()
    }
}

fn kind_of(state: HealthState) -> ProblemKind {
    explain_status(&status(state)).expect("a problem").kind
}

#[test]
fn flows_are_named_as_people_say_them_with_the_protocol_term_as_detail() {
    let names: Vec<&str> = [
        Flow::AuthorizationCode,
        Flow::ClientCredentials,
        Flow::Static,
        Flow::Delegate,
    ]
    .into_iter()
    .map(|f| flow(f).name)
    .collect();
    assert_eq!(
        names,
        [
            "Browser sign-in",
            "Machine credentials",
            "Static key",
            "Client signs in itself"
        ]
    );
    assert!(flow(Flow::AuthorizationCode)
        .term
        .contains("authorization_code"));
    assert!(flow(Flow::ClientCredentials)
        .term
        .contains("client_credentials"));
    assert_eq!(device_flow().name, "Device code");
}

#[test]
fn the_flow_follows_the_classification_else_what_the_config_says() {
    let enterprise = server(serde_json::json!({
        "url": "https://mcp.example.com/mcp", "oauth_flow": "enterprise", "client_id": "broker"
    }));
    let w = server_flow(&enterprise, None);
    assert_eq!(w.name, "Your company sign-in");
    assert!(w.term.contains("ID-JAG"), "{}", w.term);
    let plain = server(serde_json::json!({
        "url": "https://mcp.example.com/mcp", "oauth_flow": "authorization_code"
    }));
    assert_eq!(server_flow(&plain, None).name, "Browser sign-in");
    let open = server(serde_json::json!({ "url": "https://mcp.example.com/mcp" }));
    assert_eq!(server_flow(&open, None).name, "Not known yet");
    let undecided = Classification {
        flow: None,
        evidence: vec![],
        choices: vec![Flow::AuthorizationCode, Flow::ClientCredentials],
    };
    assert_eq!(
        server_flow(&open, Some(&undecided)).name,
        "Needs your choice"
    );
}

#[test]
fn transport_causes_read_as_refused_dns_tls_timeout_or_server_error() {
    let refused = "error sending request for url (http://127.0.0.1:9/mcp): client error (Connect): tcp connect error: Connection refused (os error 111)";
    let dns = "error sending request for url (https://nope.invalid/mcp): client error (Connect): dns error: failed to lookup address information: Name or service not known";
    let tls = "error sending request for url (https://127.0.0.1:8443/mcp): client error (Connect): invalid peer certificate: UnknownIssuer";
    let timeout = "no answer within 10 s (error sending request for url (http://10.0.0.1/mcp): operation timed out)";
    let down = "the server answered HTTP 503 Service Unavailable: maintenance";
    assert_eq!(explain_transport(refused), ProblemKind::ConnectionRefused);
    assert_eq!(explain_transport(dns), ProblemKind::DnsFailure);
    assert_eq!(explain_transport(tls), ProblemKind::TlsFailure);
    assert_eq!(explain_transport(timeout), ProblemKind::Timeout);
    assert_eq!(explain_transport(down), ProblemKind::ServerError);
    assert_eq!(
        explain_transport("the response broke off"),
        ProblemKind::Unreachable
    );
}

#[test]
fn a_problem_is_one_sentence_with_the_raw_cause_kept_as_details() {
    let cause = "tcp connect error: Connection refused (os error 111)";
    let p = explain_status(&status(HealthState::Unreachable {
        cause: cause.into(),
    }))
    .unwrap();
    assert_eq!(p.kind, ProblemKind::ConnectionRefused);
    assert_eq!(
        p.sentence,
        format!("{} — {}.", p.summary, p.action),
        "what happened, then what to do"
    );
    assert!(!p.sentence.contains("os error"), "{}", p.sentence);
    assert_eq!(p.details, cause);
}

#[test]
fn refusals_tell_a_refused_fresh_token_from_a_refused_key_and_a_scope() {
    let fresh = format!("{REFUSED_FRESH_TOKEN}: HTTP 401 Unauthorized");
    let key = format!("{REFUSED_CONFIGURED}: HTTP 401 Unauthorized");
    let scope = "HTTP 403 Forbidden (Bearer error=\"insufficient_scope\", scope=\"repo\")";
    assert_eq!(
        kind_of(HealthState::AuthRejected { detail: fresh }),
        ProblemKind::RejectedAfterRefresh
    );
    assert_eq!(
        kind_of(HealthState::AuthRejected { detail: key }),
        ProblemKind::KeyRejected
    );
    assert_eq!(
        kind_of(HealthState::AuthRejected {
            detail: scope.into()
        }),
        ProblemKind::NeedsScope
    );
}

#[test]
fn a_scope_the_sign_in_lacks_asks_for_more_permissions_even_while_healthy() {
    let mut s = status(HealthState::Healthy {
        latency_ms: 1,
        tools: 1,
        era: crate::protocol::Era::Legacy,
        protocol_version: "2025-11-25".into(),
    });
    assert_eq!(explain_status(&s), None);
    s.token.needs_scope = Some("repo:write".into());
    let p = explain_status(&s).unwrap();
    assert_eq!(p.kind, ProblemKind::NeedsScope);
    assert!(p.action.contains("Grant more permissions"), "{}", p.action);
    assert!(p.details.contains("repo:write"), "{}", p.details);
}

#[test]
fn keychain_setup_and_config_problems_name_their_fix() {
    assert_eq!(
        kind_of(HealthState::KeychainUnavailable {
            locked: true,
            detail: "locked".into()
        }),
        ProblemKind::KeychainLocked
    );
    let unavailable = UpstreamError::Vault {
        server: "github".into(),
        source: VaultError::Unavailable(
            "DBus error: Unable to autolaunch a dbus-daemon without a $DISPLAY for X11".into(),
        ),
    };
    let p = explain_upstream(&unavailable);
    assert_eq!(p.kind, ProblemKind::KeychainUnavailable);
    assert!(!p.sentence.contains("DBus"), "{}", p.sentence);
    assert!(p.details.contains("autolaunch"), "{}", p.details);
    assert!(p.action.contains("GNOME Keyring"), "{}", p.action);
    assert_eq!(
        explain_vault(&VaultError::MissingEnv("GH_SECRET".into())).kind,
        ProblemKind::NeedsSetup
    );
    let c = config_problem("config.json line 3: unknown flow \"magic\"");
    assert_eq!(c.kind, ProblemKind::ConfigError);
    assert!(c.details.contains("line 3"));
    let refused = UpstreamError::Unreachable {
        server: "s".into(),
        url: "http://127.0.0.1:9/mcp".into(),
        cause: "tcp connect error: Connection refused (os error 111)".into(),
    };
    assert_eq!(
        explain_upstream(&refused).kind,
        ProblemKind::ConnectionRefused
    );
}

#[test]
fn states_that_need_nothing_from_the_person_have_no_problem() {
    for state in [
        HealthState::Unknown,
        HealthState::Checking,
        HealthState::Disabled,
        HealthState::Delegated {
            detail: "each client signs in".into(),
        },
    ] {
        assert_eq!(explain_status(&status(state)), None);
    }
}

#[test]
fn a_refused_or_replayed_sign_in_says_start_again_while_the_keychain_keeps_its_words() {
    let replayed = UpstreamError::Protocol {
        server: "(unknown)".into(),
        detail: "this sign-in link was already used".into(),
    };
    let p = explain_sign_in(&replayed);
    assert_eq!(p.kind, ProblemKind::SignInFailed);
    assert!(p.action.contains("start it again"), "{}", p.action);
    assert!(p.details.contains("already used"));
    let locked = UpstreamError::Vault {
        server: "s".into(),
        source: VaultError::Locked,
    };
    assert_eq!(explain_sign_in(&locked).kind, ProblemKind::KeychainLocked);
}

#[test]
fn a_missing_company_session_asks_for_the_company_sign_in() {
    let reason = format!("{NEEDS_COMPANY_SIGN_IN} (no company session): sign in to Acme");
    assert_eq!(
        kind_of(HealthState::NeedsSignIn { reason }),
        ProblemKind::NeedsCompanySignIn
    );
    assert!(ProblemKind::NeedsCompanySignIn.signing_in_fixes());
    assert!(!ProblemKind::ConnectionRefused.signing_in_fixes());
}

#[test]
fn the_transport_kind_decides_over_the_words() {
    use crate::upstream::http::{Cause, CauseKind};
    let said = |kind, text: &str| explain_cause(&Cause::new(kind, text));
    // Words that name nothing, or the wrong thing: the kind the error carried wins.
    assert_eq!(
        said(CauseKind::Dns, "connection failed"),
        ProblemKind::DnsFailure
    );
    assert_eq!(
        said(CauseKind::Tls, "connection failed"),
        ProblemKind::TlsFailure
    );
    assert_eq!(said(CauseKind::Timeout, "operation"), ProblemKind::Timeout);
    assert_eq!(
        said(CauseKind::Refused, "no route"),
        ProblemKind::ConnectionRefused
    );
    // Words only (the health probe's): read from the text.
    assert_eq!(
        said(CauseKind::Other, "the server answered HTTP 503"),
        ProblemKind::ServerError
    );
}

#[tokio::test]
async fn a_refused_port_reaches_the_person_as_a_refused_connection_with_its_url_in_details() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/.well-known/x")).unwrap();
    let client = reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(crate::upstream::http::GuardedResolver))
        .build()
        .unwrap();
    let e = crate::upstream::http::get_json(&client, &url)
        .await
        .unwrap_err();
    let e = UpstreamError::Unreachable {
        server: "docs".into(),
        url: url.to_string(),
        cause: e.cause(),
    };
    let p = explain_upstream(&e);
    assert_eq!(p.kind, ProblemKind::ConnectionRefused);
    assert!(p.sentence.starts_with("The server refused the connection"));
    assert!(
        p.details.contains(&format!("127.0.0.1:{port}")),
        "{}",
        p.details
    );
    assert!(p.details.contains("connection refused"), "{}", p.details);
}
