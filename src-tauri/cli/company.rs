//! What `login` and `logout` act on: a server, or with `--enterprise` the company identity
//! provider (one sign-in for every server marked `oauth_flow: "enterprise"`). The rest of a
//! sign-in — the admin API's stream, the browser, paste-back — is the same for both.

use std::sync::Arc;

use crate::broker::Broker;
use crate::config::Config;
use crate::opener::Opener;
use crate::upstream::{SignInKind, Started};

/// `NAME` or `--enterprise` (clap lets exactly one through).
pub fn target(name: Option<String>, enterprise: bool) -> Target {
    match name {
        Some(name) if !enterprise => Target::Server(name),
        _ => Target::Company,
    }
}

/// A server by name, or the company sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Server(String),
    Company,
}

impl Target {
    /// Why the config cannot serve this target (no such server, no `enterprise` block).
    pub fn missing(&self, config: &Config) -> Option<String> {
        match self {
            Target::Server(name) if config.server(name).is_none() => Some(format!(
                "no server named \"{name}\"; run `mcp-auth-broker list` to see the names"
            )),
            Target::Company if config.enterprise.is_none() => Some("the config has no \"enterprise\" block naming the company identity provider; add one (see the README's \"Company sign-in\")".into()),
            Target::Server(_) | Target::Company => None,
        }
    }

    /// The admin API path under `/api/admin/` for `action` (`sign-in`, `sign-out`).
    pub fn admin_path(&self, action: &str) -> String {
        match self {
            Target::Server(name) => format!("servers/{name}/{action}"),
            Target::Company => format!("enterprise/{action}"),
        }
    }

    /// How the person reads it: the server's name, or the company's.
    pub fn label(&self, config: Option<&Config>) -> String {
        match self {
            Target::Server(name) => name.clone(),
            Target::Company => {
                let company = config.and_then(|c| c.enterprise.as_ref());
                company.map_or("your company".into(), |e| e.name.clone())
            }
        }
    }

    /// Starts the sign-in on an in-process core (no broker was running); the CLI opens the
    /// browser itself, after the warnings.
    pub async fn start(&self, broker: &Broker, kind: SignInKind) -> Result<Started, String> {
        let opener = Opener::Custom(Arc::new(|_| {}));
        match self {
            Target::Server(name) => {
                let server = broker.server(name).map_err(|e| e.to_string())?;
                let started = broker.upstream().sign_in_kind(&server, &opener, kind);
                started.await.map_err(|e| e.to_string())
            }
            Target::Company => {
                let company = broker.config().enterprise.clone();
                let company = company.ok_or("the config has no \"enterprise\" block")?;
                let started = broker.upstream().sign_in_company(&company, &opener);
                started
                    .await
                    .map(Started::Browser)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Signs out on an in-process core.
    pub async fn sign_out(&self, broker: &Broker) -> Result<(), String> {
        match self {
            Target::Server(name) => {
                let server = broker.server(name).map_err(|e| e.to_string())?;
                broker
                    .upstream()
                    .sign_out(&server)
                    .await
                    .map_err(|e| e.to_string())
            }
            Target::Company => {
                let config = broker.config();
                let company = config.enterprise.clone();
                let company = company.ok_or("the config has no \"enterprise\" block")?;
                let upstream = broker.upstream();
                upstream
                    .sign_out_company(&company, config.servers.values())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}
