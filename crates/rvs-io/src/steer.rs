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
//! * ICMP errors (IPv4 types 3, 4, 5, 11, 12; ICMPv6 types 1 to 4): where
//!   the reply to the packet they quote goes. The quote is a packet of a
//!   connection going away from rvs (or from a DR real server), and the
//!   pipeline finds the connection by the quote reversed, so
//!   the rules above apply to the quote with its addresses and ports
//!   swapped; the outer addresses do not matter. An error from the real
//!   server's side quoting `LIP:lport -> RIP:rport` (FNAT, SNAT) goes to
//!   `lport % workers`; one from the client's side quoting
//!   `VIP:vport -> CIP:cport` to `(CIP ^ cport) % workers`, as the client's
//!   packets; one quoting `CIP:cport -> RIP:rport` (to a NAT real server)
//!   to `(CIP ^ cport) % workers`, as the real server's replies; a quoted
//!   echo request from a pool address (SNAT ping) to `identifier % workers`.
//! * Everything else: worker 0. That is ARP, other ICMP, non-first
//!   fragments, IPv6 extension headers, and errors whose quote is a
//!   non-first fragment, starts with an IPv6 extension header or is
//!   neither TCP, UDP nor an echo request.
//!
//! IPv6 is treated alike, with two differences: pool and real-server
//! membership compares all 128 bits, while the hash keys use the low 32 bits
//! of the address (the last word; a cBPF accumulator is 32 bits wide), and
//! only packets (and quotes) whose first next-header is TCP, UDP or ICMPv6
//! are steered.
//!
//! Offsets in the program are relative to the network header: that is where
//! the kernel's fanout demux runs the program on received frames (outgoing
//! ones are ignored by the group), and the ethertype comes from the
//! `SKF_AD_PROTOCOL` ancillary load. A VLAN-tagged frame reaches the program
//! with its (outer) tag already taken off into the packet's metadata (the
//! kernel does that before any packet socket sees the frame, with or without
//! the 8021q module; the receive ring puts it back for rvs), so the program
//! sees the IP header and the inner ethertype: a VLAN device's frames are
//! steered like untagged ones without a rule of their own.

use std::io;
use std::os::fd::RawFd;

pub mod flow;
mod owner;
pub use owner::owner;

/// Version of the steering rules above, shared by the classic-BPF program
/// here and its XDP twin (`af_xdp` `prog.rs`): which worker a frame goes
/// to. Bump it whenever a rule changes (a hash key, a class of frames sent
/// elsewhere, the order of group members): a hot upgrade hands the running
/// sockets and connection tables to the new process as they are, and is
/// refused when the versions differ, since connections would then reach a
/// worker that does not hold them.
pub const VERSION: u32 = 1;

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
const LD_W_IND: u16 = 0x40;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const LD_MEM: u16 = 0x60;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const ALU_ADD_K: u16 = 0x04;
const ALU_ADD_X: u16 = 0x0c;
const ALU_AND_K: u16 = 0x54;
const ALU_LSH_K: u16 = 0x64;
const ALU_XOR_X: u16 = 0xac;
const ALU_MOD_K: u16 = 0x94;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const TAX: u16 = 0x07;
/// `SKF_AD_OFF + SKF_AD_PROTOCOL`: the frame's ethertype, host order.
const AD_PROTOCOL: u32 = 0xffff_f000;

/// Most instructions the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

type Label = usize;

/// A tiny assembler: conditional jumps (`jif`, `jifnot`) only ever skip one
/// instruction, the real (possibly long) jump being an unconditional `ja`,
/// whose offset is 32 bits wide; so the program size is not bounded by
/// jt/jf's 8 bits. Near jumps (`jif_near`, `jifnot_near`) use jt/jf
/// themselves, for code whose length does not depend on the configuration.
struct Asm {
    ins: Vec<libc::sock_filter>,
    labels: Vec<usize>,
    fixups: Vec<(usize, Label)>,
    /// Near jumps: (instruction, label, whether the jt field).
    near: Vec<(usize, Label, bool)>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            ins: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
            near: Vec::new(),
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

