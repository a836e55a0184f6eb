//! Two or three instances against each other on the simulated LAN of
//! [`super::net`], with exact times from RFC 5798 6.1:
//! Master_Down_Interval = 3 × Advertisement_Interval + Skew_Time, with
//! Skew_Time = (256 - Priority) × interval / 256 (VRRPv2: one second).
//! With advert_int 1: priority 150 → 3414 ms, 120 → 3531 ms, 100 → 3609 ms.

use std::net::IpAddr;

use super::net::Net;
use crate::vrrp::packet::{Auth, Version};
use crate::vrrp::{Action, Event, InstanceConf, State, Tracked, VirtualAddress};

const VIP: &str = "192.168.100.254";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `vrrp_instance VI_1` on 192.168.100.`host`, VRID 51, one VIP.
fn conf(host: u8, priority: u8) -> InstanceConf {
    let src = IpAddr::from([192, 168, 100, host]);
    let mut c = InstanceConf::new("VI_1", 51, "dpdk0.kni", src);
    c.priority = priority;
    c.virtual_addresses = vec![VirtualAddress::host(ip(VIP))];
    c
}

fn v3(mut c: InstanceConf, interval_cs: u16) -> InstanceConf {
    c.version = Version::V3;
    c.interval_cs = interval_cs;
    c
}

/// Times at which node `i` sent an advert with priority `prio`.
fn adverts(net: &Net, i: usize, prio: u8) -> Vec<u64> {
    let sent = net.nodes[i].log.iter().filter_map(|(t, a)| match a {
        Action::SendAdvert { priority, .. } if *priority == prio => Some(*t),
        _ => None,
    });
    sent.collect()
}

#[test]
fn startup_elects_the_higher_priority() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(20_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    assert_eq!(
        net.transitions(0),
        [(0, State::Backup), (3414, State::Master)]
    );
    assert_eq!(net.transitions(1), [(0, State::Backup)]);
    assert_eq!(net.vip_holders(), [0]);
    // One advert per second from 3414 on.
    assert_eq!(adverts(&net, 0, 150)[..3], [3414, 4414, 5414]);
    assert!(adverts(&net, 1, 100).is_empty());
    assert_eq!(
        net.nodes[1].vi.current_master(),
        Some((ip("192.168.100.1"), 150))
    );
}

#[test]
fn three_nodes_elect_the_highest_and_the_next_one_takes_over() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 120), conf(3, 100)]);
    (0..3).for_each(|i| net.start(i));
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Backup, State::Backup]);
    net.kill(0);
    // The last advert of node 0 left at 9414; 120 has the shorter skew.
    let t = net.run_until_state(1, State::Master, 60_000);
    assert_eq!(t, Some(9414 + 3000 + 531));
    net.run_until(30_000);
    assert_eq!(net.states()[1..], [State::Master, State::Backup]);
    assert_eq!(net.transitions(2), [(0, State::Backup)]);
    assert_eq!(net.vip_holders(), [1]);
}

#[test]
fn master_failure_backup_takes_over_after_master_down_interval() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.kill(0);
    let last = *adverts(&net, 0, 150).last().unwrap();
    assert_eq!(last, 9414);
    let t = net.run_until_state(1, State::Master, 60_000).unwrap();
    // 3 × advert_int + (256 - 100) / 256 s after the last advert.
    assert_eq!(t, last + 3 * 1000 + 609);
    assert_eq!(net.nodes[1].vi.master_down_interval_ms(), 3609);
    // It announces the VIP at once, and again after garp_master_delay.
    let garps: Vec<u64> = net.nodes[1]
        .log
        .iter()
        .filter_map(|(at, a)| match a {
            Action::Announce {
                addresses,
                repeat: 5,
            } if addresses == &[ip(VIP)] => Some(*at),
            _ => None,
        })
        .collect();
    net.run_until(t + 6000);
    let later: Vec<u64> = net.nodes[1]
        .log
        .iter()
        .filter_map(|(at, a)| match a {
            Action::Announce { .. } => Some(*at),
            _ => None,
        })
        .collect();
    assert_eq!(garps, [t]);
    assert_eq!(later, [t, t + 5000]);
}

