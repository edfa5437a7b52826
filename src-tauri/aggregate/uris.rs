//! Which server a resource URI belongs to, for `resources/read`, subscriptions and completions
//! on `/mcp`. Resource URIs are not prefixed (clients open them as the server wrote them), so the
//! aggregate routes by what each server listed: exact URIs from `resources/list` first, then the
//! `uriTemplate`s from `resources/templates/list`, the most specific match winning. Pure: no I/O.

use std::collections::HashMap;

use crate::config::ServerName;

/// What the session learned from list answers.
#[derive(Debug, Default)]
pub struct Owners {
    /// Resource URI → the server that listed it.
    resources: HashMap<String, ServerName>,
    /// URI template → the servers that listed it (a template may be offered by several).
    templates: HashMap<String, Vec<ServerName>>,
}

impl Owners {
    pub fn resource(&mut self, uri: &str, server: &ServerName) {
        self.resources.insert(uri.to_string(), server.clone());
    }

    pub fn template(&mut self, template: &str, server: &ServerName) {
        let servers = self.templates.entry(template.to_string()).or_default();
        if !servers.contains(server) {
            servers.push(server.clone());
        }
    }

    /// The server owning `uri` (a listed URI, a template itself, or a URI one template
    /// matches best); `Ok(None)` when nothing listed matches; an error naming the servers when
    /// equally good matches come from more than one.
    pub fn owner(&self, uri: &str) -> Result<Option<ServerName>, String> {
        if let Some(server) = self.resources.get(uri) {
            return Ok(Some(server.clone()));
        }
        let mut best: Option<(usize, Vec<&ServerName>)> = None;
        for (template, servers) in &self.templates {
            let score = if template == uri {
                Some(usize::MAX)
            } else {
                template_score(template, uri)
            };
            let Some(score) = score else { continue };
            match &mut best {
                Some((top, all)) if *top == score => all.extend(servers),
                Some((top, _)) if *top > score => {}
                _ => best = Some((score, servers.iter().collect())),
            }
        }
        let Some((_, mut servers)) = best else {
            return Ok(None);
        };
        servers.sort();
        servers.dedup();
        match servers.as_slice() {
            [one] => Ok(Some((*one).clone())),
            many => Err(format!(
                "resource \"{uri}\" matches the resource templates of servers {} equally well, so /mcp cannot tell which one to ask; connect to /SERVER/mcp of the one you mean",
                many.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
            )),
        }
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
        owners.template("file:///{path}", &name("files"));
        owners.template("file:///projects/{name}/readme", &name("projects"));
        owners.resource("file:///etc/hosts", &name("hosts"));
        assert_eq!(owners.owner("file:///etc/hosts"), Ok(Some(name("hosts"))));
        assert_eq!(
            owners.owner("file:///projects/x/readme"),
            Ok(Some(name("projects")))
        );
        assert_eq!(owners.owner("file:///tmp/x"), Ok(Some(name("files"))));
        assert_eq!(
            owners.owner("file:///{path}"),
            Ok(Some(name("files"))),
            "a template itself (completion refs)"
        );
        assert_eq!(owners.owner("https://x.test/"), Ok(None));
    }

    #[test]
    fn equally_good_matches_from_two_servers_are_an_error_naming_both() {
        let mut owners = Owners::default();
        owners.template("file:///{path}", &name("one"));
        owners.template("file:///{other}", &name("two"));
        owners.template("file:///{path}", &name("one"));
        let e = owners.owner("file:///x").unwrap_err();
        assert!(
            e.contains("\"one\", \"two\"") && e.contains("/SERVER/mcp"),
            "{e}"
        );
    }
}
