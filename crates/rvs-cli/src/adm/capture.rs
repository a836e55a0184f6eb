//! `rvsadm --capture`: sampling packets to pcap.
//!
//! ```text
//! rvsadm --capture [-t|-u VIP:PORT] [--proto tcp|udp|icmp]
//!        [--src PREFIX[:PORT]] [--dst PREFIX[:PORT]] [--host PREFIX[:PORT]]
//!        [--direction in|out] [--drop REASON|any]
//!        [--sample N | --first N] [-c COUNT] [--duration SECONDS]
//!        [--snaplen BYTES] -w FILE|-
//! ```
//!
//! Like `--start-daemon`, it takes none of the table's options and is parsed
//! before the main table. rvsd answers with a stream of frames, written here
//! as pcap (Ethernet link type, microsecond timestamps).

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use rvs_api::{CaptureDir, CaptureMode, CaptureSpec, Endpoint, Proto, Reply, Request, SNAPLEN_MAX};

use super::values::{number, option_value, parse_host_port};
use super::AdmCommand;
use crate::client::{connect_message, unexpected, CliError};

/// The capture command of `args`, or `None` when it is another command.
pub fn parse_capture(args: &[&str]) -> Option<Result<AdmCommand, CliError>> {
    if !args.contains(&"--capture") {
        return None;
    }
    Some(parse(args))
}

fn usage(m: String) -> CliError {
    CliError::usage(format!("rvsadm --capture: {m}"))
}

fn num(opt: &str, v: &str, min: u32, max: u32) -> Result<u32, CliError> {
    number(v, min, max)
        .ok_or_else(|| usage(format!("{opt} {v}: expected a number from {min} to {max}")))
}

/// `ADDR[/LEN][:PORT]`, with `[V6]` brackets around an IPv6 address that has
/// a port: `10.0.0.0/8`, `10.0.0.1:80`, `10.1.0.0/16:443`, `[2001:db8::]/32:80`.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, CliError> {
    let bad = || {
        usage(format!(
            "{s:?}: expected ADDR[/LEN][:PORT], e.g. 10.0.0.0/8 or 10.0.0.1:80"
        ))
    };
    let (host, len, port) = match s.split_once('/') {
        Some((h, rest)) => {
            let (l, p) = match rest.split_once(':') {
                Some((l, p)) => (l, Some(p)),
                None => (rest, None),
            };
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let a: IpAddr = h.parse().map_err(|_| bad())?;
            let max = if a.is_ipv4() { 32 } else { 128 };
            let l = number(l, 0, max).ok_or_else(bad)? as u8;
            let p = p.map(|p| number(p, 0, 65535).ok_or_else(bad)).transpose()?;
            (a, Some(l), p.map(|p| p as u16))
        }
        None => {
            let (a, p) = parse_host_port(s).map_err(|_| bad())?;
            (a, None, p)
        }
    };
    let full = if host.is_ipv4() { 32 } else { 128 };
    Ok(Endpoint {
        addr: host,
        len: len.unwrap_or(full),
        port,
    })
}

fn service(proto: Proto, v: &str) -> Result<(Proto, IpAddr, u16), CliError> {
    match parse_host_port(v) {
        Ok((a, Some(p))) => Ok((proto, a, p)),
        _ => Err(usage(format!("{v:?}: expected a service address VIP:PORT"))),
    }
}

fn parse(args: &[&str]) -> Result<AdmCommand, CliError> {
    let mut spec = CaptureSpec::default();
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ if a.len() > 2 && !a.starts_with("--") && a.starts_with('-') => {
                (&a[..2], Some(&a[2..]))
            }
            _ => (a, None),
        };
        if name == "--capture" {
            continue;
        }
        let v = option_value(args, &mut i, name, inline)?;
        match name {
            "-t" | "--tcp-service" => spec.service = Some(service(Proto::Tcp, v)?),
            "-u" | "--udp-service" => spec.service = Some(service(Proto::Udp, v)?),
            "--proto" => {
                spec.proto = Some(match v {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    "icmpv6" => 58,
                    _ => num(name, v, 0, 255)? as u8,
                })
            }
            "--src" => spec.src = Some(parse_endpoint(v)?),
            "--dst" => spec.dst = Some(parse_endpoint(v)?),
            "--host" => spec.host = Some(parse_endpoint(v)?),
            "--direction" => {
                spec.direction = Some(match v {
                    "in" => CaptureDir::In,
                    "out" => CaptureDir::Out,
                    _ => return Err(usage(format!("--direction {v}: expected in or out"))),
                })
            }
            "--drop" => spec.drop = Some(v.to_string()),
            "--sample" => spec.mode = CaptureMode::OneIn(num(name, v, 1, u32::MAX)?),
            "--first" => spec.mode = CaptureMode::FirstPerFlow(num(name, v, 1, u32::MAX)?),
            "-c" | "--count" => spec.count = num(name, v, 1, u32::MAX)? as u64,
            "--duration" => {
                spec.duration_ms = Some(num(name, v, 1, 86400)? as u64 * 1000);
            }
            "--snaplen" => spec.snaplen = num(name, v, 1, SNAPLEN_MAX)?,
            "-w" | "--write" => out = Some(v.to_string()),
            _ => {
                return Err(usage(format!(
                    "{name}: not a capture option (see rvsadm -h)"
                )))
            }
        }
    }
    let out = out.ok_or_else(|| usage("-w FILE (or -w - for stdout) is required".into()))?;
    Ok(AdmCommand::Capture { spec, out })
}

