//! AF_XDP queues between veth pairs in private network namespaces: the
//! steering program (run by the kernel on crafted frames), a TCP transfer
//! through an XDP forwarder with the peers' default offloads, detaching on
//! drop and after a crash, and steering across two sockets.

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ip, require_root, udp_frame, veth_pair, Netns};
use rvs_io::af_xdp::{attach_legacy, attached_prog_id, steer_test_run};
use rvs_io::{wait_any, RxChecksum, Steering, XdpConf, XdpPort, XdpQueue, XdpQueueStats, BURST};

fn conf(port: u16) -> XdpConf {
    XdpConf {
        port,
        frames: 4096,
        fill_size: 2048,
        comp_size: 1024,
        rx_size: 1024,
        tx_size: 1024,
        ..XdpConf::default()
    }
}

/// Whether `ip link show dev` reports an XDP program on `dev`.
fn ip_shows_xdp(ns: &Netns, dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &ns.name, "link", "show", "dev", dev])
        .output()
        .expect("ip link show");
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    s.contains("xdp")
}

fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = udp_frame([2; 6], [4; 6], src, dst, sport, dport, &[0; 20]);
    f[23] = 6;
    f
}

fn v6(src: [u8; 16], dst: [u8; 16], nh: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![
        2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x86, 0xdd, 0x60, 0, 0, 0,
    ];
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.push(nh);
    f.push(64);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}

