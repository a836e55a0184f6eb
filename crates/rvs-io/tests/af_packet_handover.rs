//! Hand-over of a port's AF_PACKET queues, its TAP and its lock between two
//! processes (issue 14), as a hot upgrade (the old process freezes) and as a
//! warm standby's promotion (the old process is SIGKILLed and the new one
//! finds the ring cursors itself).
//!
//! The test process is the orchestrator: it builds a namespace with a veth
//! pair `ho0`/`ho1`, sends a numbered UDP stream over 8 flows into `ho0`,
//! and runs processes A (the old rvs) and B (the new one) by re-running this
//! test binary with [`ROLE`] set (test `child_process_entry`, which does
//! nothing otherwise). A opens `ho1` with two worker queues in a fanout
//! group steered by rvs's cBPF program, a TAP `ho1.kni` and a port lock, and
//! records every datagram it receives (queue, sequence number, monotonic
//! time) in a file, one write per burst. Mid-stream it passes manifest and
//! descriptors to B with `rvs_io::fdpass`; B validates and maps them and
//! answers READY; then A freezes and exits (or is killed), and B goes on
//! recording. The orchestrator checks the union of both records.

mod common;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::procs::{say, Proc, Scratch};
use common::{udp_frame, veth_pair, Netns};
use rvs_io::af_packet::handover::{self, decode_cursors, encode_cursors};
use rvs_io::af_packet::PacketManifest;
use rvs_io::iface::{if_index, mac_of};
use rvs_io::lock::{adopt_lock, try_lock_exclusive};
use rvs_io::{
    fdpass, AfPacketConf, AfPacketQueue, Port, Queue, RxQ, RxRing, RxRingKind, Steering, Tap, TxQ,
    TxRing, BURST,
};

/// Set to "a" or "b" in a child process.
const ROLE: &str = "RVS_IO_HANDOVER_ROLE";
/// The test the children run.
const ENTRY: &str = "child_process_entry";
const NS: &str = "RVS_IO_HANDOVER_NS";
const DIR: &str = "RVS_IO_HANDOVER_DIR";
/// "freeze" or "kill".
const MODE: &str = "RVS_IO_HANDOVER_MODE";
/// "v2" or "v3".
const RING: &str = "RVS_IO_HANDOVER_RING";

const PORT_IF: &str = "ho1";
const GEN_IF: &str = "ho0";
const TAP: &str = "ho1.kni";
const TAP_MAC: [u8; 6] = [0x02, 0x52, 0x56, 0x53, 0x00, 0x02];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x77, 0x02];
const CLIENT: [u8; 4] = [10, 8, 0, 1];
const DST: [u8; 4] = [10, 8, 0, 2];
const DPORT: u16 = 9999;
/// Flows (source ports 7..15): the steering key `(saddr ^ sport) % 2`
/// splits them 4/4 over the two queues.
const FLOWS: u16 = 8;
/// Datagrams in the stream, and the one after which A hands over.
const TOTAL: u64 = 12_000;
const HANDOVER_AT: u64 = 3_000;
/// V3 block size (the smallest that holds a GSO super-frame).
const RV3_BLOCK: u32 = 128 << 10;

// fdpass frame kinds of this test's little protocol.
const K_PACKET: u16 = 1;
const K_TAP: u16 = 2;
const K_LOCK: u16 = 3;
const K_READY: u16 = 4;
const K_CURSORS: u16 = 5;

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Rings deep enough for a process starved for a few hundred ms on a
/// loaded machine. V2: 8192 slots per queue, about 800 ms of this stream.
/// V3: at this rate the kernel retires a block every `retire_ms` (rounded
/// up to the tick) with a few dozen frames in it, so a ring holds
/// `block_count` timer periods of traffic whatever its bytes: 128 blocks,
/// 250 to 500 ms.
fn queue_conf(kind: RxRingKind, fanout: Option<u16>) -> AfPacketConf {
    let (block_size, block_count) = match kind {
        RxRingKind::V2 => (1 << 20, 16),
        RxRingKind::V3 => (RV3_BLOCK, 128),
    };
    AfPacketConf {
        rx_ring: kind,
        block_size,
        block_count,
        tx_frames: 256,
        fanout,
        ..AfPacketConf::default()
    }
}

