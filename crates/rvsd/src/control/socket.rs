//! The control socket: a root-only unix socket, one thread per client, with
//! limits so that no client can hold rvsd's resources: a request line is at
//! most [`Limits::max_line`] bytes, a client that sends no complete request
//! for [`Limits::idle`] is disconnected, and at most [`Limits::max_clients`]
//! are served at once. Each refusal is answered with an error line naming the
//! limit before the connection is closed.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_api::{ApiError, ErrorKind, Reply};

use super::Control;

/// Limits of the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line in bytes (newline excluded).
    pub max_line: usize,
    /// A client that sends no complete request for this long is disconnected.
    pub idle: Duration,
    /// Clients served at once; one more is refused.
    pub max_clients: usize,
}

/// Longest request line by default: 1 MiB (the largest request, a service
/// with its settings, is well under a kilobyte).
pub const MAX_LINE: usize = 1 << 20;
/// Idle time after which a client is disconnected by default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Clients served at once by default.
pub const MAX_CLIENTS: usize = 64;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: MAX_LINE,
            idle: IDLE_TIMEOUT,
            max_clients: MAX_CLIENTS,
        }
    }
}

/// Creates the socket (root-only: mode 0600, in a 0755 directory) and serves
/// it with the default [`Limits`] until `stop` is set.
pub fn serve(
    path: &str,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_with(path, ctl, stop, Limits::default())
}

/// Creates the directory of `path` with mode 0755 when it does not exist.
fn make_dir(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    // The mode given to mkdir is filtered by the umask: say it again.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

/// Binds the socket with a umask of 0177, so that the file never exists with
/// a mode wider than 0600, not even for an instant.
pub fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    let old = rvs_io::set_umask(0o177);
    let bound = UnixListener::bind(path);
    rvs_io::set_umask(old);
    bound
}

/// As [`serve`], with chosen limits.
pub fn serve_with(
    path: &str,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = listen(path)?;
    let path = path.to_string();
    serve_on(listener, ctl, stop, limits, Some(path))
}

/// Creates the socket at `path` (its directory if need be); an error if a
/// live rvsd serves it, a stale file is replaced.
pub fn listen(path: &str) -> std::io::Result<UnixListener> {
    let p = Path::new(path);
    make_dir(p)?;
    if p.exists() {
        // A live daemon answers; a stale socket file does not.
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                IoKind::AddrInUse,
                format!("another rvsd is serving {path} (set RVS_SOCKET or socket = ... to run several)"),
            ));
        }
        std::fs::remove_file(path)?;
    }
    bind_private(p)
}

/// Serves `listener` (bound here, or passed by the rvsd this one took
/// over from) with the default [`Limits`] until `stop` is set; the socket
/// file stays (the daemon removes it when it gives everything back).
pub fn serve_listener(
    listener: UnixListener,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_on(listener, ctl, stop, Limits::default(), None)
}

