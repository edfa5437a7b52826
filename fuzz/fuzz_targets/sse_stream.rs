//! `text/event-stream` bodies fed in arbitrary chunks (cut mid-line and mid-UTF-8), then the
//! JSON-RPC messages they carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::protocol::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk.max(1));
    let mut parser = SseParser::default();
    for piece in rest.chunks(chunk) {
        for event in parser.push(piece) {
            let _ = serde_json::from_str::<serde_json::Value>(&event.data);
        }
    }
});
