//! `clients` and `api-key`: the local OAuth clients, their grants and API keys. Through the
//! running broker's admin API when one answers; on the stored state directly when none does.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use super::login::{reach, Reach};
use super::remote::format_unix;
use super::servers::fail;
use super::{exit, Paths};
use crate::config::file;
use crate::issuer::Issuer;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// List registered clients, their grants and API keys.
    List,
    /// Revoke a client (its consents, grants and tokens) or a single grant, by ID.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for scripts and clients that cannot do OAuth; shown once.
    Create {
        name: String,
        /// Limit the key to one server (default: every server).
        #[arg(long)]
        server: Option<String>,
    },
    /// List API keys (never their values).
    List,
    /// Revoke an API key by ID.
    Revoke { id: String },
}

enum Admin {
    Remote { base: String, token: String },
    Local(Box<Issuer>),
}

impl Admin {
    async fn connect(paths: &Paths) -> Result<Admin, ExitCode> {
        let loaded = file::read(&paths.config).map_err(|e| fail(exit::USAGE, e))?;
        let port = paths.port(loaded.validated.config.port);
        match reach(paths, port).await {
            Reach::Running { base, token } => Ok(Admin::Remote { base, token }),
            Reach::Unresponsive { base, cause } => Err(Reach::unresponsive(&base, &cause)),
            Reach::NotRunning => {
                crate::fsutil::create_private_dir(&paths.data_dir).map_err(|e| {
                    fail(
                        exit::FAILURE,
                        format!(
                            "cannot create the data dir {}: {e}",
                            paths.data_dir.display()
                        ),
                    )
                })?;
                let url =
                    url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("loopback URL");
                Issuer::open(&paths.data_dir, url)
                    .map(|i| Admin::Local(Box::new(i)))
                    .map_err(|e| fail(exit::FAILURE, e))
            }
        }
    }

