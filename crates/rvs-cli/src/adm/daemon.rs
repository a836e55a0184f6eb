//! ipvsadm's sync-daemon commands: `--start-daemon master|backup
//! [--mcast-interface IF] [--syncid N] [--mcast-group G] [--mcast-port P]
//! [--mcast-ttl T]`, `--stop-daemon master|backup` and `-L --daemon
//! [--stats]` (rvs adds `--stats`: the sync counters). They take none of the
//! service options, so they are parsed here before the main table.

use rvs_api::{DaemonList, Request, SyncDaemonSpec, SyncRole};

use super::values::option_value;
use super::AdmCommand;
use crate::client::CliError;

fn role(v: &str) -> Result<SyncRole, CliError> {
    match v {
        "master" => Ok(SyncRole::Master),
        "backup" => Ok(SyncRole::Backup),
        _ => Err(CliError::usage(format!(
            "invalid daemon state {v:?}: expected master or backup"
        ))),
    }
}

fn num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, CliError> {
    v.parse()
        .map_err(|_| CliError::usage(format!("--{opt} {v}: invalid value")))
}

/// The sync-daemon command of `args`, or `None` when it is another command.
pub fn parse_daemon(args: &[&str]) -> Option<Result<AdmCommand, CliError>> {
    let is = |names: &[&str]| {
        args.iter().any(|a| {
            names
                .iter()
                .any(|n| a == n || a.starts_with(&format!("{n}=")))
        })
    };
    if !is(&["--start-daemon", "--stop-daemon", "--daemon"]) {
        return None;
    }
    Some(parse(args))
}

fn parse(args: &[&str]) -> Result<AdmCommand, CliError> {
    let mut start = None;
    let mut stop = None;
    let mut list = false;
    let mut stats = false;
    let mut spec = SyncDaemonSpec {
        role: SyncRole::Master,
        mcast_interface: String::new(),
        syncid: 0,
        group: None,
        port: None,
        ttl: None,
        peers: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (a, None),
        };
        let mut value = || option_value(args, &mut i, name, inline);
        match name {
            "--start-daemon" => start = Some(role(value()?)?),
            "--stop-daemon" => stop = Some(role(value()?)?),
            "--mcast-interface" => spec.mcast_interface = value()?.to_string(),
            "--syncid" => spec.syncid = num("syncid", value()?)?,
            "--mcast-group" => spec.group = Some(num("mcast-group", value()?)?),
            "--mcast-port" => spec.port = Some(num("mcast-port", value()?)?),
            "--mcast-ttl" => spec.ttl = Some(num("mcast-ttl", value()?)?),
            "--daemon" => list = true,
            "--stats" => stats = true,
            "--list" | "--numeric" => {}
            s if s.len() > 1
                && s.starts_with('-')
                && s[1..].chars().all(|c| matches!(c, 'L' | 'l' | 'n')) => {}
            _ => {
                return Err(CliError::usage(format!(
                    "{a}: not an option of the sync-daemon commands"
                )))
            }
        }
    }
    match (start, stop, list) {
        (Some(r), None, false) => {
            if spec.mcast_interface.is_empty() {
                return Err(CliError::usage(
                    "--start-daemon needs --mcast-interface (the kernel interface of the sync stream)",
                ));
            }
            spec.role = r;
            Ok(AdmCommand::Apply(Request::StartDaemon { spec }))
        }
        (None, Some(role), false) => Ok(AdmCommand::Apply(Request::StopDaemon { role })),
        (None, None, true) => Ok(AdmCommand::ListDaemon { stats }),
        _ => Err(CliError::usage(
            "give one of --start-daemon, --stop-daemon or -L --daemon",
        )),
    }
}

