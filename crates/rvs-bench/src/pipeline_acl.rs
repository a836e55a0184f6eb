//! `rvs-bench pipeline --acl hash-ip|hash-net [--acl-entries N]`: the same
//! cases with a global blacklist made of one large set that none of the
//! bench's clients (172.16.0.0/12) matches, so every new connection pays
//! the lookup and is still accepted. Entries may lie in the clients' /16
//! (only 172.16.0.0/27, where the clients are, and the SNAT hosts'
//! 192.168.96.0/20 stay clear), so the lookup probes there as it would for
//! a client near listed addresses. Also times the check alone for random
//! (cache-cold) source addresses, as a spoofed flood would send them.

use std::sync::Arc;
use std::time::Instant;

use rvs_core::acl::{Hits, IpSet, Lists, Member, RuleList, SetKind, SetOpts, Target};
use rvs_core::addr::{proto, Addr};
use rvs_core::pipeline::{Packet, Verdict, Worker};
use rvs_core::snapshot::Snapshot;

/// Which set the blacklist holds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclBench {
    /// No list (the default).
    None,
    /// A hash:ip set of random hosts.
    HashIp,
    /// A hash:net set of random prefixes, /8 to /32.
    HashNet,
}

impl AclBench {
    /// The option's value.
    pub fn name(self) -> &'static str {
        match self {
            AclBench::None => "none",
            AclBench::HashIp => "hash-ip",
            AclBench::HashNet => "hash-net",
        }
    }
}

/// The bench clients' networks, which no entry may cover.
const CLIENTS: [(u32, u8); 2] = [(0xac10_0000, 27), (0xc0a8_6000, 20)];

/// xorshift64 (13, 7, 17): the benchmarks' shuffles and random sources.
pub(crate) fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn overlaps_clients(net: u32, plen: u8) -> bool {
    CLIENTS.iter().any(|(c, l)| {
        let common = plen.min(*l);
        let mask = u32::MAX.checked_shl(u32::from(32 - common)).unwrap_or(0);
        net & mask == c & mask
    })
}

/// The set: `n` distinct members, none covering a client.
pub fn build_set(kind: AclBench, n: usize) -> Option<Arc<IpSet>> {
    let k = match kind {
        AclBench::None => return None,
        AclBench::HashIp => SetKind::HashIp,
        AclBench::HashNet => SetKind::HashNet,
    };
    let opts = SetOpts {
        maxelem: u32::try_from(n).unwrap_or(u32::MAX).max(1),
        ..SetOpts::default()
    };
    let mut set = IpSet::new("bench", k, opts, Arc::new(Hits::new(1))).ok()?;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut batch = Vec::with_capacity(4096);
    while set.len() < n {
        batch.clear();
        while batch.len() < 4096.min(n - set.len()) {
            let r = xorshift(&mut s);
            // Lengths weighted towards long prefixes, as real lists are.
            let plen = match k {
                SetKind::HashNet => {
                    [8u8, 12, 16, 20, 22, 24, 24, 26, 28, 30, 32, 32][(r >> 40) as usize % 12]
                }
                _ => 32,
            };
            let net = (r as u32) & u32::MAX.checked_shl(u32::from(32 - plen)).unwrap_or(0);
            if overlaps_clients(net, plen) {
                continue;
            }
            batch.push(Member::Net {
                addr: Addr::from_v4_bytes(net.to_be_bytes()),
                plen,
            });
        }
        set.add(&batch, false, None, true).ok()?;
    }
    set.finish();
    Some(Arc::new(set))
}

/// `snap` with a global blacklist holding `set`.
pub fn with_blacklist(snap: Snapshot, set: &Option<Arc<IpSet>>) -> Snapshot {
    let Some(set) = set else { return snap };
    let lists = Lists {
        deny: RuleList::new([(Target::Set(set.clone()), Arc::new(Hits::new(1)))]),
        allow: RuleList::default(),
        rejected: Arc::new(Hits::new(1)),
    };
    snap.with_acl(Some(Arc::new(lists)), &[])
}

/// A snapshot with the same parts as `s` (the same service objects), no list.
pub fn twin(s: &Snapshot) -> Snapshot {
    Snapshot::new(
        s.generation,
        s.workers,
        s.ports.clone(),
        s.addrs.clone(),
        s.routes.clone(),
        s.services.clone(),
        s.static_neigh.clone(),
        s.timeouts,
        s.conf.clone(),
    )
}

