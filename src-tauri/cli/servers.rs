//! CLI verbs that edit or read the config file directly: `list`, `add`, `remove`,
//! `client-config`. A running broker picks up the change by watching the file.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;

use super::{exit, Paths};
use crate::config::file;
use crate::config::profiles::Profile;
use crate::config::RawServer;
use crate::secret::{Secret, SecretRef};
use crate::snippets::{snippet, ClientKind};

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Server name: the `{server}` in http://127.0.0.1:PORT/{server}/mcp.
    pub name: String,
    /// The upstream MCP endpoint.
    #[arg(long)]
    pub url: String,
    #[arg(long, value_name = "none|bearer_token|api_key|oauth2")]
    pub auth_type: Option<String>,
    #[arg(long, value_name = "authorization_code|client_credentials")]
    pub oauth_flow: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// `os.environ/VAR`, `keychain:ENTRY`, or `-` to read the secret from stdin into the keychain.
    #[arg(long)]
    pub client_secret: Option<String>,
    /// The static token of bearer_token/api_key: a reference or `-` (stdin → keychain).
    #[arg(long)]
    pub auth_value: Option<String>,
    #[arg(long)]
    pub token_url: Option<String>,
    #[arg(long)]
    pub authorization_url: Option<String>,
    #[arg(long)]
    pub registration_url: Option<String>,
    /// The API identifier some authorization servers (Auth0, Hydra, Okta) need as `audience`.
    #[arg(long)]
    pub audience: Option<String>,
    /// Comma- or space-separated scopes.
    #[arg(long)]
    pub scopes: Option<String>,
    #[arg(long, value_name = "http|sse")]
    pub transport: Option<String>,
    /// Let the client run the upstream's own OAuth (the broker holds no token).
    #[arg(long)]
    pub delegate: bool,
    /// Replace an existing entry of the same name.
    #[arg(long)]
    pub replace: bool,
    /// A provider profile to apply (entra, auth0, okta, github, google, slack; `none` for no
    /// profile). Without it, the profile whose host the URLs match is applied.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

pub fn list(paths: &Paths) -> ExitCode {
    let loaded = match file::read(&paths.config) {
        Ok(l) => l,
        Err(e) => return fail(exit::USAGE, e),
    };
    let config = loaded.validated.config;
    if config.servers.is_empty() {
        println!(
            "No servers configured in {}. Add one with `mcp-auth-broker add NAME --url URL`.",
            paths.config.display()
        );
        return ExitCode::from(exit::OK);
    }
    let port = paths.port(config.port);
    println!(
        "{:<20} {:<12} {:<20} CLIENT URL  ←  UPSTREAM",
        "NAME", "AUTH", "FLOW"
    );
    for (name, s) in &config.servers {
        let auth = format!("{:?}", s.auth_type).to_ascii_lowercase();
        let flow = match (s.delegate_auth_to_upstream, s.oauth_flow) {
            (true, _) => "delegated (clients sign in)".to_string(),
            (false, Some(f)) => format!("{f:?}"),
            (false, None) => "(classified)".to_string(),
        };
        let enabled = match (&s.needs_setup, s.enabled) {
            (Some(why), _) => format!(" [needs setup: {why}]"),
            (None, false) => " [disabled]".to_string(),
            (None, true) => String::new(),
        };
        println!(
            "{:<20} {:<12} {:<20} http://127.0.0.1:{port}/{name}/mcp  ←  {}{enabled}",
            name.as_str(),
            auth,
            flow,
            s.url
        );
    }
    ExitCode::from(exit::OK)
}