/// The queue rvs's steering sends a flow from CLIENT with source port
/// `sport` to, with two workers.
fn expected_queue(sport: u16) -> usize {
    ((u32::from_be_bytes(CLIENT) ^ u32::from(sport)) % 2) as usize
}

/// (source port, sequence number) of one of our stream's frames.
fn stream_seq(f: &[u8]) -> Option<(u16, u64)> {
    if f.len() < 50 || f[12..14] != [8, 0] || f[23] != 17 || f[36..38] != DPORT.to_be_bytes() {
        return None;
    }
    let sport = u16::from_be_bytes([f[34], f[35]]);
    Some((sport, u64::from_le_bytes(f[42..50].try_into().unwrap())))
}

/// Receives one burst from every ring, appending "queue sport seq t_ns"
/// lines to `log` with one write; returns the highest sequence number seen.
fn receive(rings: &mut [RxRing], log: &mut File) -> Option<u64> {
    let mut text = String::new();
    let mut max = None;
    let now = mono_ns();
    for (q, r) in rings.iter_mut().enumerate() {
        let b = r.burst(BURST);
        for p in b.iter() {
            if let Some((sport, seq)) = stream_seq(p.frame()) {
                text.push_str(&format!("{q} {sport} {seq} {now}\n"));
                max = max.max(Some(seq));
            }
        }
    }
    if text.is_empty() {
        for r in rings.iter_mut() {
            r.release();
        }
        let fds: Vec<_> = rings.iter().map(|r| r.fd()).collect();
        rvs_io::wait_any(&fds, 5).unwrap();
    } else {
        log.write_all(text.as_bytes()).unwrap();
    }
    max
}

/// The entry point of processes A and B: does nothing in a normal test run.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let ns = Netns {
        name: std::env::var(NS).unwrap(),
    };
    ns.enter();
    // The namespace belongs to the orchestrator.
    std::mem::forget(ns);
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let kill = std::env::var(MODE).unwrap() == "kill";
    let kind = match std::env::var(RING).unwrap().as_str() {
        "v3" => RxRingKind::V3,
        _ => RxRingKind::V2,
    };
    match role.as_str() {
        "a" => process_a(&dir, kind, kill),
        "b" => process_b(&dir, kill),
        r => panic!("unknown role {r}"),
    }
}

/// The old process.
fn process_a(dir: &Path, kind: RxRingKind, kill: bool) {
    let group = Some(0x4b1d);
    let qs = vec![
        AfPacketQueue::open(PORT_IF, &queue_conf(kind, group)).expect("worker 0 queue"),
        AfPacketQueue::open(PORT_IF, &queue_conf(kind, group)).expect("worker 1 queue"),
    ];
    let steering = Steering {
        workers: 2,
        ..Steering::default()
    };
    qs[0].set_steering(&steering).expect("steering program");
    let tap = Tap::open(TAP, TAP_MAC, 1500).expect("tap");
    let lock_path = dir.join("port.lock");
    let lock = File::create(&lock_path).unwrap();
    assert!(try_lock_exclusive(&lock).unwrap(), "lock the port");
    let (mut rx, mut tx): (Vec<RxRing>, Vec<TxRing>) = qs.into_iter().map(|q| (q.rx, q.tx)).unzip();
    let mut log = File::create(dir.join("a.txt")).unwrap();
    say("open");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receive(&mut rx, &mut log).is_none_or(|m| m < HANDOVER_AT) {
        assert!(Instant::now() < deadline, "A: the stream did not come");
    }
    // FDS: manifest and descriptors, while A keeps receiving.
    let s = UnixStream::connect(dir.join("sock")).expect("connect to B");
    let (m, fds) = handover::export(PORT_IF, &[&rx[0], &rx[1]]).unwrap();
    let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    fdpass::send(&s, K_PACKET, 1, &m.encode(), &fds).unwrap();
    let mut t = tap.ifindex().unwrap().to_le_bytes().to_vec();
    t.extend_from_slice(TAP.as_bytes());
    fdpass::send(&s, K_TAP, 1, &t, &[tap.as_fd()]).unwrap();
    let p = lock_path.to_str().unwrap().as_bytes();
    fdpass::send(&s, K_LOCK, 1, p, &[lock.as_fd()]).unwrap();
    while rvs_io::wait_any(&[s.as_raw_fd()], 0).unwrap() == 0 {
        receive(&mut rx, &mut log);
        assert!(Instant::now() < deadline, "A: no READY from B");
    }
    let ready = fdpass::recv(&s).unwrap().expect("READY");
    assert_eq!(ready.kind, K_READY);
    if kill {
        hold_and_die(&mut rx, &mut log);
    }
    // FREEZE: flush our TX, give back and report every RX cursor. Our TX
    // sockets close only after the report: closing the last descriptor of a
    // packet socket waits for an RCU grace period (synchronize_net in
    // packet_release), milliseconds that must not sit in the cut-over.
    for t in &mut tx {
        t.flush();
    }
    let cursors: Vec<_> = rx.iter_mut().map(RxRing::freeze).collect();
    fdpass::send(&s, K_CURSORS, 1, &encode_cursors(&cursors), &[]).unwrap();
    // COMMIT (here: at once): our copies of the RX sockets close with the
    // rings, the sockets live on in B.
    drop((rx, tx));
    // Our TAP and lock descriptors close on return: B's copies keep both.
}