/// Nanoseconds per check of the bench's own clients (`srcs`, in turn):
/// the lookup as non-matching traffic from a few sources pays it, in cache.
pub fn check_ns_of(snap: &Snapshot, srcs: &[Addr], lookups: usize) -> f64 {
    let mut denied = 0usize;
    let t0 = Instant::now();
    for i in 0..lookups {
        let a = srcs[i % srcs.len().max(1)];
        if snap.acl().check(0, &a, proto::TCP, 80, 0).is_err() {
            denied += 1;
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / lookups.max(1) as f64;
    std::hint::black_box(denied);
    ns
}

/// Nanoseconds per check of a random source (none is denied: the set's
/// entries avoid the client network only, so random sources do match some;
/// the figure is the lookup's cost either way).
pub fn check_ns(snap: &Snapshot, lookups: usize) -> f64 {
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut denied = 0usize;
    let t0 = Instant::now();
    for _ in 0..lookups {
        let a = Addr::from_v4_bytes((xorshift(&mut s) as u32).to_be_bytes());
        if snap.acl().check(0, &a, proto::TCP, 80, 0).is_err() {
            denied += 1;
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / lookups.max(1) as f64;
    std::hint::black_box(denied);
    ns
}

/// Nanoseconds per dependent random read from a `bytes`-sized array (a
/// pointer chase through one random cycle): this machine's memory latency
/// for a table that size, to read `acl_check_ns_random` against.
pub fn chase_ns(bytes: usize, reads: usize) -> f64 {
    let words = (bytes / 8).max(2);
    // Sattolo's shuffle: one cycle through every word.
    let mut v: Vec<u64> = (0..words as u64).collect();
    let mut s = 0x1234_5678_9abc_def1u64;
    for i in (1..words).rev() {
        let j = (xorshift(&mut s) % i as u64) as usize;
        v.swap(i, j);
    }
    let mut at = 0usize;
    let t0 = Instant::now();
    for _ in 0..reads {
        at = v[at] as usize;
    }
    let ns = t0.elapsed().as_nanos() as f64 / reads.max(1) as f64;
    std::hint::black_box(at);
    ns
}

/// Connection creation A/B in one process: `pairs` pairs of chunks of
/// `chunk` SYNs of new flows (`syn(i)` is flow `i`'s frame), each pair run
/// once on `plain` and once on `with` (which goes first alternates), on the
/// same worker whose table fills as it goes. Adjacent chunks see the same
/// machine, which a noisy shared host needs. Returns the median ns per SYN
/// of each and the median of the pairs' differences, in percent.
pub fn ab_new_conns(
    w: &mut Worker,
    plain: &Arc<Snapshot>,
    with: &Arc<Snapshot>,
    pairs: usize,
    chunk: usize,
    syn: impl Fn(usize) -> Vec<u8>,
) -> Result<(f64, f64, f64), String> {
    const BUF: usize = 2048;
    const HEAD: usize = 128;
    let mut next = 0usize;
    let mut run = |w: &mut Worker, snap: &Arc<Snapshot>| -> Result<f64, String> {
        w.set_snapshot(snap.clone(), 1);
        let frames: Vec<Vec<u8>> = (next..next + chunk).map(&syn).collect();
        next += chunk;
        let mut store = vec![0u8; 32 * BUF];
        let mut verdicts = [Verdict::Consumed; 32];
        let t0 = Instant::now();
        for burst in frames.chunks(32) {
            let mut bufs = store.chunks_mut(BUF);
            let mut pkts: Vec<Packet<'_>> = burst
                .iter()
                .map(|f| {
                    let buf = bufs.next().unwrap_or_default();
                    buf[HEAD..HEAD + f.len()].copy_from_slice(f);
                    Packet {
                        buf,
                        head: HEAD,
                        len: f.len(),
                        port: rvs_core::lab::WAN,
                        csum_ok: false,
                    }
                })
                .collect();
            let m = pkts.len();
            w.process_burst(&mut pkts, &mut verdicts[..m], 1);
            if let Some(v) = verdicts[..m]
                .iter()
                .find(|v| !matches!(v, Verdict::Transmit(_)))
            {
                return Err(format!(
                    "A/B: a SYN was not forwarded: {v:?} (drops {:?})",
                    w.drops().nonzero()
                ));
            }
        }
        Ok(t0.elapsed().as_nanos() as f64 / chunk as f64)
    };
    let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (x, y) = if i % 2 == 0 {
            let x = run(w, plain)?;
            (x, run(w, with)?)
        } else {
            let y = run(w, with)?;
            (run(w, plain)?, y)
        };
        a.push(x);
        b.push(y);
        d.push((y - x) / x * 100.0);
    }
    Ok((median(&mut a), median(&mut b), median(&mut d)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
