//! The bpf(2) commands and the rtnetlink messages the backend needs, written
//! against the kernel ABI directly (no libbpf, no bpffs, no ELF objects).
//!
//! `union bpf_attr` is passed as a zeroed, 8-aligned byte block with the few
//! fields each command reads written at their ABI offsets; the kernel
//! requires the bytes past the command's fields to be zero, which they are.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{cvt, socket};

// bpf(2) commands.
const MAP_CREATE: u32 = 0;
const MAP_LOOKUP_ELEM: u32 = 1;
const MAP_UPDATE_ELEM: u32 = 2;
const MAP_DELETE_ELEM: u32 = 3;
const MAP_GET_NEXT_KEY: u32 = 4;
const PROG_LOAD: u32 = 5;
const PROG_TEST_RUN: u32 = 10;
const PROG_GET_FD_BY_ID: u32 = 13;
const OBJ_GET_INFO_BY_FD: u32 = 15;
const MAP_UPDATE_BATCH: u32 = 26;
const LINK_CREATE: u32 = 28;

/// BPF_MAP_TYPE_HASH.
pub(crate) const MAP_HASH: u32 = 1;
/// BPF_MAP_TYPE_XSKMAP.
pub(crate) const MAP_XSKMAP: u32 = 17;
const PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const ATTACH_XDP: u32 = 37;

/// XDP_FLAGS_SKB_MODE: generic XDP, in the stack, for any driver.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// XDP_FLAGS_DRV_MODE: the driver's native hook.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// A zeroed `union bpf_attr` (its size in 6.x is well under 160 bytes; the
/// kernel takes the size we pass and checks the tail past what it knows is 0).
#[repr(C, align(8))]
struct Attr([u8; 160]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 160])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn ptr<T>(&mut self, off: usize, p: *const T) -> &mut Attr {
        self.u64(off, p as usize as u64)
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes([
            self.0[off],
            self.0[off + 1],
            self.0[off + 2],
            self.0[off + 3],
        ])
    }
}

fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<libc::c_int> {
    // SAFETY: `attr` is a live, writable block of the size passed; every
    // pointer stored in it (by the callers below) refers to memory that stays
    // alive and has the advertised length for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_long,
        )
    };
    cvt(r as libc::c_int)
}

fn bpf_fd(cmd: u32, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: these commands return a new descriptor (O_CLOEXEC) owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, s) in n.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    n
}

/// BPF_MAP_CREATE.
pub(crate) fn map_create(
    ty: u32,
    key: u32,
    value: u32,
    entries: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, ty).u32(4, key).u32(8, value).u32(12, entries);
    a.0[28..44].copy_from_slice(&name16(name));
    bpf_fd(MAP_CREATE, &mut a)
}

/// BPF_MAP_UPDATE_ELEM (BPF_ANY).
pub(crate) fn map_update(map: RawFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, map as u32)
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_ptr());
    bpf(MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// BPF_MAP_LOOKUP_ELEM into `value` (its size the map's); false when absent.
pub(crate) fn map_lookup(map: RawFd, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut a = Attr::new();
    a.u32(0, map as u32)
        .ptr(8, key.as_ptr())
        .ptr(16, value.as_mut_ptr());
    match bpf(MAP_LOOKUP_ELEM, &mut a) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// BPF_MAP_UPDATE_BATCH (BPF_ANY) of `count` keys and values laid end to
/// end: one syscall for many elements.
pub(crate) fn map_update_batch(
    map: RawFd,
    keys: &[u8],
    values: &[u8],
    count: u32,
) -> io::Result<()> {
    let mut a = Attr::new();
    a.ptr(16, keys.as_ptr())
        .ptr(24, values.as_ptr())
        .u32(32, count)
        .u32(36, map as u32);
    bpf(MAP_UPDATE_BATCH, &mut a).map(drop)
}

/// BPF_MAP_DELETE_ELEM.
pub(crate) fn map_delete(map: RawFd, key: &[u8]) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, map as u32).ptr(8, key.as_ptr());
    bpf(MAP_DELETE_ELEM, &mut a).map(drop)
}

