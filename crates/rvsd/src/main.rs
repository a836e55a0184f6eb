//! rvsd: the rvs daemon. Takes over the configured ports, runs the workers,
//! serves the control socket, and gives everything back on SIGTERM.
//!
//! `rvsd [-c FILE] [--check]`: `--check` validates the file and exits.
//! `rvsd --takeover [-c FILE]`: takes over from the rvsd running on the
//! same ports and control socket (a hot upgrade), then is the daemon.
//! `rvsd --standby [-c FILE]`: a warm standby of that rvsd: holds its
//! ports and follows its tables; becomes the daemon when it dies.
//! `rvsd --release IFACE`: gives back a port an rvsd that died left taken
//! (its state file under `RVS_RUN_DIR`, default `/run/rvs`) and exits.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use rvsd::config::{Config, DEFAULT_PATH};

fn usage() -> ! {
    eprintln!("usage: rvsd [-c FILE] [--check | --takeover [--rolling] | --standby]\n       rvsd --release IFACE\n  -c FILE          configuration (default {DEFAULT_PATH})\n  --check          validate the configuration and exit\n  --takeover       take over from the rvsd running on these ports (hot\n                   upgrade: its connections and configuration carry on)\n  --rolling        with --takeover: switch one worker at a time (af_packet\n                   ports only; each worker's gap holds only its own hand-over)\n  --standby        a warm standby of the rvsd running on these ports: holds\n                   its ports, follows its connections and configuration,\n                   and forwards in its place within ms when it dies\n  --release IFACE  give back a port a dead rvsd left taken (addresses, IPv6\n                   setting, nftables table; state under $RVS_RUN_DIR, default {}) and exit", rvsd::takeover::DEFAULT_RUN_DIR);
    std::process::exit(2);
}

/// `rvsd --release IFACE`.
fn release(iface: &str) -> ExitCode {
    match rvsd::takeover::release(&rvsd::takeover::run_dir(), iface) {
        Ok(done) => {
            println!("rvsd: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvsd: cannot release {iface}: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let mut path = PathBuf::from(DEFAULT_PATH);
    let mut check = false;
    let mut takeover = false;
    let mut standby = false;
    let mut rolling = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" | "--config" => path = args.next().map(PathBuf::from).unwrap_or_else(|| usage()),
            "--check" => check = true,
            "--takeover" => takeover = true,
            "--rolling" => rolling = true,
            "--standby" => standby = true,
            "--release" => {
                let iface = args.next().unwrap_or_else(|| usage());
                return release(&iface);
            }
            "-h" | "--help" => usage(),
            "-v" | "--version" => {
                println!("rvsd {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("rvsd: unknown argument '{a}'");
                usage();
            }
        }
    }
    let conf = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvsd: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("{}: ok", path.display());
        return ExitCode::SUCCESS;
    }
    let level = match conf.log_level.as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if takeover && standby {
        eprintln!("rvsd: --takeover and --standby exclude each other");
        usage();
    }
    if rolling && !takeover {
        eprintln!("rvsd: --rolling goes with --takeover");
        usage();
    }
    let res = if standby {
        rvsd::daemon::standby(&path, &conf)
    } else if takeover {
        rvsd::daemon::takeover(&path, &conf, rolling)
    } else {
        rvsd::daemon::run(path, conf)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("rvsd: {e}");
            ExitCode::from(1)
        }
    }
}
