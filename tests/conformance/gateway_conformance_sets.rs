//! Done-when of issue 29: the conformance suite's `server` requirement sets (2026-07-28 and
//! 2025-11-25, `server --requirements REVISION`) through the broker, in front of
//! `tests/js/conformance_server.mjs` — a dual-era upstream built on the official TypeScript SDK
//! v2 server that passes both sets when the suite talks to it directly.
//!
//! Through `/{server}/mcp` every scored scenario must pass. Through the aggregate `/mcp` every
//! scored scenario that can apply to an aggregate must pass; [`NOT_FOR_THE_AGGREGATE`] names
//! the others and why. Scenarios a set runs but does not score (extensions such as tasks, pending
//! ones) are reported, never fatal. WARNING checks are reported, not fatal. Needs Node >= 22 and
//! `tests/js` (scripts/setup-node.sh).

use crate::gateway_conformance_common;
use crate::support;

use gateway_conformance_common::{run_requirements, scored, ConformanceServer, SuiteRun};
use serde_json::json;
use support::*;

/// Scored scenarios that cannot apply to `/mcp`, and why. The aggregate shows every tool and
/// prompt as `SERVER__NAME`, so a scenario that calls a tool or gets a prompt by the fixed name
/// the suite chose (`test_simple_text`, `test_simple_prompt`, …) asks for a name `/mcp` does not
/// have; resources keep their URIs, so the resource scenarios do apply.
const NOT_FOR_THE_AGGREGATE: &[(&str, &str)] = &[
    ("completion-complete", "completes an argument of the prompt named test_prompt_with_arguments (ref/prompt), which /mcp names SERVER__test_prompt_with_arguments"),
    ("tools-call-simple-text", "calls the tool test_simple_text by that name"),
    ("tools-call-image", "calls the tool test_image_content by that name"),
    ("tools-call-audio", "calls the tool test_audio_content by that name"),
    ("tools-call-embedded-resource", "calls the tool test_embedded_resource by that name"),
    ("tools-call-mixed-content", "calls the tool test_multiple_content_types by that name"),
    ("tools-call-error", "calls the tool test_error_handling by that name"),
    ("tools-call-with-progress", "calls the tool test_tool_with_progress by that name"),
    ("tools-call-with-logging", "calls the tool test_tool_with_logging by that name"),
    ("tools-call-sampling", "calls the tool test_sampling by that name"),
    ("tools-call-elicitation", "calls the tool test_elicitation by that name"),
    ("elicitation-sep1034-defaults", "calls the tool test_elicitation_sep1034_defaults by that name"),
    ("elicitation-sep1330-enums", "calls the tool test_elicitation_sep1330_enums by that name"),
    ("prompts-get-simple", "gets the prompt test_simple_prompt by that name"),
    ("prompts-get-with-args", "gets the prompt test_prompt_with_arguments by that name"),
    ("prompts-get-embedded-resource", "gets the prompt test_prompt_with_embedded_resource by that name"),
    ("prompts-get-with-image", "gets the prompt test_prompt_with_image by that name"),
    ("input-required-result-basic-elicitation", "calls the tool test_input_required_result_elicitation by that name"),
    ("input-required-result-basic-sampling", "calls the tool test_input_required_result_sampling by that name"),
    ("input-required-result-basic-list-roots", "calls the tool test_input_required_result_list_roots by that name"),
    ("input-required-result-request-state", "calls the tool test_input_required_result_request_state by that name"),
    ("input-required-result-multiple-input-requests", "calls the tool test_input_required_result_multiple_inputs by that name"),
    ("input-required-result-multi-round", "calls the tool test_input_required_result_multi_round by that name"),
    ("input-required-result-missing-input-response", "calls the tool test_input_required_result_elicitation by that name"),
    ("input-required-result-non-tool-request", "gets the prompt test_input_required_result_prompt by that name"),
    ("input-required-result-result-type", "calls the tool test_input_required_result_elicitation by that name"),
    ("input-required-result-tampered-state", "calls the tool test_input_required_result_tampered_state by that name"),
    ("input-required-result-capability-check", "calls the tool test_input_required_result_capabilities by that name"),
    ("input-required-result-ignore-extra-params", "calls the tool test_input_required_result_elicitation by that name"),
    ("input-required-result-validate-input", "calls the tool test_input_required_result_elicitation by that name"),
];

/// Checks of scenarios that otherwise apply to `/mcp` that cannot pass there, and why: the
/// rest of `server-stateless` (`_meta` validation, versions, 404s, discovery, subscriptions)
/// tests the aggregate's own 2026-07-28 face.
const CHECKS_NOT_FOR_THE_AGGREGATE: &[(&str, &str, &str)] = &[
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability", "calls the diagnostic tool test_missing_capability by that name (Not testable → FAILURE)"),
    ("server-stateless", "sep-2575-missing-capability-http-400", "calls the diagnostic tool test_missing_capability by that name (Not testable → FAILURE)"),
    ("server-stateless", "sep-2575-http-server-no-independent-requests-on-stream", "calls the diagnostic tool test_streaming_elicitation by that name (Not testable → FAILURE)"),
    ("server-stateless", "sep-2575-server-no-log-without-loglevel", "calls the diagnostic tool test_logging_tool by that name (Not testable → FAILURE)"),
];

