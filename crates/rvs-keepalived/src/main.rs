//! `rvs-keepalived`: keepalived for rvs. Command line as keepalived's:
//! `-f FILE` (default /etc/keepalived/keepalived.conf), `-n` (foreground),
//! `-l` (log to the console), `-D` (detailed log), `-p PIDFILE` (default
//! /run/rvs-keepalived.pid), `-t` (test the configuration: exit 0 if
//! usable, 2 if not), `-I` (`--dont-release-ipvs`: leave the virtual
//! servers in rvsd on exit). The virtual servers are applied to rvsd at
//! start and kept there as the health checks change them
//! ([`rvs_keepalived::services`]). SIGHUP reloads, SIGTERM (or SIGINT)
//! stops: a master sends a priority-0 advert so that the backup takes over
//! at once, then removes its VIPs; the checkers stop, the `omega` scripts
//! run, and the virtual servers are removed from rvsd (unless `-I`), as
//! keepalived does.
//!
//! It always stays in the foreground and logs to stderr (`-n` and `-l` are
//! accepted for keepalived's command lines; run it under systemd or `&`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rvs_keepalived::conf;
use rvs_keepalived::reconcile::socket_transport;
use rvs_keepalived::runtime::{self, log, RunConf, Runtime};
use rvs_keepalived::services::Services;

const USAGE: &str = "usage: rvs-keepalived [-f FILE] [-n] [-l] [-D] [-p PIDFILE] [-t] [-I]";

struct Args {
    file: PathBuf,
    pidfile: PathBuf,
    test: bool,
    detailed: bool,
    /// `-I`: leave the virtual servers in rvsd on exit.
    keep_ipvs: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        file: "/etc/keepalived/keepalived.conf".into(),
        pidfile: "/run/rvs-keepalived.pid".into(),
        test: false,
        detailed: false,
        keep_ipvs: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "-f" | "--use-file" => a.file = value("-f")?.into(),
            "-p" | "--pid" => a.pidfile = value("-p")?.into(),
            "-n" | "--dont-fork" | "-l" | "--log-console" => {}
            "-D" | "--log-detail" => a.detailed = true,
            "-t" | "--config-test" => a.test = true,
            "-I" | "--dont-release-ipvs" => a.keep_ipvs = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            s if s.starts_with("--use-file=") => a.file = s["--use-file=".len()..].into(),
            s if s.starts_with("--pid=") => a.pidfile = s["--pid=".len()..].into(),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// Loads and checks the file: warnings logged, the instances built.
fn load(file: &Path) -> Result<(conf::Config, Vec<RunConf>), String> {
    let loaded = conf::load(file).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        log::warn(&w.to_string());
    }
    conf::wanted_services(&loaded.config).map_err(|e| e.to_string())?;
    let confs = runtime::run_confs(&loaded.config)?;
    Ok((loaded.config, confs))
}

/// `-t`: the parser's verdict (interfaces are not looked up: the test may
/// run on another host than the one it configures).
fn test_config(file: &Path) -> ExitCode {
    match conf::load(file) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("warning: {w}");
            }
            // The instances' values, without looking interfaces up.
            let any = |_: &str, f: rvs_keepalived::vrrp::packet::Family| {
                Some(match f {
                    rvs_keepalived::vrrp::packet::Family::V4 => {
                        std::net::Ipv4Addr::UNSPECIFIED.into()
                    }
                    rvs_keepalived::vrrp::packet::Family::V6 => "fe80::1".parse().ok()?,
                })
            };
            if let Err(e) = conf::wanted_services(&l.config) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            for vi in &l.config.vrrp_instances {
                if let Err(e) = runtime::run_conf(vi, &l.config, &any) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            eprintln!("{}: configuration is usable", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.test {
        return test_config(&args.file);
    }
    log::set_detailed(args.detailed);
    let (cfg, confs) = match load(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs-keepalived: {e}");
            return ExitCode::from(2);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(flag)) {
            eprintln!("rvs-keepalived: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = std::fs::write(&args.pidfile, format!("{}\n", std::process::id())) {
        log::warn(&format!("cannot write {}: {e}", args.pidfile.display()));
    }
    log::info(&format!(
        "starting with {} ({} vrrp_instance(s))",
        args.file.display(),
        confs.len()
    ));
    let mut rt = match Runtime::new(confs) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rvs-keepalived: {e}");
            let _ = std::fs::remove_file(&args.pidfile);
            return ExitCode::from(2);
        }
    };
    rt.standby_laddrs();
    let services = match Services::start(cfg, socket_transport()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvs-keepalived: cannot start the checkers' thread: {e}");
            let _ = std::fs::remove_file(&args.pidfile);
            return ExitCode::FAILURE;
        }
    };
    rt.start();
    let file = args.file.clone();
    let mut reload = || {
        log::info(&format!("SIGHUP: reloading {}", file.display()));
        match load(&file) {
            Ok((cfg, confs)) => {
                services.reload(cfg);
                Some(confs)
            }
            Err(e) => {
                log::warn(&format!(
                    "reload failed, keeping the running configuration: {e}"
                ));
                None
            }
        }
    };
    rt.run(&term, &hup, &mut reload);
    log::info("stopping");
    rt.shutdown();
    services.stop(!args.keep_ipvs);
    let _ = std::fs::remove_file(&args.pidfile);
    ExitCode::SUCCESS
}
