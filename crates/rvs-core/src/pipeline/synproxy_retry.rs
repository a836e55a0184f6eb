//! The SYN proxy's retransmission timer: a real server that has not
//! answered the SYN rvs sent it for a client gets it again 1, 2 and 4 s
//! apart (as Linux's SYN retries), from [`crate::pipeline::Worker::tick`],
//! whether or not the client talks meanwhile; 8 s after the last the
//! connection goes, counted as `synproxy_rs_timeout`. The SYNs leave
//! through the worker's outbox. Only connections whose client segment the
//! proxy kept are timed (the SYN is written from it): the kept-frame pool
//! is small, and the timer walks it only while it holds something.

use super::synproxy::{RESEND_MS, SCRATCH_HEADROOM, SYN_RETRIES};
use super::{Packet, State, Verdict};
use crate::conn::tcp::TcpState;
use crate::conn::{flags, ConnId};
use crate::snapshot::Snapshot;
use crate::stats::DropReason;

impl State {
    /// Timer work of the SYN proxy at `now_ms` (see the module doc).
    pub(super) fn synproxy_tick(&mut self, snap: &Snapshot, now_ms: u64) {
        let mut i = 0;
        while let Some((key, sent_ms, tries)) = self.sp.held.nth(i) {
            if now_ms < sent_ms.saturating_add(RESEND_MS << tries) {
                i += 1;
                continue;
            }
            let waiting = self.conns.lookup(&key).filter(|&(id, _)| {
                let c = self.conns.get(id);
                c.flags & flags::SYNPROXY != 0 && c.state == TcpState::SynSent as u8
            });
            let Some((id, _)) = waiting else {
                // Nothing waits on it any more: `i` now holds another frame.
                self.sp.held.remove(&key);
                continue;
            };
            if tries >= SYN_RETRIES {
                // Removing the connection forgets its frame too.
                self.remove_conn(id);
                self.drops.count(DropReason::SynproxyRsTimeout);
                continue;
            }
            self.sp.held.count_try(&key);
            self.sp_timer_resend(snap, id, now_ms);
            i += 1;
        }
    }

    /// Writes the SYN to the real server of connection `id` again and puts
    /// it in the outbox.
    fn sp_timer_resend(&mut self, snap: &Snapshot, id: ConnId, now_ms: u64) {
        let mut buf = std::mem::take(&mut self.sp.scratch);
        if buf.len() > SCRATCH_HEADROOM {
            let mut pkt = Packet {
                buf: &mut buf,
                head: SCRATCH_HEADROOM,
                len: 0,
                port: 0,
                csum_ok: true,
            };
            if let Some(Verdict::Transmit(port)) = self.sp_resend(snap, &mut pkt, id, now_ms) {
                self.outbox.push(port, pkt.frame());
            }
        }
        self.sp.scratch = buf;
    }
}
