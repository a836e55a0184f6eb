//! VLAN devices: a tagged frame whose tag names a VLAN device on the port
//! it came in by loses its tag and goes on as a frame of that device; a
//! frame leaving by a VLAN device gets its tag and leaves by the parent.
//!
//! A tagged frame whose tag names no device: dropped as
//! [`DropReason::VlanUnknown`] when its port has VLAN devices (as DPVS's
//! `vlan_rcv` does), else to the port's kernel path as before VLAN devices
//! existed (a kernel VLAN on `dpdk0.kni` still works then). A second tag
//! (QinQ) on a VLAN device's frame goes to that device's kernel path: VLAN
//! devices are never stacked.

use super::{Packet, State, Verdict, Worker};
use crate::addr::PortId;
use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use crate::wire::ethernet::{push_tag, strip_tag, EthernetFrame};

impl State {
    /// A tagged frame: strips the tag of a known VLAN device (the packet is
    /// then that device's, `Ok`), or the verdict for one that is not.
    pub(super) fn vlan_in(&mut self, snap: &Snapshot, pkt: &mut Packet<'_>) -> Result<(), Verdict> {
        let frame = pkt.frame();
        let eth = EthernetFrame::new_unchecked(frame);
        let tpid = u16::from_be_bytes([frame[12], frame[13]]);
        let vid = eth.vlan_id().unwrap_or(0);
        let dev = match snap.vlan_of(pkt.port) {
            // Never stacked: the inner tag is the kernel's business.
            Some(_) => None,
            None => snap.vlan_port(pkt.port, tpid, vid),
        };
        let Some(dev) = dev else {
            if snap.vlan_of(pkt.port).is_none() && snap.has_vlans_on(pkt.port) {
                return Err(self.drop(DropReason::VlanUnknown));
            }
            return Err(self.kernel_or_drop(snap, pkt.port, DropReason::UnknownProto));
        };
        match strip_tag(pkt.buf, pkt.head, pkt.len) {
            Some((head, len)) => {
                pkt.head = head;
                pkt.len = len;
                pkt.port = dev;
                Ok(())
            }
            None => Err(self.drop(DropReason::Truncated)),
        }
    }

    /// A verdict to send out of a VLAN device becomes one to send the
    /// tagged frame out of its parent.
    #[inline]
    pub(super) fn vlan_out(&self, snap: &Snapshot, pkt: &mut Packet<'_>, v: Verdict) -> Verdict {
        let Verdict::Transmit(port) = v else { return v };
        let Some(vl) = snap.vlan_of(port) else {
            return v;
        };
        match push_tag(pkt.buf, pkt.head, pkt.len, vl.tpid, vl.vid) {
            Some((head, len)) => {
                pkt.head = head;
                pkt.len = len;
                Verdict::Transmit(vl.parent)
            }
            None => self.drop(DropReason::VlanNoRoom),
        }
    }
}

impl Worker {
    /// Hands every frame of the outbox ([`Worker::outbox`]) to `f` with the
    /// port to send it out of, and empties it: a frame for a VLAN device
    /// goes tagged, out of its parent. The I/O layer calls this rather than
    /// draining the outbox itself.
    pub fn drain_outbox(&mut self, mut f: impl FnMut(PortId, &[u8])) {
        let snap = &*self.snap;
        if !snap.has_vlans() {
            return self.st.outbox.drain(f);
        }
        let drops = &self.st.drops;
        self.st.outbox.drain_mut(|port, buf, head, len| {
            let Some(vl) = snap.vlan_of(port) else {
                return f(port, &buf[head..head + len]);
            };
            match push_tag(buf, head, len, vl.tpid, vl.vid) {
                Some((h, l)) => f(vl.parent, &buf[h..h + l]),
                None => drops.count(DropReason::VlanNoRoom),
            }
        });
    }
}