/// A crash at the worst moment: a burst taken from each queue and recorded
/// (processed) but not given back to the kernel when the orchestrator
/// SIGKILLs us. The frames arriving meanwhile pile up behind it.
fn hold_and_die(rx: &mut [RxRing], log: &mut File) -> ! {
    std::thread::sleep(Duration::from_millis(10));
    let now = mono_ns();
    let mut text = String::new();
    let held: Vec<_> = rx.iter_mut().map(|r| r.burst(BURST)).collect();
    for (q, b) in held.iter().enumerate() {
        for p in b.iter() {
            if let Some((sport, seq)) = stream_seq(p.frame()) {
                text.push_str(&format!("{q} {sport} {seq} {now}\n"));
            }
        }
    }
    log.write_all(text.as_bytes()).unwrap();
    say("handed");
    std::thread::sleep(Duration::from_secs(20));
    panic!("A: not killed");
}

/// The new process.
fn process_b(dir: &Path, kill: bool) {
    let l = UnixListener::bind(dir.join("sock")).unwrap();
    say("listening");
    let (s, _) = l.accept().unwrap();
    let f = fdpass::recv(&s).unwrap().expect("manifest");
    assert_eq!(f.kind, K_PACKET);
    let m = PacketManifest::decode(&f.payload).unwrap();
    let adopted = handover::adopt(&m, f.fds).expect("adopt the RX sockets");
    let f = fdpass::recv(&s).unwrap().expect("tap");
    let tap_index = u32::from_le_bytes(f.payload[..4].try_into().unwrap());
    let tap_name = std::str::from_utf8(&f.payload[4..]).unwrap().to_string();
    let fd = f.fds.into_iter().next().unwrap();
    let mut tap = Tap::adopt(fd, &tap_name, tap_index).expect("adopt the TAP");
    let f = fdpass::recv(&s).unwrap().expect("lock");
    let path = PathBuf::from(String::from_utf8(f.payload).unwrap());
    let lock = adopt_lock(f.fds.into_iter().next().unwrap(), &path).expect("adopt the lock");
    // Our own TX sockets: not exclusive, nothing to hand over.
    let tx: Vec<TxRing> = (0..2)
        .map(|_| TxRing::open(m.ifindex, 2048, 256).expect("own TX ring"))
        .collect();
    fdpass::send(&s, K_READY, 1, &[], &[]).unwrap();
    let (rx, cursors): (Vec<RxRing>, Vec<_>) = if kill {
        // Promotion: the old process's death closes its end of the stream.
        assert!(fdpass::recv(&s).unwrap().is_none(), "A sent more");
        // What `reconstruct` does, keeping the cursor for the report.
        let c: Vec<_> = adopted.iter().map(|a| a.find_cursor()).collect();
        let rings = adopted.into_iter().zip(c.clone());
        (rings.map(|(a, c)| a.start(c).unwrap()).collect(), c)
    } else {
        let f = fdpass::recv(&s).unwrap().expect("cursors");
        assert_eq!(f.kind, K_CURSORS);
        let c = decode_cursors(&f.payload).unwrap();
        let rings = adopted.into_iter().zip(c.clone());
        (
            rings
                .map(|(a, c)| a.start(c).expect("start at the cursor"))
                .collect(),
            c,
        )
    };
    // The port as the new process keeps it, for later re-steering.
    let queues = rx.into_iter().zip(tx).map(|(r, t)| Queue {
        rx: RxQ::Packet(r),
        tx: TxQ::Packet(t),
    });
    let mut port = Port::adopted_af_packet(queues.collect()).unwrap();
    let (mut rx, tx): (Vec<RxRing>, Vec<TxRing>) = port
        .take_queues()
        .into_iter()
        .map(|q| match (q.rx, q.tx) {
            (RxQ::Packet(r), TxQ::Packet(t)) => (r, t),
            _ => unreachable!("AF_PACKET queues"),
        })
        .unzip();
    let mut resteered = false;
    let mut log = File::create(dir.join("b.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut idle_since = Instant::now();
    loop {
        if let Some(max) = receive(&mut rx, &mut log) {
            idle_since = Instant::now();
            if !resteered && max > TOTAL / 2 {
                // A program change by the new process, through the adopted
                // group: the frames after it are checked as all others.
                let s = Steering {
                    workers: 2,
                    rs_v4: vec![[192, 168, 0, 10]],
                    ..Steering::default()
                };
                port.set_steering(&s)
                    .expect("re-steer from the new process");
                resteered = true;
            }
        } else if dir.join("stop").exists() && idle_since.elapsed() > Duration::from_millis(100) {
            break;
        }
        assert!(Instant::now() < deadline, "B: never told to stop");
    }
    let drops: u64 = rx.iter_mut().map(|r| r.stats().kernel_drops).sum();
    let arp = tap_answers_arp(&mut tap);
    assert!(resteered, "B re-steered the port");
    let mut out = File::create(dir.join("b-end.txt")).unwrap();
    writeln!(
        out,
        "drops {drops}\narp {arp}\ntap_index {tap_index}\ncursors {cursors:?}"
    )
    .unwrap();
    drop((tx, lock));
}

/// Whether the kernel answers an ARP request written to the TAP.
fn tap_answers_arp(tap: &mut Tap) -> bool {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[10, 77, 0, 2, 0, 0, 0, 0, 0, 0, 10, 77, 0, 1]);
    tap.write(&f).expect("write to the adopted TAP");
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match tap.read(&mut buf) {
            Ok(n) if n >= 42 && buf[12..14] == [8, 6] && buf[21] == 2 => {
                return buf[28..32] == [10, 77, 0, 1];
            }
            Ok(_) => {}
            Err(_) => {
                rvs_io::wait_any(&[tap.fd()], 20).unwrap();
            }
        }
    }
    false
}

