//! Running the real `mcp-auth-broker` binary against a test broker: [`Cli`] builds its command
//! line (config, data dir, port, a `BROWSER` that follows the sign-in redirects), and
//! [`Interactive`] is a run the test talks to like the person at the terminal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::TestBroker;

/// A `BROWSER` program that follows every redirect of the sign-in URL it is given.
pub fn browser_script(dir: &Path) -> PathBuf {
    let path = dir.join("follow-browser.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec curl -sS -L --max-redirs 10 -o /dev/null \"$1\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

pub struct Cli {
    pub config: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    pub home: PathBuf,
}

impl Cli {
    pub fn of(b: &TestBroker) -> Cli {
        Cli {
            config: b.config_path.clone(),
            data: b.dir.path().join("data"),
            port: b.port,
            home: b.dir.path().to_path_buf(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--port")
            .arg(self.port.to_string())
            .env("XDG_STATE_HOME", self.home.join("state"))
            .env("BROWSER", browser_script(&self.home))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs off the async runtime so an in-process broker keeps answering.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `login` run the test talks to: lines it writes to stderr arrive on a channel, and the
/// test types into its stdin like the person would.
pub struct Interactive {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Interactive {
    pub fn spawn(mut cmd: Command) -> Interactive {
        cmd.env_remove("BROWSER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Interactive {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next stderr line that `matches` (panics, with all seen, if stderr ends first).
    pub async fn line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        while let Some(l) = self.lines.recv().await {
            self.seen.push(l.clone());
            if matches(&l) {
                return l;
            }
        }
        panic!("stderr ended; it said:\n{}", self.seen.join("\n"));
    }

    pub fn type_line(&mut self, text: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{text}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the exit; returns its code and everything it printed.
    pub async fn exit(mut self) -> (Option<i32>, String) {
        let child = self.child;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        while let Some(l) = self.lines.recv().await {
            self.seen.push(l);
        }
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            self.seen.join("\n")
        );
        (out.status.code(), all)
    }
}
