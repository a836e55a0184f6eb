//! In-memory benchmark of the pipeline: every frame goes through the same
//! `Worker::process_burst` the daemon uses, from a receive buffer (the frame is
//! copied in first, as a NIC would write it) to a verdict.

use std::sync::Arc;
use std::time::Instant;

use crate::pipeline_acl::{self, xorshift, AclBench};
pub(crate) use crate::pipeline_drive::{burst, drive, BurstBufs};
use crate::pipeline_drive::{drive_ab, l2fwd};
use rvs_core::acl::IpSet;

use rvs_core::addr::{proto, Addr, Mac};
use rvs_core::conn::tcp::Timeouts;
use rvs_core::conn::FwdMode;
use rvs_core::lab::{self, DestSpec, FrameSpec};
use rvs_core::pipeline::{Packet, Verdict, Worker, WorkerConf};
use rvs_core::route::{Route, Scope};
use rvs_core::sched::SchedKind;
use rvs_core::service::{Match, ServiceKey};
use rvs_core::snapshot::{PipelineConf, Snapshot};
use rvs_core::wire::tcp::flags::{ACK, PSH, SYN};

/// Arguments of `rvs-bench pipeline`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Established connections in the table while measuring forwarding.
    #[arg(long, default_value_t = 1_000_000)]
    conns: usize,
    /// Packets per measured case.
    #[arg(long, default_value_t = 10_000_000)]
    packets: usize,
    /// Pin the benchmark to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Connection sync on the master while connections are created: `off`;
    /// `ring` (the worker's sync log, drained into records after every
    /// burst: what a worker pays in rvsd); `encode` (also packs the records
    /// into 1472-byte sync messages, the sync thread's work, on the same core).
    #[arg(long, value_enum, default_value_t = SyncBench::Off)]
    sync: SyncBench,
    /// Give the service rate and connection limits that the traffic never
    /// reaches (every kind, for the service and per source): what checking
    /// them costs.
    #[arg(long)]
    limits: bool,
    /// A global blacklist holding one large set that no client matches
    /// (every new connection looks it up): `none`, `hash-ip`, `hash-net`.
    #[arg(long, value_enum, default_value_t = AclBench::None)]
    acl: AclBench,
    /// Members of the `--acl` set.
    #[arg(long, default_value_t = 1_000_000)]
    acl_entries: usize,
    /// Calibrates the `--acl` A/B of connection creation: no list on either
    /// side, so `acl_ab_new_delta_pct` shows the method's own spread.
    #[arg(long)]
    acl_calibrate: bool,
    /// Memory of the connection tables: `auto` (explicit huge pages if
    /// reserved, else transparent huge pages: what rvsd does), `hugetlb`,
    /// `thp`, `off` (the ordinary heap, 4 KiB pages).
    #[arg(long, value_enum, default_value_t = HugeArg::Auto)]
    huge: HugeArg,
    /// Expiry starts its table misses with CPU prefetch instructions (what
    /// rvsd does); `--no-prefetch`: without.
    #[arg(long)]
    no_prefetch: bool,
    /// Only compare the table's memory (heap, huge pages, 1,000 connections
    /// in cache) and expiry's prefetch (churn with and without), taking
    /// turns in one process: ratios that survive a noisy machine.
    #[arg(long)]
    ab_table: bool,
    /// `--ab-table`: rounds of turns.
    #[arg(long, default_value_t = 30)]
    ab_rounds: usize,
    #[command(flatten)]
    workers: crate::pipeline_workers::WorkersArgs,
    /// Only compare the families and a bond's egress (`fnat4`, `fnat4_bond`,
    /// `fnat6`, `nat64`), taking turns in one process with `--conns`
    /// connections each: min / median / max ns per packet and ratios to `fnat4`.
    #[arg(long)]
    families: bool,
    /// `--families`: rounds of turns.
    #[arg(long, default_value_t = 41)]
    fam_rounds: usize,
    /// `--families`: packets per case and direction in each turn.
    #[arg(long, default_value_t = 200_000)]
    fam_packets: usize,
}

/// `--huge` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum HugeArg {
    Auto,
    Hugetlb,
    Thp,
    Off,
}

impl HugeArg {
    fn mode(self) -> rvs_io::mem::HugeMode {
        use rvs_io::mem::HugeMode;
        match self {
            HugeArg::Auto => HugeMode::Auto,
            HugeArg::Hugetlb => HugeMode::HugeTlb,
            HugeArg::Thp => HugeMode::Transparent,
            HugeArg::Off => HugeMode::Off,
        }
    }
}

