//! Which server a resource URI belongs to, for `resources/read`, subscriptions and completions
//! on `/mcp`. Resource URIs are not prefixed (clients open them as the server wrote them), so the
//! aggregate routes by what each server listed: exact URIs from `resources/list` first, then the
//! `uriTemplate`s from `resources/templates/list`, the most specific match winning. Pure: no I/O.

use std::collections::HashMap;

use crate::config::ServerName;

/// What the session learned from list answers.
#[derive(Debug, Default)]
pub struct Owners {
    /// Resource URI → the servers that listed it (two servers listing one URI is a tie, refused
    /// like a template tie: reads and subscriptions must not silently go to whichever listed last).
    resources: HashMap<String, Vec<ServerName>>,
    /// URI template → the servers that listed it (a template may be offered by several).
    templates: HashMap<String, Vec<ServerName>>,
}

impl Owners {
    /// Replaces what `server` listed in `resources/list` (its whole, latest answer).
    pub fn resources<'a>(&mut self, server: &ServerName, uris: impl IntoIterator<Item = &'a str>) {
        replace(&mut self.resources, server, uris);
    }

    /// Replaces what `server` listed in `resources/templates/list` (its whole, latest answer).
    pub fn templates<'a>(
        &mut self,
        server: &ServerName,
        templates: impl IntoIterator<Item = &'a str>,
    ) {
        replace(&mut self.templates, server, templates);
    }

    /// The server owning `uri` (a listed URI, a template itself, or a URI one template
    /// matches best), counting only servers `usable` accepts (one that left the config no longer
    /// owns anything); `Ok(None)` when nothing listed matches; an error naming the servers when
    /// the same URI, or equally good template matches, come from more than one.
    pub fn owner(
        &self,
        uri: &str,
        usable: impl Fn(&ServerName) -> bool,
    ) -> Result<Option<ServerName>, String> {
        if let Some(servers) = self.resources.get(uri) {
            let listed: Vec<&ServerName> = servers.iter().filter(|s| usable(s)).collect();
            if !listed.is_empty() {
                return one_of(uri, listed, "list the same resource");
            }
        }
        let mut best: Option<(usize, Vec<&ServerName>)> = None;
        for (template, servers) in &self.templates {
            let score = if template == uri {
                Some(usize::MAX)
            } else {
                template_score(template, uri)
            };
            let Some(score) = score else { continue };
            let servers = servers.iter().filter(|s| usable(s));
            match &mut best {
                Some((top, all)) if *top == score => all.extend(servers),
                Some((top, _)) if *top > score => {}
                _ => best = Some((score, servers.collect())),
            }
        }
        match best {
            Some((_, servers)) if !servers.is_empty() => {
                one_of(uri, servers, "match the resource templates equally well")
            }
            _ => Ok(None),
        }
    }
}

/// `server`'s entries in `map` become exactly `keys`.
fn replace<'a>(
    map: &mut HashMap<String, Vec<ServerName>>,
    server: &ServerName,
    keys: impl IntoIterator<Item = &'a str>,
) {
    map.retain(|_, servers| {
        servers.retain(|s| s != server);
        !servers.is_empty()
    });
    for key in keys {
        let servers = map.entry(key.to_string()).or_default();
        if !servers.contains(server) {
            servers.push(server.clone());
        }
    }
}

