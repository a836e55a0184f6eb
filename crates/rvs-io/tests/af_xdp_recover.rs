//! The thaw path of a failed hot upgrade on an AF_XDP port, in one process:
//! the old port is frozen, a successor adopts it, receives and transmits,
//! and dies holding a burst and its free frames; the old port rebuilds its
//! pools from the rings (`XdpPort::reconstruct`), its halves re-read their
//! rings, and it receives and sends again with every UMEM frame in exactly
//! one place. (The two-process hand-over is in `af_xdp_handover.rs`.)

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{require_root, veth_pair, Netns};
use rvs_io::{wait_any, XdpConf, XdpPort, XdpQueue, BURST};

const DST: [u8; 4] = [10, 9, 0, 100];
const DPORT: u16 = 9100;

fn conf() -> XdpConf {
    XdpConf {
        workers: 2,
        frames: 1024,
        fill_size: 512,
        comp_size: 512,
        rx_size: 512,
        tx_size: 512,
        ..XdpConf::default()
    }
}

fn is_stream(f: &[u8]) -> bool {
    f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 17 && f[30..34] == DST
}

/// Sends `n` datagrams to the port and takes what arrives within 2 s,
/// echoing each one out; with `hold`, the last non-empty burst of the
/// first queue is left unreleased (as a process that dies mid-round).
fn through(qs: &mut [XdpQueue], n: usize, hold: bool) -> usize {
    let u = UdpSocket::bind("10.9.0.1:0").expect("bind");
    for i in 0..n as u64 {
        u.send_to(&i.to_le_bytes(), (std::net::Ipv4Addr::from(DST), DPORT))
            .expect("send");
    }
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while got < n && Instant::now() < deadline {
        let mut round = 0;
        for q in qs.iter_mut() {
            let XdpQueue { rx, tx, .. } = q;
            let b = rx.burst(BURST);
            round += b.len();
            for p in b.iter().filter(|p| is_stream(p.frame())) {
                got += 1;
                tx.send(p.frame());
            }
            tx.flush();
        }
        if round == 0 {
            let fds: Vec<_> = qs.iter().map(|q| q.fd()).collect();
            let _ = wait_any(&fds, 5);
        }
    }
    if !hold {
        for q in qs.iter_mut() {
            q.rx.release();
            q.tx.freeze();
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    got
}

fn bed(ns: &Netns) {
    veth_pair(ns, "xr0", "xr1");
    let mac = ns.run(|| rvs_io::iface::mac_of("xr1").expect("mac"));
    let mac: Vec<String> = mac.iter().map(|x| format!("{x:02x}")).collect();
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "xr0"]);
    ns.ip(&[
        "neigh",
        "add",
        "10.9.0.100",
        "lladdr",
        &mac.join(":"),
        "dev",
        "xr0",
        "nud",
        "permanent",
    ]);
}

/// A successor that started on the frozen port and died holding frames:
/// the old port takes it back by reconstruction, receives and transmits,
/// and accounts for every frame. Without the reconstruction the old pools
/// still list as free the frames the successor moved into the fill ring
/// (asserted: the account is not exact before).
#[test]
fn the_old_port_takes_back_a_dead_successors_rings_by_reconstruction() {
    require_root();
    let ns = Netns::new();
    bed(&ns);
    ns.run(|| {
        let mut port = XdpPort::open("xr1", &conf()).expect("open");
        let mut qs = port.take_queues();
        assert_eq!(through(&mut qs, 20, false), 20);
        assert!(port.account(&qs).exact());

        // Freeze; the successor adopts and runs, then dies mid-round.
        let (m, fds) = port.export().expect("export");
        let prepared = XdpPort::prepare("xr1", &conf(), &m, fds).expect("prepare");
        let st = port.freeze().expect("freeze");
        let mut new = prepared.start(&st).expect("start");
        let mut nqs = new.take_queues();
        assert_eq!(through(&mut nqs, 200, true), 200, "the successor receives");
        drop(nqs);
        drop(new);

        // The old pools are stale: frames listed free are in the rings.
        let stale = port.account(&qs);
        assert!(
            !stale.exact(),
            "the successor's moves are invisible: {stale:?}"
        );

        let r = port.reconstruct().expect("reconstruct");
        for q in &mut qs {
            q.rx.resync();
            q.tx.resync();
        }
        assert!(r.free > 0 && r.fill > 0, "{r:?}");
        assert_eq!(through(&mut qs, 200, false), 200, "the old port receives");
        let a = port.account(&qs);
        assert!(a.exact(), "after reconstruction: {a:?}");
    });
}
