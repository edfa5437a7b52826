//! What happened, told to whoever listens: the desktop shell (notifications, the activity
//! list), the health monitors (a sign-in restarts a server's checks) and the logs. Its own home
//! so the parts that send events (`upstream`, the `broker`) and those that follow them
//! (`health`, `desktop`) depend on this type, not on each other.

use crate::config::ServerName;

/// Something that happened, for the desktop shell (notifications, activity view) and logs.
/// Never carries a secret.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ConfigReloaded,
    /// The file on disk is broken; the last good config keeps running.
    ConfigRejected {
        reason: String,
    },
    SignInStarted {
        server: ServerName,
    },
    SignInFinished {
        server: ServerName,
    },
    SignInFailed {
        server: ServerName,
        reason: String,
    },
    SignedOut {
        server: ServerName,
    },
    /// A server needs the person to sign in (sent once per change, not repeated).
    NeedsSignIn {
        server: ServerName,
    },
    TokenRefreshed {
        server: ServerName,
    },
    RefreshFailed {
        server: ServerName,
        reason: String,
    },
    ClientAuthorized {
        client_name: String,
        server: String,
    },
}
