//! The config file: validation and reload. Its own binary because `config_reload` installs
//! this process's one tracing subscriber and captures every log line at every level.

#[path = "../support/mod.rs"]
mod support;

mod config_reload;
mod config_validation;
