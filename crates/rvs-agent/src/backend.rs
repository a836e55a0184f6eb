//! The agent's only way to rvsd: one control-socket connection per request,
//! through the same client code as `rvsadm` and `rvsip` (`rvs_api::call`).

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rvs_api::{Reply, Request};

use crate::error::AgentError;

/// How long the agent waits for rvsd (as the tools do).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AgentState {
    /// rvsd's control socket.
    pub socket: Arc<str>,
    /// The bearer token every request must carry, when one is set.
    pub token: Option<Arc<str>>,
}

impl AgentState {
    /// A state talking to `socket`, with an optional token.
    pub fn new(socket: impl Into<Arc<str>>, token: Option<String>) -> AgentState {
        AgentState {
            socket: socket.into(),
            token: token.map(Into::into),
        }
    }

    /// Sends `req` to rvsd. rvsd's refusal becomes its HTTP status (see
    /// [`crate::error::status_of`]); no rvsd is 503, a broken answer 502.
    pub async fn call(&self, req: Request) -> Result<Reply, AgentError> {
        let path = self.socket.clone();
        let reply = tokio::task::spawn_blocking(move || call_blocking(&path, &req))
            .await
            .map_err(|e| {
                AgentError::bad_gateway(format!("rvs-agent: request task failed: {e}"))
            })??;
        match reply {
            Reply::Error(e) => Err(e.into()),
            other => Ok(other),
        }
    }
}

fn call_blocking(path: &str, req: &Request) -> Result<Reply, AgentError> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        AgentError::unavailable(rvs_cli::client::connect_message("rvs-agent", path, &e))
    })?;
    // Best effort, as in the tools: without timeouts the call still works.
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    rvs_api::call(&mut stream, req)
        .map_err(|e| AgentError::bad_gateway(format!("rvs-agent: {}", e.message)))
}

/// The failure for a reply of another kind than the one asked for.
pub fn unexpected(wanted: &str) -> AgentError {
    AgentError::bad_gateway(format!(
        "rvs-agent: rvsd answered {wanted} with another kind of reply"
    ))
}

/// Takes the payload of reply variant `$v` or fails with [`unexpected`].
macro_rules! want {
    ($reply:expr, $v:path) => {
        match $reply {
            $v(x) => Ok(x),
            _ => Err($crate::backend::unexpected(stringify!($v))),
        }
    };
}
pub(crate) use want;
