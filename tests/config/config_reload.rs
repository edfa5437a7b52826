//! The config file on disk: atomic edits, reload on change, and a broken file keeping the last
//! good config running while saying why.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::config::RawServer;
use mcp_auth_broker::events::Event;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::MemoryStore;

fn broker_over(dir: &tempfile::TempDir, initial: &str) -> Broker {
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, initial).unwrap();
    let settings = Settings {
        port: 47999,
        config_path,
        data_dir: dir.path().join("data"),
        opener: Opener::Print,
    };
    Broker::new(settings, Arc::new(MemoryStore::default())).expect("broker builds")
}

/// Every log line of this test process at every level (tracing events, and the `log` records of
/// dependencies such as notify), as text; the capture is installed once, on first use.
fn log_lines() -> &'static Mutex<Vec<String>> {
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;

    struct Capture(&'static Mutex<Vec<String>>);
    struct Text(String);
    impl tracing::field::Visit for Text {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut text = Text(event.metadata().target().to_string());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
    static LINES: OnceLock<&'static Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Mutex<Vec<String>> = Box::leak(Box::default());
        tracing_subscriber::registry()
            .with(Capture(lines))
            .try_init()
            .expect("the only subscriber of this test binary");
        lines
    })
}

/// Waits for the first event matching `pred` (bounded, so a missing event fails the test).
async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("event channel open");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("expected event did not arrive within 10 s")
}

#[tokio::test]
async fn a_broken_file_on_reload_keeps_the_last_good_config_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_over(
        &dir,
        r#"{"mcp_servers": {"a": {"url": "https://a.example/mcp"}}}"#,
    );
    let mut events = broker.events();
    let mut problem = broker.subscribe_config_problem();
    broker.start_background().unwrap();
    let path = broker.settings().config_path.clone();

    std::fs::write(
        &path,
        r#"{"mcp_servers": {"a": {"url": "ftp://a.example/mcp"}}}"#,
    )
    .unwrap();
    let e = next_event(&mut events, |e| matches!(e, Event::ConfigRejected { .. })).await;
    let Event::ConfigRejected { reason } = e else {
        unreachable!()
    };
    assert!(reason.contains("server \"a\", field \"url\""), "{reason}");
    assert_eq!(
        broker.config().server("a").unwrap().url.as_str(),
        "https://a.example/mcp"
    );
    problem.wait_for(|p| p.is_some()).await.unwrap();

    std::fs::write(
        &path,
        r#"{"mcp_servers": {"b": {"url": "https://b.example/mcp"}}}"#,
    )
    .unwrap();
    next_event(&mut events, |e| matches!(e, Event::ConfigReloaded)).await;
    let config = broker.config();
    assert!(config.server("a").is_none() && config.server("b").is_some());
    problem.wait_for(|p| p.is_none()).await.unwrap();
    broker.shutdown();
}

#[tokio::test]
async fn edits_are_written_atomically_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_over(&dir, r#"{"mcp_servers": {}, "future_field": 1}"#);
    let mut config_rx = broker.subscribe_config();
    broker
        .edit_config(|raw| {
            raw.mcp_servers.insert(
                "new".into(),
                RawServer {
                    url: Some("https://n.example/mcp".into()),
                    ..Default::default()
                },
            );
        })
        .await
        .unwrap();
    config_rx.changed().await.unwrap();
    assert!(config_rx.borrow().server("new").is_some());
    let text = std::fs::read_to_string(&broker.settings().config_path).unwrap();
    assert!(
        text.contains("\"new\"") && text.contains("future_field"),
        "unknown fields must survive an edit: {text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[tokio::test]
async fn an_invalid_edit_changes_nothing_and_returns_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_over(
        &dir,
        r#"{"mcp_servers": {"a": {"url": "https://a.example/mcp"}}}"#,
    );
    let before = std::fs::read_to_string(&broker.settings().config_path).unwrap();
    let err = broker
        .edit_config(|raw| {
            raw.mcp_servers.insert(
                "b".into(),
                RawServer {
                    url: Some("nope".into()),
                    client_secret: Some("literal".into()),
                    ..Default::default()
                },
            );
        })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("2 problem(s)")
            && text.contains("field \"url\"")
            && text.contains("field \"client_secret\""),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&broker.settings().config_path).unwrap(),
        before
    );
    assert!(broker.config().server("b").is_none());
}

#[tokio::test]
async fn writes_to_other_files_in_the_config_folder_wake_nothing_and_edits_still_reload() {
    let lines = log_lines();
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_over(
        &dir,
        r#"{"mcp_servers": {"a": {"url": "https://a.example/mcp"}}}"#,
    );
    let mut events = broker.events();
    broker.start_background().unwrap();
    let path = broker.settings().config_path.clone();
    let server = |name: &str| {
        format!(r#"{{"mcp_servers": {{"{name}": {{"url": "https://{name}.example/mcp"}}}}}}"#)
    };

    // An editor's save: a new file renamed over the old one (the watch must follow it).
    let saved = dir.path().join("config.json.swp");
    std::fs::write(&saved, server("b")).unwrap();
    std::fs::rename(&saved, &path).unwrap();
    next_event(&mut events, |e| matches!(e, Event::ConfigReloaded)).await;
    assert!(broker.config().server("b").is_some());

    // A busy neighbour, like a log file written into the same folder.
    let neighbour = format!("neighbour-{}.log", std::process::id());
    {
        use std::io::Write;
        let mut log = std::fs::File::create(dir.path().join(&neighbour)).unwrap();
        for i in 0..50 {
            writeln!(log, "line {i}").unwrap();
            log.flush().unwrap();
        }
    }
    // Then an edit in place. Events reach the watcher in order, so once this reload is seen,
    // anything the neighbour's writes woke was already handled (and logged).
    std::fs::write(&path, server("c")).unwrap();
    let reloaded = next_event(&mut events, |e| {
        matches!(e, Event::ConfigReloaded | Event::ConfigRejected { .. })
    })
    .await;
    assert!(matches!(reloaded, Event::ConfigReloaded));
    assert!(
        broker.config().server("c").is_some(),
        "the first reload after the neighbour's writes is the edit's"
    );
    let woken: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&neighbour))
        .cloned()
        .collect();
    assert!(
        woken.is_empty(),
        "the neighbour's writes reached the watcher: {woken:#?}"
    );
    broker.shutdown();
}

#[tokio::test]
async fn a_config_file_created_after_the_start_is_loaded_and_its_edits_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later").join("config.json");
    let settings = Settings {
        port: 47998,
        config_path: path.clone(),
        data_dir: dir.path().join("data"),
        opener: Opener::Print,
    };
    let broker = Broker::new(settings, Arc::new(MemoryStore::default())).unwrap();
    let mut events = broker.events();
    broker.start_background().unwrap();
    std::fs::write(
        &path,
        r#"{"mcp_servers": {"a": {"url": "https://a.example/mcp"}}}"#,
    )
    .unwrap();
    next_event(&mut events, |e| matches!(e, Event::ConfigReloaded)).await;
    assert!(broker.config().server("a").is_some());
    std::fs::write(
        &path,
        r#"{"mcp_servers": {"b": {"url": "https://b.example/mcp"}}}"#,
    )
    .unwrap();
    next_event(&mut events, |e| matches!(e, Event::ConfigReloaded)).await;
    assert!(broker.config().server("b").is_some());
    broker.shutdown();
}
