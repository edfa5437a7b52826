//! The broker as an OAuth client of upstream servers: discovery, sign-in, device flow,
//! machine-to-machine grants, step-up, the token lifecycle and real authorization servers.

#[path = "../gateway/gateway_common.rs"]
mod gateway_common;
#[path = "../support/mod.rs"]
mod support;

mod upstream_audience;
mod upstream_client_input;
mod upstream_device;
mod upstream_discovery;
mod upstream_m2m;
mod upstream_migration;
mod upstream_real_as;
mod upstream_signin;
mod upstream_step_up;
mod upstream_timeline;
mod upstream_token_lifecycle;