/// Every key of a hash map with `N`-byte keys.
pub(crate) fn map_keys<const N: usize>(map: RawFd) -> io::Result<Vec<[u8; N]>> {
    let mut keys = Vec::new();
    let mut cur: Option<[u8; N]> = None;
    loop {
        let mut next = [0u8; N];
        let mut a = Attr::new();
        a.u32(0, map as u32).ptr(16, next.as_mut_ptr());
        if let Some(k) = &cur {
            a.ptr(8, k.as_ptr());
        }
        match bpf(MAP_GET_NEXT_KEY, &mut a) {
            Ok(_) => {
                keys.push(next);
                cur = Some(next);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(keys),
            Err(e) => return Err(e),
        }
    }
}

/// BPF_PROG_LOAD of an XDP program; on a verifier refusal the error carries
/// the verifier's log.
pub(crate) fn prog_load_xdp(insns: &[u8], name: &str) -> io::Result<OwnedFd> {
    let license = b"Dual MIT/GPL\0";
    let mut log = vec![0u8; 1 << 16];
    let try_load = |log_level: u32, log: &mut [u8]| {
        let mut a = Attr::new();
        a.u32(0, PROG_TYPE_XDP)
            .u32(4, (insns.len() / 8) as u32)
            .ptr(8, insns.as_ptr())
            .ptr(16, license.as_ptr())
            .u32(68, ATTACH_XDP);
        if log_level > 0 {
            a.u32(24, log_level)
                .u32(28, log.len() as u32)
                .ptr(32, log.as_mut_ptr());
        }
        a.0[48..64].copy_from_slice(&name16(name));
        bpf_fd(PROG_LOAD, &mut a)
    };
    match try_load(0, &mut log) {
        Ok(fd) => Ok(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            // Load again with the log on, to say why.
            let _ = try_load(1, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: String = text
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            Err(io::Error::new(
                e.kind(),
                format!("the kernel refused the XDP program ({e}); verifier: {tail}"),
            ))
        }
        Err(e) => Err(e),
    }
}

/// BPF_LINK_CREATE of an XDP program on `ifindex` in mode `flags`. The link
/// lives as long as the descriptor: closing it (or the process dying)
/// detaches the program.
pub(crate) fn link_create_xdp(prog: RawFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog as u32)
        .u32(4, ifindex)
        .u32(8, ATTACH_XDP)
        .u32(12, flags);
    bpf_fd(LINK_CREATE, &mut a)
}

/// BPF_PROG_TEST_RUN of an XDP program on one frame; returns its return value.
pub(crate) fn prog_test_run(prog: RawFd, frame: &[u8]) -> io::Result<u32> {
    prog_test_run_out(prog, frame).map(|(r, _)| r)
}

/// BPF_PROG_TEST_RUN of an XDP program on one frame; returns its return
/// value and the frame as the program left it.
pub(crate) fn prog_test_run_out(prog: RawFd, frame: &[u8]) -> io::Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; frame.len() + 512];
    let mut a = Attr::new();
    a.u32(0, prog as u32)
        .u32(8, frame.len() as u32)
        .u32(12, out.len() as u32)
        .ptr(16, frame.as_ptr())
        .ptr(24, out.as_mut_ptr())
        .u32(32, 1);
    bpf(PROG_TEST_RUN, &mut a)?;
    out.truncate(a.get_u32(12) as usize);
    Ok((a.get_u32(4), out))
}

/// The name of the loaded program with id `id`.
pub(crate) fn prog_name_by_id(id: u32) -> io::Result<String> {
    let mut a = Attr::new();
    a.u32(0, id);
    let fd = bpf_fd(PROG_GET_FD_BY_ID, &mut a)?;
    // struct bpf_prog_info: the name is at 64..80.
    let mut info = [0u8; 256];
    let mut a = Attr::new();
    a.u32(0, fd.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    bpf(OBJ_GET_INFO_BY_FD, &mut a)?;
    let n = &info[64..80];
    let end = n.iter().position(|&b| b == 0).unwrap_or(16);
    Ok(String::from_utf8_lossy(&n[..end]).into_owned())
}

/// BPF_OBJ_GET_INFO_BY_FD: the start of the object's info struct
/// (`bpf_map_info`, `bpf_prog_info` or `bpf_link_info`, by what `fd` is)
/// into `info`.
pub(crate) fn obj_info(fd: RawFd, info: &mut [u8]) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, fd as u32)
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    bpf(OBJ_GET_INFO_BY_FD, &mut a).map(drop)
}

// rtnetlink: just enough to read and clear a device's XDP program.
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFLA_XDP: u16 = 43;
const NLA_F_NESTED: u16 = 0x8000;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
/// XDP_ATTACHED_SKB.
const ATTACHED_SKB: u8 = 2;

