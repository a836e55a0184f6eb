//! The XDP fast path: established IPv4 TCP/UDP flows translated and sent
//! back out inside the XDP program, from a hash map (`rvs_fast`) the
//! workers keep in step with their connection tables. What the program
//! does before steering, in C:
//!
//! ```c
//! struct key { u32 saddr, daddr; u16 sport, dport; u32 proto; };
//! // A CHECKSUM_PARTIAL segment (its L4 checksum field holds the folded
//! // pseudo-header sum: a local sender with TX checksum offload, e.g. a veth
//! // peer; XDP has no metadata to complete it later) is left to the worker.
//! if (eth->proto == IPv4 && ip->ihl == 5 && !(ip->frag_off & (MF|OFFSET))
//!     && ip->ttl > 1 && (ip->proto == UDP
//!         || (ip->proto == TCP && !(tcp->flags & (SYN|FIN|RST))))) {
//!     struct fast_val *v = bpf_map_lookup_elem(&fast, &key);
//!     if (v && l4->check != fold(pseudo_header_sum(ip))) {
//!         eth->dst, eth->src = v->dmac, v->smac;
//!         ip->ttl--; ip->saddr, ip->daddr = v->saddr, v->daddr;
//!         ip->check = ~(~ip->check +' v->ip_delta);          // +' : one's complement
//!         l4->sport, l4->dport = v->sport, v->dport;
//!         if (TCP || l4->check != 0)                          // UDP 0: no checksum
//!             l4->check = ~(~l4->check +' v->l4_delta) ?: (UDP ? 0xffff : 0);
//!         atomic_add(&v->packets, 1); atomic_add(&v->bytes, len);
//!         return v->ifindex == ctx->ingress_ifindex ? XDP_TX
//!                                                   : bpf_redirect(v->ifindex, 0);
//!     }
//! }
//! // miss: the steering program, unchanged
//! ```
//!
//! The deltas (RFC 1624: the one's-complement sum of the old 16-bit words
//! complemented and the new words) are computed here, once per flow, by
//! [`FastFlow::value`]; the IP delta includes the TTL decrement.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::bpf;
use super::prog::{
    Asm, Label, ADD, ALU64, AND, B, DW, FN_MAP_LOOKUP_ELEM, H, JEQ, JLT, JNE, K, R0, R1, R10, R2,
    R3, R6, R7, R8, R9, STX, W, XOR,
};

/// Key size: saddr, daddr, sport, dport (as on the wire), protocol (u32).
pub(crate) const KEY_LEN: usize = 16;
/// Value size, see [`FastFlow::value`].
pub(crate) const VALUE_LEN: usize = 48;

// Value offsets.
const V_PACKETS: i16 = 0;
const V_BYTES: i16 = 8;
const V_MACS: i16 = 16;
const V_IFINDEX: i16 = 28;
const V_ADDRS: i16 = 32;
const V_PORTS: i16 = 40;
const V_IP_DELTA: i16 = 44;
const V_L4_DELTA: i16 = 46;

/// The key on the stack (below the steering program's fields).
const FK: i16 = -64;

const RSH: u8 = 0x70;
const R4: u8 = 4;
/// BPF_STX | BPF_ATOMIC (0xc0) | BPF_DW, imm BPF_ADD.
const ATOMIC_DW: u8 = STX | 0xc0 | DW;
const FN_REDIRECT: i32 = 23;
const XDP_TX: i32 = 3;

/// One direction of a flow the program forwards: the frame it matches and
/// what it becomes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FastFlow {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Matched source address.
    pub saddr: [u8; 4],
    /// Matched destination address.
    pub daddr: [u8; 4],
    /// Matched source port.
    pub sport: u16,
    /// Matched destination port.
    pub dport: u16,
    /// Rewritten source address.
    pub new_saddr: [u8; 4],
    /// Rewritten destination address.
    pub new_daddr: [u8; 4],
    /// Rewritten source port.
    pub new_sport: u16,
    /// Rewritten destination port.
    pub new_dport: u16,
    /// Destination MAC (the next hop's).
    pub dmac: [u8; 6],
    /// Source MAC (the out port's).
    pub smac: [u8; 6],
    /// The out port's interface index (XDP_TX when it is the in port).
    pub ifindex: u32,
}

