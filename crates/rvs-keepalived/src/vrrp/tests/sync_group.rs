//! `vrrp_sync_group`: the coordinator alone, and two routers of two
//! instances each on the simulated network, each router's pair grouped.

use super::net::Net;
use crate::vrrp::{Action, Event, InstanceConf, NotifyScripts, State, SyncGroup, Tracked};

use State::{Backup, Fault, Init, Master};

fn group() -> SyncGroup {
    let notify = NotifyScripts {
        master: Some("/up".into()),
        any: Some("/n".into()),
        ..NotifyScripts::default()
    };
    SyncGroup::new("G", notify)
}

#[test]
fn a_fault_takes_every_member_to_fault() {
    let g = group();
    let cmds = g.on_transition(1, Master, Fault, &[Master, Fault, Backup]);
    assert_eq!(cmds, vec![(0, Fault), (2, Fault)]);
}

#[test]
fn a_master_turned_backup_takes_the_other_masters_with_it() {
    let g = group();
    let cmds = g.on_transition(0, Master, Backup, &[Backup, Master, Fault]);
    assert_eq!(cmds, vec![(1, Backup)]);
}

#[test]
fn a_new_master_takes_the_backups_with_it() {
    let g = group();
    let cmds = g.on_transition(0, Backup, Master, &[Master, Backup, Backup]);
    assert_eq!(cmds, vec![(1, Master), (2, Master)]);
    assert!(g.on_transition(0, Init, Backup, &[Backup, Init]).is_empty());
}

#[test]
fn the_group_goes_master_only_when_every_member_wants_to() {
    let g = group();
    assert!(g.ready(&[Backup, Backup], &[true, false]).is_empty());
    assert!(g.ready(&[Backup, Fault], &[true, false]).is_empty());
    assert!(g.ready(&[Master, Master], &[false, false]).is_empty());
    assert_eq!(
        g.ready(&[Backup, Master], &[true, false]),
        vec![(0, Master)]
    );
    let both = g.ready(&[Backup, Backup], &[true, true]);
    assert_eq!(both, vec![(0, Master), (1, Master)]);
}

#[test]
fn leaving_fault_releases_the_held_members_and_settle_holds_while_one_is_faulty() {
    let mut g = group();
    let cmds = g.on_transition(0, Fault, Backup, &[Backup, Fault]);
    assert_eq!(cmds, vec![(1, Backup)]);
    // Member 1 had a fault of its own: it stayed; member 0 goes back.
    let mut out = Vec::new();
    assert_eq!(g.settle(&[Backup, Fault], &mut out), vec![(0, Fault)]);
    assert!(out.is_empty(), "no agreement, no notify");
}

#[test]
fn group_notify_runs_once_when_all_members_agree() {
    let mut g = group();
    let mut out = Vec::new();
    assert!(g.settle(&[Master, Backup], &mut out).is_empty());
    assert!(out.is_empty());
    g.settle(&[Master, Master], &mut out);
    let args: Vec<String> = ["GROUP", "G", "MASTER", "0"].map(String::from).into();
    let want = vec![
        Action::RunScript {
            script: "/up".into(),
            args: Vec::new(),
        },
        Action::RunScript {
            script: "/n".into(),
            args,
        },
    ];
    assert_eq!(out, want);
    assert_eq!(g.state(), Master);
    out.clear();
    g.settle(&[Master, Master], &mut out);
    assert!(out.is_empty(), "no second notify");
}

/// A router: its nodes in the network, its group, how far each node's log
/// was looked at.
struct Router {
    nodes: Vec<usize>,
    sg: SyncGroup,
    seen: Vec<usize>,
}

impl Router {
    fn new(net: &mut Net, nodes: Vec<usize>) -> Router {
        for &n in &nodes {
            net.nodes[n].vi.set_sync_hold(true);
        }
        let seen = vec![0; nodes.len()];
        Router {
            nodes,
            sg: group(),
            seen,
        }
    }

    fn states(&self, net: &Net) -> Vec<State> {
        self.nodes
            .iter()
            .map(|&n| net.nodes[n].vi.state())
            .collect()
    }

    fn mark_seen(&mut self, net: &Net) {
        for (k, &n) in self.nodes.iter().enumerate() {
            self.seen[k] = net.nodes[n].log.len();
        }
    }