    /// Sends one admin request to the running broker; the JSON answer, or a clear error.
    async fn remote(
        base: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let client = reqwest::Client::new();
        let url = format!("{base}{path}");
        let req = match body {
            Some(b) => client.post(url).json(&b),
            None if path == "/api/admin/clients" => client.get(url),
            None => client.post(url),
        };
        let resp = req
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the broker at {base}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else if status == reqwest::StatusCode::UNAUTHORIZED {
            Err(format!("the broker at {base} did not accept the admin token; pass the same --data-dir the running broker uses"))
        } else {
            Err(v["error_description"]
                .as_str()
                .unwrap_or("the broker refused the request")
                .to_string())
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime builds")
}

pub fn clients(paths: &Paths, command: ClientsCommand) -> ExitCode {
    runtime().block_on(async {
        let admin = match Admin::connect(paths).await {
            Ok(a) => a,
            Err(code) => return code,
        };
        let result = match (&admin, &command) {
            (Admin::Remote { base, token }, ClientsCommand::List) => Admin::remote(base, token, "/api/admin/clients", None).await,
            (Admin::Local(i), ClientsCommand::List) => Ok(json!({ "clients": i.list_clients(), "grants": i.list_grants(), "api_keys": i.list_api_keys() })),
            (Admin::Remote { base, token }, ClientsCommand::Revoke { id }) => match Admin::remote(base, token, &format!("/api/admin/clients/{id}/revoke"), None).await {
                Ok(v) => Ok(v),
                Err(_) => Admin::remote(base, token, &format!("/api/admin/grants/{id}/revoke"), None).await,
            },
            (Admin::Local(i), ClientsCommand::Revoke { id }) => match (i.revoke_client(id), i.revoke_grant(id)) {
                (Ok(true), _) | (_, Ok(true)) => Ok(json!({"ok": true})),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                (Ok(false), Ok(false)) => Err(format!("no client or grant with ID {id}; list them with `mcp-auth-broker clients list`")),
            },
        };
        match (result, command) {
            (Ok(v), ClientsCommand::List) => {
                print!("{}", clients_table(&v));
                ExitCode::from(exit::OK)
            }
            (Ok(_), ClientsCommand::Revoke { id }) => {
                println!("Revoked {id}.");
                ExitCode::from(exit::OK)
            }
            (Err(e), _) => fail(exit::FAILURE, e),
        }
    })
}

pub fn api_key(paths: &Paths, command: ApiKeyCommand) -> ExitCode {
    runtime().block_on(async {
        let admin = match Admin::connect(paths).await {
            Ok(a) => a,
            Err(code) => return code,
        };
        let result = match (&admin, &command) {
            (Admin::Remote { base, token }, ApiKeyCommand::Create { name, server }) => Admin::remote(base, token, "/api/admin/api-keys", Some(json!({"name": name, "server": server}))).await,
            (Admin::Local(i), ApiKeyCommand::Create { name, server }) => i.create_api_key(name, server.as_deref()).map(|(info, key)| json!({"api_key": info, "key": key.expose()})).map_err(|e| e.to_string()),
            (Admin::Remote { base, token }, ApiKeyCommand::List) => Admin::remote(base, token, "/api/admin/clients", None).await,
            (Admin::Local(i), ApiKeyCommand::List) => Ok(json!({ "api_keys": i.list_api_keys() })),
            (Admin::Remote { base, token }, ApiKeyCommand::Revoke { id }) => Admin::remote(base, token, &format!("/api/admin/api-keys/{id}/revoke"), None).await,
            (Admin::Local(i), ApiKeyCommand::Revoke { id }) => match i.revoke_api_key(id) {
                Ok(true) => Ok(json!({"ok": true})),
                Ok(false) => Err(format!("no API key with ID {id}; list them with `mcp-auth-broker api-key list`")),
                Err(e) => Err(e.to_string()),
            },
        };
        match (result, command) {
            (Ok(v), ApiKeyCommand::Create { .. }) => {
                println!("{}", v["key"].as_str().unwrap_or_default());
                eprintln!("API key \"{}\" (ID {}) created. It is shown only this once; send it as `Authorization: Bearer KEY` or `x-api-key: KEY`.", v["api_key"]["name"].as_str().unwrap_or(""), v["api_key"]["id"].as_str().unwrap_or(""));
                ExitCode::from(exit::OK)
            }
            (Ok(v), ApiKeyCommand::List) => {
                print!("{}", keys_table(&v["api_keys"]));
                ExitCode::from(exit::OK)
            }
            (Ok(_), ApiKeyCommand::Revoke { id }) => {
                println!("Revoked API key {id}.");
                ExitCode::from(exit::OK)
            }
            (Err(e), _) => fail(exit::FAILURE, e),
        }
    })
}

fn when(v: &Value) -> String {
    v.as_u64().map(format_unix).unwrap_or_else(|| "-".into())
}

fn clients_table(v: &Value) -> String {
    let mut out = format!(
        "{:<36} {:<24} {:<24} {}\n",
        "CLIENT ID", "NAME", "LAST USED", "APPROVED FOR"
    );
    for c in v["clients"].as_array().into_iter().flatten() {
        let servers: Vec<&str> = c["approved_servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&format!(
            "{:<36} {:<24} {:<24} {}\n",
            c["client_id"].as_str().unwrap_or(""),
            c["client_name"].as_str().unwrap_or("(unnamed)"),
            when(&c["last_used"]),
            servers.join(", ")
        ));
    }
    out.push_str(&format!(
        "\n{:<36} {:<24} {:<24} {}\n",
        "GRANT ID", "CLIENT", "SERVER", "CREATED"
    ));
    for g in v["grants"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<36} {:<24} {:<24} {}\n",
            g["id"].as_str().unwrap_or(""),
            g["client_name"]
                .as_str()
                .or(g["client_id"].as_str())
                .unwrap_or(""),
            g["server"].as_str().unwrap_or(""),
            when(&g["created_at"])
        ));
    }
    out.push('\n');
    out.push_str(&keys_table(&v["api_keys"]));
    out
}

fn keys_table(keys: &Value) -> String {
    let mut out = format!(
        "{:<36} {:<24} {:<24} {}\n",
        "API KEY ID", "NAME", "SERVER", "LAST USED"
    );
    for k in keys.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<36} {:<24} {:<24} {}\n",
            k["id"].as_str().unwrap_or(""),
            k["name"].as_str().unwrap_or(""),
            k["server"].as_str().unwrap_or("(all servers)"),
            if k["last_used"].is_null() {
                "never".to_string()
            } else {
                when(&k["last_used"])
            }
        ));
    }
    out
}
