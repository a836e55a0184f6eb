//! Runs every `rvs_core::wire` view over arbitrary bytes: first as an Ethernet
//! frame (descending into whatever it carries), then as each raw header kind.
//! Besides "never panics", it checks that incremental checksum updates agree
//! with a full recomputation wherever the input's checksum was valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::addr::{proto, Addr, Mac};
use rvs_core::wire::checksum;
use rvs_core::wire::ethernet::ethertype;
use rvs_core::wire::{
    l4_ports, ArpPacket, EthernetFrame, IcmpPacket, Icmpv6Packet, Ipv4Packet, Ipv6Packet,
    TcpOptions, TcpPacket, UdpPacket,
};

fuzz_target!(|data: &[u8]| {
    ethernet(data);
    ipv4(data, 0);
    ipv6(data, 0);
    let (a, b) = addrs(data);
    tcp(data, &a, &b);
    udp(data, &a, &b);
    icmp(data, 0);
    icmpv6(data, &a, &b, 0);
    arp(data);
    unchecked(data);
    for _ in TcpOptions::new(data) {}
    checksums(data);
    proxy_header(data);
});

/// A PROXY protocol header read back is within the input and writes back
/// to the same bytes' length.
fn proxy_header(data: &[u8]) {
    use rvs_core::wire::proxy_proto::{len, parse};
    if let Some(h) = parse(data) {
        assert!(h.len <= data.len());
        if h.version == rvs_core::wire::proxy_proto::Version::V2 {
            assert!(len(h.version, &h.src, h.sport, &h.dst, h.dport) <= h.len);
        }
    }
}

/// Pseudo-header addresses for raw L4 runs, taken from the input itself so the
/// fuzzer controls them too.
fn addrs(data: &[u8]) -> (Addr, Addr) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    for (i, x) in data.iter().rev().take(32).enumerate() {
        if i < 16 {
            a[i] = *x;
        } else {
            b[i - 16] = *x;
        }
    }
    if data.first().is_some_and(|x| x & 1 == 0) {
        (
            Addr::from_v4_bytes([a[0], a[1], a[2], a[3]]),
            Addr::from_v4_bytes([b[0], b[1], b[2], b[3]]),
        )
    } else {
        (Addr(a), Addr(b))
    }
}

fn ethernet(data: &[u8]) {
    let Ok(e) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = (
        e.dst(),
        e.src(),
        e.vlan_id(),
        e.inner_vlan_id(),
        e.vlan_tags(),
    );
    assert!(e.header_len() == 14 || e.header_len() == 18 || e.header_len() == 22);
    assert_eq!(e.payload().len() + e.header_len(), data.len());
    let mut v = data.to_vec();
    let mut m = EthernetFrame::new_checked(&mut v[..]).unwrap();
    m.set_dst(Mac::BROADCAST);
    m.set_src(Mac::ZERO);
    let _ = m.payload_mut();
    let p = e.payload();
    match e.ethertype() {
        ethertype::IPV4 => ipv4(p, 0),
        ethertype::IPV6 => ipv6(p, 0),
        ethertype::ARP => arp(p),
        _ => {}
    }
}

fn arp(data: &[u8]) {
    let Ok(a) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        a.operation(),
        a.sender_mac(),
        a.sender_ip(),
        a.target_mac(),
        a.target_ip(),
    );
    let mut v = data.to_vec();
    let mut m = ArpPacket::new_checked(&mut v[..]).unwrap();
    m.set_operation(2);
    m.set_sender_ip(&Addr::v4(1, 2, 3, 4));
    let mut out = [0u8; 28];
    rvs_core::wire::arp::write_arp(
        &mut out,
        a.operation(),
        a.sender_mac(),
        a.sender_ip(),
        a.target_mac(),
        a.target_ip(),
    );
    assert_eq!(&out[..6], &data[..6]);
}

