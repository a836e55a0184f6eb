//! ICMP errors about PROXY protocol connections: a real server's error
//! quotes a segment whose sequence number rvs raised past the header; the
//! client gets it back in its own sequence space, alone and composed with
//! the SYN proxy's shift of the acknowledgement.

use std::sync::Arc;

use super::oracle::assert_checksums;
use super::proxy_proto::{open, pp_lab, sp_handshake, v2_header, SP_RISN, V1};
use super::synproxy::{client, sp_lab};
use super::util::*;
use crate::addr::proto;
use crate::conn::FwdMode;
use crate::lab::{self, LAN, LIP, VIP, WAN};
use crate::pipeline::Worker;
use crate::wire::proxy_proto::Version;
use crate::wire::tcp::flags::*;

/// The real server's "fragmentation needed" quoting the first `quoted`
/// bytes of `fwd` (a frame rvs sent it), through `w`: the frame rvs sends
/// the client, its checksums (outer, ICMP, quoted IP and TCP) checked.
fn rs_error(w: &mut Worker, fwd: &[u8], quoted: usize) -> Vec<u8> {
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
    let out = run_tx(w, &err, LAN, WAN, 50);
    assert_eq!(v4_src_dst(&out), (VIP, CIP));
    assert_checksums(&out);
    out
}

fn quoted_seq_is_the_clients(v: Version, hdr: &[u8]) {
    let mut w = worker(pp_lab(v, false));
    resolve_client(&mut w, CIP, 0);
    let n = hdr.len() as u32;
    let (isn, risn) = (0xffff_fff0u32, 5000u32);
    open(&mut w, isn, risn);
    let s = isn.wrapping_add(1);
    let get = client(ACK | PSH, vec![], b"GET /", s, risn + 1);
    let first = run_tx(&mut w, &get, WAN, LAN, 3);
    let second = client(ACK | PSH, vec![], b"?a=1", s.wrapping_add(5), risn + 1);
    let fwd = run_tx(&mut w, &second, WAN, LAN, 4);
    assert_eq!(be32(&fwd, 38), s.wrapping_add(5 + n), "the server's space");
    for quoted in [40, 28] {
        let out = rs_error(&mut w, &fwd, quoted);
        let q = &out[42..];
        assert_eq!(q.len(), quoted);
        assert_eq!(
            be32(q, 24),
            s.wrapping_add(5),
            "{v:?}: the client's own number"
        );
        if quoted == 40 {
            // Addresses, ports, numbers and checksum: what the client sent.
            assert_eq!(&q[20..40], &second[34..54], "{v:?}");
        }
    }
    // The first segment (the header in front) kept its number: so does its quote.
    let out = rs_error(&mut w, &first, 40);
    assert_eq!(be32(&out[42..], 24), s, "{v:?}: the first segment's number");
}

#[test]
fn a_server_side_error_about_a_proxy_v1_connection_quotes_the_clients_sequence_number() {
    quoted_seq_is_the_clients(Version::V1, V1);
}

#[test]
fn a_server_side_error_about_a_proxy_v2_connection_quotes_the_clients_sequence_number() {
    quoted_seq_is_the_clients(Version::V2, &v2_header());
}

/// Through the SYN proxy: the quote's sequence number loses the header's
/// room and its acknowledgement the SYN proxy's shift, so the client gets
/// back exactly the TCP header it sent.
#[test]
fn through_the_syn_proxy_a_server_side_error_quotes_what_the_client_sent() {
    let mut snap = sp_lab(FwdMode::Fnat);
    Arc::get_mut(&mut snap.services[0]).unwrap().proxy_protocol = Version::V2;
    snap.conf.toa = false;
    let mut w = worker(snap);
    resolve_client(&mut w, CIP, 0);
    let n = v2_header().len() as u32;
    let (a, _) = sp_handshake(&mut w, vec![2, 4, 5, 0xb4]);
    let (cookie, risn) = (a.seq, SP_RISN);
    let get = client(ACK | PSH, vec![], b"GET /", 101, cookie + 1);
    run_tx(&mut w, &get, WAN, LAN, 3);
    let second = client(ACK | PSH, vec![], b"?a=1", 106, cookie + 1);
    let fwd = run_tx(&mut w, &second, WAN, LAN, 4);
    assert_eq!((be32(&fwd, 38), be32(&fwd, 42)), (106 + n, risn + 1));
    let out = rs_error(&mut w, &fwd, 40);
    assert_eq!(&out[42 + 20..42 + 40], &second[34..54]);
}
