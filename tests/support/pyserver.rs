//! `tests/py/fastmcp_server.py`: a real MCP upstream with FastMCP's own built-in authorization
//! server (see the script's docs), run with the Python that `scripts/setup-python.sh` prepares
//! (a venv in `.tools/python` with FastMCP pinned). Tests that need it fail with that fix when it
//! is missing; they never skip.

use std::path::{Path, PathBuf};

use tokio::process::{Child, Command};

use super::jsserver::spawn_reporting;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python (`MCP_BROKER_PYTHON` overrides); panics with the fix when it is missing.
pub fn python() -> PathBuf {
    let path = std::env::var("MCP_BROKER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".tools/python/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-python.sh (it installs FastMCP into .tools/python)",
        path.display()
    );
    path
}

/// A running `fastmcp_server.py`; the process is killed when this is dropped.
pub struct FastMcpServer {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    _child: Child,
}

impl FastMcpServer {
    pub async fn start() -> FastMcpServer {
        let mut cmd = Command::new(python());
        cmd.arg(root().join("tests/py/fastmcp_server.py"));
        let (url, child) = spawn_reporting(cmd, "fastmcp_server.py").await;
        FastMcpServer { url, _child: child }
    }
}
