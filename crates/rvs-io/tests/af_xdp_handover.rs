//! Handing an AF_XDP port from one process to another (issue 14, prototype
//! P1): process A receives and echoes a numbered UDP stream, passes the
//! port's manifest and descriptors to process B over a unix socket
//! (`rvs_io::fdpass`), freezes and exits; B continues. No datagram may be
//! missing, none seen twice, every UMEM frame is accounted for, and the
//! port keeps receiving and sending after A is gone. Both processes are this
//! test binary re-run with a role (`handover_child`). Needs root.

mod common;

use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::procs::{say, Proc, Scratch};
use common::{require_root, veth_pair, Netns};
use rvs_io::af_xdp::{XdpManifest, XdpPoolState};
use rvs_io::{fdpass, wait_any, XdpConf, XdpPort, XdpQueue, BURST};

/// The stream's destination: an address behind the XDP port.
const DST: [u8; 4] = [10, 8, 0, 100];
const DPORT: u16 = 9000;
/// Datagrams per second.
const RATE: u64 = 10_000;
/// The sequence number that ends the stream.
const END: u64 = u64::MAX;

/// fdpass frame kinds of the test's little protocol.
const MANIFEST: u16 = 1;
const POOL: u16 = 2;
const FREEZE: u16 = 3;

fn conf() -> XdpConf {
    XdpConf {
        workers: 2,
        frames: 4096,
        fill_size: 2048,
        comp_size: 1024,
        rx_size: 2048,
        tx_size: 1024,
        ..XdpConf::default()
    }
}

/// CLOCK_MONOTONIC in ns: comparable between the two processes.
fn mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a live timespec the call fills.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The sequence number of a stream datagram (None for any other frame).
fn seq_of(f: &[u8]) -> Option<u64> {
    let stream = f.len() >= 50
        && f[12..14] == [8, 0]
        && f[23] == 17
        && f[30..34] == DST
        && f[36..38] == DPORT.to_be_bytes();
    stream.then(|| u64::from_le_bytes(f[42..50].try_into().unwrap()))
}

/// The datagram sent back to its sender: MACs, addresses and ports swapped
/// (the checksums stay valid).
fn echo(f: &[u8]) -> Vec<u8> {
    let mut e = f.to_vec();
    e[0..6].copy_from_slice(&f[6..12]);
    e[6..12].copy_from_slice(&f[0..6]);
    e[26..30].copy_from_slice(&f[30..34]);
    e[30..34].copy_from_slice(&f[26..30]);
    e[34..36].copy_from_slice(&f[36..38]);
    e[36..38].copy_from_slice(&f[34..36]);
    e
}

/// What a receiving process saw.
#[derive(Default)]
struct Seen {
    seqs: Vec<u64>,
    first_ns: u64,
    last_ns: u64,
    /// The longest time between two received datagrams (the stream's own
    /// jitter, to compare the cut-over gap with).
    max_gap_ns: u64,
    end: bool,
}

/// One round over the worker queues: takes every burst, records the stream,
/// echoes it; when there was nothing, waits up to 1 ms for the queues or
/// `also`. Returns the frames taken.
fn round_or_wait(qs: &mut [XdpQueue], seen: &mut Seen, also: Option<RawFd>) -> usize {
    let mut n = 0;
    for q in qs.iter_mut() {
        let XdpQueue { rx, tx, .. } = q;
        let b = rx.burst(BURST);
        n += b.len();
        for p in b.iter() {
            let Some(s) = seq_of(p.frame()) else { continue };
            if s == END {
                seen.end = true;
                continue;
            }
            let now = mono_ns();
            if seen.seqs.is_empty() {
                seen.first_ns = now;
            } else {
                seen.max_gap_ns = seen.max_gap_ns.max(now - seen.last_ns);
            }
            seen.last_ns = now;
            seen.seqs.push(s);
            tx.send(&echo(p.frame()));
        }
        tx.flush();
    }
    if n == 0 {
        let mut fds: Vec<_> = qs.iter().map(|q| q.fd()).collect();
        fds.extend(also);
        let _ = wait_any(&fds, 1);
    }
    n
}