fn w32(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// The eBPF program, run by the kernel (BPF_PROG_TEST_RUN) on crafted
/// frames, picks the worker the cBPF rules of steer.rs pick: pool ports by
/// `dport % W`, ICMP echo replies by id, NAT real-server returns by
/// `(daddr ^ dport) % W`, other TCP/UDP by `(saddr ^ sport) % W`, IPv6
/// alike on the low address word, and worker 0 for ARP, fragments, VLAN
/// tags and short frames. It also proves the verifier accepts it.
#[test]
fn steering_program_follows_the_cbpf_rules() {
    require_root();
    let pool = [10, 0, 0, 100];
    let rs = [192, 168, 1, 5];
    let pool6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    let rs6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5];
    let cli6 = [
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0xab, 0xcd, 0x12, 0x34,
    ];
    let s = Steering {
        workers: 3,
        pool_v4: vec![pool],
        rs_v4: vec![rs],
        pool_v6: vec![pool6],
        rs_v6: vec![rs6],
    };
    let mut frames = Vec::new();
    let mut want = Vec::new();
    for w in [1u16, 2, 3, 5] {
        frames.clear();
        want.clear();
        let wu = w as u32;
        let client = [172, 16, 3, 9];
        for dport in [1000u16, 1001, 1002, 40000, 65535] {
            // To a pool address: dport % W, UDP and TCP.
            frames.push(udp_frame([2; 6], [4; 6], rs, pool, 80, dport, b"x"));
            want.push(dport as u32 % wu);
            frames.push(tcp4(rs, pool, 80, dport));
            want.push(dport as u32 % wu);
            // From a NAT real server: (daddr ^ dport) % W.
            frames.push(tcp4(rs, client, 80, dport));
            want.push((w32(client) ^ dport as u32) % wu);
            // Anything else: (saddr ^ sport) % W.
            frames.push(udp_frame(
                [2; 6],
                [4; 6],
                client,
                [10, 0, 0, 1],
                dport,
                53,
                b"q",
            ));
            want.push((w32(client) ^ dport as u32) % wu);
            // IPv6 to a pool address, from a real server, from a client.
            let mut l4 = vec![0u8; 20];
            l4[0..2].copy_from_slice(&80u16.to_be_bytes());
            l4[2..4].copy_from_slice(&dport.to_be_bytes());
            frames.push(v6(rs6, pool6, 6, &l4));
            want.push(dport as u32 % wu);
            frames.push(v6(rs6, cli6, 6, &l4));
            want.push((0xabcd1234u32 ^ dport as u32) % wu);
            let mut l4c = l4.clone();
            l4c[0..2].copy_from_slice(&dport.to_be_bytes());
            frames.push(v6(
                cli6,
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                17,
                &l4c,
            ));
            want.push((0xabcd1234u32 ^ dport as u32) % wu);
            // ICMP echo reply to a pool address: id % W; echo request: 0.
            let mut icmp = udp_frame([2; 6], [4; 6], client, pool, 0, 0, b"");
            icmp[23] = 1;
            icmp[34] = 0;
            icmp[38..40].copy_from_slice(&dport.to_be_bytes());
            frames.push(icmp.clone());
            want.push(dport as u32 % wu);
            icmp[34] = 8;
            frames.push(icmp);
            want.push(0);
            let mut e6 = vec![129u8, 0, 0, 0];
            e6.extend_from_slice(&dport.to_be_bytes());
            e6.extend_from_slice(&[0, 1]);
            frames.push(v6(cli6, pool6, 58, &e6));
            want.push(dport as u32 % wu);
        }
        // Worker 0: ARP, a non-first fragment, a double-tagged frame, a
        // truncated IPv4 header, GRE.
        let mut arp = vec![0xffu8; 6];
        arp.extend_from_slice(&[4; 6]);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        frames.push(arp);
        want.push(0);
        let mut frag = udp_frame([2; 6], [4; 6], client, pool, 7, 1001, b"x");
        frag[20] = 0x00;
        frag[21] = 0x10;
        frames.push(frag);
        want.push(0);
        // One VLAN tag (802.1Q, 802.1ad) is looked past: to a pool
        // address, dport % W like the untagged frame; two tags: worker 0.
        let mut tagged = udp_frame([2; 6], [4; 6], client, pool, 7, 1001, b"x");
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        frames.push(tagged.clone());
        want.push(1001 % wu);
        let mut ad = udp_frame([2; 6], [4; 6], client, pool, 7, 1001, b"x");
        ad.splice(12..12, [0x88, 0xa8, 0x00, 0x05]);
        frames.push(ad);
        want.push(1001 % wu);
        tagged.splice(12..12, [0x88, 0xa8, 0x00, 0x06]);
        frames.push(tagged);
        want.push(0);
        frames.push(udp_frame([2; 6], [4; 6], client, pool, 7, 1001, b"x")[..30].to_vec());
        want.push(0);
        let mut gre = udp_frame([2; 6], [4; 6], client, pool, 7, 1001, b"x");
        gre[23] = 47;
        frames.push(gre);
        want.push(0);
        let got = steer_test_run(w, &s, &frames).expect("load and run the steering program");
        assert_eq!(got, want, "W = {w}");
    }
}

