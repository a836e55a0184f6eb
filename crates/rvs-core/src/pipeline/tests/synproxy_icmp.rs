//! ICMP errors about SYN proxy connections: the quoted TCP header is put
//! back in the sequence space of the side the error goes to.

use super::oracle::assert_checksums;
use super::synproxy::*;
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, LAN, LIP, VIP, WAN};
use crate::pipeline::Worker;
use crate::wire::tcp::flags::*;

/// An ESTABLISHED proxied connection (real server ISN far from the cookie).
fn established() -> (Worker, Hs) {
    let mut w = worker(sp_lab(FwdMode::Fnat));
    resolve_client(&mut w, CIP, 0);
    let h = handshake(&mut w, 1_000, 3_000_000_000, Offer::default(), None);
    (w, h)
}

/// The quote of `out` (an ICMP error rvs forwarded): its IP header and TCP header.
fn quote(out: &[u8]) -> &[u8] {
    assert_checksums(out);
    &out[42..]
}

#[test]
fn a_client_side_error_reaches_the_real_server_with_its_sequence_number() {
    let (mut w, h) = established();
    let reply = rs(
        ACK | PSH,
        vec![],
        b"200 OK",
        h.lport,
        h.risn + 1,
        h.cisn + 1,
        1000,
    );
    let back = run_tx(&mut w, &reply, LAN, WAN, 50);
    assert_eq!(be32(&back, 38), h.cookie.wrapping_add(1), "client's space");
    // A router on the client's side: frag needed, quoting the whole TCP header.
    for quoted in [40, 28] {
        let msg = icmp_msg(3, 4, [0, 0, 0x05, 0x78], &back[14..14 + quoted]);
        let err = ipv4_frame(
            lab::WAN_MAC,
            lab::CLIENT_MAC,
            CIP,
            VIP,
            proto::ICMP,
            64,
            &msg,
        );
        let out = run_tx(&mut w, &err, WAN, LAN, 60);
        assert_eq!(v4_src_dst(&out), (LIP, lab::rs_ip(0)));
        let q = quote(&out);
        assert_eq!(q.len(), quoted);
        assert_eq!(be32(q, 24), h.risn + 1, "the server's own sequence number");
        if quoted == 40 {
            // Addresses, ports, numbers and checksum: what the server sent.
            assert_eq!(&q[20..], &reply[34..54]);
        }
    }
}

#[test]
fn a_server_side_error_reaches_the_client_with_its_acknowledgment_number() {
    let (mut w, h) = established();
    let data = |seq: u32| client(ACK | PSH, vec![], b"GET /", seq, h.cookie.wrapping_add(1));
    run_tx(&mut w, &data(h.cisn + 1), WAN, LAN, 40);
    let second = data(h.cisn + 6);
    let fwd = run_tx(&mut w, &second, WAN, LAN, 41);
    assert_eq!(be32(&fwd, 42), h.risn + 1, "the server's space");
    let hl = tcp_hlen(&fwd);
    for quoted in [20 + hl, 28, 32] {
        let msg = icmp_msg(3, 4, [0, 0, 0x05, 0x78], &fwd[14..14 + quoted]);
        let err = ipv4_frame(
            lab::LAN_MAC,
            lab::rs_mac(0),
            lab::rs_ip(0),
            LIP,
            proto::ICMP,
            64,
            &msg,
        );
        let out = run_tx(&mut w, &err, LAN, WAN, 50);
        assert_eq!(v4_src_dst(&out), (VIP, CIP));
        let q = quote(&out);
        assert_eq!(be32(q, 24), h.cisn + 6, "sequence number unchanged");
        match quoted {
            28 => {}
            32 => assert_eq!(be32(q, 28), h.risn + 1, "flags not quoted: left"),
            _ => {
                assert_eq!(be32(q, 28), h.cookie.wrapping_add(1), "client's space");
                if hl == 20 {
                    assert_eq!(&q[20..40], &second[34..54], "what the client sent");
                }
            }
        }
    }
}
