//! The scale row: a broker process with many servers on `/mcp` (half legacy-only, half dual-era
//! upstreams) and many client sessions of each era, each listing tools once and calling one.
//! What it costs: the broker's RSS growth per idle client, and what the upstreams hold (sessions
//! opened, GET and `subscriptions/listen` streams), which should grow with the servers and not
//! with the clients.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::client::{call, list, open, ping, session_gone, Era, Target};
use super::counts;
use super::process::{probed, rss_kib, scale_config, start_broker};
use super::upstream::{Counters, Upstream};

/// Clients of each era opened before the baseline is read: every upstream link is open by then.
const WARM: usize = 10;
/// Client sessions driven at once.
const CONCURRENCY: usize = 8;

/// Times a legacy client initializes again after its session was closed under it.
const REOPENS: usize = 3;

/// One era's clients: how many, how long, what the broker's RSS was after, how they fared.
pub struct Phase {
    pub clients: usize,
    pub elapsed: Duration,
    /// The broker's RSS before and after the phase, KiB.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// The fewest tools one client's `tools/list` named (every server's `echo`: `servers`).
    pub tools_min: usize,
    /// Sessions the broker closed while their client was using them (it then initialized again).
    pub reopened: usize,
    /// Legacy sessions the broker still holds after the phase (each answers `ping`).
    pub held: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
}

/// What one endpoint of the upstream holds after the run, counted from the baseline.
pub struct Held {
    pub sessions_opened: usize,
    pub sessions_open: usize,
    pub gets_open: usize,
    pub gets_refused: usize,
    pub listens_open: usize,
}

pub struct Scale {
    /// Servers of each kind (legacy-only, dual-era).
    pub per_kind: usize,
    pub health: Vec<String>,
    pub legacy: Phase,
    pub modern: Phase,
    pub legacy_up: Held,
    pub dual_up: Held,
}

fn held(counters: &Counters, initialize_before: usize) -> Held {
    Held {
        sessions_opened: counters.initialize.load(SeqCst) - initialize_before,
        sessions_open: counters.sessions_open(),
        gets_open: counters.gets_open.load(SeqCst),
        gets_refused: counters.gets_refused.load(SeqCst),
        listens_open: counters.listens_open.load(SeqCst),
    }
}

/// What one client did: tools listed, times it had to initialize again, its session.
type Outcome = (usize, usize, Target);

/// One client: open (initialize or `server/discover`), `tools/list`, one `tools/call` of the
/// `echo` of server `i` (round robin). A legacy client whose session is closed under it (404)
/// initializes again, as the protocol expects, up to [`REOPENS`] times.
async fn client(
    c: &reqwest::Client,
    base: &Target,
    i: usize,
    names: &[String],
) -> Result<Outcome, String> {
    let mut reopened = 0;
    loop {
        let used = async {
            let mut t = open(c, base.clone()).await?;
            t.tool = format!("{}__echo", names[i % names.len()]);
            let tools = list(c, &t, 1).await?;
            call(c, &t, 2).await.map(|()| (tools, t))
        };
        match used.await {
            Ok((tools, t)) => return Ok((tools, reopened, t)),
            Err(e) if session_gone(&e) && reopened < REOPENS => reopened += 1,
            Err(e) => return Err(e),
        }
    }
}

/// How many of these legacy sessions the broker still holds.
async fn still_held(c: &reqwest::Client, sessions: &[Target]) -> usize {
    let mut held = 0;
    for t in sessions.iter().filter(|t| t.era == Era::Legacy) {
        held += usize::from(ping(c, t).await.is_ok());
    }
    held
}

async fn phase(
    c: &reqwest::Client,
    base: &Target,
    clients: usize,
    names: &[String],
    pid: u32,
) -> Phase {
    let rss_before_kib = rss_kib(pid);
    let started = Instant::now();
    let results: Vec<_> = futures_util::stream::iter(0..clients)
        .map(|i| client(c, base, i, names))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let rss_after_kib = rss_kib(pid);
    let done: Vec<&Outcome> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let tools_min = done.iter().map(|o| o.0).min().unwrap_or(0);
    let reopened = done.iter().map(|o| o.1).sum();
    let sessions: Vec<Target> = done.iter().map(|o| o.2.clone()).collect();
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    Phase {
        clients,
        elapsed,
        rss_before_kib,
        rss_after_kib,
        tools_min,
        reopened,
        held: still_held(c, &sessions).await,
        failed: failures.len(),
        first_failure: failures.into_iter().next(),
    }
}

pub async fn run(c: &reqwest::Client, up: &Upstream) -> Scale {
    let per_kind = counts().scale_servers / 2;
    let proc = start_broker(&scale_config(&up.base, per_kind));
    let health = probed(c, proc.port).await.unwrap_or_else(|e| vec![e]);
    let before = (
        up.legacy.initialize.load(SeqCst),
        up.dual.initialize.load(SeqCst),
    );
    let names: Vec<String> = (1..=per_kind)
        .flat_map(|i| [format!("leg{i:02}"), format!("mod{i:02}")])
        .collect();
    let url = format!("http://127.0.0.1:{}/mcp", proc.port);
    let legacy = Target::new("scale-legacy", Era::Legacy, url.clone(), &proc.auth, "");
    let modern = Target::new("scale-modern", Era::Modern, url, &proc.auth, "");
    let pid = proc.child.id();
    phase(c, &legacy, WARM, &names, pid).await;
    phase(c, &modern, WARM, &names, pid).await;
    let sessions = counts().scale_sessions;
    let legacy = phase(c, &legacy, sessions, &names, pid).await;
    let modern = phase(c, &modern, sessions, &names, pid).await;
    Scale {
        per_kind,
        health,
        legacy,
        modern,
        legacy_up: held(&up.legacy, before.0),
        dual_up: held(&up.dual, before.1),
    }
}