/// An IPv4 header (with `opts` option words) and `l4`, no Ethernet header.
fn ip4(proto: u8, src: [u8; 4], dst: [u8; 4], opts: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45 + opts, 0];
    p.extend_from_slice(&((20 + 4 * opts as usize + l4.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend(std::iter::repeat_n(1u8, 4 * opts as usize));
    p.extend_from_slice(l4);
    p
}

/// The first 8 bytes of a TCP/UDP header.
fn ports(sport: u16, dport: u16) -> [u8; 8] {
    let (s, d) = (sport.to_be_bytes(), dport.to_be_bytes());
    [s[0], s[1], d[0], d[1], 0, 0, 0, 0]
}

/// The first 8 bytes of an ICMP echo message.
fn echo(ty: u8, id: u16) -> [u8; 8] {
    let i = id.to_be_bytes();
    [ty, 0, 0, 0, i[0], i[1], 0, 1]
}

/// An Ethernet frame carrying an ICMPv4 error (outer header with `opts`
/// option words) that quotes `quote`.
fn icmp4_err(ty: u8, src: [u8; 4], dst: [u8; 4], opts: u8, quote: &[u8]) -> Vec<u8> {
    let mut l4 = vec![ty, 4, 0, 0, 0, 0, 0x05, 0xdc];
    l4.extend_from_slice(quote);
    let mut f = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x08, 0x00];
    f.extend_from_slice(&ip4(1, src, dst, opts, 0, &l4));
    f
}

/// An Ethernet frame carrying an ICMPv6 error that quotes the IPv6 packet
/// of the frame `quoted`.
fn icmp6_err(ty: u8, src: [u8; 16], dst: [u8; 16], quoted: &[u8]) -> Vec<u8> {
    let mut l4 = vec![ty, 0, 0, 0, 0, 0, 0x05, 0x00];
    l4.extend_from_slice(&quoted[14..]);
    v6(src, dst, 58, &l4)
}

/// ICMP errors, run through the kernel's eBPF program, go where steer.rs
/// sends them: to the worker of the connection they quote, found by the
/// quote reversed. An error from the real server's side quoting
/// `LIP:lport -> RIP:rport` by the local port, one from the client's side
/// quoting `VIP:vport -> CIP:cport` by the client's key, one quoting
/// `CIP:cport -> RIP:rport` for a NAT real server by the client's key, a
/// quoted SNAT echo request by identifier; IPv6 alike; worker 0 for quotes
/// rvs cannot have a connection for.
#[test]
fn steering_program_sends_icmp_errors_to_the_quoted_connection() {
    require_root();
    let pool = [10, 0, 0, 100];
    let rs = [192, 168, 1, 5];
    let vip = [10, 0, 0, 1];
    let client = [172, 16, 3, 9];
    let router = [172, 16, 0, 1];
    let pool6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    let rs6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5];
    let cli6 = [
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0xab, 0xcd, 0x12, 0x34,
    ];
    let vip6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let router6 = [0x20, 1, 0xd, 0xb8, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let s = Steering {
        workers: 3,
        pool_v4: vec![pool],
        rs_v4: vec![rs],
        pool_v6: vec![pool6],
        rs_v6: vec![rs6],
    };
    let mut frames = Vec::new();
    let mut want = Vec::new();
    for w in [1u16, 2, 3, 5] {
        frames.clear();
        want.clear();
        let wu = w as u32;
        for port in [1000u16, 1001, 1002, 1003, 1004, 40000, 65535] {
            let local = port as u32 % wu;
            let key = (w32(client) ^ port as u32) % wu;
            let key6 = (0xabcd1234u32 ^ port as u32) % wu;
            // Real-server side, to the local address: fragmentation needed
            // (TCP), port unreachable (UDP), time exceeded to another
            // address; options in the quote and in the error itself.
            let q = ip4(6, pool, rs, 0, 0x4000, &ports(port, 80));
            frames.push(icmp4_err(3, router, pool, 0, &q));
            want.push(local);
            let q = ip4(17, pool, rs, 0, 0, &ports(port, 53));
            frames.push(icmp4_err(3, rs, pool, 0, &q));
            want.push(local);
            frames.push(icmp4_err(11, rs, vip, 0, &q));
            want.push(local);
            let q = ip4(6, pool, rs, 2, 0, &ports(port, 80));
            frames.push(icmp4_err(3, router, pool, 1, &q));
            want.push(local);
            // Client side (every error type), NAT real-server side.
            let q = ip4(6, vip, client, 0, 0, &ports(80, port));
            for ty in [3, 4, 5, 11, 12] {
                frames.push(icmp4_err(ty, router, vip, 0, &q));
                want.push(key);
            }
            let q = ip4(17, client, rs, 0, 0, &ports(port, 53));
            frames.push(icmp4_err(3, rs, client, 0, &q));
            want.push(key);
            // A quoted SNAT echo request: by identifier.
            let q = ip4(1, pool, client, 0, 0, &echo(8, port));
            frames.push(icmp4_err(11, router, pool, 0, &q));
            want.push(local);
            // IPv6: packet too big, port unreachable, client side, NAT,
            // a quoted echo request.
            let mut l4 = [0u8; 8];
            l4.copy_from_slice(&ports(port, 80));
            frames.push(icmp6_err(2, router6, pool6, &v6(pool6, rs6, 6, &l4)));
            want.push(local);
            frames.push(icmp6_err(1, rs6, pool6, &v6(pool6, rs6, 17, &l4)));
            want.push(local);
            let q = v6(vip6, cli6, 6, &ports(80, port));
            for ty in 1..=4 {
                frames.push(icmp6_err(ty, router6, vip6, &q));
                want.push(key6);
            }
            frames.push(icmp6_err(3, router6, cli6, &v6(cli6, rs6, 6, &l4)));
            want.push(key6);
            let q = v6(pool6, cli6, 58, &echo(128, port));
            frames.push(icmp6_err(3, router6, pool6, &q));
            want.push(local);
        }
        // Worker 0: a quoted echo reply, a quoted echo request from another
        // address, a quoted GRE packet, a quoted non-first fragment, a
        // quoted header below 20 bytes, a quote that is not IPv4, a
        // truncated quote, an ICMP type that is no error; IPv6: an
        // extension header in the quote, a quoted echo reply.
        let p = 1001;
        for q in [
            ip4(1, pool, client, 0, 0, &echo(0, p)),
            ip4(1, vip, client, 0, 0, &echo(8, p)),
            ip4(47, pool, rs, 0, 0, &ports(p, 80)),
            ip4(6, pool, rs, 0, 0x0010, &ports(p, 80)),
        ] {
            frames.push(icmp4_err(3, router, pool, 0, &q));
            want.push(0);
        }
        let mut q = ip4(6, pool, rs, 0, 0, &ports(p, 80));
        q[0] = 0x44;
        frames.push(icmp4_err(3, router, pool, 0, &q));
        want.push(0);
        q[0] = 0x65;
        frames.push(icmp4_err(3, router, pool, 0, &q));
        want.push(0);
        q[0] = 0x45;
        frames.push(icmp4_err(3, router, pool, 0, &q[..21]));
        want.push(0);
        frames.push(icmp4_err(13, router, pool, 0, &q));
        want.push(0);
        frames.push(icmp6_err(1, rs6, pool6, &v6(pool6, rs6, 0, &ports(p, 80))));
        want.push(0);
        frames.push(icmp6_err(
            1,
            rs6,
            pool6,
            &v6(pool6, cli6, 58, &echo(129, p)),
        ));
        want.push(0);
        let got = steer_test_run(w, &s, &frames).expect("load and run the steering program");
        assert_eq!(got, want, "W = {w}");
    }
}

fn forward(rx: &mut rvs_io::XdpRx, tx: &mut rvs_io::XdpTx, max: usize) -> usize {
    let burst = rx.burst(max);
    for p in burst.iter() {
        tx.send(p.frame());
    }
    let n = burst.len();
    tx.flush();
    n
}

/// A two-port L2 forwarder on m0 and m1 over AF_XDP.
fn forwarder(ready: mpsc::Sender<String>, stop: &AtomicBool) -> (XdpQueueStats, XdpQueueStats) {
    let mut q0 = XdpQueue::open("m0", &conf(0)).expect("open m0");
    let mut q1 = XdpQueue::open("m1", &conf(1)).expect("open m1");
    ready.send(q0.backend()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let n = forward(&mut q0.rx, &mut q1.tx, 7) + forward(&mut q1.rx, &mut q0.tx, BURST);
        if n == 0 {
            q0.rx.release();
            q1.rx.release();
            wait_any(&[q0.fd(), q1.fd()], 5).expect("poll");
        }
    }
    (q0.stats(), q1.stats())
}

struct StopOnDrop<'a>(&'a AtomicBool);
impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

