//! A server whose protected resource metadata names another authorization server (SEP-2352):
//! the broker signs in again there with a client of that server's own (registered once per
//! issuer), never presents one authorization server's client to another, and the timeline says
//! what happened. Real upstream and authorization servers on 127.0.0.1.

use crate::support;

use mcp_auth_broker::upstream::timeline::StepKind;
use mcp_auth_broker::upstream::FailureKind;
use serde_json::json;
use support::*;

/// The `client_id` of the last authorization URL the broker opened.
fn last_client_id(broker: &TestBroker) -> String {
    let opened = broker.browser.opened();
    let last = opened.last().expect("a sign-in opened the browser");
    last.query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
        .expect("the authorization URL names a client")
}

#[tokio::test]
async fn a_server_moving_between_authorization_servers_uses_each_ones_own_client_registered_once() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let upstream = broker.broker.upstream().clone();
    broker.sign_in("demo").await;
    let first_client = last_client_id(&broker);
    let old = upstream.credential(&server).await.unwrap();

    let second = TestAs::start(AsOptions::default()).await;
    up.set_authorization_server(&second.issuer);
    let err = upstream.after_rejection(&server, &old).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn, "{err}");
    broker.sign_in("demo").await;
    assert_eq!(count(&second.state.counters.register), 1);
    let second_client = last_client_id(&broker);
    assert_ne!(
        second_client, first_client,
        "the first server's client is not presented to the second"
    );
    let at_second = upstream.credential(&server).await.unwrap();
    assert!(second
        .state
        .validate(at_second.bearer.as_ref().unwrap().expose())
        .is_some());

    // Back to the first authorization server: the client registered there is used again.
    up.set_authorization_server(&up.as_url);
    let err = upstream
        .after_rejection(&server, &at_second)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn, "{err}");
    broker.sign_in("demo").await;
    assert_eq!(
        count(&up.oauth().counters.register),
        1,
        "no second registration with the first server"
    );
    assert_eq!(last_client_id(&broker), first_client);
    let back = upstream.credential(&server).await.unwrap();
    assert!(up
        .oauth()
        .validate(back.bearer.as_ref().unwrap().expose())
        .is_some());

    let moves: Vec<String> = upstream
        .timeline(&server.name)
        .into_iter()
        .filter(|s| s.kind == StepKind::AuthorizationServerChanged)
        .map(|s| s.detail)
        .collect();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert!(
        moves[0].contains(&second.issuer) && moves[0].contains("dynamically registered"),
        "{moves:?}"
    );
    assert!(moves[1].contains(&second.issuer), "{moves:?}");
}