#[test]
fn master_shutdown_sends_priority_zero_and_backup_takes_over_after_skew() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.event(0, Event::Shutdown);
    assert_eq!(adverts(&net, 0, 0), [10_000]);
    assert!(net.nodes[0].vips.is_empty());
    assert_eq!(net.nodes[0].vi.state(), State::Init);
    let t = net.run_until_state(1, State::Master, 60_000);
    assert_eq!(t, Some(10_000 + 609));
    assert_eq!(net.nodes[1].vi.stats().priority_zero_received, 1);
    assert_eq!(net.vip_holders(), [1]);
}

#[test]
fn a_backup_shutdown_sends_nothing() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.event(1, Event::Shutdown);
    assert!(adverts(&net, 1, 0).is_empty());
    net.run_until(20_000);
    assert_eq!(net.states(), [State::Master, State::Init]);
}

#[test]
fn higher_priority_node_returning_preempts() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states()[1], State::Master);
    net.start(0);
    // Node 0 discards the lower-priority adverts and times out.
    let t = net.run_until_state(0, State::Master, 60_000);
    assert_eq!(t, Some(10_000 + 3414));
    net.run_until(20_000);
    assert_eq!(net.transitions(1).last(), Some(&(13_414, State::Backup)));
    assert_eq!(net.vip_holders(), [0]);
    assert_eq!(net.nodes[0].vi.stats().lower_priority_ignored, 3);
}

#[test]
fn nopreempt_leaves_the_lower_priority_master_in_place() {
    let mut a = conf(1, 150);
    a.preempt = false;
    let mut net = Net::new(vec![a, conf(2, 100)]);
    net.start(1);
    net.run_until(10_000);
    net.start(0);
    net.run_until(60_000);
    assert_eq!(net.states(), [State::Backup, State::Master]);
    assert_eq!(net.transitions(0), [(10_000, State::Backup)]);
    assert_eq!(net.vip_holders(), [1]);
}

#[test]
fn preempt_delay_postpones_preemption() {
    let mut a = conf(1, 150);
    a.preempt_delay_ms = 5000;
    let mut net = Net::new(vec![a, conf(2, 100)]);
    net.start(1);
    net.run_until(10_000);
    net.start(0);
    // Node 1 advertises at 10609, 11609, ...: node 0 accepts them until
    // 10609 + 5000, the last accepted (14609) arms 14609 + 3414.
    let t = net.run_until_state(0, State::Master, 60_000);
    assert_eq!(t, Some(14_609 + 3414));
}

#[test]
fn equal_priorities_the_higher_address_wins() {
    let mut net = Net::new(vec![conf(1, 100), conf(2, 100)]);
    net.latency = 1;
    net.start(0);
    net.start(1);
    net.run_until(20_000);
    // Both time out at 3609 and see each other's advert 1 ms later.
    assert_eq!(
        net.transitions(0),
        [
            (0, State::Backup),
            (3609, State::Master),
            (3610, State::Backup)
        ]
    );
    assert_eq!(
        net.transitions(1),
        [(0, State::Backup), (3609, State::Master)]
    );
    assert_eq!(net.vip_holders(), [1]);
}

#[test]
fn v3_advert_int_100ms_fails_over_within_360ms() {
    let mut net = Net::new(vec![v3(conf(1, 150), 10), v3(conf(2, 100), 10)]);
    net.start(0);
    net.start(1);
    // 3 × 100 + 106 × 10 / 256 = 341 ms.
    assert_eq!(net.run_until_state(0, State::Master, 10_000), Some(341));
    net.run_until(1000);
    net.kill(0);
    let last = *adverts(&net, 0, 150).last().unwrap();
    assert_eq!(last, 941);
    let t = net.run_until_state(1, State::Master, 10_000).unwrap();
    // 3 × 100 + 156 × 10 / 256 (60.9, truncated) ms.
    assert_eq!(t - last, 360);
}

#[test]
fn v3_backup_adopts_the_masters_interval() {
    // The backup is configured with 1 s but follows the master's 0.1 s.
    let mut net = Net::new(vec![v3(conf(1, 150), 10), v3(conf(2, 100), 100)]);
    net.start(0);
    net.start(1);
    net.run_until(1000);
    assert_eq!(net.nodes[1].vi.master_adver_int_cs(), 10);
    net.kill(0);
    let last = *adverts(&net, 0, 150).last().unwrap();
    let t = net.run_until_state(1, State::Master, 10_000).unwrap();
    assert_eq!(t - last, 360);
    // As master it advertises its own interval again.
    assert_eq!(net.nodes[1].vi.master_adver_int_cs(), 100);
    net.run_until(t + 1000);
    assert_eq!(adverts(&net, 1, 100), [t, t + 1000]);
}

