//! What `login` shows and reads while a sign-in runs, the same with a running broker or the
//! in-process core: the paste-back instructions of `--no-browser` and the lines the person
//! pastes, and a device sign-in's code, address and QR code.

use std::future::Future;

use tokio::sync::mpsc;

use serde_json::Value;

use crate::clock::unix_now;
use crate::opener::Opener;
use crate::upstream::{DeviceCode, SignInKind};

/// Lines typed into the terminal, read on a plain thread (a blocked read must never hold up
/// the runtime's shutdown); `None` once stdin ends.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the sign-in to end (`done`). With `paste`, every non-empty line typed meanwhile
/// is handed to it: `Err` is the pasted text's own mistake (said, and the person may paste
/// again); a completion that fails is reported by `done`.
pub(super) async fn wait<D, P, F>(done: D, paste: Option<P>) -> Result<(), String>
where
    D: Future<Output = Result<(), String>>,
    P: Fn(String) -> F,
    F: Future<Output = Result<(), String>>,
{
    tokio::pin!(done);
    let mut lines = paste.as_ref().map(|_| stdin_lines());
    loop {
        let line = async {
            match lines.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut done => return result,
            line = line => match (line, paste.as_ref()) {
                (Some(l), Some(paste)) if !l.trim().is_empty() => {
                    if let Err(why) = paste(l).await {
                        eprintln!("That did not finish the sign-in: {why}\nPaste again, or press Ctrl-C to stop.");
                    }
                }
                (Some(_), _) => {}
                (None, _) => lines = None,
            },
        }
    }
}

/// `--no-browser`: the address, and both ways to finish from a browser on another computer.
pub(super) fn paste_instructions(name: &str, url: &str, port: u16) {
    eprintln!("Open this address in a browser (on this or any other computer) to sign in to {name}:\n  {url}");
    eprintln!("Then finish in one of two ways:");
    eprintln!("  - paste here the address the browser ended on (it starts with http://127.0.0.1:{port}/oauth/callback?, and may show an error page there), or just its code, and press Enter;");
    eprintln!("  - or forward the callback first, on the computer with the browser: ssh -L {port}:127.0.0.1:{port} THIS-HOST — the browser then reaches the broker by itself.");
}

/// The `state` of a sign-in, read from its authorization address (a bare pasted code uses it).
pub(super) fn state_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
    })
}

/// A device sign-in: the address (with the code filled in when the server gives one), the code
/// to check, and the address as a QR code for a phone.
pub(super) fn show_device(name: &str, code: &DeviceCode) {
    eprintln!(
        "To sign in to {name}, open this address on any device (a phone works):\n  {}",
        code.open_uri()
    );
    if code.verification_uri_complete.is_some() {
        eprintln!("(or open {} and enter the code)", code.verification_uri);
    }
    eprintln!("and confirm the code:  {}", code.user_code);
    if let Some(qr) = qr(code.open_uri()) {
        eprintln!("{qr}");
    }
    let left = code.expires_at.saturating_sub(unix_now());
    eprintln!(
        "Waiting for the confirmation (the code expires in {} min) …",
        left.div_ceil(60)
    );
}

/// `text` as a QR code drawn with half blocks (two modules per character), light on dark so
/// it scans from a dark terminal; `None` when it does not fit a QR code.
fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// How this `login` shows the sign-in and takes it back.
pub(super) struct How {
    pub(super) opener: Opener,
    /// `--no-browser`: the address is printed and what the person pastes finishes the sign-in.
    pub(super) paste: bool,
    pub(super) port: u16,
    pub(super) kind: SignInKind,
}

impl How {
    /// Opens the browser, or prints the address and both ways to finish.
    pub(super) fn show(&self, name: &str, url: &str) {
        if self.paste {
            paste_instructions(name, url, self.port);
        } else {
            open_or_print(&self.opener, url, name);
        }
    }
}

/// The NDJSON lines of a running broker's sign-in answer.
pub(super) struct Ndjson {
    pub(super) resp: reqwest::Response,
    pub(super) pending: String,
}

impl Ndjson {
    pub(super) async fn next(&mut self) -> Result<Value, String> {
        loop {
            if let Some(end) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=end).collect();
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => return Ok(v),
                    Err(_) => continue,
                }
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.pending.push_str(&String::from_utf8_lossy(&c)),
                Ok(None) => return Err("the broker closed the sign-in stream without a result; check `mcp-auth-broker status`".into()),
                Err(e) => return Err(format!("lost the broker while waiting for the sign-in: {e}")),
            }
        }
    }

    /// Reads on to the `done` line.
    pub(super) async fn done(mut self) -> Result<(), String> {
        loop {
            let v = self.next().await?;
            if v["done"] == true {
                return match v["ok"] == true {
                    true => Ok(()),
                    false => Err(v["error"].as_str().unwrap_or("no reason given").to_string()),
                };
            }
        }
    }
}

fn open_or_print(opener: &Opener, url: &str, name: &str) {
    if let Err(e) = opener.open(url) {
        eprintln!("{e}");
        if matches!(opener, Opener::System) {
            eprintln!("Open this address in a browser to sign in to {name}:\n  {url}");
        }
    }
}