fn ipv4(data: &[u8], depth: u8) {
    if let Ok(p) = Ipv4Packet::new_checked_embedded(data) {
        getters4(&p);
    }
    let Ok(p) = Ipv4Packet::new_checked(data) else {
        return;
    };
    getters4(&p);
    assert!(p.payload().len() + p.header_len() == p.total_len() as usize);
    // Work on a copy whose checksum is valid: the input's own if it verifies
    // (it may be a non-canonical 0xffff), else a freshly filled one.
    {
        let mut v = data.to_vec();
        if !p.verify_checksum() {
            Ipv4Packet::new_checked(&mut v[..]).unwrap().fill_checksum();
        }
        let mut full = v.clone();
        Ipv4Packet::new_checked(&mut full[..])
            .unwrap()
            .fill_checksum();
        let canonical = full[10..12] == v[10..12];
        let mut m = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        let s = p.dst();
        let d = Addr::v4(data[0], data[1], 0xff, data[3]);
        m.rewrite_src(&s);
        m.rewrite_dst(&d);
        m.decrement_ttl();
        m.rewrite_ttl(p.ttl() ^ 0x55);
        m.rewrite_total_len(p.total_len() ^ 1);
        assert!(m.verify_checksum());
        if canonical {
            let got = m.checksum();
            m.fill_checksum();
            assert_eq!(got, m.checksum());
        }
    }
    if !p.is_fragment() {
        l4(p.protocol(), &p.src(), &p.dst(), p.payload(), depth);
    }
}

fn getters4<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) {
    let _ = (
        p.header_len(),
        p.dscp_ecn(),
        p.total_len(),
        p.ident(),
        p.dont_frag(),
    );
    let _ = (
        p.more_frags(),
        p.frag_offset(),
        p.is_fragment(),
        p.ttl(),
        p.protocol(),
    );
    let _ = (
        p.checksum(),
        p.src(),
        p.dst(),
        p.options(),
        p.payload(),
        p.verify_checksum(),
    );
    assert_eq!(p.options().len() + 20, p.header_len());
}

fn ipv6(data: &[u8], depth: u8) {
    if let Ok(p) = Ipv6Packet::new_checked_embedded(data) {
        let _ = (
            p.upper_layer(),
            p.payload(),
            p.traffic_class(),
            p.flow_label(),
        );
    }
    let Ok(p) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.traffic_class(),
        p.flow_label(),
        p.payload_len(),
        p.next_header(),
        p.hop_limit(),
    );
    assert_eq!(p.payload().len(), p.payload_len() as usize);
    let mut v = data.to_vec();
    let mut m = Ipv6Packet::new_checked(&mut v[..]).unwrap();
    m.set_hop_limit(1);
    let _ = m.payload_mut();
    if let Ok((nh, off, frag)) = p.upper_layer() {
        assert!(off >= 40 && off <= 40 + p.payload_len() as usize);
        if !frag {
            if let Some(l) = p.payload().get(off - 40..) {
                l4(nh, &p.src(), &p.dst(), l, depth);
            }
        }
    }
}

fn l4(protocol: u8, src: &Addr, dst: &Addr, data: &[u8], depth: u8) {
    match protocol {
        proto::TCP => tcp(data, src, dst),
        proto::UDP => udp(data, src, dst),
        proto::ICMP => icmp(data, depth),
        proto::ICMPV6 => icmpv6(data, src, dst, depth),
        proto::IPIP if depth == 0 => ipv4(data, depth + 1),
        proto::IPV6 if depth == 0 => ipv6(data, depth + 1),
        _ => {}
    }
}

fn tcp(data: &[u8], src: &Addr, dst: &Addr) {
    let Ok(t) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        t.src_port(),
        t.dst_port(),
        t.seq(),
        t.ack(),
        t.flags(),
        t.window(),
    );
    let _ = (
        t.checksum(),
        t.urgent(),
        t.payload(),
        t.mss(),
        t.has_malformed_options(),
    );
    assert_eq!(t.header_len(), 20 + t.options().len());
    let mut it = t.option_iter();
    for _ in it.by_ref() {}
    assert_eq!(it.is_malformed(), t.has_malformed_options());
    {
        let mut v = data.to_vec();
        if !t.verify_checksum(src, dst) {
            TcpPacket::new_checked(&mut v[..])
                .unwrap()
                .fill_checksum(src, dst);
        }
        let stored = TcpPacket::new_checked(&v[..]).unwrap().checksum();
        let canonical = {
            let mut f = data.to_vec();
            let mut c = TcpPacket::new_checked(&mut f[..]).unwrap();
            c.fill_checksum(src, dst);
            c.checksum() == stored
        };
        let mut m = TcpPacket::new_checked(&mut v[..]).unwrap();
        m.rewrite_src_port(t.dst_port());
        m.rewrite_dst_port(t.src_port() ^ 0x5a5a);
        m.rewrite_seq(t.seq().wrapping_add(0x1234_5678));
        m.rewrite_ack(!t.ack());
        let had_mss = t.mss().is_some();
        assert_eq!(m.set_mss(1200), had_mss);
        if had_mss {
            assert_eq!(m.mss(), Some(1200));
        }
        m.rewrite_header_len(20);
        assert_eq!(m.flags(), t.flags());
        assert!(m.verify_checksum(src, dst));
        if canonical {
            let got = m.checksum();
            m.fill_checksum(src, dst);
            assert_eq!(got, m.checksum());
        }
    }
}