/// One received datagram: (queue, source port, sequence number, time).
type Rec = (usize, u16, u64, u64);

fn records(path: &Path) -> Vec<Rec> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split(' ')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            (v.len() == 4).then(|| (v[0] as usize, v[1] as u16, v[2], v[3]))
        })
        .collect()
}

/// Sends the numbered stream into GEN_IF, about 20 datagrams per ms, the
/// flows in turn.
fn generate(ns: &Netns) {
    ns.run(|| {
        let mut tx = TxRing::open(if_index(GEN_IF).unwrap(), 2048, 512).unwrap();
        let (src, dst) = (mac_of(GEN_IF).unwrap(), mac_of(PORT_IF).unwrap());
        let mut seq = 0;
        while seq < TOTAL {
            for _ in 0..10 {
                let sport = 7 + (seq % u64::from(FLOWS)) as u16;
                let f = udp_frame(dst, src, CLIENT, DST, sport, DPORT, &seq.to_le_bytes());
                while !tx.send(&f) {
                    tx.flush();
                    std::thread::sleep(Duration::from_micros(200));
                }
                seq += 1;
            }
            tx.flush();
            std::thread::sleep(Duration::from_micros(400));
        }
    });
}

/// What a hand-over run produced.
struct Outcome {
    /// When the orchestrator sent SIGKILL to A.
    killed_at: Option<u64>,
    a: Vec<Rec>,
    b: Vec<Rec>,
    b_end: String,
}

