//! The command line over real sockets: the real binary run against test brokers and upstreams
//! (`login`, `connect`, `import`, `probe`, `add --profile`, config and admin verbs).

#[path = "../gateway/gateway_common.rs"]
mod gateway_common;
#[path = "../support/mod.rs"]
mod support;

mod cli_admin;
mod cli_config;
mod cli_connect;
mod cli_connect_eras;
mod cli_import;
mod cli_login;
mod cli_probe;
mod cli_profiles;