/// Adds to `sum` the 16-bit words of `new` and the complements of those
/// of `old` (native order, as the program loads them).
fn delta(sum: &mut u32, old: &[u8], new: &[u8]) {
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        *sum += u32::from(!u16::from_ne_bytes([o[0], o[1]]));
        *sum += u32::from(u16::from_ne_bytes([n[0], n[1]]));
    }
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

impl FastFlow {
    /// A flow matching these fields, rewritten to nothing yet (for
    /// [`FastMap::remove`] and [`FastMap::count`], which use the match only).
    pub fn matching(proto: u8, saddr: [u8; 4], daddr: [u8; 4], sport: u16, dport: u16) -> FastFlow {
        FastFlow {
            proto,
            saddr,
            daddr,
            sport,
            dport,
            new_saddr: [0; 4],
            new_daddr: [0; 4],
            new_sport: 0,
            new_dport: 0,
            dmac: [0; 6],
            smac: [0; 6],
            ifindex: 0,
        }
    }

    /// The map key.
    pub(crate) fn key(&self) -> [u8; KEY_LEN] {
        let mut k = [0u8; KEY_LEN];
        k[0..4].copy_from_slice(&self.saddr);
        k[4..8].copy_from_slice(&self.daddr);
        k[8..10].copy_from_slice(&self.sport.to_be_bytes());
        k[10..12].copy_from_slice(&self.dport.to_be_bytes());
        k[12..16].copy_from_slice(&u32::from(self.proto).to_ne_bytes());
        k
    }

    /// The map value: counters (0), MACs, ifindex, new addresses and ports,
    /// and the two checksum deltas.
    pub(crate) fn value(&self) -> [u8; VALUE_LEN] {
        let mut v = [0u8; VALUE_LEN];
        v[16..22].copy_from_slice(&self.dmac);
        v[22..28].copy_from_slice(&self.smac);
        v[28..32].copy_from_slice(&self.ifindex.to_ne_bytes());
        v[32..36].copy_from_slice(&self.new_saddr);
        v[36..40].copy_from_slice(&self.new_daddr);
        v[40..42].copy_from_slice(&self.new_sport.to_be_bytes());
        v[42..44].copy_from_slice(&self.new_dport.to_be_bytes());
        let (mut ip, mut l4) = (0u32, 0u32);
        let old = [self.saddr, self.daddr].concat();
        let new = [self.new_saddr, self.new_daddr].concat();
        delta(&mut ip, &old, &new);
        // TTL and protocol share a word: TTL 64 -> 63 stands for any t -> t-1.
        delta(&mut ip, &[64, self.proto], &[63, self.proto]);
        delta(&mut l4, &old, &new);
        let ports = |a: u16, b: u16| [a.to_be_bytes(), b.to_be_bytes()].concat();
        delta(
            &mut l4,
            &ports(self.sport, self.dport),
            &ports(self.new_sport, self.new_dport),
        );
        v[44..46].copy_from_slice(&fold(ip).to_ne_bytes());
        v[46..48].copy_from_slice(&fold(l4).to_ne_bytes());
        v
    }
}

/// Packets and bytes the program forwarded for one direction.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FastCount {
    /// Frames.
    pub packets: u64,
    /// Bytes (Ethernet frames).
    pub bytes: u64,
}

/// The fast-path map of a port.
pub struct FastMap {
    pub(crate) fd: OwnedFd,
}