/// Runs A, B and the stream; `kill`: SIGKILL A instead of a freeze.
fn run(ring: &str, kill: bool) -> Outcome {
    let ns = Netns::new();
    veth_pair(&ns, GEN_IF, PORT_IF);
    let dir = Scratch::new("ho");
    let mode = if kill { "kill" } else { "freeze" };
    let d = dir.path().to_str().unwrap();
    let env = |role| {
        [
            (ROLE, role),
            (NS, ns.name.as_str()),
            (DIR, d),
            (MODE, mode),
            (RING, ring),
        ]
    };
    let mut b = Proc::spawn(ENTRY, &env("b"));
    b.expect_line("listening");
    let mut a = Proc::spawn(ENTRY, &env("a"));
    a.expect_line("open");
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", TAP]);
    let killed_at = std::thread::scope(|s| {
        let g = s.spawn(|| generate(&ns));
        let t = kill.then(|| {
            a.expect_line("handed");
            std::thread::sleep(Duration::from_millis(20));
            let t = mono_ns();
            a.sigkill();
            t
        });
        g.join().unwrap();
        t
    });
    let st = a.wait();
    assert!(kill || st.success(), "A failed: {st}");
    // A is gone: the lock must still be held (by B's adopted copy).
    let lock_path = dir.join("port.lock");
    let probe = File::open(&lock_path).unwrap();
    assert!(
        !try_lock_exclusive(&probe).unwrap(),
        "the port lock lapsed with A"
    );
    File::create(dir.join("stop")).unwrap();
    let st = b.wait();
    assert!(st.success(), "B failed: {st}");
    assert!(
        try_lock_exclusive(&probe).unwrap(),
        "the lock is free once B exits"
    );
    let gone = ns.run(|| if_index(TAP).is_err());
    assert!(gone, "{TAP} outlived its last holder B");
    Outcome {
        killed_at,
        a: records(&dir.join("a.txt")),
        b: records(&dir.join("b.txt")),
        b_end: std::fs::read_to_string(dir.join("b-end.txt")).unwrap(),
    }
}

