//! The SYN proxy (`rvsadm -j enable`) on the tutorial's FNAT service: a
//! real client's connections work (TOA included) while spoofed SYNs and
//! ACKs from the client namespace never reach a real server and take no
//! local port.

use rvs_e2e::capture::{Capture, Frame};
use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// The TCP flags of an IPv4 TCP frame.
fn tcp_flags(f: &Frame) -> Option<u8> {
    let d = &f.data;
    if f.proto() != Some(6) {
        return None;
    }
    let l4 = 14 + (d[14] & 0xf) as usize * 4;
    d.get(l4 + 13).copied()
}

/// SYNs (without ACK) among `frames`.
fn syns(frames: &[Frame]) -> usize {
    frames
        .iter()
        .filter(|f| tcp_flags(f).is_some_and(|x| x & 0x12 == 0x02))
        .count()
}

/// The counter `reason` in `rvsip -s link show`'s drop lists (the
/// workers' drops, shown alike on every port: the first port's).
fn drops(t: &TwoArm, reason: &str) -> u64 {
    t.ok("rvsip", &["-s", "link", "show"])
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{reason}:")))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// `sa_used` of the local address in `rvsip addr show` (on the line after
/// the address, as dpip prints it).
fn sa_used(t: &TwoArm) -> u64 {
    let out = t.ok("rvsip", &["addr", "show"]);
    let at = out
        .find("192.168.100.200")
        .unwrap_or_else(|| panic!("no local address in:\n{out}"));
    let mut words = out[at..].split_whitespace();
    words
        .find(|w| *w == "sa_used")
        .and_then(|_| words.next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sa_used in:\n{out}"))
}

/// Curls the VIP `n` times; every answer comes from a real server that saw
/// the local address as its peer.
fn curl_ok(t: &TwoArm, n: usize, when: &str) {
    for k in 0..n {
        let body = t
            .lab
            .curl("client", "http://10.0.0.100/")
            .unwrap_or_else(|e| {
                panic!(
                    "curl {k} {when} failed: {e}\n{}\nrvsd log:\n{}",
                    t.ok("rvsip", &["-s", "link", "show"]),
                    t.rvsd_log()
                )
            });
        assert!(body.contains(" 192.168.100.200:"), "{when}: {body}");
    }
}

/// hping3 from the client namespace, bounded: `count` packets with random
/// sources, to the VIP only.
fn flood(t: &TwoArm, kind: &str, count: u32) {
    let c = count.to_string();
    let o = t.lab.exec(
        "client",
        &[
            "hping3",
            "-q",
            kind,
            "-p",
            "80",
            "--rand-source",
            "-c",
            &c,
            "--faster",
            "10.0.0.100",
        ],
    );
    println!(
        "hping3 {kind} -c {count}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

#[test]
fn spoofed_syns_and_acks_never_reach_a_real_server() {
    spoofed_syns_and_acks(1);
}

/// With two workers: the SYN and the ACK of a flow meet on one worker (the
/// client's steering), the real server's answers on the worker owning the
/// local port, which is the one that took it.
#[test]
fn spoofed_syns_and_acks_never_reach_a_real_server_two_workers() {
    spoofed_syns_and_acks(2);
}

fn spoofed_syns_and_acks(workers: u16) {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "tcpdump", "hping3"]);
    let mut t = TwoArm::new(&RvsdOpts {
        workers,
        ..Default::default()
    });
    t.tutorial_fnat();
    t.ok(
        "rvsadm",
        &["-E", "-t", "10.0.0.100:80", "-s", "rr", "-j", "enable"],
    );
    let ln = t.ok("rvsadm", &["-ln"]);
    println!("$ rvsadm -ln\n{ln}");
    assert!(
        ln.lines()
            .any(|l| l.trim_end() == "TCP  10.0.0.100:80 rr synproxy"),
        "{ln}"
    );

    let rs1 = Capture::start(&mut t.lab, "rs1", "eth0", "tcp port 80");
    let rs2 = Capture::start(&mut t.lab, "rs2", "eth0", "tcp port 80");
    let answers = Capture::start(
        &mut t.lab,
        "client",
        "eth0",
        "tcp and src host 10.0.0.100 and tcp[13] == 18",
    );
    curl_ok(&t, 4, "before the flood");
    let used = sa_used(&t);
    flood(&t, "-S", 200);
    flood(&t, "-A", 200);
    let used_after = sa_used(&t);
    curl_ok(&t, 4, "after the flood");
    let frames = [rs1.stop(&mut t.lab), rs2.stop(&mut t.lab)].concat();
    let synacks = answers.stop(&mut t.lab);

    // Eight curls, eight connections, eight SYNs at the real servers: not
    // one for the 200 spoofed SYNs, which rvs answered itself.
    println!(
        "real servers: {} frames, {} SYNs; rvs's SYN-ACKs seen by the client: {}",
        frames.len(),
        syns(&frames),
        synacks.len()
    );
    assert_eq!(syns(&frames), 8, "SYNs reaching the real servers");
    assert!(
        synacks.len() >= 8 + 150,
        "rvs must answer the spoofed SYNs itself ({} SYN-ACKs)",
        synacks.len()
    );
    // The flood took no local port (the curls' connections may expire in
    // between, not grow); the spoofed ACKs were counted and went nowhere.
    println!("sa_used {used} before the flood, {used_after} after it");
    assert!(used_after <= used, "sa_used {used} -> {used_after}");
    let bad = drops(&t, "synproxy_bad_ack");
    println!("synproxy_bad_ack {bad}");
    assert!(
        (1..=200).contains(&bad),
        "the spoofed ACKs must be counted: {bad}"
    );
    // TOA: the real servers still learn the client's address and port.
    let toas: Vec<(u16, [u8; 4])> = frames.iter().filter_map(|f| f.toa()).collect();
    assert!(!toas.is_empty(), "no TOA seen on the real servers' side");
    assert!(toas.iter().all(|(_, ip)| *ip == [10, 0, 0, 48]), "{toas:?}");
}
