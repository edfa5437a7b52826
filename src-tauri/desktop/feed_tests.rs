use super::*;
use crate::config::ServerName;
use crate::health::ServerStatus;

fn name(n: &str) -> ServerName {
    ServerName::parse(n).unwrap()
}

fn with(state: HealthState) -> StatusMap {
    [(
        name("gh"),
        ServerStatus {
            state,
            ..ServerStatus::unknown()
        },
    )]
    .into_iter()
    .collect()
}

#[test]
fn needs_sign_in_is_announced_once_per_change() {
    let mut n = Notifier::default();
    let needs = || {
        with(HealthState::NeedsSignIn {
            reason: "no token".into(),
        })
    };
    assert_eq!(n.on_status(&needs()).len(), 1);
    assert!(n.on_status(&needs()).is_empty(), "same state again: quiet");
    assert_eq!(
        n.on_event(&Event::NeedsSignIn { server: name("gh") }),
        None,
        "the event for the same change: quiet"
    );
    assert!(n.on_status(&with(HealthState::Checking)).is_empty());
    assert!(
        n.on_status(&needs()).is_empty(),
        "a probe in between is not a change"
    );
    n.on_status(&with(HealthState::Healthy {
        latency_ms: 3,
        tools: 1,
        era: crate::protocol::Era::Legacy,
        protocol_version: "x".into(),
    }));
    let again = n.on_status(&needs());
    assert_eq!(
        again,
        vec![Notice {
            title: "gh needs sign-in".into(),
            body: "Open the tray menu and choose Sign in.".into()
        }]
    );
}

#[test]
fn a_locked_keychain_is_announced_once_for_all_servers_until_every_server_recovers() {
    let mut n = Notifier::default();
    let locked = || HealthState::KeychainUnavailable {
        locked: true,
        detail: "the OS keychain is locked".into(),
    };
    let healthy = || HealthState::Healthy {
        latency_ms: 3,
        tools: 1,
        era: crate::protocol::Era::Legacy,
        protocol_version: "x".into(),
    };
    let two = |a: HealthState, b: HealthState| -> StatusMap {
        [(name("gh"), a), (name("crm"), b)]
            .into_iter()
            .map(|(n, state)| {
                let s = ServerStatus {
                    state,
                    ..ServerStatus::unknown()
                };
                (n, s)
            })
            .collect()
    };
    let first = n.on_status(&two(locked(), locked()));
    assert_eq!(first.len(), 1, "one notice for the one keychain: {first:?}");
    assert_eq!(first[0].title, "The OS keychain is locked");
    assert!(first[0].body.contains("nothing was deleted"));
    assert!(n
        .on_status(&two(locked(), HealthState::Checking))
        .is_empty());
    assert!(
        n.on_status(&two(healthy(), locked())).is_empty(),
        "one server still cannot read it: not a change"
    );
    assert!(n.on_status(&two(healthy(), healthy())).is_empty());
    let again = n.on_status(&two(
        healthy(),
        HealthState::KeychainUnavailable {
            locked: false,
            detail: "no Secret Service".into(),
        },
    ));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].title, "The OS keychain is not available");
}

#[test]
fn sign_in_outcomes_notify() {
    let mut n = Notifier::default();
    let ok = n
        .on_event(&Event::SignInFinished { server: name("gh") })
        .unwrap();
    assert_eq!(ok.title, "Signed in to gh");
    let failed = n
        .on_event(&Event::SignInFailed {
            server: name("gh"),
            reason: "access_denied".into(),
        })
        .unwrap();
    assert_eq!(failed.body, "access_denied");
    assert_eq!(
        n.on_event(&Event::TokenRefreshed { server: name("gh") }),
        None
    );
}

#[test]
fn activity_keeps_the_newest_first_and_drops_the_oldest() {
    let mut a = Activity::default();
    for i in 0..(ACTIVITY_CAP as u64 + 5) {
        let server = name(if i % 2 == 0 { "gh" } else { "linear" });
        a.record(&Event::TokenRefreshed { server }, i);
    }
    a.record(
        &Event::SignInFailed {
            server: name("gh"),
            reason: "denied".into(),
        },
        999,
    );
    let list = a.list();
    assert_eq!(list.len(), ACTIVITY_CAP);
    assert_eq!(
        list[0],
        ActivityDto {
            at: 999,
            kind: "failure".into(),
            server: Some("gh".into()),
            message: "Sign-in failed: denied".into(),
            repeats: 1,
        }
    );
    assert_eq!(list.last().unwrap().at, 6);
}

#[test]
fn a_burst_of_the_same_event_is_one_line_with_a_count() {
    let mut a = Activity::default();
    for i in 0..5 {
        a.record(&Event::ConfigReloaded, i);
    }
    a.record(&Event::SignedOut { server: name("gh") }, 9);
    let list = a.list();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[1].message.as_str(), list[1].repeats, list[1].at),
        ("Config reloaded", 5, 4)
    );
}

#[test]
fn the_company_sign_in_is_named_as_the_company_not_by_its_internal_entry() {
    let company = ServerName::internal(enterprise::SESSION);
    let mut n = Notifier::default();
    let done = n.on_event(&Event::SignInFinished {
        server: company.clone(),
    });
    assert_eq!(done.unwrap().title, "Signed in to your company");
    let mut a = Activity::default();
    a.record(&Event::SignInFinished { server: company }, 1);
    assert_eq!(a.list()[0].server.as_deref(), Some("your company"));
}
