//! A `private_key_jwt` client that registers itself: a machine server configured with a key but
//! no `client_id` gets one by dynamic client registration (RFC 7591) carrying the broker's public
//! key (`jwks`), kept per issuer like every registration, so the person copies nothing from the
//! provider. The key is [`assertion`]'s, generated on first need and kept in the token store.

use crate::config::ServerConfig;
use crate::vault::Vault;

use super::assertion::{self, ClientKey};
use super::discovery::AsMetadata;
use super::registration::{dcr_client, load_record, register, setup, ClientAuth, ClientInfo, Ctx};
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
        client.key = Some(ClientKey::new(assertion::client_key(vault, server).await?));
    }
    Ok(client.for_issuer(Some(issuer)))
}
