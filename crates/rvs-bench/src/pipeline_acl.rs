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

fn xorshift(s: &mut u64) -> u64 {
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