fn round(qs: &mut [XdpQueue], seen: &mut Seen) -> usize {
    round_or_wait(qs, seen, None)
}

fn write_seen(path: &str, who: &str, seen: &Seen, extra: &str) {
    let seqs: Vec<String> = seen.seqs.iter().map(|s| s.to_string()).collect();
    let text = format!(
        "{who} {} {} {}\n{}\nmax_gap_us {} {extra}\n",
        seen.first_ns,
        seen.last_ns,
        seen.seqs.len(),
        seqs.join(" "),
        seen.max_gap_ns / 1000
    );
    std::fs::write(path, text).expect("write results");
}

/// Whether the stream has bytes to read (or hung up) now.
fn readable(s: &UnixStream) -> bool {
    wait_any(&[s.as_raw_fd()], 0).unwrap_or(0) > 0
}

/// Process A: opens the port, serves until B asks it to freeze, hands the
/// pools over and returns (the process exits).
fn role_a(dev: &str, sock: &str, out: &str) {
    let mut port = XdpPort::open(dev, &conf()).expect("A: open the port");
    let l = UnixListener::bind(sock).expect("A: listen");
    l.set_nonblocking(true).unwrap();
    let mut qs = port.take_queues();
    say("READY");
    let mut seen = Seen::default();
    let mut peer: Option<UnixStream> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "A: B never asked to freeze");
        round_or_wait(&mut qs, &mut seen, peer.as_ref().map(|p| p.as_raw_fd()));
        match &peer {
            None => {
                if let Ok((s, _)) = l.accept() {
                    s.set_nonblocking(false).unwrap();
                    let (m, fds) = port.export().expect("A: export");
                    let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
                    fdpass::send(&s, MANIFEST, m.version, &m.encode(), &b).expect("A: send");
                    peer = Some(s);
                }
            }
            Some(s) if readable(s) => {
                let f = fdpass::recv(s).expect("A: recv").expect("A: B hung up");
                assert_eq!(f.kind, FREEZE);
                let t = mono_ns();
                for q in &mut qs {
                    q.rx.release();
                    q.tx.freeze();
                }
                let st = port.freeze().expect("A: freeze");
                let frozen = mono_ns();
                fdpass::send(s, POOL, st.version, &st.encode(), &[]).expect("A: send pools");
                let sent = mono_ns();
                let extra = format!("freeze_ns {t} frozen_ns {frozen} sent_ns {sent}");
                write_seen(out, "A", &seen, &extra);
                return;
            }
            Some(_) => {}
        }
    }
}

/// Process B: takes the port over from A and serves until the stream ends,
/// then checks where every UMEM frame is.
fn role_b(dev: &str, sock: &str, out: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        match UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("B: connect {sock}: {e}"),
        }
    };
    let f = fdpass::recv(&s).expect("B: recv").expect("B: no manifest");
    assert_eq!(f.kind, MANIFEST);
    let m = XdpManifest::decode(&f.payload).expect("B: manifest");
    let prepared = XdpPort::prepare(dev, &conf(), &m, f.fds).expect("B: prepare");
    let t_freeze = mono_ns();
    fdpass::send(&s, FREEZE, 1, &[], &[]).expect("B: ask to freeze");
    let f = fdpass::recv(&s)
        .expect("B: recv")
        .expect("B: no pool state");
    let t_pool = mono_ns();
    assert_eq!(f.kind, POOL);
    let st = XdpPoolState::decode(&f.payload).expect("B: pool state");
    let mut port = prepared.start(&st).expect("B: start");
    let t_start = mono_ns();
    let mut qs = port.take_queues();
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.end {
        assert!(Instant::now() < deadline, "B: the stream never ended");
        round(&mut qs, &mut seen);
    }
    // Quiet: nothing arrives any more; let the echoes complete.
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        round(&mut qs, &mut seen);
    }
    for q in &mut qs {
        q.rx.release();
        q.tx.flush();
    }
    std::thread::sleep(Duration::from_millis(50));
    let a = port.account(&qs);
    assert!(a.exact(), "B: UMEM frames not accounted exactly: {a:?}");
    let extra = format!(
        "freeze_asked_ns {t_freeze} pool_ns {t_pool} start_ns {t_start} account {a:?} backend {}",
        port.backend()
    );
    write_seen(out, "B", &seen, &extra);
}