fn udp(data: &[u8], src: &Addr, dst: &Addr) {
    let Ok(u) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        u.src_port(),
        u.dst_port(),
        u.len(),
        u.is_empty(),
        u.checksum(),
        u.payload(),
    );
    assert_eq!(u.payload().len() + 8, u.len() as usize);
    let mut v = data.to_vec();
    if u.checksum() != 0 && !u.verify_checksum(src, dst) {
        UdpPacket::new_checked(&mut v[..])
            .unwrap()
            .fill_checksum(src, dst);
    }
    let stored = UdpPacket::new_checked(&v[..]).unwrap().checksum();
    let mut m = UdpPacket::new_checked(&mut v[..]).unwrap();
    m.rewrite_src_port(u.dst_port());
    m.rewrite_dst_port(!u.src_port());
    if stored == 0 {
        assert_eq!(m.checksum(), 0);
    } else {
        assert!(m.verify_checksum(src, dst));
        assert_ne!(m.checksum(), 0);
        let mut f = data.to_vec();
        let mut c = UdpPacket::new_checked(&mut f[..]).unwrap();
        c.fill_checksum(src, dst);
        if c.checksum() == stored {
            let got = m.checksum();
            m.fill_checksum(src, dst);
            assert_eq!(got, m.checksum());
        }
    }
}

fn icmp(data: &[u8], depth: u8) {
    let Ok(p) = IcmpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq(),
    );
    let _ = (p.is_echo(), p.is_error(), p.data(), p.next_hop_mtu());
    if p.is_error() {
        let _ = l4_ports(p.inner());
        if let Ok(ip) = Ipv4Packet::new_checked_embedded(p.inner()) {
            getters4(&ip);
            let _ = l4_ports(ip.payload());
        }
        if depth == 0 {
            ipv4(p.inner(), depth + 1);
        }
    }
    {
        let mut v = data.to_vec();
        if !p.verify_checksum() {
            IcmpPacket::new_checked(&mut v[..]).unwrap().fill_checksum();
        }
        let mut m = IcmpPacket::new_checked(&mut v[..]).unwrap();
        m.rewrite_echo_ident(!p.echo_ident());
        m.rewrite_msg_type(p.msg_type() ^ 8);
        // An all-zero message has sum 0 and can never verify; it is the one
        // state an incremental update may legitimately reach here.
        assert!(m.verify_checksum() || m.as_bytes().iter().all(|&b| b == 0));
    }
}

fn icmpv6(data: &[u8], src: &Addr, dst: &Addr, depth: u8) {
    let Ok(p) = Icmpv6Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq(),
        p.is_echo(),
    );
    let _ = (
        p.mtu(),
        p.nd_target(),
        p.na_flags(),
        p.source_ll_addr(),
        p.target_ll_addr(),
    );
    if p.is_error() && depth == 0 {
        if let Ok(ip) = Ipv6Packet::new_checked_embedded(p.inner()) {
            let _ = ip.upper_layer();
        }
        ipv6(p.inner(), depth + 1);
    }
    {
        let mut v = data.to_vec();
        if !p.verify_checksum(src, dst) {
            Icmpv6Packet::new_checked(&mut v[..])
                .unwrap()
                .fill_checksum(src, dst);
        }
        let mut m = Icmpv6Packet::new_checked(&mut v[..]).unwrap();
        m.rewrite_echo_ident(!p.echo_ident());
        m.rewrite_msg_type(p.msg_type() ^ 1);
        assert!(m.verify_checksum(src, dst));
    }
}

