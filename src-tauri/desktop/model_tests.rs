use std::collections::BTreeMap;

use super::*;
use crate::config::{validate, RawConfig, RawServer, ServerName};
use crate::protocol::Era;
use crate::upstream::{Classification, TokenFacts};

fn config(entries: &[(&str, RawServer)]) -> Config {
    let raw = RawConfig {
        mcp_servers: entries
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        ..Default::default()
    };
    validate(&raw).expect("valid config").config
}

fn oauth(url: &str) -> RawServer {
    RawServer {
        url: Some(url.into()),
        auth_type: Some("oauth2".into()),
        ..Default::default()
    }
}

fn status(state: HealthState, flow: Option<Flow>, has_token: bool) -> ServerStatus {
    ServerStatus {
        state,
        checked_at: Some(1),
        flow: Some(Classification {
            flow,
            evidence: vec!["401 with WWW-Authenticate".into()],
            choices: vec![],
        }),
        token: TokenFacts {
            has_token,
            ..Default::default()
        },
    }
}

fn map(entries: Vec<(&str, ServerStatus)>) -> StatusMap {
    entries
        .into_iter()
        .map(|(n, s)| (ServerName::parse(n).unwrap(), s))
        .collect::<BTreeMap<_, _>>()
}

#[test]
fn overall_state_is_error_over_attention_over_ok() {
    let healthy = || {
        status(
            HealthState::Healthy {
                latency_ms: 5,
                tools: 2,
                era: Era::Legacy,
                protocol_version: "2025-11-25".into(),
            },
            Some(Flow::None),
            false,
        )
    };
    let needs = || {
        status(
            HealthState::NeedsSignIn {
                reason: "no token".into(),
            },
            Some(Flow::AuthorizationCode),
            false,
        )
    };
    let down = || {
        status(
            HealthState::Unreachable {
                cause: "refused".into(),
            },
            Some(Flow::None),
            false,
        )
    };
    assert_eq!(overall(&map(vec![])), Overall::Ok);
    assert_eq!(overall(&map(vec![("a", healthy())])), Overall::Ok);
    assert_eq!(
        overall(&map(vec![("a", healthy()), ("b", needs())])),
        Overall::Attention
    );
    assert_eq!(
        overall(&map(vec![("a", down()), ("b", needs())])),
        Overall::Error
    );
    let locked = status(
        HealthState::KeychainUnavailable {
            locked: true,
            detail: "the OS keychain is locked".into(),
        },
        Some(Flow::AuthorizationCode),
        true,
    );
    assert_eq!(
        overall(&map(vec![("a", healthy()), ("b", locked)])),
        Overall::Attention,
        "unlocking the keychain is the person's to do, like signing in"
    );
    let unset = status(
        HealthState::NeedsSetup {
            detail: "environment variable X is not set".into(),
        },
        Some(Flow::Static),
        false,
    );
    assert_eq!(
        overall(&map(vec![("a", unset), ("b", needs())])),
        Overall::Error
    );
    let undecided = status(
        HealthState::Healthy {
            latency_ms: 1,
            tools: 0,
            era: Era::Legacy,
            protocol_version: "x".into(),
        },
        None,
        false,
    );
    assert_eq!(
        overall(&map(vec![("a", undecided)])),
        Overall::Attention,
        "a flow conflict needs the person"
    );
}

#[test]
fn tray_menu_lists_each_server_with_state_and_flow() {
    let cfg = config(&[
        ("github", oauth("https://mcp.example.com/mcp")),
        (
            "local",
            RawServer {
                url: Some("http://127.0.0.1:9/mcp".into()),
                ..Default::default()
            },
        ),
    ]);
    let st = map(vec![(
        "github",
        status(
            HealthState::NeedsSignIn {
                reason: "no token".into(),
            },
            Some(Flow::AuthorizationCode),
            false,
        ),
    )]);
    let model = tray_model(&cfg, &st, true);
    assert_eq!(model.overall, Overall::Attention);
    assert!(model.autostart);
    assert_eq!(model.servers.len(), 2);
    assert_eq!(
        model.servers[0].label,
        "github — Not signed in to this server · Browser sign-in"
    );
    assert!(model.servers[0].can_sign_in);
    assert_eq!(model.servers[1].label, "local — unknown · Not known yet");

    let mut stepped = status(
        HealthState::Healthy {
            latency_ms: 3,
            tools: 2,
            era: Era::Legacy,
            protocol_version: "2025-11-25".into(),
        },
        Some(Flow::AuthorizationCode),
        true,
    );
    stepped.token.needs_scope = Some("repo".into());
    let model = tray_model(&cfg, &map(vec![("github", stepped)]), false);
    assert_eq!(
        model.servers[0].label,
        "github — The server needs more permissions than the sign-in granted · Browser sign-in"
    );
    assert!(model.servers[0].can_sign_in);
    assert_eq!(model.servers[0].sign_in_label, "Grant more permissions");
}