/// A growable buffer shared by the pcap writer and the loop that empties it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a capture stream (`lines`) as pcap to `out`; returns the closing
/// summary. The output is flushed whenever no more input is buffered, so a
/// reader downstream (`| tshark -r -`) sees frames as they come.
pub fn write_pcap<R: Read>(
    lines: &mut BufReader<R>,
    out: &mut dyn Write,
    snaplen: u32,
) -> Result<rvs_api::CaptureEnd, CliError> {
    let io = |e: std::io::Error| CliError::failure(format!("rvsadm --capture: cannot write: {e}"));
    let buf = Shared::default();
    let header = PcapHeader {
        snaplen,
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut pcap = PcapWriter::with_header(buf.clone(), header)
        .map_err(|e| CliError::failure(format!("rvsadm --capture: {e}")))?;
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines
            .read_line(&mut line)
            .map_err(|e| CliError::failure(format!("rvsadm --capture: lost rvsd: {e}")))?;
        if n == 0 {
            return Err(CliError::failure(
                "rvsadm --capture: rvsd closed the stream without its end line",
            ));
        }
        let reply = rvs_api::decode_reply(line.trim_end())
            .map_err(|e| CliError::failure(format!("rvsadm --capture: {}", e.message)))?;
        match reply {
            Reply::CaptureFrame(f) => {
                let data = rvs_api::from_hex(&f.hex).ok_or_else(|| {
                    CliError::failure("rvsadm --capture: a frame that is not hex from rvsd")
                })?;
                let ts = Duration::from_micros(f.ts_us);
                pcap.write_packet(&PcapPacket::new(ts, f.orig_len, &data))
                    .map_err(|e| CliError::failure(format!("rvsadm --capture: {e}")))?;
            }
            Reply::CaptureEnd(end) => {
                out.write_all(&buf.0.take()).map_err(io)?;
                out.flush().map_err(io)?;
                return Ok(end);
            }
            other => return Err(unexpected(other, "a capture")),
        }
        if lines.buffer().is_empty() || buf.0.borrow().len() > 1 << 16 {
            out.write_all(&buf.0.take()).map_err(io)?;
            out.flush().map_err(io)?;
        }
    }
}

/// Runs a capture against the daemon at `socket`, writing pcap to `out`
/// (`-` for stdout); the summary goes to stderr.
pub fn run(spec: &CaptureSpec, out: &str, socket: &str) -> Result<String, CliError> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| CliError::failure(connect_message("rvsadm", socket, &e)))?;
    let req = Request::Capture { spec: spec.clone() };
    s.write_all(rvs_api::encode_request(&req).as_bytes())
        .map_err(|e| CliError::failure(format!("rvsadm --capture: cannot ask rvsd: {e}")))?;
    let mut sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(out).map_err(|e| {
            CliError::failure(format!("rvsadm --capture: cannot create {out}: {e}"))
        })?)
    };
    let end = write_pcap(&mut BufReader::new(s), &mut sink, spec.snaplen)?;
    eprintln!(
        "rvsadm: {} frames captured, {} lost (ring full), ended by {}",
        end.frames, end.lost, end.reason
    );
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adm::parse_args;

    #[test]
    fn the_capture_line_becomes_a_spec() {
        let cmd = parse_args(&[
            "--capture",
            "-t",
            "10.0.0.100:80",
            "--src",
            "10.0.0.0/24",
            "--direction",
            "in",
            "--first",
            "3",
            "-c",
            "50",
            "--duration",
            "2",
            "--snaplen",
            "128",
            "-w",
            "-",
        ])
        .unwrap();
        let AdmCommand::Capture { spec, out } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(out, "-");
        assert_eq!(
            spec.service,
            Some((Proto::Tcp, "10.0.0.100".parse().unwrap(), 80))
        );
        assert_eq!(spec.src.unwrap().len, 24);
        assert_eq!(spec.direction, Some(CaptureDir::In));
        assert_eq!(spec.mode, CaptureMode::FirstPerFlow(3));
        assert_eq!(
            (spec.count, spec.duration_ms, spec.snaplen),
            (50, Some(2000), 128)
        );
        let e = parse_args(&["--capture", "-t", "10.0.0.100:80"]).unwrap_err();
        assert!(e.message.contains("-w FILE"), "{e}");
        let e = parse_args(&["--capture", "--direction", "sideways", "-w", "x"]).unwrap_err();
        assert!(e.message.contains("expected in or out"), "{e}");
        let ep = parse_endpoint("[2001:db8::]/32:443").unwrap();
        assert_eq!((ep.len, ep.port), (32, Some(443)));
        assert!(parse_endpoint("10.0.0.1/40").is_err());
    }

    #[test]
    fn the_stream_becomes_pcap() {
        let frame = rvs_api::CaptureFrame {
            ts_us: 1_500_000,
            worker: 0,
            dir: CaptureDir::In,
            orig_len: 60,
            hex: "00112233".into(),
        };
        let end = rvs_api::CaptureEnd {
            frames: 1,
            lost: 2,
            reason: "count".into(),
        };
        let text = rvs_api::encode_reply(&Reply::CaptureFrame(frame))
            + &rvs_api::encode_reply(&Reply::CaptureEnd(end.clone()));
        let mut out = Vec::new();
        let got = write_pcap(&mut BufReader::new(text.as_bytes()), &mut out, 2048).unwrap();
        assert_eq!(got, end);
        let mut r = pcap_file::pcap::PcapReader::new(&out[..]).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(
            (p.orig_len, &p.data[..]),
            (60, &[0u8, 0x11, 0x22, 0x33][..])
        );
        assert_eq!(p.timestamp, Duration::from_micros(1_500_000));
        assert!(r.next_packet().is_none());
        let cut = rvs_api::encode_reply(&Reply::Ok);
        assert!(write_pcap(&mut BufReader::new(cut.as_bytes()), &mut Vec::new(), 64).is_err());
    }
}
