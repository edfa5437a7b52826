//! A `private_key_jwt` client that registers itself: a machine server configured with a key but
//! no `client_id` gets one by dynamic client registration (RFC 7591) carrying the broker's public
//! key (`jwks`), kept per issuer like every registration, so the person copies nothing from the
//! provider. The key is [`assertion`]'s, generated on first need and kept in the token store.
//! An authorization server that loses the registration (`invalid_client`) gets one new
//! registration with the same key and the request once more, never a loop.

use std::path::Path;

use crate::config::ServerConfig;
use crate::vault::Vault;

use super::assertion;
use super::dcr::register;
use super::discovery::AsMetadata;
use super::oauth::TokenFailure;
use super::registration::{dcr_client, load_record, setup, ClientAuth, ClientInfo, Ctx};
use super::registration::{refused_dcr, Refusal, REFUSED_AGAIN};
use super::UpstreamError;
use url::Url;

/// A `private_key_jwt` machine client without a configured `client_id`: the registration kept
/// with this authorization server, else one made now that carries the broker's public key, so
/// no id has to be copied from the provider.
pub async fn key_client(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    meta: &AsMetadata,
) -> Result<ClientInfo, UpstreamError> {
    let (name, issuer) = (server.name.as_str(), meta.issuer.as_str());
    let methods = meta.token_endpoint_auth_methods_supported.as_deref();
    let record = load_record(ctx.data_dir, name);
    let kept = record
        .dcr_for(issuer, ctx.redirect_uri.as_str())
        .filter(|r| r.auth == ClientAuth::PrivateKeyJwt);
    let client = match kept {
        Some(reg) => dcr_client(server, reg, None, methods),
        None => {
            let endpoint = meta
                .registration_endpoint
                .clone()
                .or_else(|| server.registration_url.as_ref().map(Url::to_string))
                .ok_or_else(|| setup(server, format!("the authorization server {issuer} offers no dynamic client registration; register the broker's public key (`mcp-auth-broker key {name}`) with it and set \"client_id\" for this server")))?;
            let grants = ["client_credentials"];
            let made = register(ctx, server, issuer, &endpoint, methods, None, &grants).await?;
            made.0
        }
    };
    with_key(ctx.vault, server, issuer, client).await
}

/// Adds the signing key a `private_key_jwt` client's assertions need (aud: the issuer).
pub(super) async fn with_key(
    vault: &Vault,
    server: &ServerConfig,
    issuer: &str,
    mut client: ClientInfo,
) -> Result<ClientInfo, UpstreamError> {
    if assertion::uses_key(server) && client.key.is_none() {
        client.key = Some(assertion::server_key(vault, server).await?);
    }
    Ok(client.for_issuer(Some(issuer)))
}

/// Whether `server`'s client is one the broker registered itself with its key.
pub(super) fn self_registered(server: &ServerConfig) -> bool {
    server.client_id.is_none() && assertion::uses_key(server) && server.assertion.is_none()
}

/// After a token endpoint refused a self-registered key client with `invalid_client` (the
/// authorization server lost the registration): true when the kept registration was dropped,
/// so the next request registers anew (the key stays: the provider sees the same public key)
/// and is worth one retry. A registration refused right after it was made is kept, and `f`
/// says what to do instead: registering again would not help.
pub(super) fn lost_registration(
    data_dir: &Path,
    server: &ServerConfig,
    f: &mut TokenFailure,
) -> bool {
    if !self_registered(server) || f.oauth_error.as_deref() != Some("invalid_client") {
        return false;
    }
    match refused_dcr(data_dir, server.name.as_str()) {
        Refusal::Forgotten => true,
        Refusal::Again => {
            f.detail = format!("{}; {REFUSED_AGAIN}", f.detail);
            false
        }
        Refusal::NotDcr => false,
    }
}
