//! The XDP steering program, generated as raw eBPF instructions (the way
//! `steer.rs` generates its classic-BPF twin), so the repository holds its
//! whole source and every build produces the same bytes without clang or an
//! ELF loader.
//!
//! In C, what it does is:
//!
//! ```c
//! int rvs_xdp(struct xdp_md *ctx) {
//!     u32 q = ctx->rx_queue_index - FIRST;    // index among the served queues
//!     if (q >= QUEUES) return XDP_PASS;        // not served by rvs
//!     u32 w = steer(ctx);       // the rules of steer.rs, see below
//!     // every worker has a socket on every served queue, and a redirect
//!     // only reaches a socket bound to the queue the frame arrived on
//!     return bpf_redirect_map(&xsks, q * W + w, XDP_PASS);   // none: kernel
//! }
//! ```
//!
//! `steer` follows `steer.rs` rule for rule: pool addresses (looked up in
//! the `addrs` hash map, bit 0 of the value) give `dport % W` (ICMP echo
//! replies: `id % W`); NAT real-server sources (bit 1) give
//! `(daddr ^ dport) % W`; other TCP/UDP `(saddr ^ sport) % W`; an ICMP
//! error goes where the reply to the packet it quotes goes (the same rules
//! on the quote with addresses and ports swapped, a quoted echo request
//! read as its reply), looking past one VLAN tag (802.1Q or 802.1ad: a VLAN
//! device's frames go where its untagged twin would); everything else (ARP,
//! fragments, frames with two VLAN tags, other protocols, truncated headers, IPv6 extension headers, quotes that
//! are none of TCP, UDP and echo request) worker 0. Like the cBPF program,
//! it first writes the packet to steer (the frame's own addresses, ports
//! and protocol, or the quote's swapped) on the stack, then applies the
//! rules to that. Values are taken in host order as the cBPF program does
//! (loads are byte-swapped), so both backends steer a flow alike. IPv4
//! addresses are keyed in the map as `::ffff:a.b.c.d`.

/// The program's name in the kernel (`bpftool prog`, `ip link`): how a
/// leftover of ours is recognised at the next start.
pub(crate) const PROG_NAME: &str = "rvs_xdp";

// Instruction classes, sizes, modes, operations (linux/bpf_common.h, bpf.h).
pub(super) const LDX: u8 = 0x01;
pub(super) const ST: u8 = 0x02;
pub(super) const STX: u8 = 0x03;
pub(super) const ALU: u8 = 0x04;
pub(super) const JMP: u8 = 0x05;
pub(super) const ALU64: u8 = 0x07;
pub(super) const W: u8 = 0x00;
pub(super) const H: u8 = 0x08;
pub(super) const B: u8 = 0x10;
pub(super) const DW: u8 = 0x18;
pub(super) const MEM: u8 = 0x60;
pub(super) const K: u8 = 0x00;
pub(super) const X: u8 = 0x08;
pub(super) const ADD: u8 = 0x00;
pub(super) const SUB: u8 = 0x10;
pub(super) const MUL: u8 = 0x20;
pub(super) const AND: u8 = 0x50;
pub(super) const LSH: u8 = 0x60;
pub(super) const MOD: u8 = 0x90;
pub(super) const XOR: u8 = 0xa0;
pub(super) const MOV: u8 = 0xb0;
pub(super) const END: u8 = 0xd0;
pub(super) const TO_BE: u8 = 0x08;
pub(super) const JA: u8 = 0x00;
pub(super) const JEQ: u8 = 0x10;
pub(super) const JGT: u8 = 0x20;
pub(super) const JGE: u8 = 0x30;
pub(super) const JNE: u8 = 0x50;
pub(super) const JLT: u8 = 0xa0;
pub(super) const CALL: u8 = 0x80;
pub(super) const EXIT: u8 = 0x90;

pub(super) const FN_MAP_LOOKUP_ELEM: i32 = 1;
pub(super) const FN_REDIRECT_MAP: i32 = 51;
pub(super) const XDP_PASS: i32 = 2;

// Registers.
pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
/// Packet start.
pub(super) const R6: u8 = 6;
/// Packet end.
pub(super) const R7: u8 = 7;
/// Transport header (of the quote, in an ICMP error).
pub(super) const R8: u8 = 8;
/// A quoted IPv4 header.
pub(super) const R9: u8 = 9;
pub(super) const R10: u8 = 10;

#[derive(Copy, Clone)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

pub(super) type Label = usize;

