//! The text parsers of lists and sets (`rvs_core::acl`: ipset entries,
//! probes, list subjects) on arbitrary strings, and the flat IPv4 index of
//! a large table against plain longest-prefix probing. Besides "never
//! panics": a parsed entry only yields members of its kind and family, and
//! the index answers exactly as the probing does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::acl::entry::{parse_entry, parse_probe, Member, SetKind};
use rvs_core::acl::net::NetTable;
use rvs_core::acl::Subject;
use rvs_core::addr::Addr;

fn text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Subject::parse(s).map(|x| x.to_string());
    for kind in [SetKind::HashIp, SetKind::HashNet, SetKind::HashIpPort] {
        for v6 in [false, true] {
            if let Ok(ms) = parse_entry(kind, v6, s) {
                for m in ms {
                    let (addr, ok) = match m {
                        Member::Net { addr, plen } => (addr, kind != SetKind::HashIpPort && plen >= 1),
                        Member::IpPort { addr, .. } => (addr, kind == SetKind::HashIpPort),
                    };
                    assert!(ok, "{s:?} gave {m:?} for {kind}");
                    assert_eq!(addr.is_v4(), !v6, "{s:?} gave {m:?} for v6={v6}");
                }
            }
            let _ = parse_probe(kind, v6, s);
        }
    }
}

fn index(data: &[u8]) {
    let mut big = NetTable::new();
    let mut plain = NetTable::new();
    let mut chunks = data.chunks_exact(5);
    let mut probes = Vec::new();
    let mut i = 0u32;
    for c in chunks.by_ref() {
        let a = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let plen = c[4] % 33;
        let net = a & u32::MAX.checked_shl(u32::from(32 - plen)).unwrap_or(0);
        let addr = Addr::from_v4_bytes(net.to_be_bytes());
        big.insert(&addr, plen, i % 7);
        plain.insert(&addr, plen, i % 7);
        probes.extend([a, net, net.wrapping_sub(1), a | !u32::MAX.checked_shl(u32::from(32 - plen)).unwrap_or(0)]);
        i += 1;
    }
    // Pad past the index threshold with hosts far from the input's.
    let mut f = 0x9e37_79b9u32 ^ i;
    while big.len() < 1100 {
        f ^= f << 13;
        f ^= f >> 17;
        f ^= f << 5;
        let addr = Addr::from_v4_bytes((f | 0xf000_0000).to_be_bytes());
        big.insert(&addr, 32, 3);
        plain.insert(&addr, 32, 3);
    }
    big.reindex();
    for p in probes {
        let q = Addr::from_v4_bytes(p.to_be_bytes());
        assert_eq!(big.lookup(&q), plain.lookup(&q), "{q}");
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => index(rest),
        Some((_, rest)) => text(rest),
        None => {}
    }
});
