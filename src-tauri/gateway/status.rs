//! `GET /api/status`: every server's health (with the MCP era and version a healthy server
//! speaks), flow, token facts and auth timeline for the CLI and scripts.
//! Loopback only, behind the Host/Origin guard like every route; carries no secret (the status
//! types hold none: token facts are times and flags, details are upstream error text scrubbed
//! of the token).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::words;

pub fn routes() -> Router<Broker> {
    Router::new().route("/api/status", get(status))
}

async fn status(State(broker): State<Broker>) -> Json<Value> {
    let upstream = broker.upstream();
    let config = broker.config();
    let servers: BTreeMap<String, Value> = broker
        .health()
        .snapshot()
        .into_iter()
        .map(|(name, s)| {
            let mut entry = json!(s);
            // "MCP 2026-07-28 (modern)" / "MCP 2025-11-25": what `status` and scripts show; the
            // state itself carries `era` and `protocol_version` of a healthy server.
            entry["protocol"] = json!(s.state.protocol());
            entry["timeline"] = json!(upstream.timeline(&name));
            // "via Acme": the server's tokens come from the company sign-in.
            let company = config
                .server(name.as_str())
                .and_then(|c| c.enterprise.as_ref());
            entry["via"] = json!(company.map(|e| e.name.as_str()));
            // The person's words: the flow's name (protocol term as detail), and what is wrong
            // and what to do, the raw cause as `details` (the dashboard's words too).
            entry["flow_words"] = json!(config
                .server(name.as_str())
                .map(|cfg| words::server_flow(cfg, s.flow.as_ref())));
            entry["problem"] = json!(words::explain_status(&s));
            (name.to_string(), entry)
        })
        .collect();
    let config_problem = broker.subscribe_config_problem().borrow().clone();
    let company = match &config.enterprise {
        Some(e) => {
            let session = upstream.company_session(e).await;
            json!({ "name": e.name, "issuer": e.issuer.as_str(), "session": session })
        }
        None => Value::Null,
    };
    Json(json!({
        "servers": servers,
        "config_problem_words": config_problem.as_deref().map(words::config_problem),
        "config_problem": config_problem,
        "port": broker.settings().port,
        // Which store holds the upstream tokens (kind and place; never a key).
        "token_store": broker.vault().info(),
        // The company sign-in (enterprise-managed authorization), when configured.
        "enterprise": company,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::broker::Settings;
    use crate::opener::Opener;
    use crate::vault::MemoryStore;

    fn broker(dir: &std::path::Path) -> Broker {
        let config = dir.join("config.json");
        std::fs::write(
            &config,
            r#"{"mcp_servers": {"demo": {"url": "http://127.0.0.1:9/mcp"}}}"#,
        )
        .unwrap();
        let settings = Settings {
            port: 4000,
            config_path: config,
            data_dir: dir.join("data"),
            opener: Opener::Print,
        };
        Broker::new(settings, Arc::new(MemoryStore::default())).unwrap()
    }

    #[tokio::test]
    async fn status_lists_every_configured_server_before_the_first_probe() {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::gateway::router(broker(dir.path()));
        let req = Request::get("/api/status")
            .header("host", "127.0.0.1:4000")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["servers"]["demo"]["state"]["state"], "unknown");
        assert_eq!(v["servers"]["demo"]["token"]["has_token"], false);
        assert_eq!(v["servers"]["demo"]["timeline"], json!([]));
        assert_eq!(v["servers"]["demo"]["protocol"], Value::Null);
        assert_eq!(v["servers"]["demo"]["flow_words"]["name"], "Not known yet");
        assert_eq!(v["servers"]["demo"]["problem"], Value::Null);
        assert_eq!(v["token_store"]["kind"], "memory");
    }

    #[tokio::test]
    async fn status_refuses_a_foreign_origin() {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::gateway::router(broker(dir.path()));
        let req = Request::get("/api/status")
            .header("host", "127.0.0.1:4000")
            .header("origin", "https://evil.example")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.oneshot(req).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }
}
