//! Steering received frames to workers: a classic-BPF program for a
//! PACKET_FANOUT_CBPF group, returning the index of the worker (the group
//! member, in join order) that owns the frame's connection.
//!
//! Workers share nothing, so both directions of a connection must reach the
//! same worker, decided from the frame alone:
//!
//! * To a pool address (FNAT local address, SNAT WAN address), TCP/UDP:
//!   `dport % workers`, because the core hands worker `w` exactly the local
//!   ports `p` with `p % workers == w` (see `rvs_core::sapool`). ICMP echo
//!   replies to a pool address: `identifier % workers`, the identifier
//!   playing the port's role.
//! * From a NAT real server (return traffic), TCP/UDP:
//!   `(dst_addr ^ dport) % workers`, the client's address and port.
//! * Any other TCP/UDP: `(src_addr ^ sport) % workers`, so the NAT
//!   in-direction and its return use the same key by construction, and new
//!   FNAT/SNAT connections spread over workers.
//! * Everything else (ARP, ICMP errors, non-first fragments, IPv6 extension
//!   headers): worker 0.
//!
//! IPv6 is treated alike, with two differences: pool and real-server
//! membership compares all 128 bits, while the hash keys use the low 32 bits
//! of the address (the last word; a cBPF accumulator is 32 bits wide), and
//! only packets whose first next-header is TCP, UDP or ICMPv6 are steered.
//!
//! Offsets in the program are relative to the network header: that is where
//! the kernel's fanout demux runs the program on received frames (outgoing
//! ones are ignored by the group), and the ethertype comes from the
//! `SKF_AD_PROTOCOL` ancillary load.

use std::io;
use std::os::fd::RawFd;

/// What the steering program needs to know of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Steering {
    /// Number of workers (group members); 0 is treated as 1.
    pub workers: u16,
    /// IPv4 pool addresses: FNAT local addresses and SNAT WAN addresses.
    pub pool_v4: Vec<[u8; 4]>,
    /// IPv4 NAT real servers.
    pub rs_v4: Vec<[u8; 4]>,
    /// IPv6 pool addresses.
    pub pool_v6: Vec<[u8; 16]>,
    /// IPv6 NAT real servers.
    pub rs_v6: Vec<[u8; 16]>,
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const ALU_XOR_X: u16 = 0xac;
const ALU_MOD_K: u16 = 0x94;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
/// `SKF_AD_OFF + SKF_AD_PROTOCOL`: the frame's ethertype, host order.
const AD_PROTOCOL: u32 = 0xffff_f000;

/// Most instructions the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

type Label = usize;

/// A tiny assembler: conditional jumps only ever skip one instruction, the
/// real (possibly long) jump being an unconditional `ja`, whose offset is 32
/// bits wide; so the program size is not bounded by jt/jf's 8 bits.
struct Asm {
    ins: Vec<libc::sock_filter>,
    labels: Vec<usize>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            ins: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
        }
    }

    fn label(&mut self) -> Label {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }

    fn bind(&mut self, l: Label) {
        self.labels[l] = self.ins.len();
    }

    fn raw(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.ins.push(libc::sock_filter { code, jt, jf, k });
    }

    fn op(&mut self, code: u16, k: u32) {
        self.raw(code, 0, 0, k);
    }

    fn ja(&mut self, l: Label) {
        self.fixups.push((self.ins.len(), l));
        self.op(JA, 0);
    }

    /// `if (A <code> k) goto l`.
    fn jif(&mut self, code: u16, k: u32, l: Label) {
        self.raw(code, 0, 1, k);
        self.ja(l);
    }

    /// `if !(A <code> k) goto l`.
    fn jifnot(&mut self, code: u16, k: u32, l: Label) {
        self.raw(code, 1, 0, k);
        self.ja(l);
    }

    /// `return A % workers`.
    fn ret_mod(&mut self, w: u32) {
        self.op(ALU_MOD_K, w);
        self.op(RET_A, 0);
    }

    /// `return (word at abs offset) ^ M[0]) % workers`.
    fn ret_xor_mem(&mut self, off: u32, w: u32) {
        self.op(ST, 0);
        self.op(LD_W_ABS, off);
        self.op(LDX_MEM, 0);
        self.op(ALU_XOR_X, 0);
        self.ret_mod(w);
    }

    fn finish(mut self) -> Vec<libc::sock_filter> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l];
            debug_assert!(target != usize::MAX && target > at);
            self.ins[at].k = target.saturating_sub(at + 1) as u32;
        }
        self.ins
    }
}