pub fn add(paths: &Paths, args: AddArgs) -> ExitCode {
    let loaded = match file::read(&paths.config) {
        Ok(l) => l,
        Err(e) => return fail(exit::USAGE, e),
    };
    let mut raw = loaded.raw;
    if raw.mcp_servers.contains_key(&args.name) && !args.replace {
        return fail(exit::USAGE, format!("a server named \"{}\" already exists; pass --replace to overwrite it or pick another name", args.name));
    }
    let name = args.name.clone();
    let (mut entry, chosen) = match new_entry(paths, args) {
        Ok(made) => made,
        Err(code) => return code,
    };
    let profile = chosen.unwrap_or_else(|| Profile::detect(&entry));
    let applied = profile.map(|p| p.apply(&mut entry, paths.port(raw.port)));
    raw.mcp_servers.insert(name.clone(), entry);
    match file::write(&paths.config, &raw) {
        Ok(_) => {
            let port = paths.port(raw.port);
            if let Some(a) = &applied {
                println!("{}.", a.summary().replacen("applied", "Applied", 1));
            }
            println!("Added \"{name}\". Client URL: http://127.0.0.1:{port}/{name}/mcp");
            println!("Next: `mcp-auth-broker login {name}` if it needs sign-in, then `mcp-auth-broker client-config {name} --for claude`.");
            ExitCode::from(exit::OK)
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

/// The entry `add` writes, from its arguments (secrets referenced, or read from stdin into the
/// token store), and the profile the person chose: `Some(None)` for `none`, `None` to detect
/// one from the URLs.
fn new_entry(
    paths: &Paths,
    args: AddArgs,
) -> Result<(RawServer, Option<Option<Profile>>), ExitCode> {
    let name = args.name.as_str();
    let client_secret = secret_arg(paths, name, "client_secret", args.client_secret.as_deref())?;
    let auth_value = secret_arg(paths, name, "auth_value", args.auth_value.as_deref())?;
    let scopes = args.scopes.as_deref().map(|s| {
        serde_json::Value::from(
            s.split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )
    });
    let chosen = match args.profile.as_deref() {
        Some("none") => Some(None),
        Some(name) => match Profile::parse(name) {
            Ok(p) => Some(Some(p)),
            Err(e) => return Err(fail(exit::USAGE, e)),
        },
        None => None,
    };
    let entry = RawServer {
        url: Some(args.url),
        transport: args.transport,
        auth_type: args.auth_type,
        auth_value,
        oauth_flow: args.oauth_flow,
        client_id: args.client_id,
        client_secret,
        token_url: args.token_url,
        authorization_url: args.authorization_url,
        registration_url: args.registration_url,
        audience: args.audience,
        scopes,
        delegate_auth_to_upstream: args.delegate.then_some(true),
        ..Default::default()
    };
    Ok((entry, chosen))
}

/// A secret argument: a reference is kept as is; `-` reads stdin into the token store (the
/// keychain, or the file store when chosen) and returns the reference; a literal is refused (it
/// would sit in shell history and the config file).
fn secret_arg(
    paths: &Paths,
    server: &str,
    field: &str,
    value: Option<&str>,
) -> Result<Option<String>, ExitCode> {
    let Some(value) = value else { return Ok(None) };
    if value != "-" {
        if SecretRef::parse(value).is_none() {
            let flag = field.replace('_', "-");
            return Err(fail(exit::USAGE, format!("--{flag} takes a reference (os.environ/VAR or keychain:ENTRY) or `-` to read the secret from stdin; a literal secret would end up in your shell history")));
        }
        return Ok(Some(value.to_string()));
    }
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return Err(fail(
            exit::FAILURE,
            format!("cannot read the {field} from stdin: {e}"),
        ));
    }
    let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
    if secret.is_empty() {
        return Err(fail(
            exit::USAGE,
            format!("the {field} read from stdin is empty"),
        ));
    }
    let reference = SecretRef::keychain_for(server, field);
    let SecretRef::Keychain(entry) = &reference else {
        unreachable!("keychain_for returns a keychain reference")
    };
    let store = paths
        .configured_store()
        .map_err(|e| fail(exit::FAILURE, e))?;
    if let Err(e) = store.set(entry, &secret) {
        return Err(fail(exit::FAILURE, e));
    }
    Ok(Some(reference.to_string()))
}

pub fn remove(paths: &Paths, name: &str) -> ExitCode {
    let loaded = match file::read(&paths.config) {
        Ok(l) => l,
        Err(e) => return fail(exit::USAGE, e),
    };
    let mut raw = loaded.raw;
    if raw.mcp_servers.remove(name).is_none() {
        return fail(
            exit::USAGE,
            format!("no server named \"{name}\"; run `mcp-auth-broker list` to see the names"),
        );
    }
    // Signed out first, as the dashboard's Remove does: its tokens (revoked where the server
    // allows) and its DPoP key go with it, through the running broker when there is one.
    let target = super::company::Target::Server(name.to_string());
    if super::login::logout(paths, &target) != ExitCode::from(exit::OK) {
        eprintln!("warning: could not sign out of \"{name}\" first (see above); its tokens may stay in the keychain until you sign in again under this name");
    }
    if let Err(e) = file::write(&paths.config, &raw) {
        return fail(exit::USAGE, e);
    }
    // Secrets typed in for this entry go with it; a store problem is reported, not fatal.
    let store = paths.configured_store();
    for field in ["client_secret", "auth_value"] {
        if let SecretRef::Keychain(entry) = SecretRef::keychain_for(name, field) {
            if let Err(e) = store
                .as_ref()
                .map_err(String::clone)
                .and_then(|s| s.delete(&entry).map_err(|e| e.to_string()))
            {
                eprintln!("warning: could not delete the stored secret {entry}: {e}");
            }
        }
    }
    println!("Removed \"{name}\".");
    ExitCode::from(exit::OK)
}

pub fn client_config(paths: &Paths, name: &str, client: &str) -> ExitCode {
    let Some(kind) = ClientKind::parse(client) else {
        return fail(
            exit::USAGE,
            format!("unknown client \"{client}\"; use --for claude, --for cursor or --for vscode"),
        );
    };
    let port = match super::login::prepare(paths, name) {
        Ok(port) => port,
        Err(code) => return code,
    };
    println!(
        "{}",
        snippet(kind, name, &format!("http://127.0.0.1:{port}/{name}/mcp"))
    );
    ExitCode::from(exit::OK)
}

pub(super) fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
