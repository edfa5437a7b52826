//! A [`Credential`] as request headers, every value marked sensitive (kept out of `Debug`). A
//! DPoP-bound token's proof is not here: it is made per request (`exchange::authorize`).

use ::http::header::AUTHORIZATION;
use ::http::{HeaderMap, HeaderValue};

use super::Credential;

impl Credential {
    /// The configured headers, then the flow's bearer token. `Err` names the part that holds
    /// characters a header cannot carry (never its value).
    pub fn header_map(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                format!("the configured header {name} has a value that cannot be sent")
            })?;
            v.set_sensitive(true);
            map.insert(name.clone(), v);
        }
        if let Some(bearer) = &self.bearer {
            // A DPoP-bound token goes with its own scheme; its proof is per request.
            let scheme = if self.dpop.is_some() {
                "DPoP"
            } else {
                "Bearer"
            };
            let mut v =
                HeaderValue::from_str(&format!("{scheme} {}", bearer.expose())).map_err(|_| {
                    "the access token contains characters that cannot be sent in a header"
                        .to_string()
                })?;
            v.set_sensitive(true);
            map.insert(AUTHORIZATION, v);
        }
        Ok(map)
    }
}