    /// `if (A <code> k) goto l`, `l` less than 256 instructions ahead.
    fn jif_near(&mut self, code: u16, k: u32, l: Label) {
        self.near.push((self.ins.len(), l, true));
        self.raw(code, 0, 0, k);
    }

    /// `if !(A <code> k) goto l`, `l` less than 256 instructions ahead.
    fn jifnot_near(&mut self, code: u16, k: u32, l: Label) {
        self.near.push((self.ins.len(), l, false));
        self.raw(code, 0, 0, k);
    }

    /// `return A % workers`.
    fn ret_mod(&mut self, w: u32) {
        self.op(ALU_MOD_K, w);
        self.op(RET_A, 0);
    }

    fn finish(mut self) -> Vec<libc::sock_filter> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l];
            debug_assert!(target != usize::MAX && target > at);
            self.ins[at].k = target.saturating_sub(at + 1) as u32;
        }
        for (at, l, jt) in std::mem::take(&mut self.near) {
            let target = self.labels[l];
            let off = target
                .checked_sub(at + 1)
                .and_then(|d| u8::try_from(d).ok())
                .expect("near jump forward and within 255 instructions");
            if jt {
                self.ins[at].jt = off;
            } else {
                self.ins[at].jf = off;
            }
        }
        self.ins
    }
}

