//! The floor: a bare Rust pass-through proxy (axum + reqwest, streams bodies, swaps the bearer,
//! passes the `Mcp-*` headers of both eras).
//! What any proxy must cost at least; the broker is judged against it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use axum::Router;

#[derive(Clone)]
struct St {
    client: reqwest::Client,
    upstream: String,
}

pub async fn start(upstream: String) -> String {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let app = Router::new()
        .fallback(forward)
        .with_state(St { client, upstream });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let l = listener.tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
        axum::serve(l, app).await.unwrap()
    });
    base
}

async fn forward(State(st): State<St>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let url = format!("{}{}", st.upstream, parts.uri.path());
    let mut out = st
        .client
        .request(parts.method, url)
        .header(header::AUTHORIZATION, "Bearer upstream-token");
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v);
        }
    }
    // Every MCP transport header (both eras): session, version, method, name, params.
    for (name, v) in &parts.headers {
        if name.as_str().starts_with("mcp-") {
            out = out.header(name.as_str(), v);
        }
    }
    let resp = out
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await
        .unwrap();
    let mut builder = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if k != header::TRANSFER_ENCODING && k != header::CONNECTION {
            builder = builder.header(k, v);
        }
    }
    builder
        .body(Body::from_stream(resp.bytes_stream()))
        .unwrap()
}