pub(crate) static NO_PREFETCH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The workers' prefetch, as `--no-prefetch` chose.
pub(crate) fn prefetch() -> Option<rvs_core::conn::mem::Prefetch> {
    let off = NO_PREFETCH.load(std::sync::atomic::Ordering::Relaxed);
    (!off).then_some(rvs_io::mem::prefetch as rvs_core::conn::mem::Prefetch)
}

/// The tables' memory, as `--huge` chose ([`rvs_io::mem::HUGE_PAGES`]).
pub(crate) fn table_mem() -> rvs_core::conn::mem::TableMem {
    rvs_io::mem::HUGE_PAGES.table_mem()
}

/// Limits of every kind, for the service and per source, far above what
/// the benchmark sends (connections, packets and bytes per second in the
/// hundreds of billions; as many connections as the table holds).
fn unreached_limits(n: usize) -> Vec<(u32, Arc<rvs_core::limit::ServiceLimits>)> {
    use rvs_core::limit::{LimitDrops, LimitSet, Rate, ServiceLimits};
    let big = Rate::new(1 << 37, 1 << 37);
    let set = LimitSet {
        conn_rate: big,
        pkt_rate: big,
        byte_rate: big,
        max_conns: u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1),
    };
    vec![(
        1,
        Arc::new(ServiceLimits {
            service: set,
            source: set,
            src_plen_v4: 32,
            src_plen_v6: 128,
            drops: Arc::new(LimitDrops::new(1)),
        }),
    )]
}

/// What `--sync` adds to connection creation.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncBench {
    /// No sync.
    Off,
    /// Sync log and drain.
    Ring,
    /// Sync log, drain and encode.
    Encode,
}

/// The sender's side of connection sync, as the bench runs it after each burst.
struct SyncSide {
    mode: SyncBench,
    buf: [u8; 1472],
    packer_seq: u64,
    msgs: u64,
    records: u64,
}

impl SyncSide {
    fn new(mode: SyncBench, w: &mut Worker) -> SyncSide {
        if mode != SyncBench::Off {
            w.enable_sync_log(4096);
        }
        SyncSide {
            mode,
            buf: [0u8; 1472],
            packer_seq: 1,
            msgs: 0,
            records: 0,
        }
    }

    /// Drains the burst's events (and encodes them with `encode`).
    fn after_burst(&mut self, w: &mut Worker) {
        match self.mode {
            SyncBench::Off => {}
            SyncBench::Ring => {
                let mut n = 0u64;
                w.drain_sync(1, usize::MAX, |r| {
                    std::hint::black_box(r);
                    n += 1;
                });
                self.records += n;
            }
            SyncBench::Encode => {
                let mut recs = [rvs_core::sync::Record::Resync { from_seq: 0 }; 64];
                let mut k = 0;
                w.drain_sync(1, recs.len(), |r| {
                    recs[k] = r;
                    k += 1;
                });
                let mut rest = &recs[..k];
                while !rest.is_empty() {
                    let h = rvs_core::sync::Header {
                        sync_id: 1,
                        node: 1,
                        seq: self.packer_seq,
                    };
                    let Ok((len, c)) = rvs_core::sync::encode(&mut self.buf, h, rest) else {
                        break;
                    };
                    std::hint::black_box(&self.buf[..len]);
                    self.packer_seq += 1;
                    self.msgs += 1;
                    self.records += c as u64;
                    rest = &rest[c..];
                }
            }
        }
    }
}

pub(crate) const BURST: usize = 32;
pub(crate) const BUF: usize = 2048;
pub(crate) const HEAD: usize = 128;
/// The service's port.
pub(crate) const VIP_PORT: u16 = 80;
pub(crate) const FRAME: usize = 64;
const PAYLOAD: [u8; 10] = *b"0123456789";
const RS: u8 = 8;
const GW: Addr = Addr::v4(10, 0, 0, 254);
const GW_MAC: Mac = lab::CLIENT_MAC;

/// Frames of one case, 64 bytes apart, in the order they are sent.
pub(crate) struct Frames {
    pub(crate) data: Vec<u8>,
    pub(crate) lens: Vec<u16>,
    pub(crate) port: u16,
}