/// What XDP program a device has, per rtnetlink.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attached {
    /// XDP_ATTACHED_*: 0 none, 1 driver, 2 generic, 3 offload, 4 several.
    pub(crate) mode: u8,
    /// The program id (0: none).
    pub(crate) prog_id: u32,
}

struct Nl {
    fd: OwnedFd,
    seq: u32,
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl Nl {
    fn open() -> io::Result<Nl> {
        let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
        Ok(Nl { fd, seq: 1 })
    }

    /// Sends one request (`ifinfomsg` for `ifindex` plus `attrs`) and
    /// returns the first reply message's payload (after the nlmsghdr).
    fn request(&mut self, ty: u16, flags: u16, ifindex: u32, attrs: &[u8]) -> io::Result<Vec<u8>> {
        self.seq += 1;
        let mut m = Vec::with_capacity(64 + attrs.len());
        let len = 16 + 16 + attrs.len();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // struct ifinfomsg: family, pad, type, index, flags, change.
        m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(attrs);
        // SAFETY: `m` is a live buffer of the length passed; the kernel reads it.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        cvt(r as libc::c_int)?;
        let mut buf = vec![0u8; 32768];
        loop {
            // SAFETY: `buf` is writable for its whole length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let n = cvt(n as libc::c_int)? as usize;
            let mut off = 0;
            while off + 16 <= n {
                let mlen = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let mty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let mseq =
                    u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
                if mlen < 16 || off + mlen > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad netlink reply",
                    ));
                }
                if mseq == self.seq {
                    let body = &buf[off + 16..off + mlen];
                    if mty == NLMSG_ERROR && body.len() >= 4 {
                        let err = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                    }
                    return Ok(body.to_vec());
                }
                off += mlen.next_multiple_of(4);
            }
        }
    }
}

/// The XDP program attached to `ifindex`, if any.
pub(crate) fn xdp_query(ifindex: u32) -> io::Result<Attached> {
    let mut nl = Nl::open()?;
    let body = nl.request(RTM_GETLINK, 0, ifindex, &[])?;
    let mut at = Attached::default();
    // ifinfomsg (16 bytes), then attributes.
    let mut off = 16;
    while off + 4 <= body.len() {
        let len = u16::from_ne_bytes([body[off], body[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([body[off + 2], body[off + 3]]) & !NLA_F_NESTED;
        if len < 4 || off + len > body.len() {
            break;
        }
        if ty == IFLA_XDP {
            let inner = &body[off + 4..off + len];
            let mut i = 0;
            while i + 4 <= inner.len() {
                let l = u16::from_ne_bytes([inner[i], inner[i + 1]]) as usize;
                let t = u16::from_ne_bytes([inner[i + 2], inner[i + 3]]);
                if l < 4 || i + l > inner.len() {
                    break;
                }
                let d = &inner[i + 4..i + l];
                match t {
                    IFLA_XDP_ATTACHED if !d.is_empty() => at.mode = d[0],
                    IFLA_XDP_PROG_ID if d.len() >= 4 => {
                        at.prog_id = u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
                    }
                    _ => {}
                }
                i += l.next_multiple_of(4);
            }
        }
        off += len.next_multiple_of(4);
    }
    Ok(at)
}

/// Attaches (`prog` ≥ 0) or detaches (`prog` = -1) an XDP program the old
/// way, through rtnetlink, in the mode `attached` says (driver or generic).
/// Such an attachment outlives the process; rvs only uses it to clear what
/// an earlier process left behind (and tests, to make such a leftover).
pub(crate) fn xdp_set_netlink(ifindex: u32, prog: RawFd, generic: bool) -> io::Result<()> {
    let mut nl = Nl::open()?;
    let flags = if generic {
        XDP_FLAGS_SKB_MODE
    } else {
        XDP_FLAGS_DRV_MODE
    };
    let mut inner = Vec::new();
    push_attr(&mut inner, IFLA_XDP_FD, &prog.to_ne_bytes());
    push_attr(&mut inner, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    let mut attrs = Vec::new();
    push_attr(&mut attrs, IFLA_XDP | NLA_F_NESTED, &inner);
    nl.request(RTM_SETLINK, NLM_F_ACK, ifindex, &attrs)
        .map(drop)
}

/// Whether `Attached::mode` means generic (skb) mode.
pub(crate) fn is_generic(a: &Attached) -> bool {
    a.mode == ATTACHED_SKB
}

const _: () = assert!(size_of::<Attr>() == 160);