/// Accepts clients on `listener` until `stop`, none while a successor
/// serves it ([`Control::handed`]); then removes `remove` unless a
/// successor serves it.
fn serve_on(
    listener: UnixListener,
    ctl: Arc<Control>,
    stop: Arc<AtomicBool>,
    limits: Limits,
    remove: Option<String>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let active = Arc::new(AtomicUsize::new(0));
    let h = std::thread::Builder::new()
        .name("rvs-control".into())
        .spawn(move || {
            let mut ours = false;
            while !stop.load(Ordering::Relaxed) {
                if ctl.handed() {
                    ours = false;
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                if !ours {
                    claim(&listener);
                    ours = true;
                }
                match listener.accept() {
                    Ok((s, _)) => admit(s, &ctl, &active, limits),
                    Err(e) if e.kind() == IoKind::WouldBlock => {
                        let _ = rvs_io::wait_any(&[listener.as_raw_fd()], 20);
                    }
                    Err(e) => {
                        tracing::warn!("control socket: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            if let Some(path) = remove.filter(|_| !ctl.handed()) {
                let _ = std::fs::remove_file(&path);
            }
        })?;
    Ok(h)
}

/// Makes this process the one a client finds at the other end of the
/// socket: `listen` again stamps the listener with the caller's
/// credentials, which `SO_PEERCRED` gives every client connecting from
/// then on. A listener passed by the rvsd this one took over from (or
/// whose successor failed and gave it back) still carried the other
/// process's pid, so the next `rvsd --standby` or `--takeover` watched a
/// process that was gone.
fn claim(listener: &UnixListener) {
    if let Err(e) = rvs_io::peer::claim_listener(listener) {
        tracing::warn!("control socket: listen again: {e}");
    }
}

/// Decrements the client count when a client's thread ends (or never starts).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves a new client on its own thread, or refuses it when
/// `limits.max_clients` are being served.
fn admit(s: UnixStream, ctl: &Arc<Control>, active: &Arc<AtomicUsize>, limits: Limits) {
    if active.fetch_add(1, Ordering::SeqCst) >= limits.max_clients {
        active.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(
            "control socket: refused a client, {} are connected already",
            limits.max_clients
        );
        refuse(
            s,
            ErrorKind::Full,
            format!(
                "too many control clients: rvsd serves {} at once; try again later",
                limits.max_clients
            ),
        );
        return;
    }
    let slot = Slot(active.clone());
    let ctl = ctl.clone();
    let spawned = std::thread::Builder::new()
        .name("rvs-client".into())
        .spawn(move || {
            let _slot = slot;
            client(s, &ctl, limits);
        });
    if let Err(e) = spawned {
        tracing::warn!("control socket: cannot start a client thread: {e}");
    }
}

/// Answers `message` as an error line and closes the connection.
fn refuse(mut s: UnixStream, kind: ErrorKind, message: String) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let reply = Reply::Error(ApiError::new(kind, message));
    let _ = s.write_all(rvs_api::encode_reply(&reply).as_bytes());
}

/// Decodes one request line.
fn decode(line: &[u8]) -> Result<rvs_api::Request, ApiError> {
    std::str::from_utf8(line)
        .map_err(|e| {
            ApiError::new(
                ErrorKind::Invalid,
                format!("malformed request: not UTF-8 ({e})"),
            )
        })
        .and_then(rvs_api::decode_request)
}

/// Answers one decoded request line.
fn answer(decoded: Result<rvs_api::Request, ApiError>, ctl: &Control) -> Reply {
    match decoded {
        Ok(req) => {
            let reply = ctl.handle(&req);
            if let Reply::Error(e) = &reply {
                tracing::info!("request refused: {e}");
            }
            reply
        }
        Err(e) => {
            tracing::info!("malformed control request: {e}");
            Reply::Error(e)
        }
    }
}

/// A takeover request: accepted (`Ok` line), then the hand-over session
/// on the same connection; or refused with an error line.
fn takeover(ctl: &Control, standby: bool, mut w: UnixStream, r: UnixStream) {
    let Some(hook) = &ctl.handover else {
        refuse(w, ErrorKind::Invalid, "this rvsd cannot hand over".into());
        return;
    };
    let _ = r.set_read_timeout(None);
    if w.write_all(rvs_api::encode_reply(&Reply::Ok).as_bytes())
        .is_err()
    {
        return;
    }
    drop(w);
    hook(ctl, r, standby);
}

/// Serves one client: request lines until it closes, sends a line longer
/// than `limits.max_line`, or sends no complete request for `limits.idle`.
fn client(s: UnixStream, ctl: &Control, limits: Limits) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(limits.idle));
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = s;
    let mut buf: Vec<u8> = Vec::new();
    let mut searched = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut deadline = Instant::now() + limits.idle;
    loop {
        while let Some(nl) = buf[searched..].iter().position(|&b| b == b'\n') {
            let end = searched + nl;
            if end > limits.max_line {
                break;
            }
            let line: Vec<u8> = buf.drain(..=end).collect();
            searched = 0;
            deadline = Instant::now() + limits.idle;
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let decoded = decode(line);
            if let Ok(rvs_api::Request::Takeover { standby }) = &decoded {
                // The connection becomes the hand-over's; it ends with it.
                takeover(ctl, *standby, w, r);
                return;
            }
            if let Ok(rvs_api::Request::Capture { spec }) = &decoded {
                // The answer is a stream; the connection ends with it.
                crate::capture::stream(ctl, spec, &mut w, &mut r);
                return;
            }
            let reply = answer(decoded, ctl);
            if w.write_all(rvs_api::encode_reply(&reply).as_bytes())
                .is_err()
            {
                return;
            }
        }
        searched = buf.len();
        if buf.len() > limits.max_line {
            tracing::warn!(
                "control socket: a request line longer than {} bytes, client disconnected",
                limits.max_line
            );
            refuse(
                w,
                ErrorKind::Invalid,
                format!(
                    "request line longer than {} bytes: closing the connection",
                    limits.max_line
                ),
            );
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::info!(
                "control socket: no complete request within {} s, client disconnected",
                limits.idle.as_secs_f64()
            );
            refuse(
                w,
                ErrorKind::Invalid,
                format!(
                    "no complete request within {} s: closing the connection",
                    limits.idle.as_secs_f64()
                ),
            );
            return;
        }
        let _ = r.set_read_timeout(Some(left));
        match r.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    IoKind::WouldBlock | IoKind::TimedOut | IoKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}
