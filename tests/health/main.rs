//! Health states and monitors of every kind of server, in both protocol eras.

#[path = "../support/mod.rs"]
mod support;

mod health_eras;
mod health_lifecycle;
mod health_oauth;
mod health_sdk;
mod health_states;