/// The two processes' side (run by `port_is_handed_to_another_process_…`
/// with the environment naming the role; returns at once otherwise).
#[test]
fn handover_child() {
    let (Ok(role), Ok(ns), Ok(sock), Ok(out)) = (
        std::env::var("RVS_XDP_HO_ROLE"),
        std::env::var("RVS_XDP_HO_NS"),
        std::env::var("RVS_XDP_HO_SOCK"),
        std::env::var("RVS_XDP_HO_OUT"),
    ) else {
        return; // not run as a child: nothing to do
    };
    let ns = Netns { name: ns };
    ns.enter();
    match role.as_str() {
        "a" => role_a("ho1", &sock, &out),
        _ => role_b("ho1", &sock, &out),
    }
    // The parent owns the namespace.
    std::mem::forget(ns);
}

/// Starts process `role` (a or b) of the hand-over.
fn spawn(role: &str, ns: &Netns, sock: &Path, out: &Path) -> Proc {
    Proc::spawn(
        "handover_child",
        &[
            ("RVS_XDP_HO_ROLE", role),
            ("RVS_XDP_HO_NS", &ns.name),
            ("RVS_XDP_HO_SOCK", &sock.to_string_lossy()),
            ("RVS_XDP_HO_OUT", &out.to_string_lossy()),
        ],
    )
}

/// Waits for `p` to exit and asserts success (its panic, if any, is in
/// the output above: children inherit stderr).
fn wait_ok(p: &mut Proc, who: &str) {
    let st = p.wait();
    assert!(
        st.success(),
        "process {who} failed ({st}): see its output above"
    );
}

/// The sender: numbered datagrams at RATE from four sockets (spread over
/// both workers) until `stop`, then END; counts the echoes, and those of
/// datagrams sent after `a_gone` was set (at `a_gone_seq`).
struct Sender {
    sent: AtomicU64,
    stop: AtomicBool,
    echoes: AtomicU64,
    echoes_after_a: AtomicU64,
    a_gone_seq: AtomicU64,
}

