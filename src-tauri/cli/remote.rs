//! CLI verbs that talk to a running broker over its loopback API.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::servers::fail;
use super::{exit, Paths};
use crate::config::file;
use crate::health::protocol_label;
use crate::protocol::Era;

/// The running broker's base URL (the port from `--port`, the config, or the default).
fn base(paths: &Paths) -> Result<String, ExitCode> {
    let loaded = file::read(&paths.config).map_err(|e| fail(exit::USAGE, e))?;
    Ok(format!(
        "http://127.0.0.1:{}",
        paths.port(loaded.validated.config.port)
    ))
}

fn not_running(base: &str) -> ExitCode {
    fail(exit::FAILURE, format!("no broker is answering at {base}; start it with `mcp-auth-broker serve` (or the desktop app), or pass the right --port"))
}

async fn get_json(url: &str) -> Result<Value, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

pub fn status(paths: &Paths, name: Option<&str>, json: bool) -> ExitCode {
    let base = match base(paths) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime builds");
    let body = match rt.block_on(get_json(&format!("{base}/api/status"))) {
        Ok(v) => v,
        Err(e) if e.is_connect() || e.is_timeout() => return not_running(&base),
        Err(e) => {
            return fail(
                exit::FAILURE,
                format!("the broker at {base} answered badly: {e}"),
            )
        }
    };
    let store = body["token_store"]["description"]
        .as_str()
        .map(|d| format!("Tokens are kept in {d}.\n"));
    let body_enterprise = body["enterprise"].clone();
    let mut servers = body.get("servers").cloned().unwrap_or(body);
    if let Some(name) = name {
        let Some(one) = servers.get(name).cloned() else {
            let known: Vec<&String> = servers
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return fail(exit::USAGE, format!("no server named \"{name}\" in the running broker; its servers: {known:?} (see `mcp-auth-broker list`)"));
        };
        if !json {
            print!("{}", server_details(name, &one));
        }
        servers = serde_json::json!({ name: one });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&servers).expect("JSON serialises")
        );
        return ExitCode::from(exit::OK);
    }
    if name.is_none() {
        print!("{}", status_table(&servers));
    }
    print!("{}", store.unwrap_or_default());
    print!("{}", company_line(&body_enterprise));
    let all_healthy = servers.as_object().is_none_or(|m| {
        m.values().all(|s| {
            matches!(
                s["state"]["state"].as_str(),
                Some("healthy" | "delegated" | "disabled")
            )
        })
    });
    ExitCode::from(if all_healthy { exit::OK } else { exit::FAILURE })
}

/// The company sign-in's line, when the config names a company identity provider.
fn company_line(company: &Value) -> String {
    let Some(name) = company["name"].as_str() else {
        return String::new();
    };
    let session = &company["session"];
    if session["signed_in"] != true {
        return format!("Company sign-in ({name}): not signed in; run `mcp-auth-broker login --enterprise` (one sign-in serves every server via {name}).\n");
    }
    let renews = match session["renewable"] == true {
        true => "renewed without you while the company session lasts",
        false => "not renewable: sign in again when it ends",
    };
    format!("Company sign-in ({name}): signed in, {renews}.\n")
}

/// Renders the status map as a table: server, flow, health, token expiry, and what is wrong and
/// what to do (the broker's own words, `crate::words`).
pub fn status_table(servers: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<22} {:<16} {:<22} {}\n",
        "SERVER", "FLOW", "HEALTH", "TOKEN EXPIRES", "DETAIL"
    );
    let Some(map) = servers.as_object() else {
        return out;
    };
    if map.is_empty() {
        out.push_str("(no servers configured)\n");
    }
    for (name, s) in map {
        let state = match s["state"]["state"].as_str() {
            Some("keychain_unavailable") if s["state"]["locked"] == true => {
                "keychain locked".into()
            }
            other => other.unwrap_or("unknown").replace('_', " "),
        };
        let expires = s["token"]["expires_at"]
            .as_u64()
            .map(format_unix)
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{name:<20} {:<22} {state:<16} {expires:<22} {}\n",
            flow_name(s),
            detail(name, s)
        ));
    }
    out
}

