//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) with the broker's
//! upstream side as the client under test: the requirement sets of 2026-07-28 and 2025-11-25
//! (`client --requirements`), `--suite auth`, `--suite backcompat`,
//! `auth/client-credentials-basic`, `auth/enterprise-managed-authorization` (the suite's
//! identity provider hands over an ID token, kept as the company sign-in), `auth/dpop`,
//! `auth/dpop-nonce`, `auth/client-credentials-jwt` (`private_key_jwt` with the scenario's key)
//! and `auth/wif-jwt-bearer` (workload identity federation: the scenario's JWT from an
//! environment variable, exchanged with the jwt-bearer grant). The client is `examples/conformance_client.rs`: a real
//! broker (the one MCP client session over the one upstream exchange) whose sign-in completes
//! through a replaceable opener following the mock AS's auto-approving redirects. Needs Node >=
//! 22 and tests/js (scripts/setup-node.sh).
//!
//! Not applicable: none of the scored scenarios (all run and must pass). A requirement set also
//! runs scenarios it does not score (every extension the suite has is asserted below; one
//! scenario added after the revision's release); the suite reports them apart and they are not
//! asserted here.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

/// The example binary, built next to this test (cargo builds examples for `cargo test`);
/// built here when this test runs alone.
fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let bin = debug_dir.join("examples").join(format!(
        "conformance_client{}",
        std::env::consts::EXE_SUFFIX
    ));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // The variables cargo sets for this test process would look like a changed environment to
    // dependencies' build scripts and force rebuilds; the nested build gets the user's own.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR"
            || key == "OUT_DIR"
        {
            build.env_remove(&key);
        }
    }
    build
        .args(["build", "--example", "conformance_client"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(feature = "desktop") {
        build.arg("--no-default-features");
    }
    if let Some(target) = debug_dir.parent() {
        build.env("CARGO_TARGET_DIR", target);
    }
    let status = build.status().expect("cargo runs");
    assert!(
        status.success(),
        "building examples/conformance_client failed"
    );
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// Runs the suite CLI; returns (exit success, combined output, passed, failed).
fn run_suite(selection: &[&str]) -> (bool, String, usize, usize) {
    let bin = client_binary();
    let mut cmd = support::node::node_command();
    cmd.arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .arg("client")
        .arg("--command")
        .arg(&bin)
        .args(selection);
    let out = cmd.output().expect("the conformance CLI runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut passed, mut failed) = (0, 0);
    for line in text.lines() {
        // "Total: 245 passed, 0 failed, 0 warnings" (suites) or "Passed: 8/8, 0 failed, …" (one scenario).
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Total: ") {
            let mut words = rest.split([' ', ',']).filter(|w| !w.is_empty());
            passed = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            failed = rest
                .split(", ")
                .nth(1)
                .and_then(|f| f.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
        } else if let Some(rest) = line.strip_prefix("Passed: ") {
            passed = rest
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            failed = rest
                .split(", ")
                .nth(1)
                .and_then(|f| f.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
        }
    }
    (out.status.success(), text, passed, failed)
}

fn assert_all_pass(selection: &[&str], min_checks: usize) {
    let (ok, text, passed, failed) = run_suite(selection);
    let tail: String = text
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(ok, "conformance {selection:?} exited with failure:\n{tail}");
    assert_eq!(failed, 0, "conformance {selection:?} had failures:\n{tail}");
    assert!(
        passed >= min_checks,
        "conformance {selection:?} ran only {passed} checks:\n{tail}"
    );
    assert!(!text.contains("✗"), "a scenario failed:\n{tail}");
}

/// One scenario's line of a requirements run: name, passed, failed.
fn scenario_line(line: &str) -> Option<(String, usize, usize)> {
    let rest = line
        .strip_prefix("✓ ")
        .or_else(|| line.strip_prefix("✗ "))?;
    let (name, counts) = rest.split_once(": ")?;
    let mut numbers = counts
        .split([' ', ','])
        .filter_map(|w| w.parse::<usize>().ok());
    Some((name.to_string(), numbers.next()?, numbers.next()?))
}

/// Runs `client --requirements revision`: every scored scenario passes, at least
/// `min_scenarios` of them ran, with at least `min_checks` passed checks among them.
fn assert_requirements(revision: &str, min_scenarios: usize, min_checks: usize) {
    let (ok, text, _, _) = run_suite(&["--requirements", revision]);
    let mut unscored = Vec::new();
    let mut in_unscored = false;
    let mut scenarios = Vec::new();
    for line in text.lines() {
        if line.starts_with("Not scored for") {
            in_unscored = true;
        } else if in_unscored {
            // "  ✗ auth/dpop (extension)"
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) {
                unscored.push(rest.split(" (").next().unwrap_or_default().to_string());
            }
        } else if let Some(s) = scenario_line(line) {
            scenarios.push(s);
        }
    }
    let scored: Vec<_> = scenarios
        .iter()
        .filter(|(name, _, _)| !unscored.contains(name))
        .collect();
    let failing: Vec<_> = scored.iter().filter(|(_, _, f)| *f > 0).collect();
    let passed: usize = scored.iter().map(|(_, p, _)| p).sum();
    let tail: String = text.lines().rev().take(60).collect::<Vec<_>>().join("\n");
    assert!(
        ok,
        "conformance --requirements {revision} exited with failure:\n{tail}"
    );
    assert!(
        failing.is_empty(),
        "scored scenarios failed: {failing:?}\n{tail}"
    );
    assert!(
        scored.len() >= min_scenarios,
        "only {} scored scenarios ran ({scored:?}):\n{tail}",
        scored.len()
    );
    assert!(passed >= min_checks, "only {passed} checks passed:\n{tail}");
}

#[test]
fn the_broker_passes_the_2026_07_28_client_requirements() {
    assert_requirements("2026-07-28", 32, 380);
}

#[test]
fn the_broker_passes_the_2025_11_25_client_requirements() {
    assert_requirements("2025-11-25", 18, 240);
}

#[test]
fn the_broker_passes_the_conformance_auth_suite_as_a_client() {
    assert_all_pass(&["--suite", "auth"], 200);
}

#[test]
fn the_broker_passes_the_conformance_backcompat_suite_as_a_client() {
    assert_all_pass(&["--suite", "backcompat"], 15);
}

#[test]
fn the_broker_passes_conformance_client_credentials_basic() {
    assert_all_pass(&["--scenario", "auth/client-credentials-basic"], 5);
}

#[test]
fn the_broker_passes_conformance_enterprise_managed_authorization() {
    assert_all_pass(&["--scenario", "auth/enterprise-managed-authorization"], 8);
}

#[test]
fn the_broker_passes_conformance_dpop_with_bound_tokens_and_a_fresh_proof_per_request() {
    assert_all_pass(&["--scenario", "auth/dpop"], 12);
}

#[test]
fn the_broker_passes_conformance_dpop_nonce_retrying_with_the_servers_nonces() {
    assert_all_pass(&["--scenario", "auth/dpop-nonce"], 14);
}

#[test]
fn the_broker_passes_conformance_client_credentials_with_a_private_key_jwt_assertion() {
    assert_all_pass(&["--scenario", "auth/client-credentials-jwt"], 5);
}

#[test]
fn the_broker_passes_conformance_workload_identity_federation_with_the_jwt_bearer_grant() {
    assert_all_pass(&["--scenario", "auth/wif-jwt-bearer"], 5);
}
