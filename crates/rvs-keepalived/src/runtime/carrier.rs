//! The carrier of an instance's rvs port (`dpdk_interface`), as rvsd
//! reports it (`rvsip link show`), combined with its kni device's state.
//!
//! rvsd keeps the kni device up while the port's cable is pulled, so the
//! kni device alone never tells the instance that its LAN is gone; stock
//! keepalived, on the kernel interface, goes to FAULT then and announces
//! its addresses again on its way back. The runtime polls rvsd for the
//! port at each link check; [`PortCarrier`] turns the answers into up or
//! down: a port rvsd reports down (or does not know) is down at once; a
//! poll that fails (rvsd unreachable, slow control socket) counts as down
//! only after [`FAILURES_FOR_DOWN`] consecutive ones, so that one slow
//! answer does not flap the instance.

/// Consecutive failed polls after which the port counts as down.
pub const FAILURES_FOR_DOWN: u32 = 2;

/// One poll of rvsd for a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// rvsd answered: the port's carrier is up (true) or down.
    Carrier(bool),
    /// rvsd answered that it has no such port.
    NoSuchPort,
    /// No answer (rvsd unreachable, timeout, unexpected reply).
    Failed,
}

/// The debounced state of one rvs port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCarrier {
    up: bool,
    failures: u32,
}

impl Default for PortCarrier {
    fn default() -> Self {
        Self::new()
    }
}

impl PortCarrier {
    /// A port assumed up until a poll says otherwise.
    pub fn new() -> PortCarrier {
        PortCarrier {
            up: true,
            failures: 0,
        }
    }

    /// Takes one poll; returns whether the port is now up.
    pub fn observe(&mut self, p: Poll) -> bool {
        match p {
            Poll::Carrier(up) => {
                self.failures = 0;
                self.up = up;
            }
            Poll::NoSuchPort => {
                self.failures = 0;
                self.up = false;
            }
            Poll::Failed => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= FAILURES_FOR_DOWN {
                    self.up = false;
                }
            }
        }
        self.up
    }

    /// Whether the port is up (as of the last poll).
    pub fn up(&self) -> bool {
        self.up
    }
}

/// The instance's interface as the state machine sees it: up only when
/// its kni device is usable and its rvs port (if tracked) is up.
pub fn instance_link_up(kni_usable: bool, port: Option<&PortCarrier>) -> bool {
    kni_usable && port.is_none_or(PortCarrier::up)
}

/// Asks rvsd for the carrier of `port` (`rvsip link show dev PORT`).
pub fn poll(port: &str) -> Poll {
    let req = rvs_api::Request::ListLinks {
        dev: Some(port.to_string()),
    };
    match super::actions::rvsd_call(&req) {
        Ok(rvs_api::Reply::Links(v)) => match v.iter().find(|l| l.name == port) {
            Some(l) => Poll::Carrier(l.up),
            None => Poll::NoSuchPort,
        },
        Ok(rvs_api::Reply::Error(e)) if e.kind == rvs_api::ErrorKind::NotFound => Poll::NoSuchPort,
        Ok(r) => {
            super::log::debug(&format!("link show dev {port}: rvsd answered {r:?}"));
            Poll::Failed
        }
        Err(e) => {
            super::log::debug(&format!("link show dev {port}: {e}"));
            Poll::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_reported_down_is_down_at_once_and_up_again_at_once() {
        let mut p = PortCarrier::new();
        assert!(p.observe(Poll::Carrier(true)));
        assert!(!p.observe(Poll::Carrier(false)));
        assert!(p.observe(Poll::Carrier(true)));
    }

    #[test]
    fn one_failed_poll_does_not_flap_two_do_take_the_port_down() {
        let mut p = PortCarrier::new();
        assert!(p.observe(Poll::Failed));
        assert!(p.observe(Poll::Carrier(true)), "an answer resets the count");
        assert!(p.observe(Poll::Failed));
        assert!(!p.observe(Poll::Failed));
        assert!(!p.observe(Poll::Failed));
        assert!(p.observe(Poll::Carrier(true)));
    }

    #[test]
    fn a_port_rvsd_does_not_know_is_down() {
        let mut p = PortCarrier::new();
        assert!(!p.observe(Poll::NoSuchPort));
    }

    #[test]
    fn the_instance_is_down_when_either_source_is() {
        let mut p = PortCarrier::new();
        assert!(instance_link_up(true, None));
        assert!(!instance_link_up(false, None));
        assert!(instance_link_up(true, Some(&p)));
        assert!(!instance_link_up(false, Some(&p)));
        p.observe(Poll::Carrier(false));
        assert!(!instance_link_up(true, Some(&p)));
    }
}
