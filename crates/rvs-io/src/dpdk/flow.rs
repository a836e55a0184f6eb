//! rte_flow on an ethdev port, for [`crate::steer::flow`]: the device side
//! of the rule steering (the rules themselves are built in C by the shim,
//! so Rust never depends on rte_flow's item layouts).

use rvs_dpdk_sys as sys;

use crate::steer::flow::{FlowDevice, FlowDst, FlowRule};

/// An ethdev port's rte_flow.
pub(super) struct EthFlow(pub(super) u16);

fn raw(r: &FlowRule) -> sys::rvs_flow_rule {
    let mut addr = [0u8; 16];
    let v6 = match r.dst {
        FlowDst::V4(a) => {
            addr[..4].copy_from_slice(&a);
            0
        }
        FlowDst::V6(a) => {
            addr = a;
            1
        }
    };
    sys::rvs_flow_rule {
        v6,
        addr,
        proto: r.proto,
        dport: r.dport,
        mask: r.mask,
        queue: r.queue,
    }
}

/// Runs `f` with a message buffer; `Err` with the PMD's message.
fn call(f: impl FnOnce(*mut libc::c_char, usize) -> i32) -> Result<(), String> {
    let mut msg = [0 as libc::c_char; 256];
    let rc = f(msg.as_mut_ptr(), msg.len());
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates what it writes within the buffer.
    let m = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
    Err(m.to_string_lossy().into_owned())
}

impl FlowDevice for EthFlow {
    fn validate(&mut self, r: &FlowRule) -> Result<(), String> {
        let r = raw(r);
        // SAFETY: a probed port, a valid rule and message buffer.
        call(|m, n| unsafe { sys::rvs_flow_validate(self.0, &r, m, n) })
    }

    fn create(&mut self, r: &FlowRule) -> Result<(), String> {
        let r = raw(r);
        // SAFETY: as above.
        call(|m, n| unsafe { sys::rvs_flow_create(self.0, &r, m, n) })
    }

    fn flush(&mut self) -> Result<(), String> {
        // SAFETY: as above.
        call(|m, n| unsafe { sys::rvs_flow_flush(self.0, m, n) })
    }
}
