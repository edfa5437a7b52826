//! The gateway skeleton over real sockets: loopback guard (Host and Origin), no CORS, `/healthz`,
//! the headless binary, and a clear error for a busy port.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::MemoryStore;

struct Running {
    port: u16,
    broker: Broker,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.broker.shutdown();
    }
}

async fn start_gateway() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = Settings {
        port,
        config_path: dir.path().join("config.json"),
        data_dir: dir.path().join("data"),
        opener: Opener::Print,
    };
    let broker = Broker::new(settings, Arc::new(MemoryStore::default())).unwrap();
    let stop = broker.shutdown_token();
    tokio::spawn(gateway::serve(listener, broker.clone(), async move {
        stop.cancelled().await
    }));
    Running {
        port,
        broker,
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn guard_rejects_a_foreign_host_with_403() {
    let g = start_gateway().await;
    let url = format!("http://127.0.0.1:{}/healthz", g.port);
    let resp = client()
        .get(&url)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Host header"), "{body}");
    // A loopback name on another port is the DNS-rebinding tell-tale too.
    let resp = client()
        .get(&url)
        .header("host", format!("127.0.0.1:{}", g.port + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn guard_rejects_a_foreign_origin_with_403_and_sends_no_cors_headers() {
    let g = start_gateway().await;
    let url = format!("http://127.0.0.1:{}/healthz", g.port);
    let resp = client()
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
}

#[tokio::test]
async fn guard_accepts_loopback_names_and_the_gateways_own_origin() {
    let g = start_gateway().await;
    for host in [
        format!("127.0.0.1:{}", g.port),
        format!("localhost:{}", g.port),
    ] {
        let resp = client()
            .get(format!("http://127.0.0.1:{}/healthz", g.port))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "Host {host}");
    }
    let resp = client()
        .get(format!("http://127.0.0.1:{}/healthz", g.port))
        .header("origin", format!("http://localhost:{}", g.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["service"], "mcp-auth-broker");
    assert_eq!(v["port"], g.port);
}

/// Sends `head` (request line and headers, no body) on a fresh connection; the status code.
async fn raw_status(port: u16, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .unwrap_or_default()
        .parse()
        .unwrap_or(0)
}

#[tokio::test]
async fn duplicate_host_or_origin_headers_are_a_400_whatever_their_order() {
    let g = start_gateway().await;
    let own = format!("127.0.0.1:{}", g.port);
    let origin = format!("http://{own}");
    let heads = [
        format!("GET /healthz HTTP/1.1\r\nHost: {own}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: {own}\r\nHost: {own}\r\nConnection: close\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: {own}\r\nOrigin: {origin}\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n"),
    ];
    for head in &heads {
        assert_eq!(raw_status(g.port, head).await, 400, "{head}");
    }
    let single = format!("GET /healthz HTTP/1.1\r\nHost: {own}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(g.port, &single).await, 200);
}

#[tokio::test]
async fn unknown_paths_are_a_json_404_not_a_500() {
    let g = start_gateway().await;
    let resp = client()
        .get(format!("http://127.0.0.1:{}/no/such/thing", g.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("/no/such/thing"));
}

#[tokio::test]
async fn a_port_held_by_another_broker_is_named_as_such() {
    let g = start_gateway().await;
    let err = gateway::bind(g.port).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "port {} on 127.0.0.1 is already in use by another mcp-auth-broker",
            g.port
        )),
        "{text}"
    );
    assert!(text.contains("--port"), "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve_command(dir: &tempfile::TempDir, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"));
    cmd.args(["serve", "--port", &port.to_string(), "--config"])
        .arg(dir.path().join("config.json"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn serve_binary_answers_healthz_once_it_reports_listening() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let started = Instant::now();
    let mut child = serve_command(&dir, port).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let ready = line.contains("gateway listening on");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains(&format!("http://127.0.0.1:{port}"))),
        "stderr: {seen:#?}"
    );
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let body: serde_json::Value = body.unwrap().json().unwrap();
    assert_eq!(body["status"], "ok");
    println!("serve: process start to first /healthz answer: {elapsed:?}");
}

#[test]
fn serve_binary_exits_3_naming_a_port_held_by_another_program() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = serve_command(&dir, port).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "port {port} on 127.0.0.1 is already in use by another program"
        )),
        "{stderr}"
    );
}

#[test]
fn serve_binary_exits_2_on_a_broken_config_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"mcp_servers": {"gh": {"url": "ftp://x"}}}"#,
    )
    .unwrap();
    let out = serve_command(&dir, free_port()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("server \"gh\", field \"url\""), "{stderr}");
}

#[test]
fn serve_binary_writes_its_log_file_in_the_state_dir_and_keeps_every_dir_and_file_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = serve_command(&dir, port).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().contains("gateway listening on") {
            break;
        }
    }
    // A graceful stop (SIGTERM) flushes the log writer; the exit status says it was graceful.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "SIGTERM should stop the broker cleanly"
    );
    let logs = dir.path().join("state/mcp-auth-broker/logs");
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one daily log file expected in {}",
        logs.display()
    );
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("gateway listening on"), "{text}");
    // The state dir and its parents the broker created, the log file, the data dir and the
    // admin token: readable by this user only.
    let logged = support::assert_owner_only(&dir.path().join("state"));
    assert_eq!(logged, vec![files[0].path()]);
    let data = support::assert_owner_only(&dir.path().join("data"));
    assert!(
        data.contains(&dir.path().join("data/admin.token")),
        "{data:?}"
    );
}
