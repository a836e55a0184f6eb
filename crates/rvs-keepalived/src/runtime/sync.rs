//! `lvs_sync_daemon`: rvsd's connection-sync daemon following the state of
//! one VRRP instance, as keepalived drives IPVS's.
//!
//! MASTER: the backup role stops and the master role starts (the node
//! sends its connections, the ones it installed as backup included: a full
//! sweep, so the new backup gets them all). BACKUP and FAULT: the master
//! role stops and the backup role starts (the node installs the master's
//! connections, ready to take over). Stopping (INIT): both stop. One role
//! at a time: a node running both would send back the connections it
//! installs.

use rvs_api::{ErrorKind, Reply, Request, SyncDaemonSpec, SyncRole};

use super::actions::rvsd_call;
use super::log;
use crate::conf::LvsSyncDaemon;
use crate::vrrp::State;

/// The requests that make rvsd's sync daemons fit state `to`, in order.
pub fn sync_requests(d: &LvsSyncDaemon, to: State) -> Vec<Request> {
    let start = |role| Request::StartDaemon {
        spec: SyncDaemonSpec {
            role,
            mcast_interface: d.interface.clone(),
            syncid: d.syncid,
            group: d.group,
            port: d.port,
            ttl: d.ttl,
            peers: Vec::new(),
        },
    };
    let stop = |role| Request::StopDaemon { role };
    match to {
        State::Master => vec![stop(SyncRole::Backup), start(SyncRole::Master)],
        State::Backup | State::Fault => vec![stop(SyncRole::Master), start(SyncRole::Backup)],
        State::Init => vec![stop(SyncRole::Master), stop(SyncRole::Backup)],
    }
}

/// Sends [`sync_requests`] to rvsd. A role already running (start) or not
/// running (stop) is what was wanted; other failures are logged.
pub fn follow(instance: &str, d: &LvsSyncDaemon, to: State) {
    for req in sync_requests(d, to) {
        let what = match &req {
            Request::StartDaemon { spec } => format!("starting the {} sync daemon", spec.role),
            Request::StopDaemon { role } => format!("stopping the {role} sync daemon"),
            _ => String::new(),
        };
        match rvsd_call(&req) {
            Ok(Reply::Ok) => log::info(&format!("VRRP_Instance({instance}) {what}")),
            Ok(Reply::Error(e)) if matches!(e.kind, ErrorKind::Exists | ErrorKind::NotFound) => {
                log::debug(&format!("{what}: {}", e.message))
            }
            Ok(r) => log::warn(&format!("{what}: rvsd answered {r:?}")),
            Err(e) => log::warn(&format!("{what}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::Loc;

    fn daemon() -> LvsSyncDaemon {
        LvsSyncDaemon {
            interface: "sync0".into(),
            instance: "VI_1".into(),
            syncid: 7,
            port: Some(9000),
            ttl: None,
            group: None,
            loc: Loc {
                file: "t.conf".into(),
                line: 3,
            },
        }
    }

    /// (start or stop, role) of each request.
    fn roles(reqs: &[Request]) -> Vec<(&'static str, SyncRole)> {
        reqs.iter()
            .map(|r| match r {
                Request::StartDaemon { spec } => ("start", spec.role),
                Request::StopDaemon { role } => ("stop", *role),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn master_sends_backup_and_fault_receive_init_stops_both() {
        let d = daemon();
        use SyncRole::*;
        assert_eq!(
            roles(&sync_requests(&d, State::Master)),
            [("stop", Backup), ("start", Master)]
        );
        for s in [State::Backup, State::Fault] {
            assert_eq!(
                roles(&sync_requests(&d, s)),
                [("stop", Master), ("start", Backup)],
                "{s:?}"
            );
        }
        assert_eq!(
            roles(&sync_requests(&d, State::Init)),
            [("stop", Master), ("stop", Backup)]
        );
    }

    #[test]
    fn the_daemon_gets_interface_id_and_port_from_the_file() {
        let reqs = sync_requests(&daemon(), State::Backup);
        let Request::StartDaemon { spec } = &reqs[1] else {
            panic!("{reqs:?}")
        };
        assert_eq!(spec.mcast_interface, "sync0");
        assert_eq!((spec.syncid, spec.port, spec.group), (7, Some(9000), None));
        assert!(spec.peers.is_empty(), "multicast, as keepalived");
    }
}