#[test]
fn v2_auth_mismatch_is_ignored_and_counted() {
    let (mut a, mut b) = (conf(1, 150), conf(2, 100));
    a.auth = Auth::pass("secret").0;
    b.auth = Auth::pass("other").0;
    let mut net = Net::new(vec![a, b]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    // Neither hears the other: both are master (as with keepalived).
    assert_eq!(net.states(), [State::Master, State::Master]);
    let sent_by_0 = net.nodes[0].vi.stats().adverts_sent;
    let b = net.nodes[1].vi.stats();
    assert_eq!(b.drops.auth_mismatch, sent_by_0);
    assert_eq!(b.adverts_received, 0);
    assert_eq!(net.nodes[0].vi.stats().drops.auth_mismatch, b.adverts_sent);
}

#[test]
fn corrupted_adverts_count_as_bad_checksum_and_look_like_silence() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.tamper = Some((0, |p| p[2] = 151)); // priority changed in flight
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Master]);
    let drops = net.nodes[1].vi.stats().drops;
    assert_eq!(drops.bad_checksum, net.nodes[0].vi.stats().adverts_sent);
    assert_eq!(drops.total(), drops.bad_checksum);
}

#[test]
fn a_ttl_below_255_is_dropped() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.ttl = 254;
    net.start(0);
    net.start(1);
    net.run_until(5000);
    assert!(net.nodes[1].vi.stats().drops.bad_ttl > 0);
    assert_eq!(net.states(), [State::Master, State::Master]);
}

