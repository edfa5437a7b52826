//! `probe URL`: discovery and flow classification with the evidence, nothing saved and nothing
//! signed in. Options mirror the config fields that change the classification.

use std::process::ExitCode;

use clap::Args;
use tokio::sync::broadcast;

use super::servers::fail;
use super::{exit, Paths};
use crate::config::{validate, RawConfig, RawServer};
use crate::upstream::{Upstream, UpstreamDeps};
use crate::vault::Vault;

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
    let entry = RawServer {
        url: Some(args.url.clone()),
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
    let server = match validate(&raw) {
        Ok(v) => v.config.servers.into_values().next().expect("one server"),
        Err(errors) => {
            let text: Vec<String> = errors
                .iter()
                .map(|e| e.to_string().replace("server \"probe\", ", ""))
                .collect();
            return fail(exit::USAGE, text.join("\n  "));
        }
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
    let (discovery, classification) = runtime.block_on(async {
        let d = upstream.discover(&server).await;
        let c = upstream.classify(&server).await;
        (d, c)
    });
    let classification = match classification {
        Ok(c) => c,
        Err(e) => return fail(exit::FAILURE, e),
    };
    if args.json {
        let v = serde_json::json!({
            "url": server.url.as_str(),
            "flow": classification.flow,
            "choices": classification.choices,
            "evidence": classification.evidence,
            "authorization_server": discovery.issuer,
            "unreachable": discovery.unreachable,
            "notes": discovery.notes,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON serialises")
        );
    } else {
        match classification.flow {
            Some(flow) => println!(
                "{}: {}",
                server.url,
                serde_json::to_value(flow)
                    .expect("flow serialises")
                    .as_str()
                    .unwrap_or("?")
            ),
            None => {
                let choices: Vec<String> = classification
                    .choices
                    .iter()
                    .map(|c| {
                        serde_json::to_value(c)
                            .expect("flow serialises")
                            .as_str()
                            .unwrap_or("?")
                            .to_string()
                    })
                    .collect();
                println!(
                    "{}: needs your choice ({}); set \"oauth_flow\" in the config",
                    server.url,
                    choices.join(" or ")
                );
            }
        }
        if let Some(issuer) = &discovery.issuer {
            println!("authorization server: {issuer}");
        }
        if let Some(cause) = &discovery.unreachable {
            println!("unreachable: {cause}");
        }
        println!("evidence:");
        for e in &classification.evidence {
            println!("  - {e}");
        }
        for n in &discovery.notes {
            println!("  note: {n}");
        }
    }
    ExitCode::from(if discovery.unreachable.is_some() {
        exit::FAILURE
    } else {
        exit::OK
    })
}
