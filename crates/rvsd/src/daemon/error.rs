//! Why the daemon could not start or keep running.

/// A start-up or run-time failure of rvsd; each names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A port could not be discovered, taken over or opened.
    #[error("netif {netif}: {what}")]
    Port {
        /// The `[[netif]]` name.
        netif: String,
        /// What went wrong.
        what: String,
    },
    /// The control socket could not be served.
    #[error("control socket {path}: {source}")]
    Socket {
        /// Its path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start {what}: {source}")]
    Thread {
        /// Which thread.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A `[sync]` daemon could not start.
    #[error("[sync]: {0}")]
    Sync(String),
    /// The connection tables' memory could not be had.
    #[error("{0}")]
    Memory(String),
    /// The metrics address could not be served.
    #[error("metrics_listen = \"{addr}\": cannot serve /metrics there: {source}")]
    Metrics {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The error (e.g. the port is in use).
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    /// `rvsd --takeover` failed; the running rvsd forwards on.
    #[error("takeover failed, the running rvsd keeps forwarding: {0}")]
    Takeover(String),
    /// `rvsd --standby` failed or its promotion did.
    #[error("standby: {0}")]
    Standby(String),
}

impl DaemonError {
    /// A port error.
    pub(crate) fn port(netif: &str, what: impl std::fmt::Display) -> DaemonError {
        DaemonError::Port {
            netif: netif.to_string(),
            what: what.to_string(),
        }
    }

    /// A thread that would not start.
    pub(super) fn thread(what: impl Into<String>, source: std::io::Error) -> DaemonError {
        DaemonError::Thread {
            what: what.into(),
            source,
        }
    }
}
