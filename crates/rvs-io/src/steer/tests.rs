use super::*;

/// A classic-BPF interpreter with the kernel's semantics for what the
/// steering program uses: loads relative to the start of `pkt` (the network
/// header), an out-of-bounds load ends the program with 0, the
/// SKF_AD_PROTOCOL ancillary load yields `ethertype`.
fn interp(prog: &[libc::sock_filter], pkt: &[u8], ethertype: u16) -> u32 {
    let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
    let load = |off: u32, size: u16| -> Option<u32> {
        let n = match size {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        let o = off as usize;
        let b = pkt.get(o..o.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |v, &c| (v << 8) | c as u32))
    };
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = prog[pc];
        pc += 1;
        let k = i.k;
        match i.code & 7 {
            0 => {
                let (size, mode) = (i.code & 0x18, i.code & 0xe0);
                let off = match mode {
                    0x20 if k == AD_PROTOCOL => {
                        a = ethertype as u32;
                        continue;
                    }
                    0x20 => k,
                    0x40 => x.wrapping_add(k),
                    0x00 => {
                        a = k;
                        continue;
                    }
                    0x60 => {
                        a = m[k as usize];
                        continue;
                    }
                    _ => panic!("ld mode {mode:#x}"),
                };
                match load(off, size) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            1 => match i.code & 0xe0 {
                0xa0 => match load(k, 0x10) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                },
                0x60 => x = m[k as usize],
                0x00 => x = k,
                c => panic!("ldx mode {c:#x}"),
            },
            2 => m[k as usize] = a,
            3 => m[k as usize] = x,
            4 => {
                let s = if i.code & 8 != 0 { x } else { k };
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(s),
                    0x40 => a | s,
                    0x50 => a & s,
                    0x60 => a << s,
                    0x70 => a >> s,
                    0x90 => a % s,
                    0xa0 => a ^ s,
                    c => panic!("alu op {c:#x}"),
                }
            }
            5 => {
                let s = if i.code & 8 != 0 { x } else { k };
                let op = i.code & 0xf0;
                if op == 0 {
                    pc += k as usize;
                    continue;
                }
                let c = match op {
                    0x10 => a == s,
                    0x20 => a > s,
                    0x30 => a >= s,
                    0x40 => a & s != 0,
                    _ => panic!("jmp op {op:#x}"),
                };
                pc += if c { i.jt } else { i.jf } as usize;
            }
            6 => return if i.code & 0x18 == 0x10 { a } else { k },
            _ => match i.code & 0xf8 {
                0x00 => x = a,
                0x80 => a = x,
                c => panic!("misc {c:#x}"),
            },
        }
    }
    panic!("program does not terminate");
}

/// A steering program and the configuration it was built from, so that
/// every case runs both the cBPF program and its Rust twin [`owner`].
struct Prog {
    ins: Vec<libc::sock_filter>,
    s: Steering,
}

impl std::ops::Deref for Prog {
    type Target = [libc::sock_filter];
    fn deref(&self) -> &[libc::sock_filter] {
        &self.ins
    }
}

fn build(s: &Steering) -> Prog {
    Prog {
        ins: build_cbpf(s),
        s: s.clone(),
    }
}

/// `pkt` (from the network header) behind an Ethernet header of `ethertype`.
fn eth(pkt: &[u8], ethertype: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(pkt);
    f
}

/// The worker the cBPF program picks for `pkt`, checked equal to what
/// [`owner`] picks for the same frame, untagged and behind a VLAN tag.
fn run(prog: &Prog, pkt: &[u8], ethertype: u16) -> u32 {
    let want = interp(prog, pkt, ethertype);
    let frame = eth(pkt, ethertype);
    assert_eq!(
        owner(&frame, &prog.s) as u32,
        want,
        "owner() != cBPF for {frame:02x?}"
    );
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0, 0, 100]);
    tagged.extend_from_slice(&frame[12..]);
    assert_eq!(
        owner(&tagged, &prog.s) as u32,
        want,
        "tagged: owner() != cBPF"
    );
    want
}

