//! `oidc-provider` as a company identity provider for enterprise-managed authorization
//! (`tests/js/enterprise_idp.mjs`): it issues signed ID-JAGs by token exchange, and has test
//! controls to renew or end the company session. The person on its sign-in pages is
//! [`super::oidc::sign_in_at`].

use tokio::process::{Child, Command};

use super::auth_server::{AsOptions, TestClient};
use super::upstream::{TestUpstream, UpstreamOptions};

/// `enterprise_idp.mjs`: the company identity provider (token exchange to ID-JAGs), killed on
/// drop. Its client for the broker is [`CompanyIdp::CLIENT_ID`] / [`CompanyIdp::CLIENT_SECRET`];
/// the ID-JAGs it issues name [`CompanyIdp::JAG_CLIENT_ID`] as the client at the servers.
pub struct CompanyIdp {
    /// The issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    _child: Child,
}

impl CompanyIdp {
    pub const CLIENT_ID: &str = "broker-at-idp";
    pub const CLIENT_SECRET: &str = "idp-secret";
    pub const JAG_CLIENT_ID: &str = "broker-at-mcp";

    pub async fn start() -> CompanyIdp {
        let mut cmd = Command::from(super::node::node_command());
        cmd.arg("enterprise_idp.mjs").args([
            "--client-id",
            Self::CLIENT_ID,
            "--client-secret",
            Self::CLIENT_SECRET,
            "--jag-client-id",
            Self::JAG_CLIENT_ID,
        ]);
        let (issuer, child) = super::jsserver::spawn_reporting(cmd, "enterprise_idp.mjs").await;
        CompanyIdp {
            issuer,
            _child: child,
        }
    }

    /// An MCP server whose authorization server takes the ID-JAGs this provider signs, from the
    /// broker's client [`CompanyIdp::JAG_CLIENT_ID`] (secret `mcp-secret`); it advertises DPoP
    /// when `dpop`.
    pub async fn server(&self, dpop: bool) -> TestUpstream {
        TestUpstream::start(UpstreamOptions {
            auth_server: AsOptions {
                clients: vec![TestClient {
                    client_id: Self::JAG_CLIENT_ID.into(),
                    client_secret: Some("mcp-secret".into()),
                }],
                open_clients: false,
                registration: false,
                id_jag_issuer: Some(self.issuer.clone()),
                dpop,
                ..AsOptions::default()
            },
            ..UpstreamOptions::oauth()
        })
        .await
    }

    /// A test control of the provider (`end-sessions`, `expire-id-tokens`).
    pub async fn control(&self, what: &str) {
        let url = format!("{}/test/{what}", self.issuer);
        let resp = reqwest::Client::new().post(url).send().await.unwrap();
        assert!(resp.status().is_success(), "{what}: {}", resp.status());
    }

    /// How many token exchanges, refreshes and sign-ins the provider answered.
    pub async fn counts(&self) -> serde_json::Value {
        let url = format!("{}/test/counts", self.issuer);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }
}