/// The checks every hand-over must pass; `dup_bound`: duplicates allowed
/// per queue. Prints the figures (cut-over gap) and returns the duplicates.
fn check(o: &Outcome, what: &str, dup_bound: usize) -> usize {
    let mut seen = vec![0u8; TOTAL as usize];
    for (side, recs) in [(1u8, &o.a), (2u8, &o.b)] {
        for &(q, sport, seq, _) in recs.iter() {
            assert!(seq < TOTAL, "bogus sequence number {seq}");
            assert_eq!(
                q,
                expected_queue(sport),
                "flow {sport} seq {seq} on the wrong queue (process {side})"
            );
            assert_eq!(
                seen[seq as usize] & side,
                0,
                "seq {seq} twice in one process"
            );
            seen[seq as usize] |= side;
        }
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    if !missing.is_empty() {
        for q in 0..2 {
            let a: Vec<u64> = o.a.iter().filter(|r| r.0 == q).map(|r| r.2).collect();
            let b: Vec<u64> = o.b.iter().filter(|r| r.0 == q).map(|r| r.2).collect();
            eprintln!(
                "queue {q}: A ends {:?}\n B starts {:?}",
                &a[a.len().saturating_sub(50)..],
                &b[..b.len().min(80)]
            );
        }
        eprintln!("{}", o.b_end);
    }
    assert!(
        missing.is_empty(),
        "{what}: {} missing, first {:?}; B's end: {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        o.b_end
    );
    let mut dups = [0usize; 2];
    for &(q, _, seq, _) in &o.b {
        if seen[seq as usize] == 3 {
            dups[q] += 1;
        }
    }
    assert!(
        dups.iter().all(|&d| d <= dup_bound),
        "{what}: duplicates per queue {dups:?} (at most {dup_bound})"
    );
    for q in 0..2 {
        assert!(
            o.b.iter().any(|r| r.0 == q),
            "{what}: B got nothing on queue {q}"
        );
    }
    assert!(
        o.a.len() as u64 >= HANDOVER_AT,
        "{what}: A received before the hand-over"
    );
    assert!(o.b.len() as u64 >= TOTAL / 3, "{what}: B received after it");
    assert!(
        o.b_end.contains("drops 0"),
        "{what}: kernel drops: {}",
        o.b_end
    );
    assert!(
        o.b_end.contains("arp true"),
        "{what}: the adopted TAP: {}",
        o.b_end
    );
    let last_a = o.a.iter().map(|r| r.3).max().unwrap();
    let first_b = o.b.iter().map(|r| r.3).min().unwrap();
    let backlog = o.b.iter().filter(|r| r.3 == first_b).count();
    let (from, t0) = match o.killed_at {
        Some(t) => ("SIGKILL of A", t),
        None => ("last frame read by A", last_a),
    };
    let cursors = o
        .b_end
        .lines()
        .find(|l| l.starts_with("cursors"))
        .unwrap_or("");
    println!(
        "{what}: A {} datagrams, B {}, duplicates {dups:?}, {cursors}, cut-over gap {:.3} ms ({from} to first read by B, whose first round read {backlog})",
        o.a.len(),
        o.b.len(),
        first_b.saturating_sub(t0) as f64 / 1e6
    );
    dups.iter().sum()
}

/// Hot upgrade: A freezes (gives back what it consumed and reports its
/// cursors), B starts exactly there. Nothing is missing and, with exact
/// cursors, nothing is read twice; the bound of one burst per queue is what
/// the design allows (a GSO super-frame being segmented at the freeze is cut
/// again by B; none in this stream).
#[test]
fn freeze_hands_the_queues_over_without_loss_v2() {
    let o = run("v2", false);
    let d = check(&o, "freeze v2", BURST);
    assert_eq!(d, 0, "exact cursors read nothing twice");
}

/// The same with TPACKET_V3 rings: the cursor is a block and the frames of
/// it A already processed.
#[test]
fn freeze_hands_the_queues_over_without_loss_v3() {
    let o = run("v3", false);
    let d = check(&o, "freeze v3", BURST);
    assert_eq!(d, 0, "exact cursors read nothing twice");
}

/// Warm standby: A dies by SIGKILL holding a burst it processed, B finds
/// each cursor in the ring. What A had taken but not given back (at most its
/// last burst per queue: a burst gives the previous one back) is read again
/// by B, nothing is lost.
#[test]
fn killed_owner_is_replaced_by_ring_reconstruction_v2() {
    let o = run("v2", true);
    let d = check(&o, "SIGKILL v2", BURST);
    assert!(
        d > 0,
        "the burst A held is read again (B starts where A stood, not at the kernel's head)"
    );
}

/// The same with V3: B restarts at the oldest block A had not given back,
/// so the frames of it A had processed are read again: at most one block
/// per queue (a block of 128 KiB holds fewer than 512 of these frames).
#[test]
fn killed_owner_is_replaced_by_ring_reconstruction_v3() {
    let o = run("v3", true);
    let d = check(&o, "SIGKILL v3", (RV3_BLOCK / 256) as usize);
    assert!(d > 0, "the block A held is read again");
}

/// Mappings in this process of the sockets behind `fds` (their rings),
/// whoever mapped them ("socket:[inode]" in /proc/self/maps).
fn socket_maps(fds: &[i32]) -> usize {
    let names: Vec<String> = fds
        .iter()
        .map(|fd| {
            let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            l.to_string_lossy().into_owned()
        })
        .collect();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| names.iter().any(|n| l.ends_with(n.as_str())))
        .count()
}