impl Frames {
    pub(crate) fn new(port: u16, cap: usize) -> Frames {
        Frames {
            data: Vec::with_capacity(cap * FRAME),
            lens: Vec::with_capacity(cap),
            port,
        }
    }
    pub(crate) fn push(&mut self, spec: &FrameSpec<'_>) {
        let mut f = [0u8; 128];
        let n = spec.build(&mut f);
        assert!(n <= FRAME, "frame of {n} bytes");
        let mut slot = [0u8; FRAME];
        slot[..n].copy_from_slice(&f[..n]);
        self.data.extend_from_slice(&slot);
        self.lens.push(FRAME as u16);
    }
    pub(crate) fn len(&self) -> usize {
        self.lens.len()
    }
    /// Frame `i`.
    pub(crate) fn frame(&self, i: usize) -> &[u8] {
        &self.data[i * FRAME..i * FRAME + self.lens[i] as usize]
    }
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        let j = (xorshift(&mut s) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Client `i`: addresses in 172.16.0.0/12, 60,000 ports each.
pub(crate) fn client(i: usize) -> (Addr, u16) {
    let a = 0xac10_0000u32 + (i / 60_000) as u32 + 1;
    (
        Addr::from_v4_bytes(a.to_be_bytes()),
        1024 + (i % 60_000) as u16,
    )
}

/// Local addresses enough for `n` connections (64,512 ports each).
fn laddrs(n: usize) -> Vec<Addr> {
    (0..n / 60_000 + 2)
        .map(|k| Addr::v4(192, 168, 101 + (k / 250) as u8, 1 + (k % 250) as u8))
        .collect()
}

pub(crate) fn snapshot(mode: FwdMode, n: usize) -> Snapshot {
    let mut routes = lab::routes();
    let _ = routes.add(Route {
        prefix: Addr::v4(0, 0, 0, 0),
        plen: 0,
        gateway: Some(GW),
        port: lab::WAN,
        scope: Scope::Global,
        src: None,
        mtu: 1500,
        metric: 0,
    });
    let _ = routes.add(Route {
        prefix: Addr::v4(192, 168, 96, 0),
        plen: 20,
        gateway: None,
        port: lab::LAN,
        scope: Scope::Link,
        src: None,
        mtu: 1500,
        metric: 0,
    });
    let lips: Vec<_> = laddrs(n).into_iter().map(|a| (a, lab::LAN)).collect();
    let svc = match mode {
        FwdMode::Snat => {
            // LAN hosts 192.168.100.0/24 out through one WAN address per 60,000 conns.
            let m = Match::parse(
                "proto=tcp,src-range=192.168.96.0-192.168.111.255,oif=dpdk1",
                |d| match d {
                    "dpdk0" => Some(0),
                    "dpdk1" => Some(1),
                    _ => None,
                },
            )
            .expect("match");
            let wans: Vec<DestSpec> = (0..n / 60_000 + 2)
                .map(|k| {
                    DestSpec::new(
                        Addr::v4(10, 0, 1 + (k / 250) as u8, 1 + (k % 250) as u8),
                        0,
                        FwdMode::Snat,
                    )
                })
                .collect();
            lab::service(1, ServiceKey::Match(m), SchedKind::Rr, &wans, &[], 0, 1)
        }
        _ => {
            let dests: Vec<DestSpec> = (0..RS)
                .map(|i| DestSpec::new(lab::rs_ip(i), 80, mode))
                .collect();
            lab::service(
                1,
                ServiceKey::Vs {
                    proto: proto::TCP,
                    vip: lab::VIP,
                    vport: 80,
                },
                SchedKind::Rr,
                &dests,
                if mode == FwdMode::Fnat { &lips } else { &[] },
                0,
                1,
            )
        }
    };
    let mut neigh: Vec<_> = (0..RS)
        .map(|i| (lab::rs_ip(i), lab::rs_mac(i), lab::LAN))
        .collect();
    neigh.push((GW, GW_MAC, lab::WAN));
    // SNAT hosts and NAT/FNAT clients are reached through static neighbours / the gateway.
    for h in 0..16u8 {
        neigh.push((
            Addr::v4(192, 168, 100, 100 + h),
            Mac([2, 0, 0, 0, 3, h]),
            lab::LAN,
        ));
    }
    Snapshot::new(
        1,
        1,
        lab::ports(),
        lab::addrs(),
        routes,
        vec![svc],
        neigh,
        Timeouts::default(),
        PipelineConf::default(),
    )
}

/// A worker with `n` connections of `mode` created by SYNs; returns the worker,
/// the seconds the SYNs took, and the in/out data frames of every connection.
pub(crate) fn setup(
    mode: FwdMode,
    n: usize,
    sync: SyncBench,
    limits: bool,
    acl: &Option<Arc<IpSet>>,
) -> Result<(Worker, f64, Frames, Frames), String> {
    let mut snap = snapshot(mode, n);
    if limits {
        snap = snap.with_limits(unreached_limits(n));
    }
    let snap = Arc::new(pipeline_acl::with_blacklist(snap, acl));
    let conf = WorkerConf {
        conn_capacity: n.max(1),
        table_mem: table_mem(),
        prefetch: prefetch(),
        ..WorkerConf::default()
    };
    let mut w = Worker::new(conf, snap, 0);
    let mut sync = SyncSide::new(sync, &mut w);
    let order = shuffled(n, 0x5eed ^ n as u64);
    let flow = |i: usize| -> (Addr, u16, Addr, u16, u16) {
        let (cip, cport) = client(i);
        match mode {
            FwdMode::Snat => {
                // Host 192.168.100.(100..116) to remote 172.16/12.
                let host = Addr::v4(192, 168, 100, 100 + (i % 16) as u8);
                (
                    host,
                    1024 + (i / 16 % 60_000) as u16,
                    cip,
                    80 + (i / 16 / 60_000) as u16,
                    lab::LAN,
                )
            }
            _ => (cip, cport, lab::VIP, 80, lab::WAN),
        }
    };
    let in_port = flow(0).4;
    let mut syns = Frames::new(in_port, n);
    for &i in &order {
        let (s, sp, d, dp, _) = flow(i);
        let mut spec = FrameSpec::tcp(s, sp, d, dp, SYN);
        if in_port == lab::LAN {
            spec.dst_mac = lab::LAN_MAC;
            spec.src_mac = Mac([2, 0, 0, 0, 3, (i % 16) as u8]);
        }
        syns.push(&spec);
    }
    // Create: one pass over the SYNs, recording each connection's translated side.
    let mut outs: Vec<(Addr, u16, Addr, u16)> =
        vec![(Addr::UNSPECIFIED, 0, Addr::UNSPECIFIED, 0); n];
    let mut store = vec![0u8; BUF];
    let t0 = Instant::now();
    let mut made = 0;
    {
        let mut chunk_store = vec![0u8; BURST * BUF];
        let mut verdicts = [Verdict::Consumed; BURST];
        let mut base = 0;
        while base < n {
            let m = BURST.min(n - base);
            let mut chunks = chunk_store.chunks_mut(BUF);
            let mut pkts: [Packet<'_>; BURST] = std::array::from_fn(|_| Packet {
                buf: chunks.next().unwrap_or_default(),
                head: HEAD,
                len: 0,
                port: in_port,
                csum_ok: false,
            });
            for (k, p) in pkts.iter_mut().take(m).enumerate() {
                let idx = base + k;
                p.buf[HEAD..HEAD + FRAME]
                    .copy_from_slice(&syns.data[idx * FRAME..(idx + 1) * FRAME]);
                p.len = FRAME;
            }
            w.process_burst(&mut pkts[..m], &mut verdicts[..m], 1);
            sync.after_burst(&mut w);
            for (k, p) in pkts.iter().take(m).enumerate() {
                if let Verdict::Transmit(_) = verdicts[k] {
                    made += 1;
                    let f = p.frame();
                    let ip = |o: usize| Addr::from_v4_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
                    let l4 = 14 + (f[14] & 0xf) as usize * 4;
                    let port = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
                    outs[order[base + k]] = (ip(26), port(l4), ip(30), port(l4 + 2));
                }
            }
            base += m;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(store.drain(..));
    if sync.mode != SyncBench::Off && (sync.records != n as u64 || w.sync_lost() != 0) {
        return Err(format!(
            "{mode:?}: sync {:?} carried {} records for {n} connections ({} lost)",
            sync.mode,
            sync.records,
            w.sync_lost()
        ));
    }
    w.disable_sync_log();
    if made != n {
        return Err(format!(
            "{mode:?}: only {made} of {n} SYNs created a connection (drops: {:?})",
            w.drops().nonzero()
        ));
    }
    // Data frames in a second, independent shuffle (client side and RS
    // side alike): the k-th data frame is not the k-th connection made, so
    // the store is not walked in the order it was filled (which the
    // hardware prefetcher would hide), as real traffic does not.
    let data_order = shuffled(n, 0xda7a ^ (n as u64).rotate_left(17));
    let mut ins = Frames::new(in_port, n);
    let mut rets = Frames::new(
        if in_port == lab::WAN {
            lab::LAN
        } else {
            lab::WAN
        },
        n,
    );
    for &i in &data_order {
        let (s, sp, d, dp, _) = flow(i);
        let mut spec = FrameSpec {
            payload: &PAYLOAD,
            ..FrameSpec::tcp(s, sp, d, dp, ACK | PSH)
        };
        if in_port == lab::LAN {
            spec.dst_mac = lab::LAN_MAC;
            spec.src_mac = Mac([2, 0, 0, 0, 3, (i % 16) as u8]);
        }
        ins.push(&spec);
        let (osrc, osport, odst, odport) = outs[i];
        // The reply: from the translated destination back to the translated source.
        let mut r = FrameSpec {
            payload: &PAYLOAD,
            ..FrameSpec::tcp(odst, odport, osrc, osport, ACK | PSH)
        };
        if rets.port == lab::LAN {
            r.dst_mac = lab::LAN_MAC;
            r.src_mac = lab::rs_mac(0);
        } else {
            r.dst_mac = lab::WAN_MAC;
            r.src_mac = GW_MAC;
        }
        rets.push(&r);
    }
    Ok((w, secs, ins, rets))
}

fn mpps(packets: usize, secs: f64) -> f64 {
    packets as f64 / secs / 1e6
}

fn ns_per_pkt(packets: usize, secs: f64) -> f64 {
    secs * 1e9 / packets as f64
}

/// `NAME_mpps` and `NAME_ns_per_pkt` of `packets` in `secs`.
fn push_rate(out: &mut Vec<(&str, String)>, name: &'static str, packets: usize, secs: f64) {
    let (m, ns) = RATE_KEYS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, m, ns)| (*m, *ns))
        .unwrap_or(("mpps", "ns_per_pkt"));
    out.push((m, format!("{:.2}", mpps(packets, secs))));
    out.push((ns, format!("{:.1}", ns_per_pkt(packets, secs))));
}

/// The output keys of each case's rate.
const RATE_KEYS: &[(&str, &str, &str)] = &[
    ("l2fwd", "l2fwd_mpps", "l2fwd_ns_per_pkt"),
    ("fnat_in", "fnat_in_mpps", "fnat_in_ns_per_pkt"),
    ("fnat_out", "fnat_out_mpps", "fnat_out_ns_per_pkt"),
    ("fnat_in_tx", "fnat_in_tx_mpps", "fnat_in_tx_ns_per_pkt"),
    ("fnat_out_tx", "fnat_out_tx_mpps", "fnat_out_tx_ns_per_pkt"),
    ("dr", "dr_mpps", "dr_ns_per_pkt"),
    ("nat", "nat_mpps", "nat_ns_per_pkt"),
    ("snat", "snat_mpps", "snat_ns_per_pkt"),
];

/// Runs the benchmark; returns the process exit code.
pub fn run(a: Args) -> i32 {
    rvs_io::mem::HUGE_PAGES.set_mode(a.huge.mode());
    NO_PREFETCH.store(a.no_prefetch, std::sync::atomic::Ordering::Relaxed);
    if a.workers.wanted() {
        return match crate::pipeline_workers::run(&a.workers, a.conns, a.cpu) {
            Ok(out) => {
                print_out(&out, a.json);
                0
            }
            Err(e) => {
                eprintln!("rvs-bench: {e}");
                2
            }
        };
    }
    if let Some(cpu) = a.cpu {
        let ok = core_affinity::get_core_ids()
            .and_then(|ids| ids.into_iter().find(|c| c.id == cpu))
            .is_some_and(core_affinity::set_for_current);
        if !ok {
            eprintln!("rvs-bench: cannot pin to CPU {cpu}");
            return 2;
        }
    }
    let n = a.conns.max(1);
    let p = a.packets.max(BURST);
    if a.families {
        return match crate::pipeline_fam::run(n, a.fam_rounds, a.fam_packets) {
            Ok(out) => {
                print_out(
                    &out.iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect::<Vec<_>>(),
                    a.json,
                );
                0
            }
            Err(e) => {
                eprintln!("rvs-bench: {e}");
                1
            }
        };
    }
    if a.ab_table {
        return match crate::pipeline_ab::run(n, a.ab_rounds, 1 << 20) {
            Ok(out) => {
                print_out(
                    &out.iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect::<Vec<_>>(),
                    a.json,
                );
                0
            }
            Err(e) => {
                eprintln!("rvs-bench: {e}");
                1
            }
        };
    }
    let acl = pipeline_acl::build_set(a.acl, a.acl_entries);
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut fail = None;
    let mut check = |name: &str, total: usize, fwd: usize, bad: Option<Verdict>| {
        if fwd != total && fail.is_none() {
            fail = Some(format!(
                "{name}: {fwd} of {total} forwarded, first other verdict {bad:?}"
            ));
        }
    };

    // FNAT with n connections: new connections, then both directions.
    let (mut w, syn_secs, ins, rets) = match setup(FwdMode::Fnat, n, a.sync, a.limits, &acl) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rvs-bench: {e}");
            return 1;
        }
    };
    let mem = crate::pipeline_mem::Memory::of(&w);
    let huge = rvs_io::mem::HUGE_PAGES.report();
    // Warm-up: the first data segment of each connection carries TOA.
    let (_, fwd, bad) = drive(&mut w, &ins, n, 2);
    check("fnat warm-up", n, fwd, bad);
    let l2 = l2fwd(&ins, p);
    // In place and with the transmit copy, alternating (8 parts each).
    let a_in = drive_ab(&mut w, &ins, p, 3, 8);
    check("fnat_in", p, a_in.fwd[0], a_in.bad);
    check("fnat_in_tx", p, a_in.fwd[1], a_in.bad);
    let a_out = drive_ab(&mut w, &rets, p, 4, 8);
    check("fnat_out", p, a_out.fwd[0], a_out.bad);
    check("fnat_out_tx", p, a_out.fwd[1], a_out.bad);
    push_rate(&mut out, "l2fwd", p, l2);
    push_rate(&mut out, "fnat_in", p, a_in.secs[0]);
    push_rate(&mut out, "fnat_out", p, a_out.secs[0]);
    push_rate(&mut out, "fnat_in_tx", p, a_in.secs[1]);
    push_rate(&mut out, "fnat_out_tx", p, a_out.secs[1]);
    // What the copy into the transmit ring adds per packet (client side),
    // by the clock and by the time the thread ran.
    let per = |s: [f64; 2]| format!("{:.1}", ns_per_pkt(p, s[1]) - ns_per_pkt(p, s[0]));
    out.push(("tx_copy_ns_per_pkt", per(a_in.secs)));
    out.push(("tx_copy_ns_per_pkt_on_cpu", per(a_in.on_cpu)));
    out.push((
        "fnat_in_on_cpu",
        format!("{:.2}", a_in.on_cpu[0] / a_in.secs[0]),
    ));
    out.push(("fnat_new_cps", format!("{:.0}", n as f64 / syn_secs)));
    out.push((
        "sync",
        format!("\"{}\"", format!("{:?}", a.sync).to_lowercase()),
    ));
    let conn_size = std::mem::size_of::<rvs_core::conn::Conn>();
    drop(w);

    // New connections in a steady state: expiry running, slots and ports reused.
    let c = crate::pipeline_churn::run(n);
    out.push(("fnat_churn_cps", format!("{:.0}", c.cps)));
    out.push(("fnat_churn_live", c.live.to_string()));
    out.push(("fnat_churn_refused", c.refused.to_string()));

    // The same with 1,000 connections: the table sits in cache.
    let k = 1000.min(n);
    let (mut w, _, ins, _) = match setup(FwdMode::Fnat, k, SyncBench::Off, a.limits, &acl) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rvs-bench: {e}");
            return 1;
        }
    };
    let _ = drive(&mut w, &ins, k, 2);
    let (s_1k, fwd, bad) = drive(&mut w, &ins, p, 3);
    check("fnat_in_1k", p, fwd, bad);
    out.push(("fnat_in_mpps_1k", format!("{:.2}", mpps(p, s_1k))));
    out.push((
        "fnat_in_ns_per_pkt_1k",
        format!("{:.1}", ns_per_pkt(p, s_1k)),
    ));
    // How much of the in-cache rate survives a table that is not.
    out.push(("fnat_in_over_1k", format!("{:.2}", s_1k / a_in.secs[0])));
    drop(w);

    for (mode, name) in [
        (FwdMode::Dr, "dr"),
        (FwdMode::Nat, "nat"),
        (FwdMode::Snat, "snat"),
    ] {
        let (mut w, _, ins, _) = match setup(mode, n, SyncBench::Off, a.limits, &acl) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("rvs-bench: {e}");
                return 1;
            }
        };
        let (s, fwd, bad) = drive(&mut w, &ins, p, 3);
        check(name, p, fwd, bad);
        push_rate(&mut out, name, p, s);
    }
    out.push(("limits", a.limits.to_string()));
    if let Some(set) = &acl {
        let snap = pipeline_acl::with_blacklist(snapshot(FwdMode::Fnat, 1), &acl);
        let ns = pipeline_acl::check_ns(&snap, 2_000_000);
        out.push(("acl", format!("\"{}\"", a.acl.name())));
        out.push(("acl_entries", set.len().to_string()));
        out.push((
            "acl_set_mib",
            format!("{:.1}", set.memory_bytes() as f64 / (1 << 20) as f64),
        ));
        out.push(("acl_check_ns_random", format!("{ns:.1}")));
        let srcs: Vec<Addr> = (0..n).step_by(60_000).map(|i| client(i).0).collect();
        let ns = pipeline_acl::check_ns_of(&snap, &srcs, 2_000_000);
        out.push(("acl_check_ns_clients", format!("{ns:.1}")));
        let mem = pipeline_acl::chase_ns(2 << 20, 2_000_000);
        out.push(("mem_latency_2mib_ns", format!("{mem:.1}")));
        // New connections with and without the list, alternating in one process.
        let (pairs, chunk) = (20, 32_768);
        let total = pairs * 2 * chunk;
        // Twins of one snapshot: the same service objects on both sides.
        let base = snapshot(FwdMode::Fnat, total);
        let plain = Arc::new(pipeline_acl::twin(&base));
        let listed = if a.acl_calibrate { None } else { acl.clone() };
        let with = Arc::new(pipeline_acl::with_blacklist(
            pipeline_acl::twin(&base),
            &listed,
        ));
        let conf = WorkerConf {
            conn_capacity: total,
            hash_seed: Some(7),
            ..WorkerConf::default()
        };
        let mut w = Worker::new(conf, plain.clone(), 0);
        let syn = |i: usize| {
            let (c, p) = client(i);
            FrameSpec::tcp(c, p, lab::VIP, 80, SYN).to_vec()
        };
        match pipeline_acl::ab_new_conns(&mut w, &plain, &with, pairs, chunk, syn) {
            Ok((x, y, d)) => {
                out.push(("acl_ab_new_ns_plain", format!("{x:.1}")));
                out.push(("acl_ab_new_ns_acl", format!("{y:.1}")));
                out.push(("acl_ab_new_delta_pct", format!("{d:.1}")));
                out.push(("acl_ab_calibration", a.acl_calibrate.to_string()));
            }
            Err(e) => fail = fail.or(Some(e)),
        }
    }
    out.push(("huge", format!("\"{:?}\"", a.huge).to_lowercase()));
    out.push(("table_hugetlb_mib", (huge.hugetlb_bytes >> 20).to_string()));
    out.push(("table_thp_mib", (huge.thp_bytes >> 20).to_string()));
    out.push(("prefetch", (!a.no_prefetch).to_string()));
    out.push(("conns", n.to_string()));
    mem.push(&mut out);
    out.push(("conn_struct_bytes", conn_size.to_string()));
    out.push(("packets_per_case", p.to_string()));
    out.push(("frame_bytes", FRAME.to_string()));
    out.push(("burst", BURST.to_string()));
    if let Some(e) = fail {
        eprintln!("rvs-bench: {e}");
        return 1;
    }
    print_out(&out, a.json);
    0
}

/// Prints the figures (one JSON object with `json`).
fn print_out(out: &[(&str, String)], json: bool) {
    if json {
        let body: Vec<String> = out.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        println!("{{{}}}", body.join(","));
    } else {
        for (k, v) in out {
            println!("{k:<20} {v}");
        }
    }
}