/// A broker with the conformance server as `conf`, and an API key (any audience: `/mcp` and
/// `/conf/mcp` both accept it).
async fn broker_in_front(server: &ConformanceServer) -> (TestBroker, String) {
    let b = TestBroker::start(json!({"mcp_servers": {"conf": {"url": server.url}}})).await;
    let key = b
        .broker
        .issuer()
        .create_api_key("conformance", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    (b, key)
}

/// Asserts that every scenario of `must_pass` ran, wrote no FAILURE check but those `except`
/// names, and that they wrote at least `min_checks` checks in all (so a run that silently
/// skipped scenarios fails).
fn assert_passed(
    run: &SuiteRun,
    must_pass: &[String],
    except: &[(&str, &str)],
    min_checks: usize,
    what: &str,
) {
    eprintln!("{what}:\n{}", run.summary());
    let missing: Vec<_> = must_pass
        .iter()
        .filter(|s| run.by_scenario.get(*s).is_none_or(Vec::is_empty))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: no checks from {missing:?}\n{}",
        run.log
    );
    let failed = run.failures_except(must_pass.iter().map(String::as_str), except);
    assert!(
        failed.is_empty(),
        "{what}: {} failed check(s):\n{}\n\n{}",
        failed.len(),
        failed.join("\n"),
        run.log
    );
    let count = run.count_in(must_pass.iter().map(String::as_str));
    assert!(
        count >= min_checks,
        "{what}: only {count} checks (expected at least {min_checks})\n{}",
        run.log
    );
    let others: Vec<_> = run
        .by_scenario
        .keys()
        .filter(|s| !must_pass.contains(s))
        .map(String::as_str)
        .collect();
    let other_failures = run.failures_in(others.iter().copied());
    eprintln!(
        "{what}: {count} checks passed in {} scenarios; not required here: {} FAILURE check(s) in {others:?}",
        must_pass.len(),
        other_failures.len()
    );
}

/// The scored scenarios of `revision` that apply to the aggregate.
fn for_the_aggregate(revision: &str) -> Vec<String> {
    scored(revision)
        .into_iter()
        .filter(|s| NOT_FOR_THE_AGGREGATE.iter().all(|(n, _)| n != s))
        .collect()
}

/// [`CHECKS_NOT_FOR_THE_AGGREGATE`] as `(scenario, check id)` pairs.
fn aggregate_exceptions() -> Vec<(&'static str, &'static str)> {
    CHECKS_NOT_FOR_THE_AGGREGATE
        .iter()
        .map(|(scenario, id, _)| (*scenario, *id))
        .collect()
}

#[test]
fn every_scenario_left_out_of_the_aggregate_is_a_scored_one_with_a_reason() {
    let all: Vec<String> = ["2026-07-28", "2025-11-25"]
        .iter()
        .flat_map(|r| scored(r))
        .collect();
    for (scenario, why) in NOT_FOR_THE_AGGREGATE {
        assert!(
            all.contains(&scenario.to_string()),
            "{scenario} is not scored by either set"
        );
        assert!(why.len() > 20, "{scenario}: say why");
    }
    for (scenario, id, why) in CHECKS_NOT_FOR_THE_AGGREGATE {
        assert!(
            for_the_aggregate("2026-07-28").contains(&scenario.to_string()),
            "{scenario}"
        );
        assert!(id.starts_with("sep-") && why.len() > 20, "{id}: say why");
    }
    // Most of each set still applies: lists, resources by URI, caching, streams, DNS rebinding.
    assert!(for_the_aggregate("2026-07-28").len() >= 10);
    assert!(for_the_aggregate("2025-11-25").len() >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_07_28_server_set_passes_through_the_per_server_proxy_in_front_of_an_sdk_v2_server(
) {
    let server = ConformanceServer::start().await;
    let (b, key) = broker_in_front(&server).await;
    let run = run_requirements(&b.client_url("conf"), "2026-07-28", &b.base_url, &key).await;
    assert_passed(
        &run,
        &scored("2026-07-28"),
        &[],
        110,
        "2026-07-28 through /conf/mcp",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2025_11_25_server_set_passes_through_the_per_server_proxy_in_front_of_an_sdk_v2_server(
) {
    let server = ConformanceServer::start().await;
    let (b, key) = broker_in_front(&server).await;
    let run = run_requirements(&b.client_url("conf"), "2025-11-25", &b.base_url, &key).await;
    assert_passed(
        &run,
        &scored("2025-11-25"),
        &[],
        65,
        "2025-11-25 through /conf/mcp",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_07_28_server_set_passes_through_the_aggregate_wherever_it_applies() {
    let server = ConformanceServer::start().await;
    let (b, key) = broker_in_front(&server).await;
    let url = format!("{}/mcp", b.base_url);
    let run = run_requirements(&url, "2026-07-28", &b.base_url, &key).await;
    assert_passed(
        &run,
        &for_the_aggregate("2026-07-28"),
        &aggregate_exceptions(),
        55,
        "2026-07-28 through /mcp",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2025_11_25_server_set_passes_through_the_aggregate_wherever_it_applies() {
    let server = ConformanceServer::start().await;
    let (b, key) = broker_in_front(&server).await;
    let url = format!("{}/mcp", b.base_url);
    let run = run_requirements(&url, "2025-11-25", &b.base_url, &key).await;
    assert_passed(
        &run,
        &for_the_aggregate("2025-11-25"),
        &aggregate_exceptions(),
        25,
        "2025-11-25 through /mcp",
    );
}