/// ns A (10.9.0.1, a0) — m0 [XDP forwarder] m1 — ns B (10.9.0.2, b0), with
/// veth's default offloads everywhere (TSO and TX checksum offload on a0
/// and b0): 1 MB of TCP arrives intact. The peers' partial checksums are
/// completed by the `complete` policy (B verifies every checksum: frames
/// sent from an XSK carry no checksum metadata), and no super-frame ever
/// reaches the forwarder (veth turns the peer's GSO off while XDP is on).
/// On veth the program runs natively and the sockets copy.
#[test]
fn xdp_forwarder_carries_tcp_with_default_offloads() {
    let (na, nm, nb) = (Netns::new(), Netns::new(), Netns::new());
    ip(&[
        "-n", &na.name, "link", "add", "a0", "type", "veth", "peer", "name", "m0", "netns",
        &nm.name,
    ]);
    ip(&[
        "-n", &nb.name, "link", "add", "b0", "type", "veth", "peer", "name", "m1", "netns",
        &nm.name,
    ]);
    na.ip(&["addr", "add", "10.9.0.1/24", "dev", "a0"]);
    nb.ip(&["addr", "add", "10.9.0.2/24", "dev", "b0"]);
    na.ip(&["link", "set", "a0", "up"]);
    nb.ip(&["link", "set", "b0", "up"]);
    nm.ip(&["link", "set", "m0", "up"]);
    nm.ip(&["link", "set", "m1", "up"]);

    const N: usize = 1 << 20;
    let data = pattern(N);
    let stop = AtomicBool::new(false);
    let (backend, got, (s0, s1)) = std::thread::scope(|s| {
        let _guard = StopOnDrop(&stop);
        let (tx, rx) = mpsc::channel();
        let fwd = s.spawn(|| {
            nm.enter();
            forwarder(tx, &stop)
        });
        let backend = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("forwarder ready");
        let got = common::tcp_through(&na, &nb, &data);
        stop.store(true, Ordering::Relaxed);
        (backend, got, fwd.join().unwrap())
    });
    eprintln!("backend {backend}\nm0 {s0:?}\nm1 {s1:?}");
    assert_eq!(backend, "af_xdp (native, copy)");
    assert_eq!(got.len(), N);
    assert!(got == data, "payload corrupted");
    assert!(
        s0.rx.csum_completed + s1.rx.csum_completed > 0,
        "no partial checksum completed: {s0:?} {s1:?}"
    );
    assert_eq!(s0.rx.bad_desc + s1.rx.bad_desc, 0);
    assert_eq!(s0.tx.oversize + s1.tx.oversize, 0);
    assert_eq!(s0.rx.kernel_drops, 0, "super-frames reached XDP: {s0:?}");
}