impl FastMap {
    /// Creates an empty map of at most `entries` directions.
    pub(crate) fn create(entries: u32) -> io::Result<FastMap> {
        let l = super::abi::FAST;
        let fd = bpf::map_create(l.kind, l.key_size, l.value_size, entries.max(1), l.name)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("creating the XDP fast-path map: {e}"))
            })?;
        Ok(FastMap { fd })
    }

    /// Installs (or replaces, counters reset) the direction `f`.
    pub fn insert(&self, f: &FastFlow) -> io::Result<()> {
        bpf::map_update(self.fd.as_raw_fd(), &f.key(), &f.value())
    }

    /// Installs (or replaces) every direction of `flows` in one syscall.
    pub fn insert_batch(&self, flows: &[FastFlow]) -> io::Result<()> {
        if flows.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(flows.len() * KEY_LEN);
        let mut values = Vec::with_capacity(flows.len() * VALUE_LEN);
        for f in flows {
            keys.extend_from_slice(&f.key());
            values.extend_from_slice(&f.value());
        }
        bpf::map_update_batch(self.fd.as_raw_fd(), &keys, &values, flows.len() as u32)
    }

    /// Removes the direction matching `f`'s key (absent: not an error).
    pub fn remove(&self, f: &FastFlow) -> io::Result<()> {
        match bpf::map_delete(self.fd.as_raw_fd(), &f.key()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        }
    }

    /// The counters of the direction matching `f`, `None` when absent.
    pub fn count(&self, f: &FastFlow) -> io::Result<Option<FastCount>> {
        let mut v = [0u8; VALUE_LEN];
        if !bpf::map_lookup(self.fd.as_raw_fd(), &f.key(), &mut v)? {
            return Ok(None);
        }
        let u = |o: usize| u64::from_ne_bytes(v[o..o + 8].try_into().unwrap_or([0; 8]));
        Ok(Some(FastCount {
            packets: u(0),
            bytes: u(8),
        }))
    }

    /// The directions installed.
    pub fn len(&self) -> io::Result<usize> {
        Ok(bpf::map_keys::<KEY_LEN>(self.fd.as_raw_fd())?.len())
    }

    /// Whether none is installed.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// `goto l` unless `len` bytes from the frame start are readable.
fn need(a: &mut Asm, len: i32, l: Label) {
    super::prog::need(a, R6, len, l);
}

/// `r2 = ~(~r2 +' r3)` on 16 bits. Clobbers r3.
fn csum_add(a: &mut Asm) {
    a.alu64i(XOR, R2, 0xffff);
    a.alu64(ADD, R2, R3);
    for _ in 0..2 {
        a.mov(R3, R2);
        a.alu64i(RSH, R3, 16);
        a.alu64i(AND, R2, 0xffff);
        a.alu64(ADD, R2, R3);
    }
    a.alu64i(XOR, R2, 0xffff);
}

/// `r2 = fold(r2)` to 16 bits (r2 < 2^40). Clobbers r3.
fn fold16(a: &mut Asm) {
    for _ in 0..3 {
        a.mov(R3, R2);
        a.alu64i(RSH, R3, 16);
        a.alu64i(AND, R2, 0xffff);
        a.alu64(ADD, R2, R3);
    }
}

/// `goto partial` when the L4 checksum field (TCP: 50, UDP: 40) holds the
/// folded pseudo-header sum: a CHECKSUM_PARTIAL segment from a local sender
/// (a veth peer with TX checksum offload), which only the worker completes.
/// Clobbers r2-r4.
fn partial_check(a: &mut Asm, partial: Label) {
    let (udp, sum) = (a.label(), a.label());
    // The field first: `need` clobbers r2.
    a.ldx(W, R3, R10, FK + 12);
    a.jif(JEQ, R3, 17, udp);
    need(a, 54, partial);
    a.ldx(H, R4, R6, 50);
    a.jmp(sum);
    a.bind(udp);
    a.ldx(H, R4, R6, 40);
    a.bind(sum);
    a.ldx(W, R2, R6, 26);
    a.ldx(W, R3, R6, 30);
    a.alu64(ADD, R2, R3);
    a.ldx(B, R3, R6, 23);
    if cfg!(target_endian = "little") {
        a.alu64i(super::prog::LSH, R3, 8);
    }
    a.alu64(ADD, R2, R3);
    a.ldx(H, R3, R6, 16);
    a.be(R3, 16);
    a.alu64i(ADD, R3, -20);
    a.be(R3, 16);
    a.alu64(ADD, R2, R3);
    fold16(a);
    a.jifx(JEQ, R2, R4, partial);
}