/// Every view built with `new_unchecked` over arbitrary bytes (as the
/// pipeline builds them after its own checks): getters and setters must not
/// panic whatever the lengths say.
fn unchecked(data: &[u8]) {
    let e = EthernetFrame::new_unchecked(data);
    let _ = (e.header_len(), e.ethertype(), e.vlan_id(), e.payload());
    let p = Ipv4Packet::new_unchecked(data);
    let _ = (p.header_len(), p.options(), p.payload(), p.verify_checksum());
    let p = Ipv6Packet::new_unchecked(data);
    let _ = (p.payload(), p.upper_layer(), p.src(), p.dst());
    let t = TcpPacket::new_unchecked(data);
    let _ = (t.header_len(), t.options(), t.payload(), t.mss());
    let _ = t.has_malformed_options();
    let u = UdpPacket::new_unchecked(data);
    let _ = (u.len(), u.payload(), u.is_empty());
    let m = IcmpPacket::new_unchecked(data);
    let _ = (m.inner(), m.data(), m.next_hop_mtu(), m.echo_ident());
    let m = Icmpv6Packet::new_unchecked(data);
    let _ = (m.inner(), m.nd_target(), m.mtu(), m.na_flags());
    let _ = (m.source_ll_addr(), m.target_ll_addr());
    let mut v = data.to_vec();
    let mut e = EthernetFrame::new_unchecked(&mut v[..]);
    e.set_ethertype(ethertype::IPV4);
    let _ = e.payload_mut();
    let mut p = Ipv4Packet::new_unchecked(&mut v[..]);
    p.rewrite_ttl(1);
    p.rewrite_total_len(0xffff);
    p.rewrite_src(&Addr::v4(1, 2, 3, 4));
    let _ = p.payload_mut();
    let mut p = Ipv6Packet::new_unchecked(&mut v[..]);
    p.set_payload_len(0xffff);
    let _ = p.payload_mut();
    let mut t = TcpPacket::new_unchecked(&mut v[..]);
    t.rewrite_header_len(60);
    let _ = t.set_mss(1);
    let _ = (t.options_mut().len(), t.payload_mut().len());
    let mut u = UdpPacket::new_unchecked(&mut v[..]);
    u.rewrite_src_port(1);
    let _ = u.payload_mut();
    IcmpPacket::new_unchecked(&mut v[..]).rewrite_msg_type(0);
    Icmpv6Packet::new_unchecked(&mut v[..]).rewrite_msg_type(129);
}

/// The fast sum against a word-at-a-time reference, and `update_bytes` over
/// an input split into "old" and "new" halves against full recomputation.
fn checksums(data: &[u8]) {
    let mut r: u64 = 0;
    for c in data.chunks(2) {
        r += (u16::from(c[0]) << 8 | c.get(1).copied().map_or(0, u16::from)) as u64;
    }
    while r > 0xffff {
        r = (r & 0xffff) + (r >> 16);
    }
    assert_eq!(checksum::fold(checksum::sum(data)), r as u16);

    let half = (data.len() / 2) & !1;
    let (old, rest) = data.split_at(half);
    let new = &rest[..half];
    // Region = old bytes followed by a fixed nonzero word so the sum is never 0.
    let mut region = old.to_vec();
    region.extend_from_slice(&[0x80, 0x01]);
    let c = checksum::finish(checksum::sum(&region));
    region[..half].copy_from_slice(new);
    let full = checksum::finish(checksum::sum(&region));
    assert_eq!(checksum::update_bytes(c, old, new), full);
    if half >= 4 {
        let o = u32::from_be_bytes([old[0], old[1], old[2], old[3]]);
        let n = u32::from_be_bytes([new[0], new[1], new[2], new[3]]);
        let mut reg = old[..4].to_vec();
        reg.extend_from_slice(&[0x80, 0x01]);
        let c = checksum::finish(checksum::sum(&reg));
        reg[..4].copy_from_slice(&new[..4]);
        assert_eq!(
            checksum::update32(c, o, n),
            checksum::finish(checksum::sum(&reg))
        );
        if c != 0 {
            let want = checksum::udp_fix(checksum::finish(checksum::sum(&reg)));
            assert_eq!(checksum::update_udp32(c, o, n), want);
        }
    }
}