fn word(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

// Scratch memory (M[]) of the program: the steered packet's fields, taken
// from the frame itself or, for an ICMP error, from the quote reversed.
/// IPv4 source (the key's address).
const M_SRC: u32 = 1;
/// IPv4 destination.
const M_DST: u32 = 2;
/// Source port (ICMP echo: the identifier).
const M_SPORT: u32 = 3;
/// Destination port (ICMP echo: the identifier).
const M_DPORT: u32 = 4;
/// Transport protocol.
const M_PROTO: u32 = 5;
/// IPv6 destination, 4 words; its low word is the key's.
const M_DST6: u32 = 6;
/// IPv6 source, 4 words.
const M_SRC6: u32 = 10;

/// ICMPv4 error types (destination unreachable, source quench, redirect,
/// time exceeded, parameter problem): what the pipeline treats as errors.
const ICMP4_ERRORS: [u32; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 error types 1 to 4.
const ICMP6_ERRORS: [u32; 4] = [1, 2, 3, 4];

impl Asm {
    /// `M[slot] = A`.
    fn st(&mut self, slot: u32) {
        self.op(ST, slot);
    }

    /// `A = M[slot]`.
    fn ld_mem(&mut self, slot: u32) {
        self.op(LD_MEM, slot);
    }

    /// `if A is one of ks goto l`, `l` near.
    fn jif_any_near(&mut self, ks: &[u32], l: Label) {
        for &k in ks {
            self.jif_near(JEQ_K, k, l);
        }
    }

    /// `return (M[port] ^ M[addr]) % workers`.
    fn ret_xor_slots(&mut self, port: u32, addr: u32, w: u32) {
        self.ld_mem(port);
        self.op(LDX_MEM, addr);
        self.op(ALU_XOR_X, 0);
        self.ret_mod(w);
    }
}

/// Copies the IPv6 address at absolute offset `off` to `M[slot..slot + 4]`.
fn copy_v6(a: &mut Asm, off: u32, slot: u32) {
    for i in 0..4 {
        a.op(LD_W_ABS, off + 4 * i);
        a.st(slot + i);
    }
}

/// Emits "if `M[slot..slot + 4]` equals one of `addrs`, goto `hit`".
fn match_v6(a: &mut Asm, slot: u32, addrs: &[[u8; 16]], hit: Label) {
    for addr in addrs {
        let miss = a.label();
        for i in 0..4u32 {
            a.ld_mem(slot + i);
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
///
/// Each family first fills the scratch words with the packet to steer: the
/// frame's own addresses, ports and protocol, or, for an ICMP error, those
/// of the reply to the packet it quotes (source and destination swapped).
/// One shared tail then applies the rules, so each address list is walked
/// once per frame and appears once in the program.
pub fn build_cbpf(s: &Steering) -> Vec<libc::sock_filter> {
    let w = s.workers.max(1) as u32;
    let mut a = Asm::new();
    let v4 = a.label();
    let v6 = a.label();

    a.op(LD_W_ABS, AD_PROTOCOL);
    a.jif_near(JEQ_K, 0x0800, v4);
    a.jif(JEQ_K, 0x86dd, v6);
    a.op(RET_K, 0);

    a.bind(v4);
    v4_fields(&mut a);
    v4_rules(&mut a, s, w);
    a.bind(v6);
    v6_fields(&mut a);
    v6_rules(&mut a, s, w);
    a.finish()
}

/// IPv4: fills M_SRC, M_DST, M_SPORT, M_DPORT, M_PROTO and falls through
/// to the rules, or returns 0.
fn v4_fields(a: &mut Asm) {
    let (ports, echo, err, ret0, fields) = (a.label(), a.label(), a.label(), a.label(), a.label());
    // Stores first: the kernel's path-insensitive checker carries what is
    // stored on every path into `ret0` (a return) into the code after it.
    a.op(LD_W_ABS, 12);
    a.st(M_SRC);
    a.op(LD_W_ABS, 16);
    a.st(M_DST);
    a.op(LD_B_ABS, 9);
    a.st(M_PROTO);
    a.op(LD_H_ABS, 6);
    // Only the first fragment carries the ports.
    a.jif_near(JSET_K, 0x1fff, ret0);
    a.op(LDX_B_MSH, 0);
    a.ld_mem(M_PROTO);
    a.jif_near(JEQ_K, 6, ports);
    a.jif_near(JEQ_K, 17, ports);
    a.jifnot_near(JEQ_K, 1, ret0);
    a.op(LD_B_IND, 0);
    a.jif_near(JEQ_K, 0, echo); // echo reply
    a.jif_any_near(&ICMP4_ERRORS, err);
    a.op(RET_K, 0);
    a.bind(ports);
    a.op(LD_H_IND, 0);
    a.st(M_SPORT);
    a.op(LD_H_IND, 2);
    a.st(M_DPORT);
    a.ja(fields);
    a.bind(echo);
    a.op(LD_H_IND, 4); // identifier
    a.st(M_SPORT);
    a.st(M_DPORT);
    a.ja(fields);

    // The quote at X + 8: its reply is the packet to steer.
    a.bind(err);
    let (iports, iecho) = (a.label(), a.label());
    a.op(LD_B_IND, 8);
    a.op(ALU_AND_K, 0xf0);
    a.jifnot_near(JEQ_K, 0x40, ret0);
    a.op(LD_H_IND, 8 + 6);
    a.jif_near(JSET_K, 0x1fff, ret0);
    a.op(LD_W_IND, 8 + 12);
    a.st(M_DST);
    a.op(LD_W_IND, 8 + 16);
    a.st(M_SRC);
    a.op(LD_B_IND, 8 + 9);
    a.st(M_PROTO);
    // X = offset of the quoted transport header.
    a.op(LD_B_IND, 8);
    a.op(ALU_AND_K, 0xf);
    a.op(ALU_LSH_K, 2);
    a.jifnot_near(JGE_K, 20, ret0);
    a.op(ALU_ADD_X, 0);
    a.op(ALU_ADD_K, 8);
    a.op(TAX, 0);
    a.ld_mem(M_PROTO);
    a.jif_near(JEQ_K, 6, iports);
    a.jif_near(JEQ_K, 17, iports);
    a.jifnot_near(JEQ_K, 1, ret0);
    a.op(LD_B_IND, 0);
    a.jif_near(JEQ_K, 8, iecho); // quoted echo request: its reply
    a.bind(ret0);
    a.op(RET_K, 0);
    a.bind(iports);
    a.op(LD_H_IND, 0);
    a.st(M_DPORT);
    a.op(LD_H_IND, 2);
    a.st(M_SPORT);
    a.ja(fields);
    a.bind(iecho);
    a.op(LD_H_IND, 4);
    a.st(M_SPORT);
    a.st(M_DPORT);
    a.bind(fields);
}

/// IPv4 rules on the scratch words. Each address list is walked once, so
/// a program holds about 2000 addresses in all (two instructions per IPv4
/// address).
fn v4_rules(a: &mut Asm, s: &Steering, w: u32) {
    let (pool, nat, l4) = (a.label(), a.label(), a.label());
    a.ld_mem(M_DST);
    for p in &s.pool_v4 {
        a.jif(JEQ_K, word(p), pool);
    }
    a.ld_mem(M_PROTO);
    a.jifnot_near(JEQ_K, 1, l4);
    a.op(RET_K, 0); // echo reply to another address
    a.bind(l4);
    a.ld_mem(M_SRC);
    for r in &s.rs_v4 {
        a.jif(JEQ_K, word(r), nat);
    }
    a.ret_xor_slots(M_SPORT, M_SRC, w);
    a.bind(nat);
    a.ret_xor_slots(M_DPORT, M_DST, w);
    a.bind(pool);
    a.ld_mem(M_DPORT);
    a.ret_mod(w);
}

/// IPv6 (fixed 40-byte header, transport right behind it): fills M_SRC6,
/// M_DST6, M_SPORT, M_DPORT, M_PROTO and falls through to the rules, or
/// returns 0.
fn v6_fields(a: &mut Asm) {
    let (ports, addrs, err) = (a.label(), a.label(), a.label());
    let (ret0, fields) = (a.label(), a.label());
    a.op(LD_B_ABS, 6);
    a.st(M_PROTO);
    a.jif_near(JEQ_K, 6, ports);
    a.jif_near(JEQ_K, 17, ports);
    a.jifnot_near(JEQ_K, 58, ret0);
    a.op(LD_B_ABS, 40);
    a.jif_any_near(&ICMP6_ERRORS, err);
    a.jifnot_near(JEQ_K, 129, ret0); // echo reply
    a.op(LD_H_ABS, 44); // identifier
    a.st(M_SPORT);
    a.st(M_DPORT);
    a.ja(addrs);
    a.bind(ports);
    a.op(LD_H_ABS, 40);
    a.st(M_SPORT);
    a.op(LD_H_ABS, 42);
    a.st(M_DPORT);
    a.bind(addrs);
    copy_v6(a, 8, M_SRC6);
    copy_v6(a, 24, M_DST6);
    a.ja(fields);

    // The quote at 48, its transport header at 88: its reply is the
    // packet to steer. Extension headers are not walked.
    a.bind(err);
    let (iports, iaddrs) = (a.label(), a.label());
    a.op(LD_B_ABS, 48);
    a.op(ALU_AND_K, 0xf0);
    a.jifnot_near(JEQ_K, 0x60, ret0);
    a.op(LD_B_ABS, 48 + 6);
    a.st(M_PROTO);
    a.jif_near(JEQ_K, 6, iports);
    a.jif_near(JEQ_K, 17, iports);
    a.jifnot_near(JEQ_K, 58, ret0);
    a.op(LD_B_ABS, 88);
    a.jifnot_near(JEQ_K, 128, ret0); // quoted echo request: its reply
    a.op(LD_H_ABS, 92); // identifier
    a.st(M_SPORT);
    a.st(M_DPORT);
    a.ja(iaddrs);
    a.bind(ret0);
    a.op(RET_K, 0);
    a.bind(iports);
    a.op(LD_H_ABS, 88);
    a.st(M_DPORT);
    a.op(LD_H_ABS, 90);
    a.st(M_SPORT);
    a.bind(iaddrs);
    copy_v6(a, 48 + 8, M_DST6);
    copy_v6(a, 48 + 24, M_SRC6);
    a.bind(fields);
}

/// IPv6 rules on the scratch words: membership on all 128 bits, keys on
/// the low word.
fn v6_rules(a: &mut Asm, s: &Steering, w: u32) {
    let (pool, nat, l4) = (a.label(), a.label(), a.label());
    match_v6(a, M_DST6, &s.pool_v6, pool);
    a.ld_mem(M_PROTO);
    a.jifnot_near(JEQ_K, 58, l4);
    a.op(RET_K, 0); // echo reply to another address
    a.bind(l4);
    match_v6(a, M_SRC6, &s.rs_v6, nat);
    a.ret_xor_slots(M_SPORT, M_SRC6 + 3, w);
    a.bind(nat);
    a.ret_xor_slots(M_DPORT, M_DST6 + 3, w);
    a.bind(pool);
    a.ld_mem(M_DPORT);
    a.ret_mod(w);
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
