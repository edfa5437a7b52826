//! The config file on disk: where it lives, reading it and writing it atomically (noticing when
//! it changes is [`super::watch`]).

use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::validate::{validate, ConfigError, Validated};

/// The largest config file read (a config is a few KB; this stops a mistaken huge file).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is larger than {MAX_CONFIG_BYTES} bytes; is it the right file?")]
    TooLarge { path: PathBuf },
    #[error("config file {path} is not valid {format}{}: {message}; fix the syntax ({})", at(*.line, *.column), .format.shape())]
    Syntax {
        path: PathBuf,
        format: Format,
        /// 1-based; 0 when the parser could not say where.
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config file {path} has {} problem(s):\n{}", .errors.len(), .errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        errors: Vec<ConfigError>,
    },
    #[error("cannot write config file {path}: {source}; check that the directory is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch config file {path} for changes: {message}")]
    Watch { path: PathBuf, message: String },
}

fn at(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

/// How a config file is written. YAML for a `.yaml`/`.yml` name (LiteLLM's config.yaml moves
/// over as is), JSON for `.json`, and for any other name whatever its first character says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    pub fn of(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            _ if text.trim_start().starts_with('{') || text.trim().is_empty() => Format::Json,
            _ => Format::Yaml,
        }
    }

    fn shape(self) -> &'static str {
        match self {
            Format::Json => "a JSON object with \"mcp_servers\"",
            Format::Yaml => "a YAML mapping with mcp_servers:, nested entries indented with spaces",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        })
    }
}

/// The config file's default location: `<OS config dir>/mcp-auth-broker/config.json`, or
/// `config.yaml` / `config.yml` there when only that one exists.
pub fn default_path() -> PathBuf {
    let dir = dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("mcp-auth-broker");
    let json = dir.join("config.json");
    if json.exists() {
        return json;
    }
    ["config.yaml", "config.yml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
        .unwrap_or(json)
}

/// A file read and validated, with the raw form kept so edits preserve unknown fields.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub raw: RawConfig,
    pub validated: Validated,
}

/// Reads and validates the file. A missing file is an empty config (first run).
pub fn read(path: &Path) -> Result<Loaded, ConfigFileError> {
    let raw = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RawConfig::default(),
        Err(source) => {
            return Err(ConfigFileError::Read {
                path: path.into(),
                source,
            })
        }
        Ok(meta) if meta.len() > MAX_CONFIG_BYTES => {
            return Err(ConfigFileError::TooLarge { path: path.into() })
        }
        Ok(_) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
                path: path.into(),
                source,
            })?;
            parse(path, &text)?
        }
    };
    let validated = validate(&raw).map_err(|errors| ConfigFileError::Invalid {
        path: path.into(),
        errors,
    })?;
    Ok(Loaded { raw, validated })
}

/// Parses the text of a config file, JSON or YAML ([`Format::of`]; exposed for tests and fuzzing).
pub fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigFileError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let syntax = |format, (line, column), message| ConfigFileError::Syntax {
        path: path.into(),
        format,
        line,
        column,
        message,
    };
    match Format::of(path, text) {
        Format::Json => serde_json::from_str(text)
            .map_err(|e| syntax(Format::Json, (e.line(), e.column()), e.to_string())),
        Format::Yaml => {
            let yaml = |e: yaml_serde::Error| {
                let at = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                syntax(Format::Yaml, at, e.to_string())
            };
            // Read as a document first: that refuses a key written twice (YAML readers disagree
            // on which one counts), and a document of comments only is an empty config.
            if yaml_serde::from_str::<yaml_serde::Value>(text)
                .map_err(yaml)?
                .is_null()
            {
                return Ok(RawConfig::default());
            }
            yaml_serde::from_str(text).map_err(yaml)
        }
    }
}

/// The file's text in its own format (comments of a YAML file are not kept).
fn render(path: &Path, raw: &RawConfig) -> String {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    match Format::of(path, &existing) {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(raw).expect("config serialises");
            text.push('\n');
            text
        }
        Format::Yaml => yaml_serde::to_string(raw).expect("config serialises"),
    }
}

/// Validates `raw` and writes it atomically and owner-only (`fsutil::write_private`), so a
/// crash never leaves a half-written config. Refuses to write an invalid config.
pub fn write(path: &Path, raw: &RawConfig) -> Result<Validated, ConfigFileError> {
    let validated = validate(raw).map_err(|errors| ConfigFileError::Invalid {
        path: path.into(),
        errors,
    })?;
    let werr = |source| ConfigFileError::Write {
        path: path.into(),
        source,
    };
    let text = render(path, raw);
    crate::fsutil::write_private(path, text.as_bytes()).map_err(werr)?;
    Ok(validated)
}