fn word(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Emits "if the 16 bytes at `off` equal one of `addrs`, goto `hit`".
fn match_v6(a: &mut Asm, off: u32, addrs: &[[u8; 16]], hit: Label) {
    for addr in addrs {
        let miss = a.label();
        for i in 0..4u32 {
            a.op(LD_W_ABS, off + 4 * i);
            let w = word(&addr[4 * i as usize..]);
            if i < 3 {
                a.jifnot(JEQ_K, w, miss);
            } else {
                a.jif(JEQ_K, w, hit);
            }
        }
        a.bind(miss);
    }
}

/// The steering program for `s` (see the module doc for the rules).
pub fn build_cbpf(s: &Steering) -> Vec<libc::sock_filter> {
    let w = s.workers.max(1) as u32;
    let mut a = Asm::new();
    let ret0 = a.label();
    let v4 = a.label();
    let v6 = a.label();

    a.op(LD_W_ABS, AD_PROTOCOL);
    a.jif(JEQ_K, 0x0800, v4);
    a.jif(JEQ_K, 0x86dd, v6);
    a.ja(ret0);

    // IPv4. Each address list is walked once, so a program holds about
    // 2000 addresses in all (two instructions per IPv4 address).
    a.bind(v4);
    let (pool4, l4v4, nat4) = (a.label(), a.label(), a.label());
    a.op(LD_H_ABS, 6);
    // Only the first fragment carries the ports.
    a.jif(JSET_K, 0x1fff, ret0);
    a.op(LD_W_ABS, 16);
    for p in &s.pool_v4 {
        a.jif(JEQ_K, word(p), pool4);
    }
    a.op(LD_B_ABS, 9);
    a.jif(JEQ_K, 6, l4v4);
    a.jif(JEQ_K, 17, l4v4);
    a.ja(ret0);
    a.bind(l4v4);
    a.op(LDX_B_MSH, 0);
    a.op(LD_W_ABS, 12);
    for r in &s.rs_v4 {
        a.jif(JEQ_K, word(r), nat4);
    }
    a.op(LD_H_IND, 0); // sport
    a.ret_xor_mem(12, w); // ^ saddr
    a.bind(nat4);
    a.op(LD_H_IND, 2); // dport
    a.ret_xor_mem(16, w); // ^ daddr

    a.bind(pool4);
    let (port4, icmp4) = (a.label(), a.label());
    a.op(LDX_B_MSH, 0);
    a.op(LD_B_ABS, 9);
    a.jif(JEQ_K, 6, port4);
    a.jif(JEQ_K, 17, port4);
    a.jif(JEQ_K, 1, icmp4);
    a.ja(ret0);
    a.bind(port4);
    a.op(LD_H_IND, 2);
    a.ret_mod(w);
    a.bind(icmp4);
    a.op(LD_B_IND, 0);
    a.jifnot(JEQ_K, 0, ret0); // echo reply
    a.op(LD_H_IND, 4); // identifier
    a.ret_mod(w);

    // IPv6: fixed 40-byte header, transport right behind it.
    a.bind(v6);
    let (l4v6, pool6, nat6, echo6) = (a.label(), a.label(), a.label(), a.label());
    a.op(LD_B_ABS, 6);
    a.jif(JEQ_K, 6, l4v6);
    a.jif(JEQ_K, 17, l4v6);
    a.jif(JEQ_K, 58, l4v6);
    a.ja(ret0);
    a.bind(l4v6);
    match_v6(&mut a, 24, &s.pool_v6, pool6);
    a.op(LD_B_ABS, 6);
    a.jif(JEQ_K, 58, ret0);
    match_v6(&mut a, 8, &s.rs_v6, nat6);
    a.op(LD_H_ABS, 40); // sport
    a.ret_xor_mem(20, w); // ^ low word of saddr
    a.bind(nat6);
    a.op(LD_H_ABS, 42); // dport
    a.ret_xor_mem(36, w); // ^ low word of daddr
    a.bind(pool6);
    a.op(LD_B_ABS, 6);
    a.jif(JEQ_K, 58, echo6);
    a.op(LD_H_ABS, 42);
    a.ret_mod(w);
    a.bind(echo6);
    a.op(LD_B_ABS, 40);
    a.jifnot(JEQ_K, 129, ret0); // echo reply
    a.op(LD_H_ABS, 44);
    a.ret_mod(w);

    a.bind(ret0);
    a.op(RET_K, 0);
    a.finish()
}

/// Installs the program for `s` on the fanout group `fd` belongs to
/// (PACKET_FANOUT_DATA); callable again whenever the configuration changes,
/// the kernel swapping programs atomically.
pub fn set_fanout_program(fd: RawFd, s: &Steering) -> io::Result<()> {
    let mut prog = build_cbpf(s);
    if prog.len() > MAX_INSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "steering program too long: too many addresses",
        ));
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, alive and unmodified for the call;
    // the kernel copies the instructions before returning.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT_DATA,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    crate::sys::cvt(r).map(drop)
}

#[cfg(test)]
mod tests;
