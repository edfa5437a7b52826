//! The broker's consent page as a person's browser sees it: read its hidden fields, submit it.

/// The value of the consent page's hidden field `name`; panics with the page when it is missing.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Submits the consent page `html` (its request and CSRF fields) to the broker at `base_url`
/// with `decision` ("approve" or "deny") and any `extra` fields; redirects are not followed.
pub async fn submit_consent(
    base_url: &str,
    html: &str,
    decision: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("request", hidden(html, "request")),
        ("csrf", hidden(html, "csrf")),
        ("decision", decision.to_string()),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base_url}/consent"))
        .form(&form)
        .send()
        .await
        .expect("the broker answers the consent form")
}