const POOL: [u8; 4] = [10, 0, 0, 100];
const POOL2: [u8; 4] = [10, 0, 0, 101];
const RS: [u8; 4] = [192, 168, 1, 10];
const CLIENT: [u8; 4] = [1, 2, 3, 4];
const VIP: [u8; 4] = [10, 0, 0, 1];
const POOL6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const RS6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const CLIENT6: [u8; 16] = [
    0x20, 1, 0xd, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0xc0, 0xa8, 0x07, 0x09,
];

fn steering(workers: u16) -> Steering {
    Steering {
        workers,
        pool_v4: vec![POOL, POOL2],
        rs_v4: vec![RS],
        pool_v6: vec![POOL6],
        rs_v6: vec![RS6],
    }
}

/// IPv4 header (+ `opts` words of options) and the first 8 L4 bytes.
fn v4(proto: u8, src: [u8; 4], dst: [u8; 4], frag: u16, opts: usize, l4: [u8; 8]) -> Vec<u8> {
    let mut p = vec![0x45 + opts as u8, 0, 0, 0, 0, 1];
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend(std::iter::repeat_n(1u8, opts * 4));
    p.extend_from_slice(&l4);
    p
}

fn ports(sport: u16, dport: u16) -> [u8; 8] {
    let (s, d) = (sport.to_be_bytes(), dport.to_be_bytes());
    [s[0], s[1], d[0], d[1], 0, 0, 0, 0]
}

fn v6(nh: u8, src: [u8; 16], dst: [u8; 16], l4: [u8; 8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, nh, 64];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&l4);
    p
}