/// Emits the fast path at the program's start (r1 = ctx); a miss restores
/// r1 and falls through to what follows.
pub(crate) fn emit(a: &mut Asm, map: i32) {
    let (miss, key, count, udp, redirect) = (a.label(), a.label(), a.label(), a.label(), a.label());
    a.mov(R9, R1);
    a.ldx(W, R6, R1, 0);
    a.ldx(W, R7, R1, 4);
    need(a, 42, miss);
    a.ldx(H, R2, R6, 12);
    a.jif(JNE, R2, i32::from(u16::from_ne_bytes([0x08, 0x00])), miss);
    a.ldx(B, R2, R6, 14);
    a.jif(JNE, R2, 0x45, miss);
    a.ldx(H, R2, R6, 20);
    a.alu64i(AND, R2, i32::from(u16::from_ne_bytes([0x3f, 0xff])));
    a.jif(JNE, R2, 0, miss);
    a.ldx(B, R2, R6, 22);
    a.jif(JLT, R2, 2, miss);
    a.ldx(B, R3, R6, 23);
    a.jif(JEQ, R3, 17, key);
    a.jif(JNE, R3, 6, miss);
    need(a, 54, miss);
    a.ldx(B, R2, R6, 47); // TCP flags: FIN 1, SYN 2, RST 4
    a.alu64i(AND, R2, 7);
    a.jif(JNE, R2, 0, miss);
    a.bind(key);
    a.ldx(DW, R2, R6, 26);
    a.stx(DW, R10, FK, R2);
    a.ldx(W, R2, R6, 34);
    a.stx(W, R10, FK + 8, R2);
    a.stx(W, R10, FK + 12, R3);
    a.ld_map(R1, map);
    a.mov(R2, R10);
    a.alu64i(ADD, R2, i32::from(FK));
    a.call(FN_MAP_LOOKUP_ELEM);
    a.jif(JEQ, R0, 0, miss);
    a.mov(R8, R0);
    partial_check(a, miss);

    for o in [0, 4, 8] {
        a.ldx(W, R2, R8, V_MACS + o);
        a.stx(W, R6, o, R2);
    }
    a.ldx(B, R2, R6, 22);
    a.alu64i(ADD, R2, -1);
    a.stx(B, R6, 22, R2);
    a.ldx(DW, R2, R8, V_ADDRS);
    a.stx(DW, R6, 26, R2);
    a.ldx(H, R2, R6, 24);
    a.ldx(H, R3, R8, V_IP_DELTA);
    csum_add(a);
    a.stx(H, R6, 24, R2);
    a.ldx(W, R2, R8, V_PORTS);
    a.stx(W, R6, 34, R2);
    a.ldx(W, R2, R10, FK + 12);
    a.jif(JEQ, R2, 17, udp);
    need(a, 54, count); // known: the verifier cannot tie it to the protocol
    a.ldx(H, R2, R6, 50);
    a.ldx(H, R3, R8, V_L4_DELTA);
    csum_add(a);
    a.stx(H, R6, 50, R2);
    a.jmp(count);
    a.bind(udp);
    let nonzero = a.label();
    a.ldx(H, R2, R6, 40);
    a.jif(JEQ, R2, 0, count);
    a.ldx(H, R3, R8, V_L4_DELTA);
    csum_add(a);
    a.jif(JNE, R2, 0, nonzero);
    a.movi(R2, 0xffff);
    a.bind(nonzero);
    a.stx(H, R6, 40, R2);

    a.bind(count);
    a.movi(R2, 1);
    a.emit(ATOMIC_DW, R8, R2, V_PACKETS, 0);
    a.mov(R2, R7);
    a.alu64(super::prog::SUB, R2, R6);
    a.emit(ATOMIC_DW, R8, R2, V_BYTES, 0);
    a.ldx(W, R2, R8, V_IFINDEX);
    a.ldx(W, R3, R9, 12); // ingress_ifindex
    a.jifx(JNE, R2, R3, redirect);
    a.movi(R0, XDP_TX);
    a.exit();
    a.bind(redirect);
    a.mov(R1, R2);
    a.emit(ALU64 | super::prog::MOV | K, R2, 0, 0, 0);
    a.call(FN_REDIRECT);
    a.exit();

    a.bind(miss);
    a.mov(R1, R9);
}