/// `-L --daemon` as ipvsadm prints it, then with `stats` the counters.
pub fn format_daemons(l: &DaemonList, stats: bool) -> String {
    let mut out = String::new();
    for d in &l.daemons {
        let s = &d.spec;
        out.push_str(&format!(
            "{} sync daemon (mcast={}, syncid={})\n",
            s.role, s.mcast_interface, s.syncid
        ));
    }
    if !stats {
        return out;
    }
    let s = &l.stats;
    out.push_str(&format!("node id {}\n", s.node_id));
    for (name, v) in [
        ("sent messages", s.sent_msgs),
        ("sent records", s.sent_records),
        ("send errors", s.send_errors),
        ("lost events", s.lost_events),
        ("full dumps", s.dumps),
        ("received messages", s.recv_msgs),
        ("received records", s.recv_records),
        ("other syncid", s.other_syncid),
        ("sequence gaps", s.gaps),
        ("resyncs asked", s.resyncs_sent),
        ("dropped records", s.dropped_records),
        ("installed conns", s.installed),
        ("installed foreign", s.installed_foreign),
    ] {
        out.push_str(&format!("  {name:<20}{v}\n"));
    }
    for (what, list) in [
        ("decode error", &s.decode_errors),
        ("install error", &s.install_errors),
    ] {
        for (name, v) in list.iter().filter(|(_, v)| *v > 0) {
            out.push_str(&format!("  {what} {name}: {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adm::parse_args;
    use rvs_api::{SyncDaemonInfo, SyncStatsInfo};

    #[test]
    fn daemon_commands_parse_as_ipvsadm() {
        let c = parse_args(&[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "eth0",
            "--syncid",
            "1",
        ])
        .unwrap();
        let AdmCommand::Apply(Request::StartDaemon { spec }) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            (spec.role, spec.mcast_interface.as_str(), spec.syncid),
            (SyncRole::Master, "eth0", 1)
        );
        let c = parse_args(&[
            "--start-daemon=backup",
            "--mcast-interface=s0",
            "--mcast-port",
            "9000",
        ])
        .unwrap();
        let AdmCommand::Apply(Request::StartDaemon { spec }) = c else {
            panic!("{c:?}")
        };
        assert_eq!((spec.role, spec.port), (SyncRole::Backup, Some(9000)));
        assert_eq!(
            parse_args(&["--stop-daemon", "backup"]).unwrap(),
            AdmCommand::Apply(Request::StopDaemon {
                role: SyncRole::Backup
            })
        );
        assert_eq!(
            parse_args(&["-L", "--daemon"]).unwrap(),
            AdmCommand::ListDaemon { stats: false }
        );
        assert_eq!(
            parse_args(&["-Ln", "--daemon"]).unwrap(),
            AdmCommand::ListDaemon { stats: false }
        );
        assert_eq!(
            parse_args(&["-L", "--daemon", "--stats"]).unwrap(),
            AdmCommand::ListDaemon { stats: true }
        );
        for bad in [
            &["--start-daemon", "primary", "--mcast-interface", "e"][..],
            &["--start-daemon", "master"],
            &[
                "--start-daemon",
                "master",
                "--mcast-interface",
                "e",
                "--syncid",
                "256",
            ],
            &[
                "--start-daemon",
                "master",
                "--mcast-interface",
                "e",
                "-t",
                "1.1.1.1:80",
            ],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn daemons_list_as_ipvsadm() {
        let spec = |role| SyncDaemonSpec {
            role,
            mcast_interface: "eth0".into(),
            syncid: 1,
            group: None,
            port: None,
            ttl: None,
            peers: vec![],
        };
        let l = DaemonList {
            daemons: vec![
                SyncDaemonInfo {
                    spec: spec(SyncRole::Master),
                },
                SyncDaemonInfo {
                    spec: spec(SyncRole::Backup),
                },
            ],
            stats: SyncStatsInfo {
                gaps: 2,
                installed: 5,
                installed_foreign: 4,
                install_errors: vec![("port_in_use".into(), 3), ("conflict".into(), 0)],
                ..Default::default()
            },
        };
        assert_eq!(
            format_daemons(&l, false),
            "master sync daemon (mcast=eth0, syncid=1)\nbackup sync daemon (mcast=eth0, syncid=1)\n"
        );
        let s = format_daemons(&l, true);
        assert!(s.contains("  sequence gaps       2\n"), "{s}");
        assert!(s.contains("  installed conns     5\n"), "{s}");
        assert!(s.contains("  installed foreign   4\n"), "{s}");
        assert!(s.contains("install error port_in_use: 3\n"), "{s}");
        assert!(!s.contains("conflict"), "{s}");
    }
}