#[test]
fn sign_in_is_offered_only_for_the_interactive_flow() {
    let cfg = config(&[
        ("a", oauth("https://a.example.com/mcp")),
        (
            "m",
            RawServer {
                oauth_flow: Some("client_credentials".into()),
                client_id: Some("id".into()),
                ..oauth("https://m.example.com/mcp")
            },
        ),
    ]);
    let a = cfg.server("a").unwrap();
    let m = cfg.server("m").unwrap();
    assert!(
        can_sign_in(a, None),
        "unclassified OAuth server can be signed in to"
    );
    assert!(
        !can_sign_in(m, None),
        "an explicit client_credentials server never opens a browser"
    );
    let none = status(
        HealthState::Healthy {
            latency_ms: 1,
            tools: 1,
            era: Era::Legacy,
            protocol_version: "x".into(),
        },
        Some(Flow::None),
        false,
    );
    assert!(!can_sign_in(a, Some(&none)));
    assert_eq!(flow_label(m, None), "Machine credentials");
}

#[test]
fn menu_ids_round_trip_and_reject_garbage() {
    let actions = [
        MenuAction::SignIn("gh".into()),
        MenuAction::SignOut("gh".into()),
        MenuAction::CheckNow("my-srv_2".into()),
        MenuAction::Copy("gh".into(), SnippetKind::Url),
        MenuAction::Copy("gh".into(), SnippetKind::Claude),
        MenuAction::Copy("gh".into(), SnippetKind::Cursor),
        MenuAction::Copy("gh".into(), SnippetKind::Vscode),
        MenuAction::OpenDashboard,
        MenuAction::ToggleAutostart,
        MenuAction::Quit,
    ];
    for a in actions {
        assert_eq!(MenuAction::parse(&a.id()), Some(a.clone()), "{}", a.id());
    }
    for bad in [
        "",
        "srv:",
        "srv:signin",
        "srv:copy-pdf:gh",
        "srv:delete:gh",
        "none",
    ] {
        assert_eq!(MenuAction::parse(bad), None, "{bad}");
    }
}

#[test]
fn snippets_point_clients_at_the_local_url() {
    let s = snippets("github", "http://127.0.0.1:47823/github/mcp");
    assert_eq!(
        s.claude,
        "claude mcp add --transport http github http://127.0.0.1:47823/github/mcp"
    );
    let cursor: serde_json::Value = serde_json::from_str(&s.cursor).unwrap();
    assert_eq!(
        cursor["mcpServers"]["github"]["url"],
        "http://127.0.0.1:47823/github/mcp"
    );
    let vscode: serde_json::Value = serde_json::from_str(&s.vscode).unwrap();
    assert_eq!(vscode["servers"]["github"]["type"], "http");
    assert_eq!(
        vscode["servers"]["github"]["url"],
        "http://127.0.0.1:47823/github/mcp"
    );
    assert_eq!(s.get(SnippetKind::Url), "http://127.0.0.1:47823/github/mcp");
}

#[test]
fn a_delegated_server_is_marked_as_such_and_is_not_an_error_nor_a_sign_in() {
    let cfg = config(&[(
        "deleg",
        RawServer {
            url: Some("https://mcp.example.com/mcp".into()),
            delegate_auth_to_upstream: Some(true),
            ..Default::default()
        },
    )]);
    let reachable = status(
        HealthState::Delegated {
            detail: "each local client signs in".into(),
        },
        Some(Flow::Delegate),
        false,
    );
    let statuses = map(vec![("deleg", reachable)]);
    let tray = tray_model(&cfg, &statuses, false);
    assert_eq!(tray.overall, Overall::Ok);
    assert_eq!(
        tray.servers[0].label,
        "deleg — reachable · Client signs in itself"
    );
    assert!(!tray.servers[0].can_sign_in && !tray.servers[0].can_sign_out);
    let server = cfg.server("deleg").unwrap();
    assert_eq!(flow_label(server, None), "Client signs in itself");
}

