//! Talking to rvsd and turning every failure into a message and an exit code.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rvs_api::{Reply, Request};

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code when rvsd refused a request or could not be reached.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage error (ipvsadm's convention, which dpip users expect too).
pub const EXIT_USAGE: i32 = 2;

/// How long a tool waits for rvsd before giving up: long enough for a large
/// connection listing, short enough that a wedged daemon does not hang scripts.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A failure of a tool run: the message for stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Exit code ([`EXIT_USAGE`] or [`EXIT_FAILURE`]).
    pub code: i32,
    /// What went wrong, already worded for the operator.
    pub message: String,
}

impl CliError {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A run-time failure: the daemon refused or could not be reached (exit code 1).
    pub fn failure(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Something that answers requests: the daemon's socket, or a fake in tests.
pub trait Transport {
    /// Sends `req` and returns the daemon's reply (which may be [`Reply::Error`]).
    fn call(&mut self, req: &Request) -> Result<Reply, CliError>;
}

/// The real transport: one unix-socket connection per request, so that the
/// tool does not depend on whether rvsd keeps connections open.
#[derive(Debug, Clone)]
pub struct SocketTransport {
    tool: &'static str,
    path: String,
}

impl SocketTransport {
    /// A transport for `tool` (used in messages) talking to the socket at `path`.
    pub fn new(tool: &'static str, path: impl Into<String>) -> SocketTransport {
        SocketTransport {
            tool,
            path: path.into(),
        }
    }

    /// A transport to [`rvs_api::socket_path`] (`RVS_SOCKET` or the default).
    pub fn from_env(tool: &'static str) -> SocketTransport {
        SocketTransport::new(tool, rvs_api::socket_path())
    }

    /// The socket path this transport connects to.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Transport for SocketTransport {
    fn call(&mut self, req: &Request) -> Result<Reply, CliError> {
        let mut stream = UnixStream::connect(&self.path)
            .map_err(|e| CliError::failure(connect_message(self.tool, &self.path, &e)))?;
        // Timeouts are best effort: without them the call still works, it just may wait longer.
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        rvs_api::call(&mut stream, req)
            .map_err(|e| CliError::failure(format!("{}: {}", self.tool, e.message)))
    }
}

/// The message printed when the daemon's socket cannot be reached.
pub fn connect_message(tool: &str, path: &str, err: &io::Error) -> String {
    format!("{tool}: cannot connect to rvsd at {path}: {err} (is rvsd running? RVS_SOCKET overrides the path)")
}

/// Accepts [`Reply::Ok`] and [`Reply::Warning`] (its line printed on
/// stderr); anything else becomes the failure to report.
pub fn expect_ok(reply: Reply) -> Result<(), CliError> {
    match reply {
        Reply::Ok => Ok(()),
        Reply::Warning(w) => {
            eprintln!("warning: {w}");
            Ok(())
        }
        other => Err(unexpected(other, "a change")),
    }
}

/// The failure for a reply that is not the kind asked for: the daemon's own
/// message for [`Reply::Error`], else a note naming what was expected.
pub fn unexpected(reply: Reply, wanted: &str) -> CliError {
    match reply {
        Reply::Error(e) => CliError::failure(e.message),
        other => CliError::failure(format!(
            "unexpected reply from rvsd to {wanted}: {}",
            reply_kind(&other)
        )),
    }
}

fn reply_kind(r: &Reply) -> &'static str {
    match r {
        Reply::Ok => "ok",
        Reply::Error(_) => "error",
        Reply::Status(_) => "status",
        Reply::Services(_) => "services",
        Reply::Laddrs(_) => "laddrs",
        Reply::Conns(_) => "conns",
        Reply::ConnPage(_) => "connection page",
        Reply::Addrs(_) => "addrs",
        Reply::Routes(_) => "routes",
        Reply::Neigh(_) => "neigh",
        Reply::Links(_) => "links",
        Reply::Daemons(_) => "daemons",
        Reply::Limits(_) => "limits",
        Reply::Acl(_) => "blklst/whtlst",
        Reply::Ipsets(_) => "ipsets",
        Reply::IpsetTest(_) => "ipset test",
        Reply::CaptureFrame(_) => "capture frame",
        Reply::CaptureEnd(_) => "capture end",
        Reply::Vlans(_) => "vlans",
        Reply::Warning(_) => "warning",
    }
}

/// Prints a run's result the way both tools do and returns the exit code:
/// output to stdout, a failure's message to stderr.
pub fn report(result: Result<String, CliError>) -> i32 {
    use std::io::Write;
    match result {
        Ok(out) => {
            let mut stdout = io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not worth a panic or an error exit.
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            EXIT_OK
        }
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            e.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::{ApiError, ErrorKind};

    #[test]
    fn unreachable_socket_names_path_and_hint() {
        let mut t = SocketTransport::new("rvsadm", "/nonexistent/rvs-test.sock");
        let e = t.call(&Request::Status).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message
                .starts_with("rvsadm: cannot connect to rvsd at /nonexistent/rvs-test.sock: "),
            "{}",
            e.message
        );
        assert!(
            e.message
                .ends_with("(is rvsd running? RVS_SOCKET overrides the path)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn replies_map_to_exit_codes() {
        assert_eq!(expect_ok(Reply::Ok), Ok(()));
        // Done, with a warning on stderr: exit 0.
        assert_eq!(
            expect_ok(Reply::Warning("no IPv4 local address".into())),
            Ok(())
        );
        let e = expect_ok(Reply::Error(ApiError::new(
            ErrorKind::Exists,
            "Service already exists",
        )))
        .unwrap_err();
        assert_eq!(
            e,
            CliError {
                code: 1,
                message: "Service already exists".into()
            }
        );
        let e = expect_ok(Reply::Services(vec![])).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("services"), "{}", e.message);
        assert_eq!(CliError::usage("x").code, 2);
    }
}
