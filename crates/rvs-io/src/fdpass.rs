//! Frames with descriptors over a unix stream: the transport of a hand-over
//! (issue 14), where a running rvsd gives its sockets, UMEM and TAPs to the
//! process that takes over.
//!
//! A frame is `u32 len | u16 kind | u16 version | u16 nfds | u16 0` (little
//! endian, `len` counts the payload) and the payload; its descriptors
//! (`SCM_RIGHTS`, at most [`MAX_FDS`]) ride on the sendmsg that carries the
//! header, and the receiver reads the header alone first, so they can never
//! be attached to a later frame's bytes. Received descriptors are
//! close-on-exec (`MSG_CMSG_CLOEXEC`): children that rvsd starts (health
//! notify commands) must not keep a passed socket or TAP alive. What `kind`
//! and `version` mean is the caller's: this module moves bytes and fds.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// The kernel's limit of descriptors per message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;
/// The largest payload a frame may announce (a sanity bound: a peer that
/// announces more is broken, not large).
pub const MAX_PAYLOAD: usize = 256 << 20;
const HDR: usize = 12;

/// One received frame.
#[derive(Debug)]
pub struct Frame {
    /// What the frame is (the caller's numbering).
    pub kind: u16,
    /// The version of `kind`'s format the sender wrote.
    pub version: u16,
    /// The bytes after the header.
    pub payload: Vec<u8>,
    /// In the order the sender listed them.
    pub fds: Vec<OwnedFd>,
}

fn header(kind: u16, version: u16, len: usize, nfds: usize) -> [u8; HDR] {
    let mut h = [0u8; HDR];
    h[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..6].copy_from_slice(&kind.to_le_bytes());
    h[6..8].copy_from_slice(&version.to_le_bytes());
    h[8..10].copy_from_slice(&(nfds as u16).to_le_bytes());
    h
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Sends one frame with `fds` attached. Blocks until all of it is written.
pub fn send(
    s: &UnixStream,
    kind: u16,
    version: u16,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} descriptors in one frame (at most {MAX_FDS})", fds.len()),
        ));
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {}-byte frame (at most {MAX_PAYLOAD})", payload.len()),
        ));
    }
    let h = header(kind, version, payload.len(), fds.len());
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    // The header and as much payload as one call takes; the fds go with
    // the first byte.
    let iov = [IoSlice::new(&h), IoSlice::new(payload)];
    let mut sent = sendmsg(s.as_fd(), &iov, &mut cmsg, SendFlags::NOSIGNAL)?;
    if sent < HDR {
        (&*s).write_all(&h[sent..])?;
        sent = HDR;
    }
    (&*s).write_all(&payload[sent - HDR..])?;
    Ok(())
}

/// Receives one frame. `Ok(None)` at a clean end of stream before a header.
pub fn recv(s: &UnixStream) -> io::Result<Option<Frame>> {
    let mut h = [0u8; HDR];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let r = {
        let mut iov = [IoSliceMut::new(&mut h)];
        recvmsg(s.as_fd(), &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)?
    };
    if r.bytes == 0 {
        return Ok(None);
    }
    let truncated = r.flags.contains(ReturnFlags::CTRUNC);
    let mut fds = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    if r.bytes < HDR {
        (&*s).read_exact(&mut h[r.bytes..])?;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = u16::from_le_bytes([h[4], h[5]]);
    let version = u16::from_le_bytes([h[6], h[7]]);
    let nfds = u16::from_le_bytes([h[8], h[9]]) as usize;
    if truncated || fds.len() != nfds {
        return Err(invalid(format!(
            "frame kind {kind}: {nfds} descriptors announced, {} received",
            fds.len()
        )));
    }
    if len > MAX_PAYLOAD {
        return Err(invalid(format!(
            "frame kind {kind} announces {len} bytes (at most {MAX_PAYLOAD})"
        )));
    }
    let mut payload = vec![0u8; len];
    (&*s).read_exact(&mut payload)?;
    Ok(Some(Frame {
        kind,
        version,
        payload,
        fds,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Seek;
    use std::os::fd::AsRawFd;

    fn file_with(text: &str) -> File {
        let mut f = tempfile();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn tempfile() -> File {
        let p = std::env::temp_dir().join(format!(
            "rvs-fdpass-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        std::fs::remove_file(&p).unwrap();
        f
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut f = File::from(fd);
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn frames_carry_payload_and_descriptors_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let (f1, f2) = (file_with("one"), file_with("two"));
        send(&a, 7, 3, b"hello", &[f1.as_fd(), f2.as_fd()]).unwrap();
        send(&a, 8, 1, &[], &[]).unwrap();
        let big = vec![0xabu8; 1 << 20];
        let f3 = file_with("three");
        send_in_thread(&a, big.clone(), f3);
        let fr = recv(&b).unwrap().unwrap();
        assert_eq!(
            (fr.kind, fr.version, &fr.payload[..]),
            (7, 3, &b"hello"[..])
        );
        let texts: Vec<String> = fr.fds.into_iter().map(read_all).collect();
        assert_eq!(texts, ["one", "two"]);
        let fr = recv(&b).unwrap().unwrap();
        assert_eq!((fr.kind, fr.payload.len(), fr.fds.len()), (8, 0, 0));
        let fr = recv(&b).unwrap().unwrap();
        assert_eq!(fr.payload, big, "a payload larger than the socket buffer");
        assert_eq!(fr.fds.len(), 1);
        let fd = fr.fds.into_iter().next().unwrap();
        assert!(is_cloexec(fd.as_raw_fd()), "received fds are close-on-exec");
        assert_eq!(read_all(fd), "three");
        drop(a);
        assert!(recv(&b).unwrap().is_none(), "clean end of stream");
    }

    fn send_in_thread(a: &UnixStream, big: Vec<u8>, f: File) {
        let a = a.try_clone().unwrap();
        std::thread::spawn(move || send(&a, 9, 1, &big, &[f.as_fd()]).unwrap());
    }

    /// Whether `fd` is close-on-exec: /proc/self/fdinfo's `flags` are the
    /// open flags in octal, where O_CLOEXEC (0o2000000) stands for it.
    fn is_cloexec(fd: i32) -> bool {
        let s = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = s
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        flags & 0o2000000 != 0
    }

    #[test]
    fn a_frame_announcing_fds_it_does_not_carry_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut h = header(1, 1, 0, 2);
        (&a).write_all(&h).unwrap();
        let e = recv(&b).unwrap_err();
        assert!(
            e.to_string()
                .contains("2 descriptors announced, 0 received"),
            "{e}"
        );
        h = header(1, 1, MAX_PAYLOAD + 1, 0);
        (&a).write_all(&h).unwrap();
        let e = recv(&b).unwrap_err();
        assert!(e.to_string().contains("announces"), "{e}");
        let many: Vec<File> = (0..MAX_FDS + 1).map(|_| tempfile()).collect();
        let fds: Vec<BorrowedFd> = many.iter().map(|f| f.as_fd()).collect();
        assert!(send(&a, 1, 1, &[], &fds).is_err());
    }
}
