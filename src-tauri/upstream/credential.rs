//! A [`Credential`] as request headers, every value marked sensitive (kept out of `Debug`).

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
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", bearer.expose())).map_err(|_| {
                    "the access token contains characters that cannot be sent in a header"
                        .to_string()
                })?;
            v.set_sensitive(true);
            map.insert(AUTHORIZATION, v);
        }
        Ok(map)
    }
}
