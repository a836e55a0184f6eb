//! `rvs-uoa-decode`: prints the client address and port carried as UOA by
//! FNAT UDP datagrams (rvs's `[pipeline] uoa_mode = "opp" | "ipo"`, or
//! DPVS), one line per datagram:
//!
//! ```text
//! client 10.0.0.48:40000 dport 53 opp 5 bytes
//! ```
//!
//! Usage:
//!
//! - `rvs-uoa-decode [--count N] [--timeout-ms MS]`: on the real server,
//!   as root; reads IPv4 raw sockets for IP protocol 248 (`opp`) and UDP
//!   (`ipo`, an IP option). The kernel still delivers `ipo` datagrams to
//!   their UDP socket; `opp` ones need DPVS's `uoa` module to reach it
//!   (with this tool's raw socket open, the kernel sends no protocol
//!   unreachable for them).
//! - `rvs-uoa-decode --pcap FILE [--count N]`: reads a capture (`-` for
//!   stdin), e.g. `tcpdump -i eth0 -w - 'ip proto 248 or udp' | rvs-uoa-decode --pcap -`;
//!   Ethernet, raw IP and Linux cooked captures, IPv4 and IPv6.
//!
//! Exits 0 after `--count` datagrams (or the end of the capture), 1 when
//! `--timeout-ms` passes first, 2 on a usage or system error.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rvs_uoa_decode::{decode_ip, ip_of_frame};

/// Command-line options.
struct Opts {
    pcap: Option<String>,
    count: Option<u64>,
    timeout: Option<Duration>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        pcap: None,
        count: None,
        timeout: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--pcap" => o.pcap = Some(val("--pcap")?),
            "--count" => {
                let v = val("--count")?;
                o.count = Some(
                    v.parse()
                        .map_err(|_| format!("--count {v}: not a number"))?,
                );
            }
            "--timeout-ms" => {
                let v = val("--timeout-ms")?;
                let ms = v
                    .parse()
                    .map_err(|_| format!("--timeout-ms {v}: not a number"))?;
                o.timeout = Some(Duration::from_millis(ms));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: rvs-uoa-decode [--pcap FILE|-] [--count N] [--timeout-ms MS]".into(),
                )
            }
            _ => return Err(format!("unknown argument {a:?} (see --help)")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rvs-uoa-decode: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match &o.pcap {
        Some(path) => open(path).and_then(|r| from_pcap(r, path, o.count, &mut std::io::stdout())),
        None => from_raw(o.count, o.timeout),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rvs-uoa-decode: {e}");
            ExitCode::from(2)
        }
    }
}

/// The capture at `path` (`-`: stdin).
fn open(path: &str) -> Result<Box<dyn Read>, String> {
    if path == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Box::new(f))
}

/// Writes to `out` one line per datagram with UOA in the capture `input`
/// (named `path` in errors), at most `count`.
fn from_pcap(
    input: impl Read,
    path: &str,
    count: Option<u64>,
    out: &mut impl Write,
) -> Result<bool, String> {
    let mut r = pcap_file::pcap::PcapReader::new(input).map_err(|e| format!("{path}: {e}"))?;
    let linktype = u32::from(r.header().datalink);
    let mut seen = 0;
    while let Some(p) = r.next_packet() {
        let p = p.map_err(|e| format!("{path}: {e}"))?;
        if let Some(f) = ip_of_frame(linktype, &p.data).and_then(decode_ip) {
            writeln!(out, "{f}").map_err(|e| e.to_string())?;
            seen += 1;
            if count.is_some_and(|n| seen >= n) {
                break;
            }
        }
    }
    Ok(true)
}

/// A raw IPv4 socket for IP protocol `proto`.
fn raw_socket(proto: i32) -> Result<i32, String> {
    // SAFETY: plain socket(2) call; the descriptor is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, proto) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "raw socket for IP protocol {proto} (root needed): {e}"
        ));
    }
    Ok(fd)
}

/// Prints one line per datagram with UOA read from raw sockets; false when
/// `timeout` passed before `count` datagrams.
fn from_raw(count: Option<u64>, timeout: Option<Duration>) -> Result<bool, String> {
    let fds = [
        raw_socket(i32::from(rvs_core::wire::uoa::IPPROTO_OPT))?,
        raw_socket(libc::IPPROTO_UDP)?,
    ];
    let mut pfd = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    eprintln!("rvs-uoa-decode: listening (raw IPv4 sockets, IP protocols 248 and 17)");
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut seen = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let wait = match timeout {
            Some(t) => match t.checked_sub(start.elapsed()) {
                Some(left) => left.as_millis().min(i32::MAX as u128) as i32,
                None => return Ok(false),
            },
            None => -1,
        };
        // SAFETY: pfd is a live array of two pollfd for the call's duration.
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), pfd.len() as libc::nfds_t, wait) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for p in pfd.iter_mut().filter(|p| p.revents & libc::POLLIN != 0) {
            // SAFETY: buf is valid for buf.len() bytes; recv writes at most that.
            let len = unsafe { libc::recv(p.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if len < 0 {
                return Err(format!("recv: {}", std::io::Error::last_os_error()));
            }
            if let Some(f) = decode_ip(&buf[..len as usize]) {
                writeln!(out, "{f}")
                    .and_then(|_| out.flush())
                    .map_err(|e| e.to_string())?;
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    return Ok(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::DataLink;
    use rvs_core::addr::Addr;
    use rvs_core::wire::uoa;

    /// An Ethernet frame: IPv4 with the `ipo` option for 10.0.0.48:`cport`,
    /// UDP to port 53 with 3 bytes.
    fn ipo_frame(cport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0, 0x47, 0, 0, 39, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[192, 168, 100, 200, 192, 168, 100, 2]);
        let mut o = [0u8; 8];
        uoa::write_option(&mut o, &Addr::v4(10, 0, 0, 48), cport);
        f.extend_from_slice(&o);
        f.extend_from_slice(&[0x9c, 0x41, 0, 53, 0, 11, 0, 0, b'a', b'b', b'c']);
        f
    }

    #[test]
    fn a_capture_is_read_frame_by_frame_up_to_count() {
        let mut w = PcapWriter::with_header(
            Vec::new(),
            PcapHeader {
                datalink: DataLink::ETHERNET,
                ..Default::default()
            },
        )
        .unwrap();
        for cport in [41000u16, 41001, 41002] {
            let f = ipo_frame(cport);
            w.write_packet(&PcapPacket::new(Default::default(), f.len() as u32, &f))
                .unwrap();
        }
        let pcap = w.into_writer();
        let mut out = Vec::new();
        assert_eq!(from_pcap(&pcap[..], "t", Some(2), &mut out), Ok(true));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "client 10.0.0.48:41000 dport 53 ipo 3 bytes\nclient 10.0.0.48:41001 dport 53 ipo 3 bytes\n"
        );
        let e = from_pcap(&b"not a pcap"[..], "bad.pcap", None, &mut Vec::new()).unwrap_err();
        assert!(e.starts_with("bad.pcap: "), "{e}");
    }
}
