//! Assembling the daemon: ports, workers, control socket, signals, and the
//! orderly way back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rvs_api::{LinkInfo, LinkStats};
use rvs_core::addr::Mac;
use rvs_core::pipeline::{Learned, Worker, WorkerConf};
use rvs_io::{
    AfPacketConf, AfPacketQueue, RxChecksum, RxRingKind, Steering, Tap, XdpConf, XdpMode, XdpPort,
    XdpQueue,
};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::config::{BackendKind, Config, Netif, RxChecksumConf, RxRingConf, XdpModeConf};
use crate::control::{self, Control, Query, WorkerHandle};
use crate::runtime::{self, PortCounters, RxQ, TxQ, WorkerCtx};
use crate::store::{PortDef, Store};
use crate::takeover::Takeover;

/// Fanout group ids: one per port, derived from the pid so that two daemons
/// in one namespace do not join each other's groups.
fn fanout_id(port: usize) -> u16 {
    ((std::process::id() as u16).wrapping_mul(8)).wrapping_add(port as u16)
}

fn steering(store: &Store, workers: u16) -> Steering {
    let (pools, rss) = store.steering();
    let v4 = |v: &[rvs_core::addr::Addr]| {
        v.iter()
            .filter(|a| a.is_v4())
            .map(|a| a.v4_bytes())
            .collect()
    };
    let v6 = |v: &[rvs_core::addr::Addr]| v.iter().filter(|a| !a.is_v4()).map(|a| a.0).collect();
    Steering {
        workers,
        pool_v4: v4(&pools),
        rs_v4: v4(&rss),
        pool_v6: v6(&pools),
        rs_v6: v6(&rss),
    }
}