/// The `verify` policy leaves partial checksums alone (the pipeline would
/// drop them), `complete` fixes them, `trust` marks everything verified.
#[test]
fn rx_checksum_policies_on_partial_checksums() {
    let ns = Netns::new();
    veth_pair(&ns, "c0", "c1");
    ns.ip(&["addr", "add", "10.7.0.1/24", "dev", "c0"]);
    ns.ip(&[
        "neigh",
        "add",
        "10.7.0.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "c0",
    ]);
    for (policy, want_ok) in [
        (RxChecksum::Verify, false),
        (RxChecksum::Complete, true),
        (RxChecksum::Trust, true),
    ] {
        ns.run(|| {
            let c = XdpConf {
                rx_checksum: policy,
                ..conf(0)
            };
            let mut q = XdpQueue::open("c1", &c).expect("open c1");
            // A UDP socket on c0 with TX checksum offload (veth default):
            // the datagram leaves with a partial checksum.
            let u = UdpSocket::bind("10.7.0.1:0").unwrap();
            u.send_to(b"partial checksum please", "10.7.0.2:9999")
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut seen = None;
            while seen.is_none() && Instant::now() < deadline {
                let b = q.rx.burst(BURST);
                for p in b.iter() {
                    let f = p.frame();
                    if f.len() > 37 && f[23] == 17 && f[36..38] == 9999u16.to_be_bytes() {
                        seen = Some(p.csum_ok);
                    }
                }
                if b.is_empty() {
                    q.rx.release();
                    wait_any(&[q.fd()], 10).unwrap();
                }
            }
            assert_eq!(seen, Some(want_ok), "{policy:?}");
            let st = q.stats();
            if policy == RxChecksum::Complete {
                assert_eq!(st.rx.csum_completed, 1, "{st:?}");
            }
        });
    }
}