/// The one server among `servers`, else an error naming them all and what they share.
fn one_of(
    uri: &str,
    mut servers: Vec<&ServerName>,
    shared: &str,
) -> Result<Option<ServerName>, String> {
    servers.sort();
    servers.dedup();
    match servers.as_slice() {
        [one] => Ok(Some((*one).clone())),
        many => Err(format!(
            "resource \"{uri}\": servers {} {shared}, so /mcp cannot tell which one to ask; connect to /SERVER/mcp of the one you mean",
            many.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// How specifically an RFC 6570 template matches `uri`: the number of literal characters it
/// pins, or `None` when the URI cannot be an expansion of it. Each `{…}` expression matches any
/// run of characters; the literals around them must appear in order, the first at the start and
/// the last at the end.
pub fn template_score(template: &str, uri: &str) -> Option<usize> {
    let mut literals = Vec::new();
    let mut rest = template;
    loop {
        match rest.find('{') {
            Some(open) => {
                literals.push(&rest[..open]);
                let close = rest[open..].find('}')? + open;
                rest = &rest[close + 1..];
            }
            None => {
                literals.push(rest);
                break;
            }
        }
    }
    let (first, others) = literals.split_first()?;
    if others.is_empty() {
        return (*first == uri).then_some(first.len());
    }
    let (last, middle) = others.split_last()?;
    let mut at = uri.strip_prefix(first)?;
    if at.len() < last.len() {
        return None;
    }
    let end = at.len() - last.len();
    if !at.is_char_boundary(end) || &at[end..] != *last {
        return None;
    }
    at = &at[..end];
    for literal in middle {
        let found = at.find(literal)?;
        at = &at[found + literal.len()..];
    }
    Some(literals.iter().map(|l| l.len()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ServerName {
        ServerName::parse(s).unwrap()
    }

    fn all(_: &ServerName) -> bool {
        true
    }

    impl Owners {
        fn owner_of(&self, uri: &str) -> Result<Option<ServerName>, String> {
            self.owner(uri, all)
        }
    }

    #[test]
    fn templates_match_expansions_and_nothing_else() {
        assert_eq!(template_score("file:///{path}", "file:///a/b.txt"), Some(8));
        assert_eq!(
            template_score("gh://{owner}/{repo}/issues", "gh://me/x/issues"),
            Some(13)
        );
        assert_eq!(
            template_score("gh://{owner}/{repo}/issues", "gh://me/x/pulls"),
            None
        );
        assert_eq!(template_score("gh://{owner}/{repo}", "gh://me"), None);
        assert_eq!(template_score("db://{table}", "file:///x"), None);
        assert_eq!(template_score("plain://uri", "plain://uri"), Some(11));
        assert_eq!(template_score("plain://uri", "plain://uri2"), None);
        assert_eq!(template_score("bad://{unclosed", "bad://x"), None);
        assert_eq!(template_score("é://{x}é", "é://é"), Some(7));
    }

    #[test]
    fn listed_uris_win_then_the_most_specific_template() {
        let mut owners = Owners::default();
        owners.templates(&name("files"), ["file:///{path}"]);
        owners.templates(&name("projects"), ["file:///projects/{name}/readme"]);
        owners.resources(&name("hosts"), ["file:///etc/hosts"]);
        assert_eq!(
            owners.owner_of("file:///etc/hosts"),
            Ok(Some(name("hosts")))
        );
        assert_eq!(
            owners.owner_of("file:///projects/x/readme"),
            Ok(Some(name("projects")))
        );
        assert_eq!(owners.owner_of("file:///tmp/x"), Ok(Some(name("files"))));
        assert_eq!(
            owners.owner_of("file:///{path}"),
            Ok(Some(name("files"))),
            "a template itself (completion refs)"
        );
        assert_eq!(owners.owner_of("https://x.test/"), Ok(None));
    }

    #[test]
    fn equally_good_matches_from_two_servers_are_an_error_naming_both() {
        let mut owners = Owners::default();
        owners.templates(&name("one"), ["file:///{path}"]);
        owners.templates(&name("two"), ["file:///{other}"]);
        owners.templates(&name("one"), ["file:///{path}"]);
        let e = owners.owner("file:///x", all).unwrap_err();
        assert!(
            e.contains("\"one\", \"two\"") && e.contains("/SERVER/mcp"),
            "{e}"
        );
    }

    #[test]
    fn a_uri_two_servers_list_is_an_error_naming_both_until_one_stops_listing_it() {
        let mut owners = Owners::default();
        owners.resources(&name("one"), ["file:///etc/hosts", "file:///a"]);
        owners.resources(&name("two"), ["file:///etc/hosts"]);
        let e = owners.owner_of("file:///etc/hosts").unwrap_err();
        assert!(
            e.contains("\"one\", \"two\"") && e.contains("list the same"),
            "{e}"
        );
        assert_eq!(owners.owner_of("file:///a"), Ok(Some(name("one"))));
        let only_one = |s: &ServerName| s.as_str() == "one";
        assert_eq!(
            owners.owner("file:///etc/hosts", only_one),
            Ok(Some(name("one"))),
            "a server that left the config owns nothing"
        );
        owners.resources(&name("two"), []);
        assert_eq!(owners.owner_of("file:///etc/hosts"), Ok(Some(name("one"))));
    }
}
