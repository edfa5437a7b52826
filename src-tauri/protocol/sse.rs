//! A minimal incremental `text/event-stream` reader, enough for a probe to find one JSON-RPC
//! response among the events of a Streamable HTTP answer, and for the gateway's tool filter to
//! re-write an answer event by event (it keeps `id`, `event` and `retry`).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `message` when the stream did not name one.
    pub event: String,
    pub data: String,
    pub id: Option<String>,
    /// A `retry:` (reconnection time, ms) seen since the previous dispatched event.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// Whether the event carries a message to read. A stream may send an event with an `id`
    /// and empty data (the official TypeScript SDK's "priming" event, which marks a point to
    /// resume from): it is part of the stream (a relay keeps it) but has nothing to parse, so
    /// a reader of JSON-RPC messages skips it instead of calling it malformed.
    pub fn carries_message(&self) -> bool {
        !self.data.trim().is_empty()
    }
}

/// Feed bytes with [`SseParser::push`]; take complete events as they appear.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
    pending: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
    retry: Option<u64>,
    /// The latest `retry:` seen, kept (the stream's reconnection time, for a resumption).
    reconnect: Option<u64>,
}

impl SseParser {
    /// Adds bytes (possibly cut mid-line or mid-UTF-8 character) and returns finished events.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(1),
        };
        let chunk: Vec<u8> = self.pending.drain(..valid).collect();
        self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=pos).collect();
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            if let Some(event) = self.line(line) {
                out.push(event);
            }
        }
        out
    }

    /// The stream's last event ID so far (what a reconnection sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection time (ms) the stream asked for with its latest `retry:` field.
    pub fn reconnection_ms(&self) -> Option<u64> {
        self.reconnect
    }

    /// Bytes held for the event being assembled (callers cap it: a stream that never ends an
    /// event must not grow memory without bound).
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.pending.len() + self.data.iter().map(String::len).sum::<usize>()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event = None;
                return None;
            }
            return Some(SseEvent {
                event: self.event.take().unwrap_or_else(|| "message".into()),
                data: std::mem::take(&mut self.data).join("\n"),
                id: self.id.clone(),
                retry: self.retry.take(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => self.data.push(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
                self.reconnect = self.retry.or(self.reconnect);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf_are_reassembled() {
        let mut p = SseParser::default();
        assert!(p
            .push(b"event: message\r\nid: 7\r\ndata: {\"a\"")
            .is_empty());
        let events = p.push(b":1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            SseEvent {
                event: "message".into(),
                data: "{\"a\":1}".into(),
                id: Some("7".into()),
                retry: None,
            }
        );
        assert_eq!(events[1].data, "x\ny");
        assert_eq!(events[1].event, "message");
    }

    #[test]
    fn a_multibyte_character_cut_between_chunks_survives() {
        let mut p = SseParser::default();
        let text = "data: é\n\n".as_bytes();
        assert!(p.push(&text[..7]).is_empty());
        assert_eq!(p.push(&text[7..])[0].data, "é");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: ping\n\nretry: 10\n\n").is_empty());
    }

    #[test]
    fn a_priming_event_is_dispatched_with_its_id_but_carries_no_message() {
        let mut p = SseParser::default();
        let events = p.push(b"id: prime-1\nretry: 1000\ndata: \n\nevent: message\ndata: {}\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("prime-1"));
        assert!(!events[0].carries_message());
        assert!(events[1].carries_message());
    }

    #[test]
    fn the_last_event_id_and_reconnection_time_outlive_their_events() {
        let mut p = SseParser::default();
        assert_eq!((p.last_event_id(), p.reconnection_ms()), (None, None));
        p.push(b"id: e-1\nretry: 500\n\n");
        assert_eq!(
            (p.last_event_id(), p.reconnection_ms()),
            (Some("e-1"), Some(500))
        );
        p.push(b"data: x\n\nid\n\n");
        assert_eq!((p.last_event_id(), p.reconnection_ms()), (None, Some(500)));
    }

    #[test]
    fn a_retry_travels_with_the_next_dispatched_event_only() {
        let mut p = SseParser::default();
        let events = p.push(b"retry: 1500\n\nid: 4\ndata:\n\nretry: x\ndata: y\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].retry, events[0].data.as_str()), (Some(1500), ""));
        assert_eq!(
            (events[1].retry, events[1].id.as_deref()),
            (None, Some("4"))
        );
    }
}