/// A mismatched manifest or descriptor is refused with a message naming
/// what differs, and nothing is left half-taken: no ring of the port stays
/// mapped and the sender's queues keep working.
#[test]
fn adopt_refuses_a_mismatch_and_takes_nothing() {
    let ns = Netns::new();
    veth_pair(&ns, "hm0", "hm1");
    ns.run(|| {
        let group = Some(0x77);
        let mut qs = vec![
            AfPacketQueue::open("hm1", &queue_conf(RxRingKind::V2, group)).unwrap(),
            AfPacketQueue::open("hm1", &queue_conf(RxRingKind::V2, group)).unwrap(),
        ];
        let m = PacketManifest::of("hm1", &[&qs[0].rx, &qs[1].rx]).unwrap();
        let dups = |qs: &[AfPacketQueue]| -> Vec<OwnedFd> {
            qs.iter()
                .map(|q| q.rx.as_fd().try_clone_to_owned().unwrap())
                .collect()
        };
        let ours = [qs[0].fd(), qs[1].fd()];
        let before = socket_maps(&ours);
        assert_eq!(before, 2, "each queue's own ring");
        let refused = |m: &PacketManifest, fds: Vec<OwnedFd>, want: &str| {
            let e = handover::adopt(m, fds)
                .err()
                .expect("a mismatch must be refused");
            assert!(e.to_string().contains(want), "{e} (wanted: {want})");
            assert_eq!(
                socket_maps(&ours),
                before,
                "a ring stayed mapped after: {e}"
            );
        };
        // Queue 1's ring is another size: queue 0 is mapped first, then undone.
        let mut bad = m.clone();
        bad.queues[1].block_count += 1;
        refused(&bad, dups(&qs), "hm1 queue 1: cannot map");
        let mut bad = m.clone();
        bad.queues[1].kind = RxRingKind::V3;
        refused(
            &bad,
            dups(&qs),
            "PACKET_VERSION is TPACKET_V2, the manifest says TPACKET_V3",
        );
        let mut bad = m.clone();
        bad.queues[0].headroom += 64;
        refused(&bad, dups(&qs), "hm1 queue 0: PACKET_RESERVE is 128");
        let mut bad = m.clone();
        bad.fanout = Some(0x78);
        refused(
            &bad,
            dups(&qs),
            "fanout group Some(119), the manifest says Some(120)",
        );
        let mut bad = m.clone();
        bad.version = 99;
        refused(&bad, dups(&qs), "manifest version 99");
        let e = PacketManifest::decode(&bad.encode()).unwrap_err();
        assert!(
            e.to_string()
                .contains("version 99: this build reads version 1"),
            "{e}"
        );
        refused(&m, dups(&qs[..1]), "lists 2 queues, 1 descriptors");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut fds = dups(&qs);
        fds[1] = OwnedFd::from(udp);
        refused(&m, fds, "hm1 queue 1: socket domain 2, not AF_PACKET");
        // A TAP descriptor checked by name, and a non-TAP refused.
        let tap = Tap::open("hm1.kni", TAP_MAC, 1500).unwrap();
        let ix = tap.ifindex().unwrap();
        let e = Tap::adopt(tap.as_fd().try_clone_to_owned().unwrap(), "hm0", ix).unwrap_err();
        assert!(e.to_string().contains("attached to hm1.kni"), "{e}");
        let e = Tap::adopt(dups(&qs).remove(0), "hm1.kni", ix).unwrap_err();
        assert!(e.to_string().contains("no attached TAP"), "{e}");

        // The right manifest is taken (which maps both rings again), and
        // the sender's queues were never disturbed.
        let ok = handover::adopt(&m, dups(&qs)).expect("the matching manifest");
        assert_eq!(
            socket_maps(&ours),
            before + 2,
            "two rings mapped by the adoption"
        );
        drop(ok);
        let mut tx = TxRing::open(if_index("hm0").unwrap(), 2048, 64).unwrap();
        let (src, dst) = (mac_of("hm0").unwrap(), mac_of("hm1").unwrap());
        for sport in 7..15 {
            assert!(tx.send(&udp_frame(
                dst,
                src,
                CLIENT,
                DST,
                sport,
                DPORT,
                &0u64.to_le_bytes()
            )));
        }
        tx.flush();
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while got < 8 && Instant::now() < deadline {
            for q in qs.iter_mut() {
                got += q
                    .rx_burst(BURST)
                    .iter()
                    .filter(|p| stream_seq(p.frame()).is_some())
                    .count();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, 8, "the old queues still receive");
        for q in qs.iter_mut() {
            q.release();
        }

        // Reconstruction on an idle ring (every slot given back): the cursor
        // is inferred from the slots' timestamps; a wrong one would see
        // nothing of what comes next.
        let mut rings: Vec<RxRing> = handover::adopt(&m, dups(&qs))
            .unwrap()
            .into_iter()
            .map(|a| a.reconstruct())
            .collect();
        for sport in 7..15 {
            assert!(tx.send(&udp_frame(
                dst,
                src,
                CLIENT,
                DST,
                sport,
                DPORT,
                &1u64.to_le_bytes()
            )));
        }
        tx.flush();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while got.len() < 8 && Instant::now() < deadline {
            for r in rings.iter_mut() {
                got.extend(r.burst(BURST).iter().filter_map(|p| stream_seq(p.frame())));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got.sort_unstable();
        let want: Vec<(u16, u64)> = (7..15).map(|p| (p, 1)).collect();
        assert_eq!(
            got, want,
            "the reconstructed rings read exactly the new frames"
        );
    });
}
