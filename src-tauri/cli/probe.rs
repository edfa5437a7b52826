//! `probe URL`: discovery and flow classification with the evidence, and the MCP era and
//! version the server speaks when it answers without credentials; nothing saved and nothing
//! signed in. Options mirror the config fields that change the classification.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::sync::broadcast;
use url::Url;

use super::servers::fail;
use super::{exit, Paths};
use crate::config::{validate, RawConfig, RawServer, ServerConfig};
use crate::health::{self, probe::ProbeError, probe::ProbeOk, protocol_label};
use crate::upstream::discovery::Discovery;
use crate::upstream::{Classification, Credential, Upstream, UpstreamDeps};
use crate::vault::Vault;

/// Each request of the protocol probe must answer within this (as the health monitor's).
const PER_REQUEST: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The upstream MCP endpoint to look at.
    pub url: String,
    #[arg(long, value_name = "none|bearer_token|api_key|oauth2")]
    pub auth_type: Option<String>,
    #[arg(long, value_name = "authorization_code|client_credentials")]
    pub oauth_flow: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Say that a client secret will be configured (its value is not needed to classify).
    #[arg(long)]
    pub with_client_secret: bool,
    #[arg(long)]
    pub token_url: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn probe(paths: &Paths, args: ProbeArgs) -> ExitCode {
    let json = args.json;
    let server = match server_of(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let port = paths.port(None);
    let upstream = Upstream::new(UpstreamDeps {
        vault: Vault::in_memory(),
        redirect_uri: url::Url::parse(&format!("http://127.0.0.1:{port}/oauth/callback"))
            .expect("loopback URL"),
        data_dir: std::env::temp_dir(),
        events: broadcast::channel(1).0,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime builds");
    let (discovery, classification, protocol) = runtime.block_on(async {
        let d = upstream.discover(&server).await;
        let c = upstream.classify(&server).await;
        let p = protocol(&upstream, &server, &d).await;
        (d, c, p)
    });
    let classification = match classification {
        Ok(c) => c,
        Err(e) => return fail(exit::FAILURE, e),
    };
    if json {
        let v = serde_json::json!({
            "url": server.url.as_str(),
            "flow": classification.flow,
            "choices": classification.choices,
            "evidence": classification.evidence,
            "authorization_server": discovery.issuer,
            "unreachable": discovery.unreachable,
            "notes": discovery.notes,
            "protocol": protocol.json(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON serialises")
        );
    } else {
        print_text(&server.url, &classification, &discovery, &protocol);
    }
    ExitCode::from(if discovery.unreachable.is_some() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// The probed URL as a validated server entry (the options as its config fields).
fn server_of(args: ProbeArgs) -> Result<ServerConfig, ExitCode> {
    let entry = RawServer {
        url: Some(args.url),
        auth_type: args.auth_type,
        oauth_flow: args.oauth_flow,
        client_id: args.client_id,
        client_secret: args
            .with_client_secret
            .then(|| "os.environ/MCP_AUTH_BROKER_PROBE_UNUSED".to_string()),
        token_url: args.token_url,
        ..Default::default()
    };
    let raw = RawConfig {
        mcp_servers: [("probe".to_string(), entry)].into(),
        ..Default::default()
    };
    match validate(&raw) {
        Ok(v) => Ok(v.config.servers.into_values().next().expect("one server")),
        Err(errors) => {
            let text: Vec<String> = errors
                .iter()
                .map(|e| e.to_string().replace("server \"probe\", ", ""))
                .collect();
            Err(fail(exit::USAGE, text.join("\n  ")))
        }
    }
}

/// What the probe learned about the MCP protocol the server speaks.
enum Protocol {
    /// A credential-less MCP session worked.
    Known(ProbeOk),
    /// The server wants credentials first: its era shows in `status` once it has them.
    AfterSignIn,
    /// Not probed (unreachable) or the session failed, with why.
    Unknown(String),
}

impl Protocol {
    fn line(&self) -> String {
        match self {
            Protocol::Known(ok) => format!(
                "protocol: {} ({} tools)",
                protocol_label(ok.era, &ok.protocol_version),
                ok.tools
            ),
            Protocol::AfterSignIn => "protocol: not known without credentials (the server asks for them first; `status NAME` shows it once the server is added and signed in)".into(),
            Protocol::Unknown(why) => format!("protocol: unknown ({why})"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Protocol::Known(ok) => serde_json::json!({
                "era": ok.era.as_str(),
                "version": ok.protocol_version,
                "label": protocol_label(ok.era, &ok.protocol_version),
                "tools": ok.tools,
            }),
            Protocol::AfterSignIn => serde_json::json!({"after_sign_in": true}),
            Protocol::Unknown(why) => serde_json::json!({"problem": why}),
        }
    }
}

/// Opens a credential-less MCP session (the health probe: `server/discover`, falling back to
/// `initialize`) when discovery's own probe was answered without a challenge.
async fn protocol(upstream: &Upstream, server: &ServerConfig, d: &Discovery) -> Protocol {
    if let Some(cause) = &d.unreachable {
        return Protocol::Unknown(format!("unreachable: {cause}"));
    }
    if matches!(d.probe_status, Some(401 | 403)) {
        return Protocol::AfterSignIn;
    }
    let anonymous = Credential::default();
    match health::probe::probe(upstream.http(), &server.url, &anonymous, PER_REQUEST).await {
        Ok(ok) => Protocol::Known(ok),
        Err(ProbeError::Rejected { .. }) => Protocol::AfterSignIn,
        Err(ProbeError::Unreachable(why) | ProbeError::Protocol(why)) => Protocol::Unknown(why),
    }
}

fn print_text(url: &Url, classification: &Classification, d: &Discovery, protocol: &Protocol) {
    let name = |flow| {
        serde_json::to_value(flow)
            .expect("flow serialises")
            .as_str()
            .unwrap_or("?")
            .to_string()
    };
    match classification.flow {
        Some(flow) => println!("{url}: {}", name(flow)),
        None => {
            let choices: Vec<String> = classification.choices.iter().map(|c| name(*c)).collect();
            println!(
                "{url}: needs your choice ({}); set \"oauth_flow\" in the config",
                choices.join(" or ")
            );
        }
    }
    println!("{}", protocol.line());
    if let Some(issuer) = &d.issuer {
        println!("authorization server: {issuer}");
    }
    if let Some(cause) = &d.unreachable {
        println!("unreachable: {cause}");
    }
    println!("evidence:");
    for e in &classification.evidence {
        println!("  - {e}");
    }
    for n in &d.notes {
        println!("  note: {n}");
    }
}