fn send_stream(ns: &Netns, s: &Sender) {
    ns.enter();
    let socks: Vec<UdpSocket> = (0..4)
        .map(|_| {
            let u = UdpSocket::bind("10.8.0.1:0").expect("bind");
            u.set_nonblocking(true).unwrap();
            u
        })
        .collect();
    let dst = (std::net::Ipv4Addr::from(DST), DPORT);
    let mut payload = [0u8; 16];
    let start = Instant::now();
    let mut seq = 0u64;
    let drain = |socks: &[UdpSocket]| {
        let mut b = [0u8; 64];
        for u in socks {
            while let Ok(n) = u.recv(&mut b) {
                if n >= 8 {
                    s.echoes.fetch_add(1, Ordering::Relaxed);
                    let e = u64::from_le_bytes(b[..8].try_into().unwrap());
                    if e >= s.a_gone_seq.load(Ordering::Relaxed) {
                        s.echoes_after_a.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    while !s.stop.load(Ordering::Relaxed) {
        let due = start.elapsed().as_micros() as u64 * RATE / 1_000_000;
        while seq < due {
            payload[..8].copy_from_slice(&seq.to_le_bytes());
            socks[(seq % 4) as usize]
                .send_to(&payload, dst)
                .expect("send");
            seq += 1;
            s.sent.store(seq, Ordering::Relaxed);
        }
        drain(&socks);
        std::thread::sleep(Duration::from_micros(500));
    }
    for _ in 0..5 {
        payload[..8].copy_from_slice(&END.to_le_bytes());
        socks[0].send_to(&payload, dst).expect("send end");
        std::thread::sleep(Duration::from_millis(10));
        drain(&socks);
    }
    let t = Instant::now() + Duration::from_millis(500);
    while Instant::now() < t {
        drain(&socks);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Parses a child's results: (first_ns, last_ns, seqs, the extra line).
fn results(path: &Path) -> (u64, u64, Vec<u64>, String) {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut l = t.lines();
    let h: Vec<&str> = l.next().unwrap().split(' ').collect();
    let seqs = l
        .next()
        .unwrap()
        .split(' ')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect();
    (
        h[1].parse().unwrap(),
        h[2].parse().unwrap(),
        seqs,
        l.next().unwrap_or("").to_string(),
    )
}

/// A numbered stream at 10,000 datagrams/s through a port that process A
/// opened and process B takes over (prepared while A still serves; A
/// freezes, hands its pools over and exits; B starts): every datagram is
/// received exactly once, by A before the cut or B after it; B keeps
/// receiving and echoing after A exited (the kernel objects live on B's
/// descriptors); and at the end every UMEM frame is in exactly one place
/// (asserted in B).
#[test]
fn port_is_handed_to_another_process_with_no_frame_lost() {
    require_root();
    let ns = Netns::new();
    bed(&ns, "ho");
    let dir = Scratch::new("xdp-ho");
    let (sock, out_a, out_b) = (dir.join("ho.sock"), dir.join("a.txt"), dir.join("b.txt"));
    let mut a = spawn("a", &ns, &sock, &out_a);
    a.expect_line("READY");
    let s = Sender {
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        echoes: AtomicU64::new(0),
        echoes_after_a: AtomicU64::new(0),
        a_gone_seq: AtomicU64::new(u64::MAX),
    };
    let gone_at = std::thread::scope(|sc| {
        let sender = sc.spawn(|| send_stream(&ns, &s));
        let run = || {
            std::thread::sleep(Duration::from_millis(300));
            let mut b = spawn("b", &ns, &sock, &out_b);
            wait_ok(&mut a, "A");
            let gone_at = s.sent.load(Ordering::Relaxed);
            s.a_gone_seq.store(gone_at, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(300));
            s.stop.store(true, Ordering::Relaxed);
            wait_ok(&mut b, "B");
            gone_at
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
        s.stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        r.unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let sent = s.sent.load(Ordering::Relaxed);
    let (_, a_last, a_seqs, a_extra) = results(&out_a);
    let (b_first, _, b_seqs, b_extra) = results(&out_b);
    let mut count = vec![0u32; sent as usize];
    for &q in a_seqs.iter().chain(&b_seqs) {
        count[q as usize] += 1;
    }
    let missing: Vec<usize> = (0..count.len()).filter(|&i| count[i] == 0).collect();
    let dups: Vec<usize> = (0..count.len()).filter(|&i| count[i] > 1).collect();
    let gap_us = b_first.saturating_sub(a_last) / 1000;
    let field = |extra: &str, key: &str| -> u64 {
        let mut w = extra.split(' ');
        w.find(|x| *x == key);
        w.next().and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    // Each step of the cut-over, in us before B's first frame.
    let timeline = [
        ("B asks A to freeze", field(&b_extra, "freeze_asked_ns")),
        ("A freezes", field(&a_extra, "freeze_ns")),
        ("A frozen", field(&a_extra, "frozen_ns")),
        ("A sent the pool state", field(&a_extra, "sent_ns")),
        ("B has it", field(&b_extra, "pool_ns")),
        ("B started", field(&b_extra, "start_ns")),
    ]
    .map(|(l, ns)| format!("{l} -{}", b_first.saturating_sub(ns) / 1000))
    .join(", ");
    eprintln!(
        "handover: sent {sent}, A received {}, B {}, missing {}, duplicated {}; cut-over gap \
         (A's last to B's first frame) {gap_us} us; timeline (us before B's first frame): \
         {timeline}; longest gap elsewhere: A {} us, B {} us; echoes {} ({} after A exited at \
         seq {gone_at}); B: {b_extra}",
        a_seqs.len(),
        b_seqs.len(),
        missing.len(),
        dups.len(),
        field(&a_extra, "max_gap_us"),
        field(&b_extra, "max_gap_us"),
        s.echoes.load(Ordering::Relaxed),
        s.echoes_after_a.load(Ordering::Relaxed),
    );
    assert!(missing.is_empty(), "missing seqs {missing:?}");
    assert!(dups.is_empty(), "seqs received twice {dups:?}");
    assert!(!a_seqs.is_empty(), "A received nothing before the cut");
    assert!(
        b_seqs.iter().any(|&q| q >= gone_at),
        "B received nothing sent after A exited (seq {gone_at} on)"
    );
    assert!(
        s.echoes_after_a.load(Ordering::Relaxed) > 0,
        "no echo of a datagram sent after A exited: B's TX does not work"
    );
    assert!(b_extra.contains("account"), "{b_extra}");
}

/// A veth pair `<p>0`/`<p>1` in `ns`, with 10.8.0.1 on `<p>0` and the
/// stream's destination resolved to `<p>1`'s MAC.
fn bed(ns: &Netns, p: &str) {
    let (a, b) = (format!("{p}0"), format!("{p}1"));
    veth_pair(ns, &a, &b);
    let mac = ns.run(|| rvs_io::iface::mac_of(&b).expect("mac"));
    let mac: Vec<String> = mac.iter().map(|x| format!("{x:02x}")).collect();
    ns.ip(&["addr", "add", "10.8.0.1/24", "dev", &a]);
    ns.ip(&[
        "neigh",
        "add",
        "10.8.0.100",
        "lladdr",
        &mac.join(":"),
        "dev",
        &a,
        "nud",
        "permanent",
    ]);
}

/// Sends `n` stream datagrams and returns how many of them `qs` received
/// within two seconds.
fn through(qs: &mut [XdpQueue], n: u64) -> usize {
    let u = UdpSocket::bind("10.8.0.1:0").expect("bind");
    for i in 0..n {
        u.send_to(&i.to_le_bytes(), (std::net::Ipv4Addr::from(DST), DPORT))
            .expect("send");
    }
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(2);
    while (seen.seqs.len() as u64) < n && Instant::now() < deadline {
        round(qs, &mut seen);
    }
    for q in qs.iter_mut() {
        q.rx.release();
        q.tx.freeze();
    }
    std::thread::sleep(Duration::from_millis(50));
    seen.seqs.len()
}

/// `prepare` refuses a manifest that does not match this configuration
/// (another frame size), descriptors that are not what the manifest says
/// (two swapped), a wrong count and another device, each with a message
/// naming what differs; the running port is untouched (it still receives,
/// every frame accounted). The right manifest is then adopted, in this
/// same process, and the adopted port receives.
#[test]
fn prepare_refuses_a_mismatch_and_takes_nothing() {
    require_root();
    let ns = Netns::new();
    bed(&ns, "hr");
    ns.run(|| {
        let mut port = XdpPort::open("hr1", &conf()).expect("open");
        let mut qs = port.take_queues();
        assert_eq!(through(&mut qs, 5), 5);
        let a = port.account(&qs);
        assert!(a.exact(), "{a:?}");

        let (m, fds) = port.export().expect("export");
        let other = XdpConf {
            frame_size: 4096,
            ..conf()
        };
        let e = XdpPort::prepare("hr1", &other, &m, fds)
            .err()
            .expect("refused");
        let e = e.to_string();
        for want in [
            "hr1",
            "frame size: running 2048, configured 4096",
            "restart",
        ] {
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }

        let (m, mut fds) = port.export().expect("export");
        fds.swap(1, 4); // the program and the UMEM memfd
        let e = XdpPort::prepare("hr1", &conf(), &m, fds)
            .err()
            .expect("refused");
        let e = e.to_string();
        for want in [
            "descriptor 1 (Prog)",
            "not a BPF program",
            "descriptor 4 (Umem)",
            "not a memfd",
        ] {
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }

        let (m, mut fds) = port.export().expect("export");
        fds.pop();
        let e = XdpPort::prepare("hr1", &conf(), &m, fds)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("descriptors received"), "{e}");
        let (m, fds) = port.export().expect("export");
        let e = XdpPort::prepare("hr0", &conf(), &m, fds)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("the manifest is for \"hr1\""), "{e}");

        // Nothing taken: the running port still receives, every frame in
        // one place.
        assert_eq!(through(&mut qs, 5), 5);
        let a = port.account(&qs);
        assert!(a.exact(), "{a:?}");

        // The right manifest is adopted (here in the same process).
        let (m, fds) = port.export().expect("export");
        let prepared = XdpPort::prepare("hr1", &conf(), &m, fds).expect("prepare");
        let st = port.freeze().expect("freeze");
        drop(qs);
        drop(port);
        let mut port = prepared.start(&st).expect("start");
        let mut qs = port.take_queues();
        assert_eq!(through(&mut qs, 5), 5);
        let a = port.account(&qs);
        assert!(a.exact(), "{a:?}");
    });
}

fn huge_free() -> usize {
    rvs_io::mem::proc_kb("/proc/meminfo", "HugePages_Free").expect("HugePages_Free")
}

fn set_nr_hugepages(n: usize) {
    std::fs::write("/proc/sys/vm/nr_hugepages", n.to_string())
        .expect("cannot write /proc/sys/vm/nr_hugepages: this test needs root");
}

/// Gives the reserved huge pages back even if the test fails.
struct Reserve(usize);

impl Drop for Reserve {
    fn drop(&mut self) {
        set_nr_hugepages(self.0);
    }
}

/// With `umem_huge_pages` and no free huge page the UMEM falls back to
/// ordinary pages; with some reserved it takes them (HugePages_Free falls)
/// and a port on them (here with a fast-path map too) is handed over like
/// any other.
#[test]
fn umem_on_huge_pages_is_handed_over() {
    require_root();
    let ns = Netns::new();
    bed(&ns, "hh");
    let c = XdpConf {
        workers: 1,
        frames: 1024,
        fill_size: 512,
        comp_size: 512,
        rx_size: 512,
        tx_size: 512,
        fast_entries: 16,
        umem_huge_pages: true,
        ..XdpConf::default()
    };
    if huge_free() == 0 {
        let fell_back = ns.run(|| {
            let port = XdpPort::open("hh1", &c).expect("open without huge pages");
            port.export().expect("export").0.umem_hugetlb
        });
        assert!(!fell_back, "no free huge page, yet the UMEM is on hugetlb");
    }
    let total = rvs_io::mem::proc_kb("/proc/meminfo", "HugePages_Total").expect("total");
    let _restore = Reserve(total);
    set_nr_hugepages(total + 2);
    ns.run(|| {
        let free0 = huge_free();
        let mut port = XdpPort::open("hh1", &c).expect("open on huge pages");
        let (m, fds) = port.export().expect("export");
        assert!(m.umem_hugetlb, "{m:?}");
        assert_eq!(m.memfd_size, 2 << 20);
        assert!(huge_free() < free0, "HugePages_Free stayed at {free0}");
        let mut qs = port.take_queues();
        assert_eq!(through(&mut qs, 5), 5);
        for q in &mut qs {
            q.rx.release();
            q.tx.freeze();
        }
        let st = port.freeze().expect("freeze");
        drop(qs);
        drop(port);
        let mut port = XdpPort::adopt("hh1", &c, &m, fds, &st).expect("adopt");
        assert!(port.fast().is_some(), "the fast-path map was not adopted");
        let mut qs = port.take_queues();
        assert_eq!(through(&mut qs, 5), 5);
        let a = port.account(&qs);
        assert!(a.exact(), "{a:?}");
    });
}