pub(super) struct Asm {
    ins: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    pub(super) fn new() -> Asm {
        Asm {
            ins: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
        }
    }
    pub(super) fn label(&mut self) -> Label {
        self.labels.push(None);
        self.labels.len() - 1
    }
    pub(super) fn bind(&mut self, l: Label) {
        self.labels[l] = Some(self.ins.len());
    }
    pub(super) fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.ins.push(Insn {
            code,
            dst,
            src,
            off,
            imm,
        });
    }
    /// `dst = src` (64-bit).
    pub(super) fn mov(&mut self, dst: u8, src: u8) {
        self.emit(ALU64 | MOV | X, dst, src, 0, 0);
    }
    pub(super) fn movi(&mut self, dst: u8, imm: i32) {
        self.emit(ALU64 | MOV | K, dst, 0, 0, imm);
    }
    pub(super) fn alu64i(&mut self, op: u8, dst: u8, imm: i32) {
        self.emit(ALU64 | op | K, dst, 0, 0, imm);
    }
    pub(super) fn alu64(&mut self, op: u8, dst: u8, src: u8) {
        self.emit(ALU64 | op | X, dst, src, 0, 0);
    }
    /// `dst = *(size *)(src + off)`.
    pub(super) fn ldx(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.emit(LDX | MEM | size, dst, src, off, 0);
    }
    /// `*(size *)(dst + off) = src`.
    pub(super) fn stx(&mut self, size: u8, dst: u8, off: i16, src: u8) {
        self.emit(STX | MEM | size, dst, src, off, 0);
    }
    /// `*(size *)(dst + off) = imm`.
    pub(super) fn st(&mut self, size: u8, dst: u8, off: i16, imm: i32) {
        self.emit(ST | MEM | size, dst, 0, off, imm);
    }
    /// Byte-swap the low `bits` of `dst` to host order (a no-op on big endian).
    pub(super) fn be(&mut self, dst: u8, bits: i32) {
        self.emit(ALU | END | TO_BE, dst, 0, 0, bits);
    }
    pub(super) fn jmp(&mut self, l: Label) {
        self.fixups.push((self.ins.len(), l));
        self.emit(JMP | JA, 0, 0, 0, 0);
    }
    /// `if (dst <op> imm) goto l`.
    pub(super) fn jif(&mut self, op: u8, dst: u8, imm: i32, l: Label) {
        self.fixups.push((self.ins.len(), l));
        self.emit(JMP | op | K, dst, 0, 0, imm);
    }
    /// `if (dst <op> src) goto l`.
    pub(super) fn jifx(&mut self, op: u8, dst: u8, src: u8, l: Label) {
        self.fixups.push((self.ins.len(), l));
        self.emit(JMP | op | X, dst, src, 0, 0);
    }
    /// `dst = map` (a 64-bit immediate naming a map by descriptor).
    pub(super) fn ld_map(&mut self, dst: u8, fd: i32) {
        // BPF_LD | BPF_DW | BPF_IMM, src = BPF_PSEUDO_MAP_FD.
        self.emit(0x18, dst, 1, 0, fd);
        self.emit(0, 0, 0, 0, 0);
    }
    pub(super) fn call(&mut self, f: i32) {
        self.emit(JMP | CALL, 0, 0, 0, f);
    }
    pub(super) fn exit(&mut self) {
        self.emit(JMP | EXIT, 0, 0, 0, 0);
    }
    pub(super) fn finish(mut self) -> Vec<u8> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l].unwrap_or(at + 1);
            self.ins[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        let mut out = Vec::with_capacity(self.ins.len() * 8);
        for i in &self.ins {
            out.push(i.code);
            out.push(i.dst | (i.src << 4));
            out.extend_from_slice(&i.off.to_le_bytes());
            out.extend_from_slice(&i.imm.to_le_bytes());
        }
        out
    }
}

/// How the program ends once it chose a worker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// `bpf_redirect_map(xsks, queue index * W + worker, XDP_PASS)`.
    Redirect {
        /// The XSKMAP descriptor.
        xsks: i32,
    },
    /// Return the worker index itself (for `BPF_PROG_TEST_RUN` in tests).
    ReturnWorker,
}

/// Where the program's parameters live.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ProgParams {
    /// The hash map of pool and real-server addresses (16-byte keys).
    pub(crate) addrs: i32,
    /// Workers (`W`, at least 1).
    pub(crate) workers: u32,
    /// The first device RX queue rvs serves.
    pub(crate) first_queue: u32,
    /// How many consecutive RX queues from `first_queue` it serves (at
    /// least 1); frames on others pass.
    pub(crate) queues: u32,
    /// What to do with the choice.
    pub(crate) tail: Tail,
    /// The fast-path map (see `fast.rs`), looked up before steering.
    pub(crate) fast: Option<i32>,
}