    /// What the runtime does: own transitions to the coordinator, its
    /// commands back as `Event::Sync`, then settle.
    fn follow(&mut self, net: &mut Net) {
        let mut own = Vec::new();
        for (k, &n) in self.nodes.iter().enumerate() {
            for (_, a) in &net.nodes[n].log[self.seen[k]..] {
                if let Action::Transition { from, to } = *a {
                    own.push((k, from, to));
                }
            }
        }
        self.mark_seen(net);
        for &(k, from, to) in &own {
            let cmds = self.sg.on_transition(k, from, to, &self.states(net));
            self.apply(net, &cmds);
        }
        let wants: Vec<bool> = self
            .nodes
            .iter()
            .map(|&n| net.nodes[n].vi.wants_master())
            .collect();
        let ready = self.sg.ready(&self.states(net), &wants);
        self.apply(net, &ready);
        if own.is_empty() && ready.is_empty() {
            return;
        }
        for _ in 0..4 {
            let states = self.states(net);
            let cmds = self.sg.settle(&states, &mut Vec::new());
            if cmds.is_empty() {
                break;
            }
            self.apply(net, &cmds);
        }
    }

    fn apply(&mut self, net: &mut Net, cmds: &[(usize, State)]) {
        for &(k, to) in cmds {
            net.event(self.nodes[k], Event::Sync { to });
        }
        self.mark_seen(net);
    }
}

fn run(net: &mut Net, routers: &mut [Router], until: u64) {
    while net.now < until {
        let t = net.now + 10;
        net.run_until(t);
        for r in routers.iter_mut() {
            r.follow(net);
        }
    }
}

fn conf(name: &str, vrid: u8, host: u8, priority: u8) -> InstanceConf {
    let src = format!("192.168.{vrid}.{host}").parse().unwrap();
    let mut c = InstanceConf::new(name, vrid, "dpdk0.kni", src);
    c.priority = priority;
    c.virtual_addresses = vec![crate::vrrp::VirtualAddress::host(
        format!("10.0.{vrid}.254").parse().unwrap(),
    )];
    c
}

/// Router A (priority 150: nodes 0 VI_1, 1 VI_2 tracking `chk`), router B
/// (priority 100: nodes 2 VI_1, 3 VI_2).
fn two_routers() -> Net {
    let mut a2 = conf("VI_2", 2, 1, 150);
    a2.track_scripts = vec![Tracked::new("chk")];
    let confs = vec![
        conf("VI_1", 1, 1, 150),
        a2,
        conf("VI_1", 1, 2, 100),
        conf("VI_2", 2, 2, 100),
    ];
    let mut net = Net::new(confs);
    net.latency = 1;
    for i in 0..4 {
        net.start(i);
    }
    net
}

fn script(net: &mut Net, ok: bool) {
    net.event(1, Event::Script { name: "chk", ok });
}

#[test]
fn one_members_fault_hands_the_whole_group_over_and_back() {
    let mut net = two_routers();
    let mut routers = [
        Router::new(&mut net, vec![0, 1]),
        Router::new(&mut net, vec![2, 3]),
    ];
    run(&mut net, &mut routers, 5_000);
    assert_eq!(net.states(), [Master, Master, Backup, Backup]);
    assert_eq!(routers[0].sg.state(), Master);
    script(&mut net, false);
    run(&mut net, &mut routers, 6_000);
    assert_eq!(
        net.states(),
        [Fault, Fault, Master, Master],
        "VI_1 follows VI_2 into FAULT; router B takes both"
    );
    assert_eq!(net.vip_holders(), [2, 3]);
    script(&mut net, true);
    run(&mut net, &mut routers, 12_000);
    assert_eq!(net.states(), [Master, Master, Backup, Backup]);
    assert_eq!(net.vip_holders(), [0, 1]);
    assert_eq!(routers[1].sg.state(), Backup);
}

#[test]
fn without_a_group_the_healthy_member_stays_master() {
    // The control for the test above: the members move independently.
    let mut net = two_routers();
    net.run_until(5_000);
    script(&mut net, false);
    net.run_until(6_000);
    assert_eq!(net.states(), [Master, Fault, Backup, Master]);
}

#[test]
fn split_priorities_settle_on_one_router_without_flapping() {
    // Router A would win VI_1 (150 > 100) but lose VI_2 (50 < 100): held,
    // its VI_1 waits for VI_2, which hears B; B takes both, once.
    let confs = vec![
        conf("VI_1", 1, 1, 150),
        conf("VI_2", 2, 1, 50),
        conf("VI_1", 1, 2, 100),
        conf("VI_2", 2, 2, 100),
    ];
    let mut net = Net::new(confs);
    net.latency = 1;
    let mut routers = [
        Router::new(&mut net, vec![0, 1]),
        Router::new(&mut net, vec![2, 3]),
    ];
    for i in 0..4 {
        net.start(i);
    }
    run(&mut net, &mut routers, 30_000);
    assert_eq!(net.states(), [Backup, Backup, Master, Master]);
    for i in 0..4 {
        assert!(
            net.transitions(i).len() <= 2,
            "node {i}: {:?}",
            net.transitions(i)
        );
    }
}
