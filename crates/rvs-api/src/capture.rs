//! Packet capture (`rvsadm --capture`): what to capture ([`CaptureSpec`]) and
//! the stream rvsd answers with, one [`CaptureFrame`] per captured frame and
//! a closing [`CaptureEnd`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Proto;

/// Frames captured at most by default (`-c`).
pub const CAPTURE_COUNT_DEFAULT: u64 = 1000;
/// Bytes kept of each frame by default (`--snaplen`).
pub const SNAPLEN_DEFAULT: u32 = 2048;
/// Largest snap length rvsd accepts (a jumbo frame).
pub const SNAPLEN_MAX: u32 = 9216;

/// An address prefix with an optional port: `10.0.0.0/8`, `10.0.0.1:80`,
/// `[2001:db8::]/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for one host).
    pub len: u8,
    /// The transport port, when it must match too.
    pub port: Option<u16>,
}

/// Which frames of a matching packet are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureDir {
    /// The frame as received from the wire.
    In,
    /// The frame as transmitted (after the rewrite).
    Out,
}

/// Which of the matching packets are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// Every matching packet.
    Every,
    /// One in N matching packets (per worker).
    OneIn(u32),
    /// The first N packets of each flow (its 5-tuple, both ways).
    FirstPerFlow(u32),
}

/// What `rvsadm --capture` asks for. A packet matches when every given
/// criterion holds for its received frame or for its transmitted frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    /// `-t|-u VIP:PORT`: the frame goes to or comes from this service
    /// address (with its protocol).
    pub service: Option<(Proto, IpAddr, u16)>,
    /// `--proto tcp|udp|icmp`: the IP protocol number.
    pub proto: Option<u8>,
    /// `--src PREFIX[:PORT]`: the frame's source.
    pub src: Option<Endpoint>,
    /// `--dst PREFIX[:PORT]`: the frame's destination.
    pub dst: Option<Endpoint>,
    /// `--host PREFIX[:PORT]`: the frame's source or destination.
    pub host: Option<Endpoint>,
    /// `--direction in|out`: only the received or only the transmitted frame.
    pub direction: Option<CaptureDir>,
    /// `--drop REASON|any`: only packets dropped (for this reason).
    pub drop: Option<String>,
    /// `--sample N` / `--first N`.
    pub mode: CaptureMode,
    /// `-c N`: stop after this many frames.
    pub count: u64,
    /// `--duration SECONDS`: stop after this long (in milliseconds).
    pub duration_ms: Option<u64>,
    /// `--snaplen N`: bytes kept of each frame.
    pub snaplen: u32,
}

impl Default for CaptureSpec {
    fn default() -> CaptureSpec {
        CaptureSpec {
            service: None,
            proto: None,
            src: None,
            dst: None,
            host: None,
            direction: None,
            drop: None,
            mode: CaptureMode::Every,
            count: CAPTURE_COUNT_DEFAULT,
            duration_ms: None,
            snaplen: SNAPLEN_DEFAULT,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFrame {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The worker that handled it.
    pub worker: u16,
    /// Received or transmitted.
    pub dir: CaptureDir,
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// The first `snaplen` bytes, in lowercase hex.
    pub hex: String,
}

/// Why and how a capture ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureEnd {
    /// Frames sent.
    pub frames: u64,
    /// Frames lost because a worker's capture ring was full.
    pub lost: u64,
    /// Why it stopped: `count`, `duration` or `client`.
    pub reason: String,
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// The bytes of a hex string; `None` when it is not hex of whole bytes.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() & 1 == 1 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&b), "0001abff");
        assert_eq!(from_hex("0001abff").unwrap(), b);
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