/// Bits of the `addrs` map's values.
pub(crate) const ADDR_POOL: u32 = 1;
/// A NAT real server.
pub(crate) const ADDR_RS: u32 = 2;

// The packet to steer, on the stack: the frame's own fields or, for an
// ICMP error, those of the reply to the packet it quotes.
/// Destination address, a 16-byte map key (IPv4 as `::ffff:a.b.c.d`).
const FP_DST: i16 = -16;
/// Source address, a 16-byte map key.
const FP_SRC: i16 = -32;
/// Source port (ICMP echo: the identifier), host order, 32 bits.
const FP_SPORT: i16 = -36;
/// Destination port (ICMP echo: the identifier).
const FP_DPORT: i16 = -40;
/// Transport protocol.
const FP_PROTO: i16 = -44;
/// The frame's queue among the served ones (0-based).
const FP_QIDX: i16 = -48;

/// ICMPv4 error types, as in `steer.rs`.
const ICMP4_ERRORS: [i32; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 error types.
const ICMP6_ERRORS: [i32; 4] = [1, 2, 3, 4];

/// Looks up the 16-byte key at `fp + key` in `addrs`; jumps to `hit` when
/// the value has `bit`. Clobbers r0-r5.
fn lookup(a: &mut Asm, addrs: i32, key: i16, bit: u32, hit: Label) {
    let miss = a.label();
    a.ld_map(R1, addrs);
    a.mov(R2, R10);
    a.alu64i(ADD, R2, i32::from(key));
    a.call(FN_MAP_LOOKUP_ELEM);
    a.jif(JEQ, R0, 0, miss);
    a.ldx(W, R0, R0, 0);
    a.alu64i(AND, R0, bit as i32);
    a.jif(JNE, R0, 0, hit);
    a.bind(miss);
}

/// Writes the IPv4 address at `base + off` as a mapped key at `fp + key`.
fn key_v4(a: &mut Asm, key: i16, base: u8, off: i16) {
    a.st(DW, R10, key, 0);
    // ::ffff: in the third word: bytes 00 00 ff ff.
    a.st(W, R10, key + 8, i32::from_ne_bytes([0, 0, 0xff, 0xff]));
    a.ldx(W, R2, base, off);
    a.stx(W, R10, key + 12, R2);
}

/// Writes the IPv6 address at `base + off` as the key at `fp + key`.
fn key_v6(a: &mut Asm, key: i16, base: u8, off: i16) {
    a.ldx(DW, R2, base, off);
    a.stx(DW, R10, key, R2);
    a.ldx(DW, R2, base, off + 8);
    a.stx(DW, R10, key + 8, R2);
}

/// Stores `be16(*(u16 *)(r8 + off))` at `fp + slot`.
fn port(a: &mut Asm, off: i16, slot: i16) {
    a.ldx(H, R2, R8, off);
    a.be(R2, 16);
    a.stx(W, R10, slot, R2);
}

/// Stores the protocol byte at `base + off` at FP_PROTO, leaving it in r2.
fn proto(a: &mut Asm, base: u8, off: i16) {
    a.ldx(B, R2, base, off);
    a.stx(W, R10, FP_PROTO, R2);
}

/// `if (r2 is one of ks) goto l`.
fn jif_any(a: &mut Asm, ks: &[i32], l: Label) {
    for &k in ks {
        a.jif(JEQ, R2, k, l);
    }
}

/// `r0 = port at fp + port ^ be32(low word of the key at fp + key); goto modw`.
fn xor_key(a: &mut Asm, port: i16, key: i16, modw: Label) {
    a.ldx(W, R0, R10, port);
    a.ldx(W, R2, R10, key + 12);
    a.be(R2, 32);
    a.alu64(XOR, R0, R2);
    a.jmp(modw);
}

/// `goto ret0` unless `len` bytes from `base` are in the frame.
pub(super) fn need(a: &mut Asm, base: u8, len: i32, ret0: Label) {
    a.mov(R2, base);
    a.alu64i(ADD, R2, len);
    a.jifx(JGT, R2, R7, ret0);
}

/// IPv4 (header at 14): fills the stack fields and goes to `fields`.
fn v4_fields(a: &mut Asm, ret0: Label, fields: Label) {
    let (ports, err) = (a.label(), a.label());
    need(a, R6, 34, ret0);
    a.ldx(H, R2, R6, 20);
    a.be(R2, 16);
    a.alu64i(AND, R2, 0x1fff);
    a.jif(JNE, R2, 0, ret0); // not the first fragment: no ports
    a.ldx(B, R3, R6, 14);
    a.alu64i(AND, R3, 0xf);
    a.alu64i(LSH, R3, 2);
    a.jif(JLT, R3, 20, ret0);
    a.mov(R8, R6);
    a.alu64(ADD, R8, R3);
    a.alu64i(ADD, R8, 14);
    need(a, R8, 8, ret0); // ports / ICMP id readable
    key_v4(a, FP_SRC, R6, 26);
    key_v4(a, FP_DST, R6, 30);
    proto(a, R6, 23);
    a.jif(JEQ, R2, 6, ports);
    a.jif(JEQ, R2, 17, ports);
    a.jif(JNE, R2, 1, ret0);
    a.ldx(B, R2, R8, 0);
    jif_any(a, &ICMP4_ERRORS, err);
    a.jif(JNE, R2, 0, ret0); // echo reply
    port(a, 4, FP_SPORT); // identifier
    port(a, 4, FP_DPORT);
    a.jmp(fields);
    a.bind(ports);
    port(a, 0, FP_SPORT);
    port(a, 2, FP_DPORT);
    a.jmp(fields);

    // The quote (r9) behind the 8-byte ICMP header: its reply is the
    // packet to steer.
    a.bind(err);
    let iports = a.label();
    a.mov(R9, R8);
    a.alu64i(ADD, R9, 8);
    need(a, R9, 20, ret0);
    a.ldx(B, R2, R9, 0);
    a.alu64i(AND, R2, 0xf0);
    a.jif(JNE, R2, 0x40, ret0);
    a.ldx(H, R2, R9, 6);
    a.be(R2, 16);
    a.alu64i(AND, R2, 0x1fff);
    a.jif(JNE, R2, 0, ret0);
    a.ldx(B, R3, R9, 0);
    a.alu64i(AND, R3, 0xf);
    a.alu64i(LSH, R3, 2);
    a.jif(JLT, R3, 20, ret0);
    a.mov(R8, R9);
    a.alu64(ADD, R8, R3);
    need(a, R8, 8, ret0);
    key_v4(a, FP_DST, R9, 12);
    key_v4(a, FP_SRC, R9, 16);
    proto(a, R9, 9);
    a.jif(JEQ, R2, 6, iports);
    a.jif(JEQ, R2, 17, iports);
    a.jif(JNE, R2, 1, ret0);
    a.ldx(B, R2, R8, 0);
    a.jif(JNE, R2, 8, ret0); // quoted echo request: its reply
    port(a, 4, FP_SPORT);
    port(a, 4, FP_DPORT);
    a.jmp(fields);
    a.bind(iports);
    port(a, 0, FP_DPORT);
    port(a, 2, FP_SPORT);
    a.jmp(fields);
}

/// IPv6 (fixed header at 14: next header 20, saddr 22, daddr 38; transport
/// at 54): fills the stack fields and goes to `fields`. A quote sits at 62,
/// its transport header at 102.
fn v6_fields(a: &mut Asm, ret0: Label, fields: Label) {
    let (ports, err, iports) = (a.label(), a.label(), a.label());
    need(a, R6, 62, ret0);
    a.mov(R8, R6);
    a.alu64i(ADD, R8, 54);
    key_v6(a, FP_SRC, R6, 22);
    key_v6(a, FP_DST, R6, 38);
    proto(a, R6, 20);
    a.jif(JEQ, R2, 6, ports);
    a.jif(JEQ, R2, 17, ports);
    a.jif(JNE, R2, 58, ret0);
    a.ldx(B, R2, R8, 0);
    jif_any(a, &ICMP6_ERRORS, err);
    a.jif(JNE, R2, 129, ret0); // echo reply
    port(a, 4, FP_SPORT); // identifier
    port(a, 4, FP_DPORT);
    a.jmp(fields);
    a.bind(ports);
    port(a, 0, FP_SPORT);
    port(a, 2, FP_DPORT);
    a.jmp(fields);

    // Extension headers are not walked, in the quote either.
    a.bind(err);
    need(a, R6, 110, ret0);
    a.ldx(B, R2, R6, 62);
    a.alu64i(AND, R2, 0xf0);
    a.jif(JNE, R2, 0x60, ret0);
    a.mov(R8, R6);
    a.alu64i(ADD, R8, 102);
    key_v6(a, FP_DST, R6, 70);
    key_v6(a, FP_SRC, R6, 86);
    proto(a, R6, 68);
    a.jif(JEQ, R2, 6, iports);
    a.jif(JEQ, R2, 17, iports);
    a.jif(JNE, R2, 58, ret0);
    a.ldx(B, R2, R8, 0);
    a.jif(JNE, R2, 128, ret0); // quoted echo request: its reply
    port(a, 4, FP_SPORT);
    port(a, 4, FP_DPORT);
    a.jmp(fields);
    a.bind(iports);
    port(a, 0, FP_DPORT);
    port(a, 2, FP_SPORT);
    a.jmp(fields);
}

/// The rules on the stack fields, both families alike (IPv4 keys are
/// mapped, so the low word of every key is the address the hash uses).
fn rules(a: &mut Asm, addrs: i32, ret0: Label, modw: Label) {
    let (pool, nat) = (a.label(), a.label());
    lookup(a, addrs, FP_DST, ADDR_POOL, pool);
    a.ldx(W, R2, R10, FP_PROTO);
    a.jif(JEQ, R2, 1, ret0); // echo reply to another address
    a.jif(JEQ, R2, 58, ret0);
    lookup(a, addrs, FP_SRC, ADDR_RS, nat);
    xor_key(a, FP_SPORT, FP_SRC, modw); // sport ^ saddr
    a.bind(nat);
    xor_key(a, FP_DPORT, FP_DST, modw); // dport ^ daddr
    a.bind(pool);
    a.ldx(W, R0, R10, FP_DPORT); // local port or echo identifier
    a.jmp(modw);
}

/// The program's instructions (8 bytes each, host order).
pub(crate) fn build(p: &ProgParams) -> Vec<u8> {
    let w = p.workers.max(1) as i32;
    let mut a = Asm::new();
    let (pass, ret0, modw, choose) = (a.label(), a.label(), a.label(), a.label());
    let (v4, v6, fields) = (a.label(), a.label(), a.label());

    if let Some(map) = p.fast {
        super::fast::emit(&mut a, map);
    }
    // r6 = data, r7 = data_end; frames on other queues are not ours.
    a.ldx(W, R2, R1, 16);
    if p.first_queue != 0 {
        // Below the first: wraps to a large 64-bit value, caught below.
        a.alu64i(SUB, R2, p.first_queue as i32);
    }
    a.jif(JGE, R2, p.queues.max(1) as i32, pass);
    a.stx(W, R10, FP_QIDX, R2);
    a.ldx(W, R6, R1, 0);
    a.ldx(W, R7, R1, 4);
    need(&mut a, R6, 14, ret0);
    a.ldx(H, R2, R6, 12);
    let (ip, tagged) = (a.label(), a.label());
    a.jif(JEQ, R2, i32::from(u16::from_ne_bytes([0x81, 0x00])), tagged);
    a.jif(JEQ, R2, i32::from(u16::from_ne_bytes([0x88, 0xa8])), tagged);
    a.jmp(ip);
    // One VLAN tag: the rest is read 4 bytes on (r6 moves past the tag, so
    // every offset below stays that of an untagged frame).
    a.bind(tagged);
    need(&mut a, R6, 18, ret0);
    a.ldx(H, R2, R6, 16);
    a.alu64i(ADD, R6, 4);
    a.bind(ip);
    a.jif(JEQ, R2, i32::from(u16::from_ne_bytes([0x08, 0x00])), v4);
    a.jif(JEQ, R2, i32::from(u16::from_ne_bytes([0x86, 0xdd])), v6);
    a.jmp(ret0);
    a.bind(v4);
    v4_fields(&mut a, ret0, fields);
    a.bind(v6);
    v6_fields(&mut a, ret0, fields);
    a.bind(fields);
    rules(&mut a, p.addrs, ret0, modw);

    // r0 = key % W (32-bit, unsigned, as cBPF's A).
    a.bind(modw);
    a.emit(ALU | MOD | K, R0, 0, 0, w);
    a.jmp(choose);
    a.bind(ret0);
    a.movi(R0, 0);
    a.bind(choose);
    match p.tail {
        Tail::Redirect { xsks } => {
            a.ldx(W, R2, R10, FP_QIDX);
            a.alu64i(MUL, R2, w);
            a.alu64(ADD, R2, R0);
            a.ld_map(R1, xsks);
            a.movi(R3, XDP_PASS);
            a.call(FN_REDIRECT_MAP);
            a.exit();
        }
        Tail::ReturnWorker => a.exit(),
    }
    a.bind(pass);
    a.movi(R0, XDP_PASS);
    a.exit();
    a.finish()
}