/// The flow as people say it ("Browser sign-in"; "Your company sign-in via Acme" when the
/// tokens come from the company sign-in); an older broker's protocol word otherwise.
fn flow_name(s: &Value) -> String {
    let flow = match s["flow_words"]["name"].as_str() {
        Some(name) => name,
        None => s["flow"]["flow"]
            .as_str()
            .unwrap_or(if s["flow"].is_null() {
                "-"
            } else {
                "needs your choice"
            }),
    };
    match (flow, s["via"].as_str()) {
        ("delegate", _) => "delegated (clients sign in)".into(),
        (_, Some(company)) if s["flow_words"].is_null() => format!("enterprise via {company}"),
        (name, Some(company)) => format!("{name} via {company}"),
        (other, None) => other.into(),
    }
}

/// A healthy server's tools, latency and protocol; else the problem in one sentence (with the
/// command that fixes it where there is one), or an older broker's raw detail.
fn detail(name: &str, s: &Value) -> String {
    if s["state"]["state"] == "healthy" && s["token"]["needs_scope"].is_null() {
        return format!(
            "{} tool{}, {} ms, {}",
            s["state"]["tools"],
            if s["state"]["tools"] == 1 { "" } else { "s" },
            s["state"]["latency_ms"],
            protocol(s)
        );
    }
    if let Some(sentence) = s["problem"]["sentence"].as_str() {
        return match s["problem"]["kind"].as_str() {
            Some("needs_sign_in" | "needs_scope" | "rejected_after_refresh") => {
                format!("{sentence} (`mcp-auth-broker login {name}`)")
            }
            Some("needs_company_sign_in") => {
                format!("{sentence} (`mcp-auth-broker login --enterprise`)")
            }
            _ => sentence.to_string(),
        };
    }
    let raw = ["reason", "detail", "cause"]
        .iter()
        .find_map(|k| s["state"][*k].as_str())
        .unwrap_or("")
        .to_string();
    match s["token"]["needs_scope"].as_str() {
        Some(scope) => {
            format!("{raw}; needs scope \"{scope}\": run `mcp-auth-broker login {name}`")
        }
        None => raw,
    }
}

/// "MCP 2026-07-28 (modern)" / "MCP 2025-11-25": the broker's own words when it sent them,
/// else (an older broker) made from the state's `era` and `protocol_version`.
fn protocol(s: &Value) -> String {
    if let Some(label) = s["protocol"].as_str() {
        return label.to_string();
    }
    let version = s["state"]["protocol_version"].as_str().unwrap_or("?");
    let era = match s["state"]["era"].as_str() {
        Some("modern") => Era::Modern,
        _ => Era::Legacy,
    };
    protocol_label(era, version)
}

/// One server in detail: flow and its evidence, health, token, and the auth timeline.
pub fn server_details(name: &str, s: &Value) -> String {
    let table = status_table(&serde_json::json!({ name: s }));
    let mut out = table
        .lines()
        .nth(1)
        .map(|l| format!("{l}\n"))
        .unwrap_or_default();
    if s["state"]["state"] == "healthy" {
        out.push_str(&format!("protocol: {}\n", protocol(s)));
    }
    if let Some(jkt) = s["token"]["dpop_jkt"].as_str() {
        out.push_str(&format!(
            "token: DPoP-bound, sender-constrained to the broker's key (thumbprint {jkt})\n"
        ));
    }
    if let Some(term) = s["flow_words"]["term"].as_str() {
        out.push_str(&format!("flow: {} — {term}\n", flow_name(s)));
    }
    if let Some(details) = s["problem"]["details"].as_str() {
        out.push_str(&format!("details: {details}\n"));
    }
    if let Some(evidence) = s["flow"]["evidence"].as_array() {
        out.push_str("flow evidence:\n");
        for e in evidence.iter().filter_map(Value::as_str) {
            out.push_str(&format!("  - {e}\n"));
        }
    }
    let steps = s["timeline"].as_array().cloned().unwrap_or_default();
    out.push_str("auth timeline (since the broker started, oldest first):\n");
    if steps.is_empty() {
        out.push_str("  (nothing yet)\n");
    }
    for step in &steps {
        let at = step["at"].as_u64().map(format_unix).unwrap_or_default();
        let mark = if step["ok"] == true { "ok  " } else { "FAIL" };
        let repeats = match step["repeats"].as_u64() {
            Some(n) if n > 0 => format!(" (and {n} more times)"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {at}  {mark}  {}: {}{repeats}\n",
            step["label"].as_str().unwrap_or("?"),
            step["detail"].as_str().unwrap_or("")
        ));
    }
    out
}

/// `2026-11-22 07:05:00 UTC` from Unix seconds (no time-zone database needed).
pub fn format_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