#[test]
fn tracked_interface_fault_and_recovery() {
    let mut a = conf(1, 150);
    a.track_interfaces = vec![Tracked::new("eth1")];
    a.notify.fault = Some("/etc/keepalived/fault.sh".into());
    a.notify.any = Some("/etc/keepalived/notify.sh".into());
    let mut net = Net::new(vec![a, conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.event(
        0,
        Event::Link {
            ifname: "eth1",
            up: false,
        },
    );
    assert_eq!(net.nodes[0].vi.state(), State::Fault);
    let tail: Vec<&Action> = net.nodes[0]
        .log
        .iter()
        .filter(|(t, _)| *t == 10_000)
        .map(|(_, a)| a)
        .collect();
    let run = |s: &str, args: &[&str]| Action::RunScript {
        script: s.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    assert_eq!(
        tail,
        [
            &Action::Transition {
                from: State::Master,
                to: State::Fault
            },
            &net.nodes[0]
                .log
                .iter()
                .find(|(t, a)| *t == 10_000 && matches!(a, Action::SendAdvert { .. }))
                .unwrap()
                .1,
            &Action::RemoveVips(vec![VirtualAddress::host(ip(VIP))]),
            &run("/etc/keepalived/fault.sh", &[]),
            &run(
                "/etc/keepalived/notify.sh",
                &["INSTANCE", "VI_1", "FAULT", "150"]
            ),
        ]
    );
    // The priority-0 advert hands over after the skew.
    assert_eq!(net.run_until_state(1, State::Master, 60_000), Some(10_609));
    net.run_until(20_000);
    assert_eq!(net.nodes[0].vi.next_timeout(), None);
    net.event(
        0,
        Event::Link {
            ifname: "eth1",
            up: true,
        },
    );
    assert_eq!(net.nodes[0].vi.state(), State::Backup);
    assert_eq!(
        net.run_until_state(0, State::Master, 60_000),
        Some(20_000 + 3414)
    );
    net.run_until(30_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    assert_eq!(net.vip_holders(), [0]);
}

#[test]
fn own_interface_down_is_a_fault_too() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(5000);
    net.event(
        0,
        Event::Link {
            ifname: "eth9",
            up: false,
        },
    );
    assert_eq!(net.nodes[0].vi.state(), State::Master);
    net.event(
        0,
        Event::Link {
            ifname: "dpdk0.kni",
            up: false,
        },
    );
    assert_eq!(net.nodes[0].vi.state(), State::Fault);
}

#[test]
fn weighted_script_failure_lowers_priority_and_the_backup_preempts() {
    let mut a = conf(1, 150);
    a.track_scripts = vec![Tracked::new("chk_nginx").weight(-60)];
    let mut net = Net::new(vec![a, conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.event(
        0,
        Event::Script {
            name: "chk_nginx",
            ok: false,
        },
    );
    assert_eq!(net.nodes[0].vi.priority(), 90);
    assert_eq!(net.nodes[0].vi.state(), State::Master);
    // Node 1 ignores the priority-90 adverts; the last one it accepted left
    // at 9414.
    assert_eq!(
        net.run_until_state(1, State::Master, 60_000),
        Some(9414 + 3609)
    );
    net.run_until(20_000);
    assert_eq!(net.states(), [State::Backup, State::Master]);
    // Recovery gives 150 back: node 0 ignores node 1's adverts from then
    // on, so its Master_Down_Timer, armed by the last one accepted (19023,
    // with priority 90: 3000 + 166 × 1000 / 256 = 3648), runs out.
    net.event(
        0,
        Event::Script {
            name: "chk_nginx",
            ok: true,
        },
    );
    assert_eq!(adverts(&net, 1, 100).last(), Some(&19_023));
    assert_eq!(
        net.run_until_state(0, State::Master, 60_000),
        Some(19_023 + 3648)
    );
    net.run_until(30_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
}

#[test]
fn split_brain_heals_when_the_link_comes_back() {
    let mut net = Net::new(vec![conf(1, 150), conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    net.nodes[0].isolated = true;
    net.run_until(20_000);
    assert_eq!(net.states(), [State::Master, State::Master]);
    net.nodes[0].isolated = false;
    net.run_until(22_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    assert_eq!(net.vip_holders(), [0]);
}

#[test]
fn address_owner_with_state_master_is_master_at_once() {
    let mut a = conf(1, 255);
    a.initial_state = crate::vrrp::InitialState::Master;
    let mut b = conf(2, 255);
    b.initial_state = crate::vrrp::InitialState::Backup;
    let mut net = Net::new(vec![a, b, conf(3, 100)]);
    (0..3).for_each(|i| net.start(i));
    net.run_until(10_000);
    assert_eq!(net.transitions(0), [(0, State::Master)]);
    // An owner that says BACKUP waits (3 s + 1/256 s) and hears the master.
    assert_eq!(net.transitions(1), [(0, State::Backup)]);
    assert_eq!(net.vip_holders(), [0]);
}

#[test]
fn unicast_peers_elect_like_multicast() {
    let (mut a, mut b) = (conf(1, 150), conf(2, 100));
    a.unicast_peers = vec![ip("192.168.100.2")];
    b.unicast_peers = vec![ip("192.168.100.1")];
    let (a, b) = (v3(a, 100), v3(b, 100));
    let mut net = Net::new(vec![a, b]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    let dsts: Vec<IpAddr> = net.nodes[0]
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::SendAdvert { dst, .. } => Some(*dst),
            _ => None,
        })
        .collect();
    assert!(dsts.iter().all(|d| *d == ip("192.168.100.2")));
    net.kill(0);
    let t = net.run_until_state(1, State::Master, 60_000).unwrap();
    assert_eq!(t, 9414 + 3609);
}

#[test]
fn ipv6_v3_instances_elect_and_announce_by_na() {
    let mk = |host: &str, prio| {
        let mut c = InstanceConf::new("VI_6", 7, "dpdk0.kni", ip(host));
        c.version = Version::V3;
        c.priority = prio;
        c.virtual_addresses = vec![VirtualAddress::host(ip("2001:db8::100"))];
        c
    };
    let mut net = Net::new(vec![mk("fe80::1", 200), mk("fe80::2", 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    let first = net.nodes[0]
        .log
        .iter()
        .find(|(_, a)| matches!(a, Action::SendAdvert { .. }));
    match first {
        Some((_, Action::SendAdvert { dst, .. })) => assert_eq!(*dst, ip("ff02::12")),
        other => panic!("no advert: {other:?}"),
    }
    assert!(net.nodes[0].log.iter().any(|(_, a)| matches!(a,
        Action::Announce { addresses, .. } if addresses == &[ip("2001:db8::100")])));
    assert_eq!(
        net.nodes[1].vi.stats().adverts_received,
        net.nodes[0].vi.stats().adverts_sent
    );
}

#[test]
fn old_keepalived_unicast_v3_checksum_is_detected_and_adopted() {
    use crate::vrrp::packet::ChecksumMode;
    let (mut a, mut b) = (conf(1, 150), conf(2, 100));
    a.unicast_peers = vec![ip("192.168.100.2")];
    b.unicast_peers = vec![ip("192.168.100.1")];
    // Node 0 is keepalived <= 1.3.6 (or `old_unicast_checksum`).
    a.checksum_mode = ChecksumMode::V3MulticastPseudoDst;
    let mut net = Net::new(vec![v3(a, 100), v3(b, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    let b = &net.nodes[1].vi;
    assert_eq!(b.checksum_mode(), ChecksumMode::V3MulticastPseudoDst);
    assert_eq!(b.stats().old_checksum_detected, 1);
    assert_eq!(b.stats().drops.bad_checksum, 0);
    // After a takeover node 1 speaks the old checksum, so node 0 (were it
    // to return as backup) would accept it.
    net.kill(0);
    net.run_until(20_000);
    let last = net.nodes[1].log.iter().rev().find_map(|(_, a)| match a {
        Action::SendAdvert { payload, .. } => Some(payload.clone()),
        _ => None,
    });
    let last = last.expect("node 1 advertises");
    let adv = crate::vrrp::packet::Advert::new_checked(&last[..], crate::vrrp::packet::Family::V4)
        .unwrap();
    let (src, dst) = (ip("192.168.100.2"), ip("192.168.100.1"));
    adv.verify_checksum(src, dst, ChecksumMode::V3MulticastPseudoDst)
        .unwrap();
    assert!(adv.verify_checksum(src, dst, ChecksumMode::Rfc).is_err());
}

#[test]
fn a_different_address_count_is_counted_but_the_advert_is_used() {
    let mut a = conf(1, 150);
    a.virtual_addresses
        .push(VirtualAddress::host(ip("192.168.100.253")));
    let mut net = Net::new(vec![a, conf(2, 100)]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    let b = net.nodes[1].vi.stats();
    assert_eq!(b.address_list_errors, b.adverts_received);
    assert!(b.adverts_received > 0);
}

/// The local-address actions node `i` took, in order: true = activate.
fn laddr_moves(net: &Net, i: usize) -> Vec<bool> {
    let moves = net.nodes[i].log.iter().filter_map(|(_, a)| match a {
        Action::ActivateLaddrs(v) | Action::StandbyLaddrs(v) => {
            assert_eq!(v, &[ip("192.168.100.200"), ip("192.168.100.201")]);
            Some(matches!(a, Action::ActivateLaddrs(_)))
        }
        _ => None,
    });
    moves.collect()
}

#[test]
fn local_addresses_follow_the_master_and_are_announced_with_the_vips() {
    let with_laddrs = |mut c: InstanceConf| {
        c.owned_addresses = vec![ip("192.168.100.200"), ip("192.168.100.201")];
        c
    };
    let mut net = Net::new(vec![with_laddrs(conf(1, 150)), with_laddrs(conf(2, 100))]);
    net.start(0);
    net.start(1);
    net.run_until(10_000);
    // Both start standby; the master makes them active.
    assert_eq!(laddr_moves(&net, 0), [false, true]);
    assert_eq!(laddr_moves(&net, 1), [false]);
    let announced = net.nodes[0].log.iter().any(|(_, a)| {
        matches!(a, Action::Announce { addresses, .. }
            if addresses == &[ip(VIP), ip("192.168.100.200"), ip("192.168.100.201")])
    });
    assert!(announced, "the master announces VIP and local addresses");
    net.kill(0);
    net.run_until_state(1, State::Master, 20_000)
        .expect("takeover");
    assert_eq!(
        laddr_moves(&net, 1),
        [false, true],
        "the new master takes them"
    );
    net.event(1, Event::Shutdown);
    assert_eq!(
        laddr_moves(&net, 1),
        [false, true, false],
        "stopping: standby"
    );
}
