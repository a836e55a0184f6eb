//! `rvs-bench handover`: what the state transfer of a hot upgrade (issue
//! 14, step 6 PRECOPY) costs per connection, in memory on one core: the
//! old worker's sweep ([`Worker::export_local`], 1024 slots per call, as the
//! hand-over thread runs it) encoded into 64 KiB version 4 messages, then
//! on a fresh worker with the same configuration the messages decoded
//! ([`LocalMessage::parse`]) and every connection installed
//! ([`Worker::install_local`]). The table is filled by SYNs through the
//! pipeline as `rvs-bench pipeline` does (TCP SYN_RECV connections).

use std::sync::Arc;
use std::time::Instant;

use rvs_core::conn::FwdMode;
use rvs_core::pipeline::{Worker, WorkerConf};
use rvs_core::sync::{encode_local, Header, LocalMessage, LocalRecord, Source};

use crate::pipeline::{self, SyncBench};

/// Arguments of `rvs-bench handover`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Connections in the table.
    #[arg(long, default_value_t = 1_000_000)]
    conns: usize,
    /// Forwarding modes to measure (fnat takes local ports from pools, dr none).
    #[arg(long, value_delimiter = ',', default_value = "fnat,dr")]
    modes: Vec<String>,
    /// Print one JSON object per mode.
    #[arg(long)]
    json: bool,
}

/// This thread's time on a CPU so far, ns (`/proc/thread-self/schedstat`):
/// the figures are CPU time, not wall time, so that other processes on a
/// shared machine do not inflate them. 0 if unreadable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t0, c0) = (Instant::now(), cpu_ns());
    let r = f();
    let cpu = cpu_ns().saturating_sub(c0) as f64 / 1e9;
    (r, t0.elapsed().as_secs_f64(), cpu)
}

/// Slots the sweep looks at per call.
const SWEEP_SLOTS: u32 = 1024;
/// Largest hand-over message.
const MSG: usize = 65_535;

struct Figures {
    conns: usize,
    bytes: usize,
    /// Wall, CPU ns per connection.
    export_ns: (f64, f64),
    install_ns: (f64, f64),
}

/// Exports `old` into a stream of length-prefixed messages, as the old
/// process writes them to the hand-over socket: the records.
fn export(old: &Worker, now: u64, stream: &mut Vec<u8>) -> usize {
    let mut buf = vec![0u8; MSG];
    let mut chunk: Vec<LocalRecord> = Vec::with_capacity(SWEEP_SLOTS as usize);
    let (mut n, mut seq) = (0, 0);
    let mut at = Some(0);
    while let Some(s) = at {
        chunk.clear();
        at = old.export_local(s, SWEEP_SLOTS, now, |l| chunk.push(LocalRecord::Conn(l)));
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let h = Header {
                sync_id: 0,
                node: 0,
                seq,
            };
            let (len, k) = encode_local(&mut buf, h, rest).expect("encode");
            stream.extend_from_slice(&(len as u32).to_be_bytes());
            stream.extend_from_slice(&buf[..len]);
            (rest, seq, n) = (&rest[k..], seq + 1, n + k);
        }
    }
    n
}

/// Decodes the stream and installs every connection on `new`: how many.
fn install(new: &mut Worker, now: u64, stream: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at + 4 <= stream.len() {
        let len = u32::from_be_bytes([stream[at], stream[at + 1], stream[at + 2], stream[at + 3]]);
        let msg = &stream[at + 4..at + 4 + len as usize];
        at += 4 + len as usize;
        let m = LocalMessage::parse(msg, Source::Local).expect("decode");
        for r in m.records() {
            if let LocalRecord::Conn(l) = r {
                new.install_local(&l, now).expect("install");
                n += 1;
            }
        }
    }
    n
}

fn measure(mode: FwdMode, conns: usize) -> Result<Figures, String> {
    let (old, _, _, _) = pipeline::setup(mode, conns, SyncBench::Off, false, &None)?;
    let conf = WorkerConf {
        conn_capacity: conns.max(1),
        table_mem: pipeline::table_mem(),
        prefetch: pipeline::prefetch(),
        ..WorkerConf::default()
    };
    let mut new = Worker::new(conf, Arc::clone(old.snapshot()), 0);
    let mut stream = Vec::with_capacity(conns * 80);
    let (sent, ew, ec) = timed(|| export(&old, 1, &mut stream));
    let (got, iw, ic) = timed(|| install(&mut new, 1, &stream));
    if sent != old.conns().len() || got != sent || new.conn_count() != old.conn_count() {
        return Err(format!(
            "{mode:?}: {} in the table, {sent} sent, {got} installed, {} live on the new",
            old.conns().len(),
            new.conn_count()
        ));
    }
    Ok(Figures {
        conns: sent,
        bytes: stream.len(),
        export_ns: (ew * 1e9 / sent.max(1) as f64, ec * 1e9 / sent.max(1) as f64),
        install_ns: (iw * 1e9 / sent.max(1) as f64, ic * 1e9 / sent.max(1) as f64),
    })
}

/// Runs `rvs-bench handover`.
pub fn run(a: Args) -> i32 {
    for name in &a.modes {
        let mode = match name.as_str() {
            "fnat" => FwdMode::Fnat,
            "dr" => FwdMode::Dr,
            "nat" => FwdMode::Nat,
            m => {
                eprintln!("rvs-bench handover: unknown mode {m:?} (fnat, dr, nat)");
                return 2;
            }
        };
        let f = match measure(mode, a.conns) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("rvs-bench handover: {e}");
                return 1;
            }
        };
        let per = f.bytes as f64 / f.conns.max(1) as f64;
        if a.json {
            println!(
                "{{\"mode\":\"{name}\",\"conns\":{},\"bytes_per_conn\":{per:.1},\"export_wall_ns\":{:.1},\"export_cpu_ns\":{:.1},\"install_wall_ns\":{:.1},\"install_cpu_ns\":{:.1}}}",
                f.conns, f.export_ns.0, f.export_ns.1, f.install_ns.0, f.install_ns.1
            );
        } else {
            println!(
                "{name:>5}: {} conns, {per:.1} B/conn on the stream; per conn, wall/CPU: export+encode {:.0}/{:.0} ns, decode+install {:.0}/{:.0} ns",
                f.conns, f.export_ns.0, f.export_ns.1, f.install_ns.0, f.install_ns.1
            );
        }
    }
    0
}