/// Whether the program is gone from `ifname` within 3 s.
fn detached_soon(ifname: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if attached_prog_id(ifname).unwrap() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The program goes when the queue goes: no XDP is left on the device
/// (checked with `ip link show`), and the next open works.
#[test]
fn program_detaches_when_the_queue_is_dropped() {
    let ns = Netns::new();
    veth_pair(&ns, "d0", "d1");
    assert!(!ip_shows_xdp(&ns, "d0"));
    ns.run(|| {
        let q = XdpQueue::open("d0", &conf(0)).expect("open d0");
        assert_ne!(attached_prog_id("d0").unwrap(), 0);
        assert!(ip_shows_xdp(&ns, "d0"), "no xdp while open");
        drop(q);
        // The kernel releases a link whose last descriptor closed
        // asynchronously: give it a moment, boundedly.
        assert!(detached_soon("d0"), "xdp left after drop");
        assert!(!ip_shows_xdp(&ns, "d0"), "xdp left after drop");
        // A port without its queues keeps the program; dropping all ends it.
        let mut p = XdpPort::open("d0", &conf(0)).expect("reopen d0");
        let qs = p.take_queues();
        drop(p);
        assert!(ip_shows_xdp(&ns, "d0"), "queues alive: program stays");
        drop(qs);
        assert!(detached_soon("d0"), "xdp left after the last queue");
        assert!(!ip_shows_xdp(&ns, "d0"));
    });
}

/// Child side of the crash test: opens a queue on the interface named by
/// the environment, says so, and waits to be killed.
#[test]
fn crash_child() {
    let (Ok(ns), Ok(dev), Ok(how)) = (
        std::env::var("RVS_XDP_CHILD_NS"),
        std::env::var("RVS_XDP_CHILD_DEV"),
        std::env::var("RVS_XDP_CHILD_HOW"),
    ) else {
        return; // not run as the child: nothing to do
    };
    let ns = Netns { name: ns };
    ns.enter();
    let _q = if how == "legacy" {
        attach_legacy(&dev).expect("legacy attach");
        None
    } else {
        Some(XdpQueue::open(&dev, &conf(0)).expect("child open"))
    };
    println!("READY");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
    // Never drop `ns` (the parent owns the namespace).
    std::mem::forget(ns);
}

fn run_child_and_kill(ns: &Netns, dev: &str, how: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("RVS_XDP_CHILD_NS", &ns.name)
        .env("RVS_XDP_CHILD_DEV", dev)
        .env("RVS_XDP_CHILD_HOW", how)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut out = child.stdout.take().unwrap();
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = [0u8; 256];
    while !String::from_utf8_lossy(&buf).contains("READY") {
        assert!(Instant::now() < deadline, "child never ready");
        match out.read(&mut b) {
            Ok(0) => panic!("child exited: {}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&b[..n]),
            Err(e) => panic!("read child: {e}"),
        }
    }
    assert!(ip_shows_xdp(ns, dev), "child attached nothing");
    // SIGKILL: no destructor runs.
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A process killed with the program attached leaves nothing that blocks
/// the next start: its BPF link dies with it; and a program of ours
/// attached the old way (netlink, which outlives processes) is detached at
/// the next open. Someone else's program is refused, not removed.
#[test]
fn stale_program_from_a_killed_process_does_not_block_the_next_start() {
    let ns = Netns::new();
    veth_pair(&ns, "k0", "k1");
    run_child_and_kill(&ns, "k0", "link");
    let deadline = Instant::now() + Duration::from_secs(3);
    while ip_shows_xdp(&ns, "k0") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ip_shows_xdp(&ns, "k0"), "link outlived the killed process");
    ns.run(|| drop(XdpQueue::open("k0", &conf(0)).expect("open after a crash")));

    run_child_and_kill(&ns, "k0", "legacy");
    assert!(
        ip_shows_xdp(&ns, "k0"),
        "a netlink attachment outlives its process"
    );
    ns.run(|| {
        let q = XdpQueue::open("k0", &conf(0)).expect("open over a stale rvs program");
        drop(q);
    });
    assert!(!ip_shows_xdp(&ns, "k0"), "stale program left after the run");

    // A live queue holds the device: a second open is refused clearly.
    ns.run(|| {
        let _q = XdpQueue::open("k0", &conf(0)).expect("open");
        let e = XdpQueue::open("k0", &conf(0))
            .err()
            .expect("second open refused");
        assert!(e.to_string().contains("running process"), "{e}");
    });
    assert!(!ip_shows_xdp(&ns, "k0"));
}

/// With two workers, frames to a pool address are steered by destination
/// port: even ports to socket 0, odd ports to socket 1, both sockets bound
/// to veth's single queue with a shared UMEM; each worker transmits too.
#[test]
fn two_sockets_get_even_and_odd_pool_ports() {
    let ns = Netns::new();
    veth_pair(&ns, "s0", "s1");
    ns.run(|| {
        let c = XdpConf {
            workers: 2,
            ..conf(0)
        };
        let mut port = XdpPort::open("s1", &c).expect("open s1 with two sockets");
        let pool = [10, 5, 0, 100];
        port.set_steering(&Steering {
            workers: 2,
            pool_v4: vec![pool],
            ..Steering::default()
        })
        .expect("steering");
        let mut qs = port.take_queues();
        assert_eq!(qs.len(), 2);
        let (m0, m1) = (
            rvs_io::iface::mac_of("s0").unwrap(),
            rvs_io::iface::mac_of("s1").unwrap(),
        );
        let mut sender = XdpQueue::open("s0", &conf(1)).expect("open s0");
        let n = 40u16;
        for i in 0..n {
            let f = udp_frame(m1, m0, [10, 5, 0, 1], pool, 80, 2000 + i, b"steer me");
            assert!(sender.tx.send(&f));
        }
        sender.tx.flush();
        let mut got: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
        let deadline = Instant::now() + Duration::from_secs(3);
        while got[0].len() + got[1].len() < n as usize && Instant::now() < deadline {
            let mut any = 0;
            for (w, q) in qs.iter_mut().enumerate() {
                let b = q.rx.burst(BURST);
                any += b.len();
                for p in b.iter() {
                    let f = p.frame();
                    if f.len() >= 38 && f[6..12] == m0 {
                        got[w].push(u16::from_be_bytes([f[36], f[37]]));
                    }
                }
            }
            if any == 0 {
                for q in qs.iter_mut() {
                    q.rx.release();
                }
                wait_any(&[qs[0].fd(), qs[1].fd()], 10).unwrap();
            }
        }
        assert_eq!(got[0].len() + got[1].len(), n as usize, "{got:?}");
        assert!(got[0].iter().all(|p| p % 2 == 0), "{got:?}");
        assert!(got[1].iter().all(|p| p % 2 == 1), "{got:?}");
        assert_eq!(got[0].len(), n as usize / 2);
        // Both workers transmit through the shared UMEM.
        for (w, q) in qs.iter_mut().enumerate() {
            for i in 0..3u8 {
                let f = udp_frame(m0, m1, pool, [10, 5, 0, 1], 5000 + w as u16, 80, &[i; 30]);
                assert!(q.tx.send(&f));
            }
            q.tx.flush();
        }
        let mut back = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while back < 6 && Instant::now() < deadline {
            let b = sender.rx.burst(BURST);
            back += b.iter().filter(|p| p.frame()[6..12] == m1).count();
            if b.is_empty() {
                sender.rx.release();
                wait_any(&[sender.fd()], 10).unwrap();
            }
        }
        assert_eq!(back, 6);
    });
}
