//! The rules between a server entry's fields, each valid alone: what a flow needs, and what a
//! static token or delegate mode cannot have.

use std::collections::BTreeMap;

use super::raw::RawServer;
use super::validate::ServerValidator;
use super::{AuthType, HeaderValue, OAuthFlow};

impl ServerValidator<'_> {
    /// A client_credentials server needs its `client_id`, unless its client is key-based: that
    /// one registers itself (RFC 7591 with its public key).
    fn check_machine_client(&mut self, raw: &RawServer, oauth_flow: Option<OAuthFlow>) {
        let key_client = raw.token_endpoint_auth_method.as_deref() == Some("private_key_jwt");
        if oauth_flow == Some(OAuthFlow::ClientCredentials)
            && raw.client_id.is_none()
            && !key_client
        {
            self.err(
                "client_id",
                "is required for the client_credentials flow",
                "add \"client_id\" (and \"client_secret\": \"os.environ/VAR\"), or use \"token_endpoint_auth_method\": \"private_key_jwt\" to have the broker register itself with its key",
            );
        }
    }

    /// The rules between fields, each valid alone: what a flow needs, and what a static token
    /// or delegate mode cannot have.
    pub(super) fn check_combinations(
        &mut self,
        raw: &RawServer,
        auth_type: AuthType,
        oauth_flow: Option<OAuthFlow>,
        headers: &BTreeMap<String, HeaderValue>,
    ) {
        let static_token = matches!(auth_type, AuthType::BearerToken | AuthType::ApiKey);
        let delegate = raw.delegate_auth_to_upstream.unwrap_or(false);
        if static_token && raw.auth_value.is_none() {
            self.err("auth_value", "is missing for a static-token server", "set \"auth_value\": \"os.environ/VAR\" or store the token in the keychain from the app or `mcp-auth-broker add`");
        }
        if oauth_flow.is_some() && auth_type != AuthType::OAuth2 && raw.auth_type.is_some() {
            self.err(
                "oauth_flow",
                "is set but auth_type is not \"oauth2\"",
                "set \"auth_type\": \"oauth2\" or remove \"oauth_flow\"",
            );
        }
        self.check_machine_client(raw, oauth_flow);
        if raw.audience.is_some() && (static_token || delegate) {
            self.err(
                "audience",
                "is set but the broker runs no OAuth for this server (static token or delegate mode)",
                "remove \"audience\", or use \"auth_type\": \"oauth2\" so the broker signs in",
            );
        }
        if raw.dpop == Some(serde_json::Value::Bool(true)) && (static_token || delegate) {
            self.err(
                "dpop",
                "is true but the broker obtains no token for this server (static token or delegate mode), so it has nothing to bind to a key",
                "remove \"dpop\", or use \"auth_type\": \"oauth2\" so the broker signs in",
            );
        }
        let broker_held = oauth_flow.is_some()
            || raw.client_secret.is_some()
            || raw.auth_value.is_some()
            || headers
                .values()
                .any(|h| matches!(h, HeaderValue::Secret(_)));
        if delegate && broker_held {
            self.err("delegate_auth_to_upstream", "is true but the entry also configures broker-held credentials", "remove oauth_flow / client_secret / auth_value / secret-valued headers, or set delegate_auth_to_upstream to false");
        }
        if raw.allowed_tools.as_ref().is_some_and(Vec::is_empty) {
            self.err(
                "allowed_tools",
                "is an empty list, which would hide every tool",
                "list the tools clients may use, or remove allowed_tools to allow all of them",
            );
        }
    }
}