/// The AF_XDP settings of port `port` from its `[[netif]]` section.
fn xdp_conf(port: u16, workers: u16, n: &Netif) -> XdpConf {
    let d = XdpConf::default();
    XdpConf {
        port,
        workers,
        mode: match n.xdp_mode {
            XdpModeConf::Auto => XdpMode::Auto,
            XdpModeConf::Native => XdpMode::Native,
            XdpModeConf::Generic => XdpMode::Generic,
        },
        frame_size: n.xdp_frame_size.unwrap_or(d.frame_size),
        frames: n.xdp_frames.unwrap_or(d.frames),
        fill_size: n.xdp_fill_size.unwrap_or(d.fill_size),
        comp_size: n.xdp_comp_size.unwrap_or(d.comp_size),
        rx_size: n.xdp_ring_size.unwrap_or(d.rx_size),
        tx_size: n.xdp_ring_size.unwrap_or(d.tx_size),
        rx_checksum: match n.rx_checksum {
            RxChecksumConf::Verify => RxChecksum::Verify,
            RxChecksumConf::Complete => RxChecksum::Complete,
            RxChecksumConf::Trust => RxChecksum::Trust,
        },
        ..d
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(path: PathBuf, conf: Config) -> Result<(), String> {
    let workers = conf.workers;
    // Ports: what the kernel knows of each interface, then take them over.
    let mut defs = Vec::new();
    for n in &conf.netif {
        let mac = rvs_io::iface::mac_of(&n.iface)
            .map_err(|e| format!("netif {}: interface {}: {e}", n.name, n.iface))?;
        let mtu = match n.mtu {
            Some(m) => m,
            None => rvs_io::iface::mtu_of(&n.iface).map_err(|e| format!("netif {}: {e}", n.name))?
                as u16,
        };
        defs.push(PortDef {
            name: n.name.clone(),
            iface: n.iface.clone(),
            mac: Mac(mac),
            mtu,
            kni: n.kni,
        });
    }
    let mut takeovers = Vec::new();
    for d in &defs {
        takeovers.push(Takeover::take(&d.iface).map_err(|e| format!("netif {}: {e}", d.name))?);
        tracing::info!(
            "took over {} as {} (mac {}, mtu {})",
            d.iface,
            d.name,
            d.mac,
            d.mtu
        );
    }
    let mut taps = Vec::new();
    for d in &defs {
        if d.kni {
            let name = format!("{}.kni", d.name);
            let t = Tap::open(&name, d.mac.0, d.mtu)
                .map_err(|e| format!("cannot create {name}: {e}"))?;
            tracing::info!("exception path {name} up");
            taps.push(Some(Mutex::new(t)));
        } else {
            taps.push(None);
        }
    }
    let taps = Arc::new(taps);

    let store = Store::new(defs.clone(), workers, conf.timeouts(), conf.pipeline_conf());
    let snap = Arc::new(ArcSwap::from_pointee(store.snapshot()));

    // Queues: worker order on every port, so group member index == worker
    // (AF_PACKET fanout); an AF_XDP port opens all its workers' sockets at
    // once and steers with its own XDP program.
    let mut rxs: Vec<Vec<RxQ>> = (0..workers).map(|_| Vec::new()).collect();
    let mut txs: Vec<Vec<TxQ>> = (0..workers).map(|_| Vec::new()).collect();
    let mut backends = Vec::new();
    let mut xdp_ports = Vec::new();
    // Worker 0's AF_PACKET ring fds: any group member updates the group's program.
    let mut steer_rings: Vec<i32> = Vec::new();
    let first_steering = steering(&store, workers);
    for (p, (d, n)) in defs.iter().zip(&conf.netif).enumerate() {
        match n.backend {
            BackendKind::AfPacket => {
                for w in 0..workers as usize {
                    let qc = AfPacketConf {
                        port: p as u16,
                        rx_ring: match n.rx_ring {
                            RxRingConf::V2 => RxRingKind::V2,
                            RxRingConf::V3 => RxRingKind::V3,
                        },
                        fanout: (workers > 1).then(|| fanout_id(p)),
                        ..AfPacketConf::default()
                    };
                    let q = AfPacketQueue::open(&d.iface, &qc).map_err(|e| {
                        format!("netif {}: cannot open AF_PACKET queue: {e}", d.name)
                    })?;
                    let AfPacketQueue { rx, tx } = q;
                    if w == 0 && workers > 1 {
                        if let Err(e) = rvs_io::steer::set_fanout_program(rx.fd(), &first_steering)
                        {
                            tracing::warn!("cannot install the fanout steering program: {e}");
                        }
                        steer_rings.push(rx.fd());
                    }
                    rxs[w].push(RxQ::Packet(rx));
                    txs[w].push(TxQ::Packet(tx));
                }
                backends.push(match n.rx_ring {
                    RxRingConf::V2 => "af_packet (tpacket_v2)".to_string(),
                    RxRingConf::V3 => "af_packet (tpacket_v3)".to_string(),
                });
            }
            BackendKind::AfXdp => {
                let xc = xdp_conf(p as u16, workers, n);
                let mut port = XdpPort::open(&d.iface, &xc)
                    .map_err(|e| format!("netif {}: cannot open AF_XDP queues: {e}", d.name))?;
                port.set_steering(&first_steering)
                    .map_err(|e| format!("netif {}: cannot set XDP steering: {e}", d.name))?;
                for (w, q) in port.take_queues().into_iter().enumerate() {
                    let XdpQueue { rx, tx, .. } = q;
                    rxs[w].push(RxQ::Xdp(rx));
                    txs[w].push(TxQ::Xdp(tx));
                }
                tracing::info!("{} ({}): {}", d.name, d.iface, port.backend());
                backends.push(port.backend());
                xdp_ports.push(port);
            }
        }
    }
    // The fanout groups re-join on restart only: the steering fds stay valid
    // while the workers own the rings. XDP ports are kept (program attached)
    // until the daemon stops.
    let xdp_ports = Mutex::new(xdp_ports);

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    let mut neigh_txs = Vec::new();
    let (learned_tx, learned_rx) = mpsc::channel::<(u16, Learned)>();
    let mut all_counters = Vec::new();
    let nports = defs.len();
    for (w, (rx, tx)) in rxs.into_iter().zip(txs).enumerate() {
        let (qtx, qrx) = mpsc::channel::<Query>();
        let (ntx, nrx) = mpsc::channel::<Learned>();
        neigh_txs.push(ntx);
        let wc = WorkerConf {
            id: w as u16,
            conn_capacity: conf.conn_capacity,
            ..WorkerConf::default()
        };
        let worker = Worker::new(wc, snap.load_full(), 0);
        handles.push(WorkerHandle {
            queries: qtx,
            drops: worker.drops().clone(),
            gauges: worker.gauges().clone(),
        });
        let counters: Arc<Vec<PortCounters>> =
            Arc::new((0..nports).map(|_| PortCounters::default()).collect());
        all_counters.push(counters.clone());
        let ctx = WorkerCtx {
            worker,
            snap: snap.clone(),
            rx,
            tx,
            counters,
            taps: taps.clone(),
            kni_reader: w == 0,
            queries: qrx,
            neigh_in: nrx,
            neigh_out: learned_tx.clone(),
            stop: stop.clone(),
            idle: conf.idle,
            cpu: conf.cpus.get(w).copied(),
            epoch,
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("rvs-worker-{w}"))
                .spawn(move || runtime::run(ctx))
                .map_err(|e| format!("cannot start worker {w}: {e}"))?,
        );
    }
    drop(learned_tx);
    // Neighbour hub: what one worker learns, the others learn too.
    let hub = std::thread::Builder::new()
        .name("rvs-neigh".into())
        .spawn(move || {
            while let Ok((from, l)) = learned_rx.recv() {
                for (i, t) in neigh_txs.iter().enumerate() {
                    if i != from as usize {
                        let _ = t.send(l);
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the neighbour thread: {e}"))?;

    let links_defs = defs.clone();
    let links_backends = backends;
    let links_counters = all_counters.clone();
    let links_drops: Vec<_> = handles.iter().map(|h| h.drops.clone()).collect();
    let links = Box::new(move || {
        links_defs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut s = LinkStats::default();
                for c in &links_counters {
                    let pc = &c[i];
                    let g = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed);
                    s.rx_packets += g(&pc.rx_packets);
                    s.rx_bytes += g(&pc.rx_bytes);
                    s.rx_dropped += g(&pc.rx_dropped);
                    s.tx_packets += g(&pc.tx_packets);
                    s.tx_bytes += g(&pc.tx_bytes);
                    s.tx_dropped += g(&pc.tx_dropped);
                    s.kni_packets += g(&pc.kni_packets);
                }
                // Pipeline drops are per worker, not per port: shown on every port.
                let mut drops: Vec<(String, u64)> = Vec::new();
                for d in &links_drops {
                    for (name, n) in d.nonzero() {
                        match drops.iter_mut().find(|(x, _)| x == name) {
                            Some(e) => e.1 += n,
                            None => drops.push((name.to_string(), n)),
                        }
                    }
                }
                s.drops = drops;
                LinkInfo {
                    index: i as u16,
                    name: d.name.clone(),
                    iface: d.iface.clone(),
                    backend: links_backends.get(i).cloned().unwrap_or_default(),
                    mac: d.mac.to_string(),
                    mtu: d.mtu,
                    up: std::fs::read_to_string(format!("/sys/class/net/{}/operstate", d.iface))
                        .map(|s| s.trim() != "down")
                        .unwrap_or(false),
                    kni: d.kni.then(|| format!("{}.kni", d.name)),
                    stats: s,
                }
            })
            .collect()
    });
    let on_change: control::ChangeHook = Box::new(move |st: &Store| {
        let s = steering(st, workers);
        if workers > 1 {
            for fd in &steer_rings {
                if let Err(e) = rvs_io::steer::set_fanout_program(*fd, &s) {
                    tracing::warn!("cannot update the fanout steering program: {e}");
                }
            }
        }
        if let Ok(ports) = xdp_ports.lock() {
            for p in ports.iter() {
                if let Err(e) = p.set_steering(&s) {
                    tracing::warn!("cannot update the XDP steering addresses: {e}");
                }
            }
        }
    });
    let ctl = Arc::new(Control {
        store: Mutex::new(store),
        snap: snap.clone(),
        workers: handles,
        started: Instant::now(),
        conn_capacity: conf.conn_capacity,
        links,
        on_change,
        reload: reload.clone(),
    });
    let socket = conf.socket_path();
    let server = control::serve(&socket, ctl.clone(), stop.clone())
        .map_err(|e| format!("control socket {socket}: {e}"))?;
    tracing::info!(
        "rvsd {} up: {} worker(s), control socket {socket}",
        env!("CARGO_PKG_VERSION"),
        workers
    );

    // Signals: TERM/INT stop, HUP reloads the file.
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for s in [SIGTERM, SIGINT] {
        signal_hook::flag::register(s, term.clone()).map_err(|e| format!("signal handler: {e}"))?;
    }
    signal_hook::flag::register(SIGHUP, hup.clone()).map_err(|e| format!("signal handler: {e}"))?;
    let mut last_rates = 0u64;
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if hup.swap(false, Ordering::SeqCst) || reload.swap(false, Ordering::SeqCst) {
            match Config::load(&path) {
                Ok(c) => {
                    if let Ok(mut st) = ctl.store.lock() {
                        st.set_timeouts(c.timeouts());
                        st.set_pipeline_conf(c.pipeline_conf());
                        snap.store(Arc::new(st.snapshot()));
                        tracing::info!("reloaded {}: timeouts and [pipeline] applied (ports, workers and capacity need a restart)", path.display());
                    }
                }
                Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
            }
        }
        let now = epoch.elapsed().as_millis() as u64;
        if now >= last_rates + 1000 {
            last_rates = now;
            if let Ok(mut st) = ctl.store.lock() {
                st.sample_rates(now);
            }
        }
    }
    tracing::info!("stopping");
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let _ = server.join();
    drop(ctl);
    let _ = hub.join();
    drop(taps);
    for mut t in takeovers {
        t.restore();
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("stopped; interfaces restored");
    Ok(())
}
