//! Running the MCP conformance suite (`@modelcontextprotocol/conformance`, `tests/js`) from the
//! Cargo tests, and reading what it wrote: shared by `gateway_conformance*.rs`.
//!
//! The suite's `server` mode has no option for credentials, so `tests/js/auth_preload.mjs`
//! adds `x-api-key: <local API key>` to its requests to the broker, as any script would.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const CONFORMANCE: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";

/// Every check the suite wrote under `dir` (all `checks.json` files).
pub fn checks_in(dir: &Path) -> Vec<Value> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(checks_in(&path));
        } else if path.file_name().is_some_and(|n| n == "checks.json") {
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.extend(v.as_array().cloned().unwrap_or_default());
        }
    }
    out
}

/// Checks that failed (FAILURE) — warnings and infos are reported, not fatal.
pub fn failures(checks: &[Value]) -> Vec<&Value> {
    checks.iter().filter(|c| c["status"] == "FAILURE").collect()
}

/// The `server` scenarios a requirement set scores (its frozen `server:` list), read from the
/// suite's own `requirements/<revision>.yaml` so the tests follow the suite, not a copy.
pub fn scored(revision: &str) -> Vec<String> {
    let path = super::support::node::js_dir()
        .join("node_modules/@modelcontextprotocol/conformance/requirements")
        .join(format!("{revision}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut in_server = false;
    let mut out = vec![];
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            in_server = line.trim_end() == "server:";
        } else if let Some(item) = line.strip_prefix("  - ").filter(|_| in_server) {
            out.push(item.trim().to_string());
        }
    }
    assert!(out.len() > 10, "no server list in {path:?}");
    out
}

/// One `server --requirements` run: the checks of every scenario it ran, and its output.
pub struct SuiteRun {
    pub by_scenario: BTreeMap<String, Vec<Value>>,
    pub log: String,
}

impl SuiteRun {
    /// The FAILURE checks of `scenarios`, as `scenario: id: message` lines.
    pub fn failures_in<'a>(&self, scenarios: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        self.failures_except(scenarios, &[])
    }

    /// The FAILURE checks of `scenarios` but the `(scenario, check id)` pairs of `except`.
    pub fn failures_except<'a>(
        &self,
        scenarios: impl IntoIterator<Item = &'a str>,
        except: &[(&str, &str)],
    ) -> Vec<String> {
        let mut out = vec![];
        for scenario in scenarios {
            for c in failures(self.by_scenario.get(scenario).map_or(&[][..], |v| v)) {
                if except
                    .iter()
                    .any(|(s, id)| *s == scenario && c["id"] == *id)
                {
                    continue;
                }
                out.push(format!("{scenario}: {}: {}", c["id"], c["errorMessage"]));
            }
        }
        out
    }

    /// How many checks `scenarios` wrote, in all.
    pub fn count_in<'a>(&self, scenarios: impl IntoIterator<Item = &'a str>) -> usize {
        scenarios
            .into_iter()
            .map(|s| self.by_scenario.get(s).map_or(0, Vec::len))
            .sum()
    }

    /// One line per scenario: passed / failed / warnings, for the test's output.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (scenario, checks) in &self.by_scenario {
            let n = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
            out.push_str(&format!(
                "{scenario}: {} passed, {} failed, {} warnings\n",
                n("SUCCESS"),
                n("FAILURE"),
                n("WARNING")
            ));
        }
        out
    }
}

/// The scenario a result directory belongs to: `server-<scenario>-<24-character timestamp>`.
fn scenario_of(dir_name: &str) -> Option<&str> {
    let rest = dir_name.strip_prefix("server-")?;
    rest.get(..rest.len().checked_sub(25)?)
}

/// Runs `server --url URL --requirements REVISION` with the broker's API key preloaded; panics
/// when it does not finish within 15 minutes.
pub async fn run_requirements(url: &str, revision: &str, origin: &str, key: &str) -> SuiteRun {
    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::from(super::support::node::node_command());
    cmd.arg("--import")
        .arg("./auth_preload.mjs")
        .arg(CONFORMANCE)
        .args(["server", "--url", url, "--requirements", revision, "-o"])
        .arg(out_dir.path())
        .env("BROKER_ORIGIN", origin)
        .env("BROKER_API_KEY", key)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(900), cmd.output())
        .await
        .expect("the suite finished within 15 minutes")
        .expect("node runs");
    let mut by_scenario = BTreeMap::new();
    for entry in std::fs::read_dir(out_dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let scenario = scenario_of(&name).unwrap_or_else(|| panic!("result dir {name}"));
        by_scenario.insert(scenario.to_string(), checks_in(&entry.path()));
    }
    // The per-scenario progress lines say nothing the checks do not: keep the summary.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .find("=== SUMMARY")
        .map_or(&stdout[..], |at| &stdout[at..]);
    let log = format!(
        "exit {:?}\nstdout: {summary}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    SuiteRun { by_scenario, log }
}

/// `tests/js/conformance_server.mjs`: a dual-era MCP server on the official TypeScript SDK v2
/// server that implements what the suite's `server` scenarios call; killed on drop.
pub struct ConformanceServer {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    _child: Child,
}

impl ConformanceServer {
    pub async fn start() -> ConformanceServer {
        let mut cmd = Command::from(super::support::node::node_command());
        cmd.arg("conformance_server.mjs")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("node starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("conformance_server.mjs printed its URL within 30 s")
            .expect("stdout readable")
            .expect("conformance_server.mjs printed a line before exiting");
        let report: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("conformance_server.mjs printed {line:?}: {e}"));
        let url = report["url"].as_str().expect("a url").to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ConformanceServer { url, _child: child }
    }
}

#[test]
fn result_directories_name_their_scenario() {
    assert_eq!(
        scenario_of("server-tools-call-image-2026-12-05T06-07-13-599Z"),
        Some("tools-call-image")
    );
    assert_eq!(scenario_of("server-x"), None);
}
