//! Followers of the configuration: a hot upgrade's successor, and later a
//! warm standby, take the store as requests once and then every request
//! applied after them, in order (design `docs/design/hot-upgrade.md` step 3,
//! "the control log tail"). Without it a change made with rvsadm while the
//! successor prepares would be lost at the commit.
//!
//! A follower that falls [`BACKLOG`] requests behind is let go: its
//! receiver sees the channel closed and gives up (a hand-over aborts and
//! the running rvsd keeps everything).

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
}

impl Followers {
    /// Hands `req`, just applied, to every follower; drops those gone or
    /// too far behind. Called with the store locked, so the order is the
    /// store's.
    pub(super) fn publish(&self, req: &Request) {
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