#[test]
fn the_aggregate_menu_counts_usable_servers_and_says_why_the_others_are_not() {
    let mut deleg = oauth("https://d.example.com/mcp");
    deleg.auth_type = None;
    deleg.delegate_auth_to_upstream = Some(true);
    let c = config(&[
        ("gh", oauth("https://gh.example.com/mcp")),
        ("lin", oauth("https://lin.example.com/mcp")),
        ("deleg", deleg),
    ]);
    let healthy = HealthState::Healthy {
        latency_ms: 1,
        tools: 1,
        era: Era::Legacy,
        protocol_version: "2025-11-25".into(),
    };
    let st = map(vec![
        (
            "gh",
            status(healthy.clone(), Some(Flow::AuthorizationCode), true),
        ),
        (
            "lin",
            status(
                HealthState::NeedsSignIn {
                    reason: "no token yet".into(),
                },
                Some(Flow::AuthorizationCode),
                false,
            ),
        ),
    ]);
    let menu = tray_model(&c, &st, false)
        .aggregate
        .expect("two servers are aggregated");
    assert_eq!(
        menu.label, "All servers (/mcp) — 1 of 2 usable",
        "the delegating server is not counted"
    );
    assert_eq!(menu.unusable.len(), 1);
    assert!(
        menu.unusable[0].starts_with("lin: needs sign-in (no token yet)"),
        "{:?}",
        menu.unusable
    );
    let all_ok = map(vec![
        ("gh", status(healthy.clone(), None, true)),
        ("lin", status(healthy, None, true)),
    ]);
    assert_eq!(
        tray_model(&c, &all_ok, false).aggregate.unwrap().label,
        "All servers (/mcp) — all 2 usable"
    );
    assert!(tray_model(&config(&[]), &map(vec![]), false)
        .aggregate
        .is_none());
}

#[test]
fn each_server_submenu_names_the_era_and_version_its_server_speaks() {
    let cfg = config(&[
        ("modern", oauth("https://m.example.com/mcp")),
        ("new", oauth("https://n.example.com/mcp")),
        ("old", oauth("https://o.example.com/mcp")),
    ]);
    let speaking = |era, version: &str| {
        let (latency_ms, tools, protocol_version) = (4, 2, version.into());
        let state = HealthState::Healthy {
            latency_ms,
            tools,
            era,
            protocol_version,
        };
        status(state, Some(Flow::AuthorizationCode), true)
    };
    let st = map(vec![
        ("modern", speaking(Era::Modern, "2026-07-28")),
        ("old", speaking(Era::Legacy, "2025-11-25")),
    ]);
    let servers = tray_model(&cfg, &st, false).servers;
    let lines: Vec<Option<&str>> = servers.iter().map(|s| s.protocol.as_deref()).collect();
    assert_eq!(
        lines,
        [
            Some("MCP 2026-07-28 (modern)"),
            None,
            Some("MCP 2025-11-25")
        ],
        "a server not probed yet gets no guessed era"
    );
    assert_eq!(servers[0].label, "modern — healthy · Browser sign-in");
}

#[test]
fn the_tray_line_of_a_device_sign_in_names_the_code_and_where_to_confirm_it() {
    let code = crate::upstream::DeviceCode {
        user_code: "WDJB-MJHT".into(),
        verification_uri: "https://as.example.com/device".into(),
        verification_uri_complete: Some("https://as.example.com/device?user_code=WDJB-MJHT".into()),
        expires_at: 1,
    };
    assert_eq!(
        device_line(&code),
        "Confirm code WDJB-MJHT at https://as.example.com/device"
    );
    let tray = tray_model(
        &config(&[("a", oauth("https://a.example.com/mcp"))]),
        &map(vec![]),
        false,
    );
    assert_eq!(
        tray.servers[0].device, None,
        "none while no device sign-in runs"
    );
}

#[test]
fn the_tray_company_entry_says_signed_in_until_the_session_can_no_longer_be_renewed() {
    let session = |signed_in, expires_at, renewable| CompanySession {
        signed_in,
        expires_at,
        renewable,
    };
    assert_eq!(company_line("Acme", None, 100), "Sign in to Acme");
    let never = session(false, None, false);
    assert_eq!(company_line("Acme", Some(&never), 100), "Sign in to Acme");
    let fresh = session(true, Some(200), false);
    let signed_in = "Signed in to Acme — sign in again";
    assert_eq!(company_line("Acme", Some(&fresh), 100), signed_in);
    // Expired, but its refresh token renews it without the person.
    let renewable = session(true, Some(50), true);
    assert_eq!(company_line("Acme", Some(&renewable), 100), signed_in);
    let ended = session(true, Some(50), false);
    assert_eq!(
        company_line("Acme", Some(&ended), 100),
        "Sign in to Acme (the session ended)"
    );
}
