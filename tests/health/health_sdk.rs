//! Health probes a real MCP server built with the official TypeScript SDK (Streamable HTTP,
//! sessions, protocol-version header checks), answering JSON or SSE. Needs Node 22 and the
//! `tests/js` dependencies (`scripts/setup-node.sh`); fails with that instruction otherwise.

use crate::support;

use mcp_auth_broker::health::HealthState;
use serde_json::json;
use support::health::{wait_settled, STATUS_WAIT};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A stateful Streamable HTTP server with the SDK's `McpServer` and two tools; prints its port.
const SERVER: &str = r#"
import http from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { z } from "zod";

const json = process.env.SDK_JSON_ANSWERS === "1";
const transports = new Map();
function newServer() {
  const mcp = new McpServer({ name: "ts-sdk-upstream", version: "1.0.0" });
  mcp.registerTool("echo", { description: "echo", inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: "text", text }] }));
  mcp.registerTool("add", { description: "add", inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }));
  return mcp;
}
const legacy = new Map();
const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, "http://127.0.0.1").pathname;
  if (req.method === "GET" && path === "/sse") {
    const t = new SSEServerTransport("/messages", res);
    legacy.set(t.sessionId, t);
    res.on("close", () => legacy.delete(t.sessionId));
    await newServer().connect(t);
    return;
  }
  if (req.method === "POST" && path === "/messages") {
    const t = legacy.get(new URL(req.url, "http://127.0.0.1").searchParams.get("sessionId"));
    if (!t) return void res.writeHead(404).end();
    return void (await t.handlePostMessage(req, res));
  }
  if (path !== "/mcp") return void res.writeHead(404).end();
  let body = "";
  for await (const chunk of req) body += chunk;
  const parsed = body ? JSON.parse(body) : undefined;
  const sid = req.headers["mcp-session-id"];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport && req.method === "POST" && isInitializeRequest(parsed)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: json,
      // The SDK's example servers keep events for resumption; every event stream then opens
      // with a priming event (an id and empty data).
      eventStore: process.env.SDK_EVENT_STORE === "1" ? new InMemoryEventStore() : undefined,
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  if (!transport) {
    res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "no session" }, id: null }));
    return;
  }
  await transport.handleRequest(req, res, parsed);
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"#;

/// Starts the SDK server (killed when the returned child is dropped) and returns its base URL.
async fn sdk_server(json_answers: bool) -> (tokio::process::Child, String) {
    sdk_server_with(json_answers, false).await
}

/// [`sdk_server`], with the SDK's in-memory event store when `event_store`.
async fn sdk_server_with(json_answers: bool, event_store: bool) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::from(support::node::node_command());
    cmd.args(["--input-type=module", "-e", SERVER])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.env("SDK_JSON_ANSWERS", if json_answers { "1" } else { "0" });
    cmd.env("SDK_EVENT_STORE", if event_store { "1" } else { "0" });
    let mut child = cmd.spawn().expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(STATUS_WAIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the SDK server prints its port")
        .unwrap()
        .expect("a port line");
    let port: u16 = line.trim().parse().expect("a port number");
    (child, format!("http://127.0.0.1:{port}"))
}

async fn probe_sdk(json_answers: bool) {
    probe_sdk_with(json_answers, false).await;
}

async fn probe_sdk_with(json_answers: bool, event_store: bool) {
    let (_server, base) = sdk_server_with(json_answers, event_store).await;
    let broker = TestBroker::start_with(
        json!({ "mcp_servers": { "ts": { "url": format!("{base}/mcp") } } }),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "ts").await;
    match s.state {
        HealthState::Healthy {
            tools,
            protocol_version,
            ..
        } => {
            assert_eq!(tools, 2);
            assert_eq!(protocol_version, "2025-11-25");
        }
        other => panic!("expected healthy, got {other:?}"),
    }
}

#[tokio::test]
async fn a_typescript_sdk_server_answering_sse_is_healthy() {
    probe_sdk(false).await;
}

#[tokio::test]
async fn a_typescript_sdk_server_with_an_event_store_and_its_priming_events_is_healthy() {
    probe_sdk_with(false, true).await;
}

#[tokio::test]
async fn a_typescript_sdk_server_answering_json_is_healthy() {
    probe_sdk(true).await;
}

#[tokio::test]
async fn a_typescript_sdk_server_on_the_old_sse_transport_is_healthy() {
    let (_server, base) = sdk_server(false).await;
    let config =
        json!({ "mcp_servers": { "old": { "url": format!("{base}/sse"), "transport": "sse" } } });
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "old").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 2, .. }),
        "{:?}",
        s.state
    );
}