fn be32(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

#[test]
fn ipv4_rules() {
    let prog = build(&steering(4));
    let r = |p: &[u8]| run(&prog, p, 0x0800);
    // To a pool address: the local port decides, TCP and UDP alike.
    for dport in 1000..1010u16 {
        assert_eq!(
            r(&v4(6, RS, POOL, 0, 0, ports(80, dport))),
            dport as u32 % 4
        );
        assert_eq!(
            r(&v4(17, RS, POOL2, 0, 0, ports(53, dport))),
            dport as u32 % 4
        );
    }
    // IP options move the ports; the first fragment still has them.
    assert_eq!(r(&v4(6, RS, POOL, 0x2000, 2, ports(80, 4243))), 3);
    // Echo reply to a pool address: identifier; request, or other address: 0.
    let echo = |ty: u8| [ty, 0, 0, 0, 0x12, 0x35, 0, 1];
    assert_eq!(r(&v4(1, RS, POOL, 0, 0, echo(0))), 0x1235 % 4);
    assert_eq!(r(&v4(1, RS, POOL, 0, 1, echo(0))), 0x1235 % 4);
    assert_eq!(r(&v4(1, RS, POOL, 0, 0, echo(8))), 0);
    assert_eq!(r(&v4(1, RS, VIP, 0, 0, echo(0))), 0);
    // NAT: the return from the real server and the client's request key
    // on the same (client address, client port).
    let want = (be32(CLIENT) ^ 5555) % 4;
    assert_eq!(r(&v4(6, RS, CLIENT, 0, 0, ports(80, 5555))), want);
    assert_eq!(r(&v4(6, CLIENT, VIP, 0, 0, ports(5555, 80))), want);
    assert_eq!(
        r(&v4(17, CLIENT, VIP, 0, 0, ports(5556, 53))),
        (be32(CLIENT) ^ 5556) % 4
    );
    // Non-first fragments, other protocols, short packets, ARP: worker 0.
    assert_eq!(r(&v4(6, CLIENT, POOL, 0x00b9, 0, ports(1, 4243))), 0);
    assert_eq!(r(&v4(47, CLIENT, POOL, 0, 0, ports(1, 4243))), 0);
    assert_eq!(r(&v4(6, CLIENT, POOL, 0, 0, ports(1, 4243))[..21]), 0);
    assert_eq!(run(&prog, &[0u8; 28], 0x0806), 0);
}

#[test]
fn ipv6_rules() {
    let prog = build(&steering(3));
    let r = |p: &[u8]| run(&prog, p, 0x86dd);
    let low = |a: [u8; 16]| u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
    for dport in [1000u16, 1001, 1002, 65535] {
        assert_eq!(r(&v6(6, RS6, POOL6, ports(80, dport))), dport as u32 % 3);
    }
    // A client port whose key is not the fallback worker 0.
    let cport = (4321u16..)
        .find(|p| !(low(CLIENT6) ^ *p as u32).is_multiple_of(3))
        .unwrap();
    let want = (low(CLIENT6) ^ cport as u32) % 3;
    assert_eq!(r(&v6(6, RS6, CLIENT6, ports(80, cport))), want);
    assert_eq!(
        r(&v6(17, CLIENT6, POOL6.map(|b| b ^ 0x40), ports(cport, 80))),
        want
    );
    // Membership is the full address, not its low word.
    let mut near = POOL6;
    near[0] ^= 1;
    assert_eq!(r(&v6(6, CLIENT6, near, ports(cport, 1000))), want);
    assert_eq!(
        r(&v6(58, RS6, POOL6, [129, 0, 0, 0, 0x12, 0x35, 0, 1])),
        0x1235 % 3
    );
    assert_eq!(r(&v6(58, RS6, POOL6, [128, 0, 0, 0, 0x12, 0x35, 0, 1])), 0);
    assert_eq!(r(&v6(58, RS6, near, [129, 0, 0, 0, 0x12, 0x35, 0, 1])), 0);
    // Extension headers are not walked.
    assert_eq!(r(&v6(0, CLIENT6, POOL6, ports(1, 1001))), 0);
}

#[test]
fn one_or_zero_workers_is_all_worker_zero() {
    for w in [0, 1] {
        let prog = build(&steering(w));
        assert_eq!(
            run(&prog, &v4(6, CLIENT, VIP, 0, 0, ports(5555, 80)), 0x0800),
            0
        );
        assert_eq!(
            run(&prog, &v4(6, RS, POOL, 0, 0, ports(80, 1001)), 0x0800),
            0
        );
    }
}

/// What the kernel's classic-BPF checker (`bpf_check_classic`) demands of
/// the jumps, scratch memory and end of `prog`: every jump lands inside the
/// program, every scratch word is stored on every path (taken or falling
/// through, as the kernel's path-insensitive check sees it) before it is
/// loaded, and the program ends with a return.
fn kernel_checks(prog: &[libc::sock_filter]) {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid = 0u16;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            ST | 0x03 => valid |= 1 << i.k,
            LD_MEM | LDX_MEM => assert!(
                valid & (1 << i.k) != 0,
                "M[{}] loaded at {pc} but not stored on every path",
                i.k
            ),
            JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if c & 7 == 5 => {
                let far = pc + 1 + i.jt.max(i.jf) as usize;
                assert!(far < prog.len(), "jump at {pc} leaves the program");
                masks[pc + 1 + i.jt as usize] &= valid;
                masks[pc + 1 + i.jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    assert_eq!(prog.last().unwrap().code & 7, 6, "must end with a return");
}

#[test]
fn programs_pass_the_kernel_checks() {
    for w in [1, 2, 5] {
        kernel_checks(&build(&steering(w)));
        kernel_checks(&build(&Steering {
            workers: w,
            ..Steering::default()
        }));
    }
}

#[test]
fn large_configurations_use_long_jumps() {
    let mut s = steering(7);
    s.pool_v4 = (0..1500u32)
        .map(|i| (0x0a00_0000 + i).to_be_bytes())
        .collect();
    let prog = build(&s);
    assert!(prog.len() > 3000 && prog.len() <= MAX_INSNS);
    kernel_checks(&prog);
    let last = (0x0a00_0000u32 + 1499).to_be_bytes();
    assert_eq!(
        run(&prog, &v4(6, RS, last, 0, 0, ports(80, 1000)), 0x0800),
        1000 % 7
    );
    assert_eq!(
        run(
            &prog,
            &v4(1, RS, last, 0, 0, [0, 0, 0, 0, 0, 9, 0, 0]),
            0x0800
        ),
        9 % 7
    );
}

/// An ICMPv4 error of `ty`/`code` from `src` to `dst` quoting `quote`.
fn icmp4_err(ty: u8, code: u8, src: [u8; 4], dst: [u8; 4], quote: &[u8]) -> Vec<u8> {
    let mut p = v4(1, src, dst, 0, 0, [ty, code, 0, 0, 0, 0, 0x05, 0xdc]);
    p.extend_from_slice(quote);
    p
}

/// An ICMPv6 error of `ty`/`code` from `src` to `dst` quoting `quote`.
fn icmp6_err(ty: u8, code: u8, src: [u8; 16], dst: [u8; 16], quote: &[u8]) -> Vec<u8> {
    let mut p = v6(58, src, dst, [ty, code, 0, 0, 0, 0, 0x05, 0x00]);
    p.extend_from_slice(quote);
    p
}

fn echo(ty: u8, id: u16) -> [u8; 8] {
    let i = id.to_be_bytes();
    [ty, 0, 0, 0, i[0], i[1], 0, 1]
}

/// An ICMP error goes to the worker of the connection it quotes: the one
/// the reply to the quoted packet is steered to, whatever the error's own
/// addresses. FNAT/SNAT errors from the real server's side by the local
/// port, client-side errors by the client's key, NAT real-server-side
/// errors by the client's key, a quoted SNAT echo request by identifier.
#[test]
fn ipv4_icmp_errors_follow_the_quoted_connection() {
    let router = [172, 16, 0, 1];
    for w in [1u16, 2, 3, 5] {
        let prog = build(&steering(w));
        let r = |p: &[u8]| run(&prog, p, 0x0800);
        let wu = w as u32;
        for port in [1000u16, 1001, 1002, 1003, 1004, 40000, 65535] {
            // RS side to a local address, quoting LIP:lport -> RIP:rport:
            // fragmentation needed (TCP), port unreachable (UDP).
            let q = v4(6, POOL, RS, 0, 0, ports(port, 80));
            assert_eq!(r(&icmp4_err(3, 4, router, POOL, &q)), port as u32 % wu);
            assert_eq!(
                r(&icmp4_err(3, 4, router, POOL, &q)),
                r(&v4(6, RS, POOL, 0, 0, ports(80, port)))
            );
            let q = v4(17, POOL2, RS, 0, 0, ports(port, 53));
            assert_eq!(r(&icmp4_err(3, 3, RS, POOL2, &q)), port as u32 % wu);
            // The error's own destination does not matter, only the quote.
            assert_eq!(r(&icmp4_err(11, 0, RS, VIP, &q)), port as u32 % wu);
            // Options in the quoted header and in the error's own.
            let q = v4(6, POOL, RS, 0x4000, 2, ports(port, 80));
            assert_eq!(r(&icmp4_err(3, 4, router, POOL, &q)), port as u32 % wu);
            let mut e = v4(1, router, POOL, 0, 1, [3, 4, 0, 0, 0, 0, 5, 0]);
            e.extend_from_slice(&q);
            assert_eq!(r(&e), port as u32 % wu);
            // Client side, quoting VIP:vport -> CIP:cport: the client's key,
            // where the client's own packets go.
            let key = (be32(CLIENT) ^ port as u32) % wu;
            let q = v4(6, VIP, CLIENT, 0, 0, ports(80, port));
            for ty in [3, 4, 5, 11, 12] {
                assert_eq!(r(&icmp4_err(ty, 0, router, VIP, &q)), key, "type {ty}");
            }
            assert_eq!(key, r(&v4(6, CLIENT, VIP, 0, 0, ports(port, 80))));
            // NAT: quoting CIP:cport -> RIP:rport as rvs sent it to the real
            // server; its replies are keyed on the client.
            let q = v4(17, CLIENT, RS, 0, 0, ports(port, 53));
            assert_eq!(r(&icmp4_err(3, 3, RS, CLIENT, &q)), key);
            assert_eq!(key, r(&v4(17, RS, CLIENT, 0, 0, ports(53, port))));
            // SNAT ping: a quoted echo request from the WAN address goes
            // where the echo reply goes, by identifier.
            let q = v4(1, POOL, CLIENT, 0, 0, echo(8, port));
            assert_eq!(r(&icmp4_err(11, 0, router, POOL, &q)), port as u32 % wu);
            assert_eq!(
                r(&v4(1, CLIENT, POOL, 0, 0, echo(0, port))),
                port as u32 % wu
            );
        }
        // Worker 0: a quoted echo reply, a quoted echo request from another
        // address, a quoted GRE packet, a quoted non-first fragment, a quote
        // that is not IPv4 or whose header is shorter than 20 bytes, a
        // truncated quote, an ICMP type that is no error (timestamp).
        let port = 1001u16;
        let zero = |q: &[u8]| r(&icmp4_err(3, 1, router, POOL, q));
        assert_eq!(zero(&v4(1, POOL, CLIENT, 0, 0, echo(0, port))), 0);
        assert_eq!(zero(&v4(1, VIP, CLIENT, 0, 0, echo(8, port))), 0);
        assert_eq!(zero(&v4(47, POOL, RS, 0, 0, ports(port, 80))), 0);
        assert_eq!(zero(&v4(6, POOL, RS, 0x0010, 0, ports(port, 80))), 0);
        let mut q = v4(6, POOL, RS, 0, 0, ports(port, 80));
        q[0] = 0x65;
        assert_eq!(zero(&q), 0);
        q[0] = 0x44;
        assert_eq!(zero(&q), 0);
        assert_eq!(zero(&v4(6, POOL, RS, 0, 0, ports(port, 80))[..21]), 0);
        let q = v4(6, POOL, RS, 0, 0, ports(port, 80));
        assert_eq!(r(&icmp4_err(13, 0, router, POOL, &q)), 0);
    }
}

/// IPv6 alike: ICMPv6 errors 1 to 4 by the quote reversed, membership on
/// the whole address, keys on its low word; quotes behind an extension
/// header go to worker 0.
#[test]
fn ipv6_icmp_errors_follow_the_quoted_connection() {
    let low = |a: [u8; 16]| u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
    let router = [0x20, 1, 0xd, 0xb8, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    for w in [1u16, 2, 3, 5] {
        let prog = build(&steering(w));
        let r = |p: &[u8]| run(&prog, p, 0x86dd);
        let wu = w as u32;
        for port in [1000u16, 1001, 1002, 1003, 1004, 40000, 65535] {
            // Packet too big and port unreachable from the RS side.
            let q = v6(6, POOL6, RS6, ports(port, 80));
            assert_eq!(r(&icmp6_err(2, 0, router, POOL6, &q)), port as u32 % wu);
            let q = v6(17, POOL6, RS6, ports(port, 53));
            assert_eq!(r(&icmp6_err(1, 4, RS6, POOL6, &q)), port as u32 % wu);
            // Client side and NAT: the client's key.
            let key = (low(CLIENT6) ^ port as u32) % wu;
            let vip6 = POOL6.map(|b| b ^ 0x40);
            let q = v6(6, vip6, CLIENT6, ports(80, port));
            for ty in 1..=4 {
                assert_eq!(r(&icmp6_err(ty, 0, router, vip6, &q)), key, "type {ty}");
            }
            assert_eq!(key, r(&v6(6, CLIENT6, vip6, ports(port, 80))));
            let q = v6(6, CLIENT6, RS6, ports(port, 80));
            assert_eq!(r(&icmp6_err(3, 0, router, CLIENT6, &q)), key);
            assert_eq!(key, r(&v6(6, RS6, CLIENT6, ports(80, port))));
            // Membership is the whole address: a quote from an address
            // sharing the pool's low word is keyed as a client's.
            let mut near = POOL6;
            near[0] ^= 1;
            let q = v6(6, near, CLIENT6, ports(port, 80));
            assert_eq!(
                r(&icmp6_err(1, 4, CLIENT6, near, &q)),
                (low(CLIENT6) ^ 80) % wu
            );
            // A quoted echo request from a pool address: by identifier.
            let q = v6(58, POOL6, CLIENT6, echo(128, port));
            assert_eq!(r(&icmp6_err(3, 0, router, POOL6, &q)), port as u32 % wu);
        }
        // Worker 0: an extension header in the quote, a quoted echo reply,
        // a quote that is not IPv6, an informational type (echo request).
        let zero = |q: &[u8]| r(&icmp6_err(1, 0, router, POOL6, q));
        assert_eq!(zero(&v6(0, POOL6, RS6, ports(1001, 80))), 0);
        assert_eq!(zero(&v6(58, POOL6, CLIENT6, echo(129, 1001))), 0);
        let mut q = v6(6, POOL6, RS6, ports(1001, 80));
        q[0] = 0x40;
        assert_eq!(zero(&q), 0);
        let q = v6(6, POOL6, RS6, ports(1001, 80));
        assert_eq!(r(&icmp6_err(128, 0, router, POOL6, &q)), 0);
    }
}

/// [`owner`] and the cBPF program agree on random frames: valid headers of
/// every class above with random addresses (some from the steering lists),
/// ports, types and lengths, then random bytes flipped and the frame cut.
#[test]
fn owner_matches_the_cbpf_program_on_random_frames() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut nonzero = 0;
    for w in [1u16, 2, 3, 4, 7] {
        let prog = build(&steering(w));
        for _ in 0..20_000 {
            let r = rnd();
            let pick4 =
                |x: u64| [POOL, POOL2, RS, CLIENT, VIP, (x as u32).to_be_bytes()][(x % 6) as usize];
            let pick6 = |x: u64| {
                let mut a = [POOL6, RS6, CLIENT6, POOL6][(x % 4) as usize];
                if x & 0x30 == 0 {
                    a[15] ^= (x >> 8) as u8;
                }
                a
            };
            let proto = [6u8, 17, 1, 58, 47, 0][(r % 6) as usize];
            let l4 = rnd().to_be_bytes();
            let mut l4 = [l4[0], l4[1], l4[2], l4[3], l4[4], l4[5], l4[6], l4[7]];
            if r & 0x100 != 0 {
                l4[0] = [0, 3, 8, 11, 1, 2, 128, 129, 13, 4][((r >> 9) % 10) as usize];
            }
            let (mut pkt, ty) = if r & 0x1000 == 0 {
                let frag = if r & 0xe000 == 0 {
                    (rnd() & 0x3fff) as u16
                } else {
                    0
                };
                let inner = v4(
                    [6, 17, 1][(rnd() % 3) as usize],
                    pick4(rnd()),
                    pick4(rnd()),
                    0,
                    0,
                    l4,
                );
                let p = v4(
                    proto,
                    pick4(rnd()),
                    pick4(rnd()),
                    frag,
                    (r >> 20) as usize % 3,
                    l4,
                );
                if proto == 1 && r & 0x200 != 0 {
                    (
                        icmp4_err(l4[0], 0, pick4(rnd()), pick4(rnd()), &inner),
                        0x0800,
                    )
                } else {
                    (p, 0x0800)
                }
            } else {
                let inner = v6(
                    [6, 17, 58][(rnd() % 3) as usize],
                    pick6(rnd()),
                    pick6(rnd()),
                    l4,
                );
                if proto == 58 && r & 0x200 != 0 {
                    (
                        icmp6_err(l4[0], 0, pick6(rnd()), pick6(rnd()), &inner),
                        0x86dd,
                    )
                } else {
                    (v6(proto, pick6(rnd()), pick6(rnd()), l4), 0x86dd)
                }
            };
            for _ in 0..(r >> 30) % 3 {
                let i = rnd() as usize % pkt.len();
                pkt[i] ^= 1 << (rnd() % 8);
            }
            if r & 0x4000_0000_0000 != 0 {
                let cut = rnd() as usize % (pkt.len() + 1);
                pkt.truncate(cut);
            }
            let ty = if r & 0x0f00_0000_0000 == 0 {
                0x0806
            } else {
                ty
            };
            if run(&prog, &pkt, ty) != 0 {
                nonzero += 1;
            }
        }
    }
    assert!(
        nonzero > 5_000,
        "the random frames exercise the keyed rules: {nonzero}"
    );
}
