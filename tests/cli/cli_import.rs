//! `import`: sample config files of Claude Code, Cursor, VS Code and LiteLLM through the real
//! binary (what is written, what is reported, what is refused), and the pure parser; and the
//! LiteLLM docs' M2M recipe, imported, working through the broker.

use crate::gateway_common;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mcp_auth_broker::clients::parse::{parse, sanitize, Source};
use serde_json::{json, Value};

const PORT: u16 = 47999;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("broker/config.json")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn import(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .arg("import")
            .args(args)
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--port")
            .arg(PORT.to_string())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn servers(&self) -> Value {
        let text = std::fs::read_to_string(self.config()).expect("the broker config was written");
        serde_json::from_str::<Value>(&text).unwrap()["mcp_servers"].clone()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const CLAUDE: &str = r#"{
  "numStartups": 3,
  "mcpServers": {
    "Linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
    "files": {"type": "stdio", "command": "npx", "args": ["-y", "server-files"]}
  },
  "projects": {
    "/home/me/app": {"mcpServers": {
      "sentry": {"type": "sse", "url": "https://mcp.sentry.dev/sse"},
      "linear-again": {"type": "http", "url": "https://mcp.linear.app/mcp"}
    }}
  }
}"#;

#[test]
fn claude_import_takes_remote_servers_from_top_level_and_projects_and_skips_stdio_ones() {
    let d = Dir::new();
    let src = d.write(".claude.json", CLAUDE);
    let out = d.import(&[p(&src)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers(),
        json!({
            "linear": {"url": "https://mcp.linear.app/mcp"},
            "sentry": {"url": "https://mcp.sentry.dev/sse", "transport": "sse"}
        })
    );
    let t = text(&out);
    assert!(t.contains("\"files\": a stdio server (runs `npx`)"), "{t}");
    assert!(
        t.contains("\"linear-again\": same URL as \"Linear\""),
        "{t}"
    );
}

#[test]
fn cursor_literal_secrets_in_headers_are_reported_and_never_written() {
    let d = Dir::new();
    let src = d.write(
        ".cursor/mcp.json",
        r#"{"mcpServers": {
          "acme": {"url": "https://mcp.acme.test/mcp", "headers": {"Authorization": "Bearer sk-live-123", "X-Tenant": "acme"}},
          "beta": {"url": "https://mcp.beta.test/mcp", "headers": {"Authorization": "Bearer ${env:BETA_TOKEN}", "X-Api-Key": "${BETA_KEY}"}}
        }}"#,
    );
    let out = d.import(&["--from", "cursor", p(&src)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers(),
        json!({
            "acme": {"url": "https://mcp.acme.test/mcp", "headers": {"X-Tenant": "acme"},
                     "needs_setup": "header Authorization held a literal secret (or a variable the broker cannot read) and was not copied: add it to the broker's config as \"os.environ/VAR\""},
            "beta": {"url": "https://mcp.beta.test/mcp", "auth_type": "bearer_token",
                     "auth_value": "os.environ/BETA_TOKEN", "headers": {"X-Api-Key": "os.environ/BETA_KEY"}}
        })
    );
    let written = std::fs::read_to_string(d.config()).unwrap();
    assert!(!written.contains("sk-live-123"), "{written}");
    assert!(
        text(&out).contains("needs setup (imported, kept out of service until done): header Authorization held a literal secret"),
        "{}",
        text(&out)
    );
}

#[test]
fn vscode_servers_import_with_url_safe_names_and_rewrite_points_vscode_at_the_broker() {
    let d = Dir::new();
    let original = r#"{"servers": {
      "My GitHub!": {"type": "http", "url": "https://api.githubcopilot.test/mcp/"},
      "local": {"type": "stdio", "command": "node", "args": ["x.js"]}
    }}"#;
    let src = d.write(".vscode/mcp.json", original);
    let out = d.import(&[p(&src), "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers(),
        json!({"my-github": {"url": "https://api.githubcopilot.test/mcp/"}})
    );
    let rewritten: Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    assert_eq!(
        rewritten["servers"]["My GitHub!"],
        json!({"type": "http", "url": format!("http://127.0.0.1:{PORT}/my-github/mcp")})
    );
    assert_eq!(
        rewritten["servers"]["local"]["command"], "node",
        "stdio entries are left alone"
    );
    let backups: Vec<_> = std::fs::read_dir(src.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("mcp.json.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), original);
}

#[test]
fn vscode_jsonc_with_comments_imports_and_rewrite_changes_only_the_imported_entries() {
    let d = Dir::new();
    let original = r#"{
  // Work servers. Keep this comment.
  "servers": {
    "zeta": {
      "type": "http",
      "url": "https://zeta.test/mcp", // trailing comment
    },
    /* a block comment */
    "alpha": {"type": "stdio", "command": "node", "args": ["x.js"]},
  },
  "inputs": [],
}
"#;
    let src = d.write(".vscode/mcp.json", original);
    let out = d.import(&[p(&src), "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers(),
        json!({"zeta": {"url": "https://zeta.test/mcp"}})
    );
    let rewritten = std::fs::read_to_string(&src).unwrap();
    for kept in [
        "// Work servers. Keep this comment.",
        "/* a block comment */",
        r#""alpha": {"type": "stdio", "command": "node", "args": ["x.js"]},"#,
        r#""inputs": [],"#,
    ] {
        assert!(rewritten.contains(kept), "{kept:?} kept in:\n{rewritten}");
    }
    assert!(
        rewritten.find("\"zeta\"") < rewritten.find("\"alpha\""),
        "key order kept:\n{rewritten}"
    );
    assert!(!rewritten.contains("zeta.test"), "{rewritten}");
    let doc = parse_jsonc(&rewritten);
    assert_eq!(
        doc["servers"]["zeta"],
        json!({"type": "http", "url": format!("http://127.0.0.1:{PORT}/zeta/mcp")})
    );
}

#[test]
fn claude_rewrite_keeps_the_order_of_every_other_key() {
    let d = Dir::new();
    let src = d.write(".claude.json", CLAUDE);
    let out = d.import(&[p(&src), "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rewritten = std::fs::read_to_string(&src).unwrap();
    let at = |key: &str| {
        rewritten
            .find(key)
            .unwrap_or_else(|| panic!("{key} in {rewritten}"))
    };
    assert!(at("numStartups") < at("mcpServers") && at("mcpServers") < at("projects"));
    assert!(at("\"Linear\"") < at("\"files\""), "{rewritten}");
    let doc: Value = serde_json::from_str(&rewritten).expect("still strict JSON");
    assert_eq!(doc["numStartups"], 3);
    assert_eq!(
        doc["mcpServers"]["Linear"]["url"],
        format!("http://127.0.0.1:{PORT}/linear/mcp")
    );
}

fn parse_jsonc(text: &str) -> Value {
    mcp_auth_broker::clients::parse::read(text).unwrap()
}

/// LiteLLM's own documentation examples in one `config.yaml`: the MCP quick start
/// (streamable HTTP, SSE, stdio, the "full configuration" API-key entry), the interactive OAuth
/// setup, the M2M setup (with LiteLLM's newer `oauth2_flow`) and the M2M mock-server recipe.
const LITELLM_DOCS_YAML: &str = r#"model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-xxxxxxx

litellm_settings:
  # MCP Aliases - Map aliases to server names for easier tool access
  mcp_aliases:
    "github": "github_mcp"

mcp_servers:
  # HTTP Streamable Server
  deepwiki_mcp:
    url: "https://mcp.deepwiki.com/mcp"
  # SSE Server
  zapier_mcp:
    url: "https://actions.zapier.com/mcp/sk-akxxxxx/sse"
    transport: "sse"
  # Standard Input/Output (stdio) Server - CircleCI Example
  circleci_mcp:
    transport: "stdio"
    command: "npx"
    args: ["-y", "@circleci/mcp-server-circleci"]
    env:
      CIRCLECI_TOKEN: "your-circleci-token"
      CIRCLECI_BASE_URL: "https://circleci.com"
  # Full configuration with all optional fields
  my_http_server:
    url: "https://my-http-server.com/mcp"
    transport: "http"
    description: "My custom MCP server"
    auth_type: "api_key"
    auth_value: "abc123"
  github_mcp:
    url: "https://api.githubcopilot.com/mcp"
    auth_type: oauth2
    client_id: os.environ/GITHUB_OAUTH_CLIENT_ID
    client_secret: os.environ/GITHUB_OAUTH_CLIENT_SECRET
  my_mcp_server:
    url: "https://my-mcp-server.com/mcp"
    auth_type: oauth2
    oauth2_flow: client_credentials
    client_id: os.environ/MCP_CLIENT_ID
    client_secret: os.environ/MCP_CLIENT_SECRET
    token_url: "https://auth.example.com/oauth/token"
    scopes: ["mcp:read", "mcp:write"]  # optional
  test_oauth2:
    url: "http://localhost:8765/mcp"
    auth_type: oauth2
    client_id: "test-client"
    client_secret: "test-secret"
    token_url: "http://localhost:8765/oauth/token"
"#;

#[test]
fn litellm_docs_config_yaml_imports_as_is_naming_what_is_ignored_and_marking_unfinished_entries() {
    let d = Dir::new();
    let src = d.write("config.yaml", LITELLM_DOCS_YAML);
    let out = d.import(&[p(&src)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let servers = d.servers();
    assert_eq!(
        servers["deepwiki_mcp"],
        json!({"url": "https://mcp.deepwiki.com/mcp"})
    );
    assert_eq!(servers["zapier_mcp"]["transport"], "sse");
    assert!(servers.get("circleci_mcp").is_none(), "{servers}");
    assert!(
        t.contains("skip    \"circleci_mcp\": a stdio server (runs `npx`)"),
        "{t}"
    );
    assert_eq!(
        servers["github_mcp"],
        json!({"url": "https://api.githubcopilot.com/mcp", "auth_type": "oauth2",
               "client_id": "os.environ/GITHUB_OAUTH_CLIENT_ID", "client_secret": "os.environ/GITHUB_OAUTH_CLIENT_SECRET"})
    );
    assert_eq!(
        servers["my_mcp_server"],
        json!({"url": "https://my-mcp-server.com/mcp", "auth_type": "oauth2", "oauth_flow": "client_credentials",
               "client_id": "os.environ/MCP_CLIENT_ID", "client_secret": "os.environ/MCP_CLIENT_SECRET",
               "token_url": "https://auth.example.com/oauth/token", "scopes": ["mcp:read", "mcp:write"]})
    );
    // Literal secrets stay behind; the entry lands all the same, out of service, saying why.
    let mock = &servers["test_oauth2"];
    assert_eq!(mock["client_id"], "test-client");
    assert_eq!(
        mock["oauth_flow"], "client_credentials",
        "LiteLLM's inferred flow is written out"
    );
    assert!(mock.get("client_secret").is_none(), "{mock}");
    assert!(
        mock["needs_setup"]
            .as_str()
            .unwrap()
            .contains("client_secret was a literal secret"),
        "{mock}"
    );
    let api = &servers["my_http_server"];
    assert!(
        api.get("auth_value").is_none() && api.get("description").is_none(),
        "{api}"
    );
    let why = api["needs_setup"].as_str().unwrap();
    assert!(
        why.contains("auth_value was a literal secret") && why.contains("auth_value: is missing"),
        "{why}"
    );
    assert!(
        t.contains("ignored: description (a label for LiteLLM's UI)"),
        "{t}"
    );
    assert!(t.contains("2 need setup"), "{t}");
    let written = std::fs::read_to_string(d.config()).unwrap();
    assert!(
        !written.contains("abc123") && !written.contains("test-secret"),
        "{written}"
    );

    // The broker reads what it wrote: the unfinished entries are listed as needing setup.
    let list = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
        .args(["list", "--config"])
        .arg(d.config())
        .env("GITHUB_OAUTH_CLIENT_ID", "Iv1.docs")
        .env_remove("MCP_CLIENT_ID")
        .output()
        .unwrap();
    let l = text(&list);
    assert_eq!(list.status.code(), Some(0), "{l}");
    assert!(
        l.contains("test_oauth2") && l.contains("[needs setup: client_secret was a literal secret"),
        "{l}"
    );
    assert!(
        l.contains("github_mcp")
            && !l
                .lines()
                .any(|x| x.starts_with("github_mcp") && x.contains("needs setup")),
        "{l}"
    );
}

#[test]
fn litellm_yaml_cannot_be_rewritten_and_a_bad_one_names_the_line() {
    let d = Dir::new();
    let src = d.write(
        "config.yaml",
        "mcp_servers:\n  a:\n    url: https://a.test/mcp\n",
    );
    let out = d.import(&["--from", "litellm", "--rewrite", p(&src)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--rewrite edits JSON files only"),
        "{}",
        text(&out)
    );
    assert!(!d.config().exists(), "nothing written");

    let bad = d.write(
        "bad.yaml",
        "mcp_servers:\n  a:\n    url: [https://a.test/mcp\n  b: 1\n",
    );
    let out = d.import(&["--from", "litellm", p(&bad)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not valid YAML") && text(&out).contains("line "),
        "{}",
        text(&out)
    );

    let json = d.write(
        "litellm.json",
        r#"{"mcp_servers": {"m2m": {"url": "https://mcp.m2m.test/mcp", "auth_type": "oauth2", "oauth2_flow": "client_credentials",
            "client_id": "c1", "client_secret": "os.environ/M2M_SECRET", "token_url": "https://auth.m2m.test/token"}}}"#,
    );
    let out = d.import(&["--from", "litellm", p(&json)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d.servers()["m2m"]["oauth_flow"], "client_credentials");
}

#[test]
fn malformed_files_of_every_client_are_errors_naming_the_problem_and_write_nothing() {
    let cases = [
        (
            "claude",
            ".claude.json",
            "{\"mcpServers\": {\"a\": ",
            "not valid JSON: Expected value after colon in object property on line 1",
        ),
        (
            "cursor",
            "mcp.json",
            "{\"mcpServers\": [1, 2]}",
            "\"mcpServers\" must be an object",
        ),
        (
            "vscode",
            "mcp.json",
            "{\n  // a comment is fine\n  \"servers\": {\"a\": }\n}",
            "not valid JSON: Unexpected close brace on line 3 column 20",
        ),
        (
            "vscode",
            "mcp.json",
            "{\"mcpServers\": {}}",
            "no \"servers\" object found",
        ),
        (
            "vscode",
            "mcp.json",
            "{\"servers\": {\"a\": {\"url\": \"https://a.test/mcp\"}}, \"servers\": {}}",
            "the key \"servers\" appears twice in one object",
        ),
        (
            "litellm",
            "litellm.json",
            "[1]",
            "expected an object (mapping) at the top level",
        ),
    ];
    for (client, file, body, expected) in cases {
        let d = Dir::new();
        let src = d.write(file, body);
        let out = d.import(&["--from", client, p(&src)]);
        assert_eq!(out.status.code(), Some(2), "{client}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains(expected) && t.contains("nothing was written"),
            "{client}: {t}"
        );
        assert!(!d.config().exists(), "{client}: nothing written");
    }
}

#[test]
fn dry_run_reports_the_plan_and_writes_nothing() {
    let d = Dir::new();
    let src = d.write(".claude.json", CLAUDE);
    let out = d.import(&[p(&src), "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("import  linear <- \"Linear\""),
        "{}",
        text(&out)
    );
    assert!(!d.config().exists());
    assert_eq!(std::fs::read_to_string(&src).unwrap(), CLAUDE);
}

#[test]
fn importing_twice_adds_nothing_the_second_time() {
    let d = Dir::new();
    let src = d.write(".claude.json", CLAUDE);
    assert_eq!(d.import(&[p(&src)]).status.code(), Some(0));
    let before = std::fs::read_to_string(d.config()).unwrap();
    let out = d.import(&[p(&src)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already in the broker's config as \"linear\""));
    assert_eq!(std::fs::read_to_string(d.config()).unwrap(), before);
}

#[test]
fn entries_already_pointing_at_the_broker_are_skipped() {
    let text = format!(r#"{{"mcpServers": {{"x": {{"url": "http://127.0.0.1:{PORT}/x/mcp"}}}}}}"#);
    let plan = parse(Source::Cursor, &text, PORT).unwrap();
    assert!(plan.found.is_empty());
    assert_eq!(plan.skipped[0].reason, "already goes through the broker");
}

#[test]
fn names_are_sanitised_to_the_url_safe_rule_or_refused() {
    assert_eq!(sanitize("My Server (prod)").unwrap(), "my-server-prod");
    assert_eq!(
        sanitize("api").unwrap(),
        "api-server",
        "reserved names get a suffix"
    );
    assert_eq!(sanitize("__x__").unwrap(), "x");
    assert!(sanitize("日本").is_err());
}

#[test]
fn import_from_claude_without_a_path_reads_claude_json_in_home_and_mcp_json_is_detected() {
    let d = Dir::new();
    d.write(".claude.json", CLAUDE);
    let out = d.import(&["--from", "claude"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(d.servers().get("linear").is_some());

    let d = Dir::new();
    let project = d.write(
        "app/.mcp.json",
        r#"{"mcpServers": {"notion": {"type": "http", "url": "https://mcp.notion.test/mcp"}}}"#,
    );
    let out = d.import(&[p(&project)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers(),
        json!({"notion": {"url": "https://mcp.notion.test/mcp"}})
    );
}

#[test]
fn import_without_from_or_path_says_what_to_pass() {
    let d = Dir::new();
    let out = d.import(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("import --from claude|cursor|vscode|litellm [PATH]"),
        "{}",
        text(&out)
    );
}

/// LiteLLM's M2M setup block from [`LITELLM_DOCS_YAML`], only its two URLs pointed at a test
/// upstream shaped like the docs' mock: a token endpoint that reads `client_id` /
/// `client_secret` only as form fields (FastAPI's 422 otherwise), an MCP server answering a bare
/// 401 (no challenge), and no metadata anywhere.
#[tokio::test]
async fn litellm_docs_m2m_recipe_imported_as_is_calls_a_tool_through_the_broker_with_client_secret_post(
) {
    use gateway_common::{api_key, open_session, post, tool_call};
    let mut options = support::UpstreamOptions::oauth();
    options.bare_401 = true;
    options.auth_server.metadata = false;
    options.auth_server.registration = false;
    options.auth_server.client_auth = support::auth_server::ClientAuthRule::FormOnly;
    options.auth_server.clients = vec![support::auth_server::TestClient {
        client_id: "test-client".into(),
        client_secret: Some("test-secret".into()),
    }];
    let up = support::TestUpstream::start(options).await;
    std::env::set_var("MCP_CLIENT_ID", "test-client");
    std::env::set_var("MCP_CLIENT_SECRET", "test-secret");
    let recipe = LITELLM_DOCS_YAML
        .replace("https://my-mcp-server.com/mcp", &up.mcp_url)
        .replace(
            "https://auth.example.com/oauth/token",
            &up.auth_server.token_url(),
        );
    let d = Dir::new();
    let src = d.write("config.yaml", &recipe);
    let out = tokio::task::spawn_blocking(move || {
        let out = d.import(&["--from", "litellm", p(&src)]);
        (out, d.servers())
    });
    let (out, servers) = out.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let entry = servers["my_mcp_server"].clone();
    assert!(entry.get("needs_setup").is_none(), "{entry}");

    let config = json!({"mcp_servers": {"my_mcp_server": entry}});
    let broker = support::TestBroker::start(config).await;
    let key = api_key(&broker).await;
    let url = broker.client_url("my_mcp_server");
    let sid = open_session(&url, &key).await;
    let call = tool_call(2, "echo", json!({"text": "via the docs' recipe"}));
    let r = post(&url, &key, Some(&sid), &call).await;
    assert!(r.text().await.unwrap().contains("via the docs' recipe"));
    let tokens = up.oauth().recorder.to_path("/token");
    let last = tokens.last().expect("a token request");
    assert!(
        !last
            .authorization()
            .is_some_and(|a| a.starts_with("Basic ")),
        "the accepted request carried the credentials as form fields (client_secret_post)"
    );
    let issued = broker.issued("my_mcp_server", up.oauth()).await.unwrap();
    assert_eq!(
        (issued.client_id.as_str(), issued.grant),
        ("test-client", "client_credentials")
    );
}

#[test]
fn claude_desktop_mcp_remote_and_windsurf_files_are_recognised_and_rewritten_in_their_own_shape() {
    let d = Dir::new();
    let desktop = d.write(
        ".config/Claude/claude_desktop_config.json",
        r#"{"mcpServers": {
  "linear": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.linear.app/mcp", "--header", "X-Team: core"]},
  "local": {"command": "node", "args": ["server.js"]}
}}"#,
    );
    let out = d.import(&[p(&desktop), "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.servers()["linear"],
        json!({"url": "https://mcp.linear.app/mcp", "headers": {"X-Team": "core"}})
    );
    let file = parse_jsonc(&std::fs::read_to_string(&desktop).unwrap());
    // Claude Desktop starts only local programs: it gets the broker's own stdio bridge.
    let bridge = &file["mcpServers"]["linear"];
    let exe = std::fs::canonicalize(bridge["command"].as_str().unwrap()).unwrap();
    assert_eq!(
        exe,
        std::fs::canonicalize(env!("CARGO_BIN_EXE_mcp-auth-broker")).unwrap()
    );
    let data = d.dir.path().join("data");
    assert_eq!(
        bridge["args"],
        json!([
            "--config",
            p(&d.config()),
            "--data-dir",
            p(&data),
            "--port",
            PORT.to_string(),
            "connect",
            "linear"
        ])
    );
    assert_eq!(file["mcpServers"]["local"]["command"], "node");

    let windsurf = d.write(
        ".codeium/windsurf/mcp_config.json",
        "{\n  // remote\n  \"mcpServers\": {\"sentry\": {\"serverUrl\": \"https://mcp.sentry.dev/mcp\"}}\n}\n",
    );
    let out = d.import(&[p(&windsurf), "--rewrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&windsurf).unwrap();
    assert!(written.contains("// remote"), "{written}");
    assert_eq!(
        parse_jsonc(&written)["mcpServers"]["sentry"],
        json!({"serverUrl": format!("http://127.0.0.1:{PORT}/sentry/mcp")})
    );
}
