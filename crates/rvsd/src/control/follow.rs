//! Followers of the configuration: a hot upgrade's successor, and later a
//! warm standby, take the store as requests once and then every request
//! applied after them, in order (design `docs/design/hot-upgrade.md` step 3,
//! "the control log tail"). Without it a change made with rvsadm while the
//! successor prepares would be lost at the commit.
//!
//! A follower that falls [`BACKLOG`] requests behind is let go: its
//! receiver sees the channel closed and gives up (a hand-over aborts and
//! the running rvsd keeps everything).
//!
//! The other way, during a hot upgrade's probation: the new rvsd serves
//! the control socket it was passed while the old one, which may still
//! resume, accepts no client ([`Control::hand_socket`]). Every change the
//! new one applies goes back to the old one synchronously, before the
//! client's answer ([`Control::set_back`]): if the new one fails, the old
//! one applies them ([`Control::apply_carried`]) and nothing confirmed to
//! an operator is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

use rvs_api::{ApiError, ErrorKind, Request};

use super::Control;

/// Requests a follower may lag behind before it is let go.
pub const BACKLOG: usize = 4096;

/// The followers of one control plane.
#[derive(Default)]
pub struct Followers {
    list: Mutex<Vec<SyncSender<Request>>>,
    /// Set while a hand-over's successor holds the configuration as it
    /// is: changes are refused ([`Control::freeze_config`]).
    frozen: AtomicBool,
    /// Set while a successor serves the control socket: this process
    /// accepts no client on it ([`Control::hand_socket`]).
    handed: AtomicBool,
    /// Where each applied change also goes, before its answer (a
    /// successor's probation: back to its predecessor).
    back: Mutex<Option<BackSink>>,
}

/// Takes each applied change, synchronously (called with the store locked).
pub type BackSink = Box<dyn FnMut(&Request) -> std::io::Result<()> + Send>;

impl Followers {
    /// Hands `req`, just applied, to every follower; drops those gone or
    /// too far behind. Called with the store locked, so the order is the
    /// store's.
    pub(super) fn publish(&self, req: &Request) {
        if let Ok(mut back) = self.back.lock() {
            if let Some(b) = back.as_mut() {
                if let Err(e) = b(req) {
                    tracing::warn!("a configuration change could not be passed back: {e}");
                }
            }
        }
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        if list.is_empty() {
            return;
        }
        list.retain(|f| match f.try_send(req.clone()) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(_)) => {
                tracing::warn!("a follower of the configuration fell too far behind: let go");
                false
            }
        });
    }

    /// How many follow now.
    pub fn count(&self) -> usize {
        self.list.lock().map_or(0, |l| l.len())
    }
}

/// The configuration at one point and every change after it.
pub struct Follow {
    /// The store as requests ([`crate::store::Store::to_requests`]).
    pub requests: Vec<Request>,
    /// Its [`crate::store::Store::fingerprint`].
    pub fingerprint: u64,
    /// Every request applied after `requests`, in order; closed when this
    /// follower was let go or the control plane stopped.
    pub tail: Receiver<Request>,
}

impl Control {
    /// Starts following the configuration: the store as it is and, with
    /// nothing lost or doubled between, every change after it.
    pub fn follow(&self) -> Result<Follow, ApiError> {
        self.follow_bounded(BACKLOG)
    }

    /// [`Control::follow`] with a follower let go `backlog` changes behind.
    pub(super) fn follow_bounded(&self, backlog: usize) -> Result<Follow, ApiError> {
        let st = self.store.lock().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                "configuration store poisoned by an earlier failure",
            )
        })?;
        let (tx, tail) = sync_channel(backlog);
        let f = Follow {
            requests: st.to_requests(),
            fingerprint: st.fingerprint(),
            tail,
        };
        self.followers
            .list
            .lock()
            .map_err(|_| ApiError::new(ErrorKind::Internal, "followers poisoned"))?
            .push(tx);
        drop(st);
        Ok(f)
    }
}

impl Control {
    /// Refuses configuration changes from now on (until
    /// [`Control::thaw_config`]): taken under the store's lock, so no change
    /// is applied after a follower drained the last ones.
    pub fn freeze_config(&self) -> Result<(), ApiError> {
        let _st = self.store.lock().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                "configuration store poisoned by an earlier failure",
            )
        })?;
        self.followers.frozen.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Takes configuration changes again.
    pub fn thaw_config(&self) {
        self.followers.frozen.store(false, Ordering::SeqCst);
    }

    /// Whether a successor serves the control socket (this process accepts
    /// no client).
    pub fn handed(&self) -> bool {
        self.followers.handed.load(Ordering::SeqCst)
    }

    /// Stops (`true`) or resumes accepting clients on the control socket,
    /// which a successor serves meanwhile.
    pub fn hand_socket(&self, on: bool) {
        self.followers.handed.store(on, Ordering::SeqCst);
    }

    /// Sends every change applied from now on to `sink` too, before it is
    /// answered (`None`: no more). Taken under the store's lock: no change
    /// is half-way.
    pub fn set_back(&self, sink: Option<BackSink>) {
        let _st = self.store.lock();
        if let Ok(mut b) = self.followers.back.lock() {
            *b = sink;
        }
    }

    /// Applies the changes a successor made before it failed, in order,
    /// frozen or not: the number applied. One refused here (it cannot
    /// be: both stores were equal) is logged and skipped.
    pub fn apply_carried(&self, reqs: &[Request]) -> usize {
        let Ok(mut st) = self.store.lock() else {
            return 0;
        };
        let mut n = 0;
        for r in reqs {
            match st.apply(r) {
                Ok(()) => {
                    n += 1;
                    self.followers.publish(r);
                }
                Err(e) => tracing::warn!("a change carried back ({r:?}) is refused here: {e}"),
            }
        }
        if n > 0 {
            self.publish(&st);
        }
        n
    }

    /// The refusal of a change while the configuration is frozen (called
    /// with the store locked).
    pub(super) fn frozen_refusal(&self) -> Result<(), ApiError> {
        match self.followers.frozen.load(Ordering::SeqCst) {
            true => Err(ApiError::new(
                ErrorKind::Full,
                "a hot upgrade (rvsd --takeover) is switching over: the configuration is \
                 frozen for a moment; try again",
            )),
            false => Ok(()),
        }
    }
}
