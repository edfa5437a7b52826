//! `tests/js/modern_server.mjs`: a real MCP upstream built on the official TypeScript SDK v2
//! server (`@modelcontextprotocol/server`), dual-era or `--modern-only`. Tools: `echo`,
//! `ask_user` (one elicitation round trip: MRTR for modern clients, an elicitation request for
//! legacy ones) and `add_tool` (registers another tool, so the server sends
//! `notifications/tools/list_changed`). [`JsServer::script`] starts any server script of
//! `tests/js` that prints its URL the same way (`v1_auth_server.mjs`: the TypeScript SDK v1's
//! own authorization server in front of a v1 MCP server).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `modern_server.mjs`; the process is killed when this is dropped.
pub struct JsServer {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    child: Child,
}

impl JsServer {
    /// The dual-era server (both eras on one endpoint).
    pub async fn dual() -> JsServer {
        JsServer::start(&[]).await
    }

    /// The server with `--modern-only`.
    pub async fn modern_only() -> JsServer {
        JsServer::start(&["--modern-only"]).await
    }

    /// Starts `node modern_server.mjs ARGS` and reads its `{"url": …}` line (panics with its
    /// stderr when it does not come within 30 s).
    pub async fn start(args: &[&str]) -> JsServer {
        let sdk =
            super::node::js_dir().join("node_modules/@modelcontextprotocol/server/package.json");
        assert!(
            sdk.exists(),
            "@modelcontextprotocol/server is not installed in tests/js/node_modules: run scripts/setup-node.sh"
        );
        JsServer::script("modern_server.mjs", args).await
    }

    /// Starts `node tests/js/SCRIPT ARGS`, a server that prints its `{"url": …}` line.
    pub async fn script(script: &str, args: &[&str]) -> JsServer {
        let mut cmd = Command::from(super::node::node_command());
        cmd.arg(script).args(args);
        let (url, child) = spawn_reporting(cmd, script).await;
        JsServer { url, child }
    }

    /// Kills the server and waits until the process has exited (its port is closed then).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Spawns `cmd` (killed on drop), reads the `{"url": …}` line it prints first and keeps draining
/// its stdout; panics naming `what` when no line comes within 30 s.
pub async fn spawn_reporting(mut cmd: Command, what: &str) -> (String, Child) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} printed its URL within 30 s"))
        .expect("stdout readable")
        .unwrap_or_else(|| panic!("{what} printed a line before exiting"));
    let report: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what} printed {line:?}: {e}"));
    let url = report["url"].as_str().expect("a url").to_string();
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (url, child)
}
