//! Steering by the NIC: rte_flow rules sending return traffic to the
//! queue of the worker that owns it, where the device accepts them.
//!
//! The rules express the first steering rule of [`super`] in hardware: a
//! TCP or UDP frame to a pool address (FNAT local address, SNAT WAN
//! address) belongs to worker `dport % workers`, and with a power-of-two
//! number of workers that is `dport & (workers - 1)`, which a flow rule can
//! match (`eth / ipv4 dst is LIP / tcp dst spec w dst mask W-1 / end ->
//! queue w`, DPVS's fdir idea). Nothing else can be expressed (the other
//! rules hash with XOR), so every other frame still lands where the NIC's
//! RSS puts it and the software hand-off ring takes it to its owner; a
//! frame a rule sent right simply is not handed off.
//!
//! This module is pure: it builds the rules and decides the path from what
//! a [`FlowDevice`] answers; the DPDK backend implements the device with
//! `rte_flow_validate`/`rte_flow_create`/`rte_flow_flush`, and the tests
//! with a fake.

use std::fmt;

use super::Steering;

/// The destination address a rule matches (all bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlowDst {
    /// An IPv4 pool address.
    V4([u8; 4]),
    /// An IPv6 pool address.
    V6([u8; 16]),
}

/// One rule: frames to `dst`, protocol `proto`, whose destination port
/// masked by `mask` equals `dport`, go to device queue `queue`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FlowRule {
    /// The destination address.
    pub dst: FlowDst,
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// The destination port's value under `mask` (the worker).
    pub dport: u16,
    /// The destination port mask (`workers - 1`).
    pub mask: u16,
    /// The receive queue (the worker).
    pub queue: u16,
}

/// How a port's return traffic reaches its owning worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SteerPath {
    /// One worker: nothing to steer.
    OneWorker,
    /// rte_flow rules for traffic to pool addresses (`rules` of them), the
    /// hand-off ring for the rest.
    Flow {
        /// Rules installed.
        rules: usize,
    },
    /// Every frame received on the wrong worker goes through the software
    /// hand-off ring; `why` rte_flow is not used.
    HandOff {
        /// Why not rte_flow (the device's answer, or the geometry).
        why: String,
    },
}

impl fmt::Display for SteerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SteerPath::OneWorker => f.write_str("one worker"),
            SteerPath::Flow { rules } => write!(f, "rte_flow ({rules} rules) and hand-off"),
            SteerPath::HandOff { why } => write!(f, "hand-off (no rte_flow: {why})"),
        }
    }
}

/// A device that takes flow rules (DPDK's rte_flow, or a fake in tests).
/// Errors are the device's message.
pub trait FlowDevice {
    /// Whether the device would accept `r` (`rte_flow_validate`).
    fn validate(&mut self, r: &FlowRule) -> Result<(), String>;
    /// Installs `r` (`rte_flow_create`).
    fn create(&mut self, r: &FlowRule) -> Result<(), String>;
    /// Removes every rule (`rte_flow_flush`).
    fn flush(&mut self) -> Result<(), String>;
}

/// The rules steering traffic to the pool addresses of `s` to the owning
/// workers' queues (none with one worker); `Err` says why rules cannot
/// express the ownership.
pub fn flow_rules(s: &Steering) -> Result<Vec<FlowRule>, String> {
    let w = s.workers.max(1);
    if w == 1 {
        return Ok(Vec::new());
    }
    if !w.is_power_of_two() {
        return Err(format!(
            "{w} workers: a port mask splits by a power of two only"
        ));
    }
    let dsts = s
        .pool_v4
        .iter()
        .map(|a| FlowDst::V4(*a))
        .chain(s.pool_v6.iter().map(|a| FlowDst::V6(*a)));
    let mut out = Vec::new();
    for dst in dsts {
        for proto in [6, 17] {
            out.extend((0..w).map(|q| FlowRule {
                dst,
                proto,
                dport: q,
                mask: w - 1,
                queue: q,
            }));
        }
    }
    Ok(out)
}

/// The rule [`probe`] validates: the last worker's TCP rule for a
/// documentation address (192.0.2.1), the shape every rule has.
pub fn probe_rule(workers: u16) -> FlowRule {
    let m = workers.max(1) - 1;
    FlowRule {
        dst: FlowDst::V4([192, 0, 2, 1]),
        proto: 6,
        dport: m,
        mask: m,
        queue: m,
    }
}

/// Decides at start whether rules can steer this port: `Ok` when they can
/// (install them with [`install`]), else the path to use. `queues` is the
/// number of device queues opened for `workers` workers.
pub fn probe(dev: &mut dyn FlowDevice, workers: u16, queues: u16) -> Result<(), SteerPath> {
    let w = workers.max(1);
    if w == 1 {
        return Err(SteerPath::OneWorker);
    }
    if queues < w {
        return Err(SteerPath::HandOff {
            why: format!("{queues} device queue(s) for {w} workers"),
        });
    }
    if let Err(why) = flow_rules(&Steering {
        workers: w,
        ..Steering::default()
    }) {
        return Err(SteerPath::HandOff { why });
    }
    dev.validate(&probe_rule(w))
        .map_err(|e| SteerPath::HandOff {
            why: format!("rte_flow_validate: {e}"),
        })
}

/// Replaces the device's rules by those of `s` (a device [`probe`]
/// accepted); on a refusal removes them all and falls back to hand-off.
pub fn install(dev: &mut dyn FlowDevice, s: &Steering) -> SteerPath {
    let rules = match flow_rules(s) {
        Ok(r) => r,
        Err(why) => return SteerPath::HandOff { why },
    };
    if let Err(e) = dev.flush() {
        return SteerPath::HandOff {
            why: format!("rte_flow_flush: {e}"),
        };
    }
    for r in &rules {
        if let Err(e) = dev.create(r) {
            let _ = dev.flush();
            return SteerPath::HandOff {
                why: format!("rte_flow_create: {e}"),
            };
        }
    }
    SteerPath::Flow { rules: rules.len() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steer::owner;

    /// A fake device: refuses what `refuse` says, records what is installed.
    #[derive(Default)]
    struct Fake {
        refuse_validate: Option<&'static str>,
        refuse_create_after: Option<usize>,
        installed: Vec<FlowRule>,
        validated: Vec<FlowRule>,
    }

    impl FlowDevice for Fake {
        fn validate(&mut self, r: &FlowRule) -> Result<(), String> {
            self.validated.push(*r);
            self.refuse_validate.map_or(Ok(()), |e| Err(e.into()))
        }
        fn create(&mut self, r: &FlowRule) -> Result<(), String> {
            if self.refuse_create_after == Some(self.installed.len()) {
                return Err("no room".into());
            }
            self.installed.push(*r);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), String> {
            self.installed.clear();
            Ok(())
        }
    }

    fn steering(workers: u16) -> Steering {
        Steering {
            workers,
            pool_v4: vec![[192, 168, 100, 200]],
            pool_v6: vec![[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]],
            ..Steering::default()
        }
    }

    /// A TCP/UDP frame `src:sport -> dst:dport` over IPv4.
    fn frame4(dst: [u8; 4], proto: u8, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&[192, 168, 100, 2]);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&80u16.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    /// What a rule set would do with a frame: the queue of the first rule
    /// that matches (rte_flow's semantics for disjoint rules).
    fn matched(rules: &[FlowRule], dst: [u8; 4], proto: u8, dport: u16) -> Option<u16> {
        rules
            .iter()
            .find(|r| r.dst == FlowDst::V4(dst) && r.proto == proto && dport & r.mask == r.dport)
            .map(|r| r.queue)
    }

    #[test]
    fn rules_send_each_pool_port_to_the_worker_that_owns_it() {
        let s = steering(4);
        let rules = flow_rules(&s).unwrap();
        // 2 addresses x {tcp, udp} x 4 workers.
        assert_eq!(rules.len(), 16, "{rules:?}");
        assert!(rules.iter().all(|r| r.mask == 3 && r.dport == r.queue));
        let lip = [192, 168, 100, 200];
        for proto in [6, 17] {
            for dport in (1024..2048).chain([0, 65535]) {
                let want = owner(&frame4(lip, proto, dport), &s);
                assert_eq!(
                    matched(&rules, lip, proto, dport),
                    Some(want),
                    "proto {proto} dport {dport}"
                );
            }
        }
        // Not a pool address: no rule, RSS and the hand-off decide.
        assert_eq!(matched(&rules, [10, 0, 0, 100], 6, 80), None);
        let v6: Vec<_> = rules
            .iter()
            .filter(|r| matches!(r.dst, FlowDst::V6(_)))
            .collect();
        assert_eq!(v6.len(), 8);
    }

    #[test]
    fn rules_need_a_power_of_two_workers() {
        assert_eq!(flow_rules(&steering(1)).unwrap(), vec![]);
        assert_eq!(flow_rules(&steering(2)).unwrap().len(), 8);
        let e = flow_rules(&steering(3)).unwrap_err();
        assert!(e.contains("3 workers"), "{e}");
    }

    #[test]
    fn a_device_that_validates_gets_the_rules() {
        let mut d = Fake::default();
        assert_eq!(probe(&mut d, 2, 2), Ok(()));
        assert_eq!(d.validated, vec![probe_rule(2)]);
        assert_eq!(install(&mut d, &steering(2)), SteerPath::Flow { rules: 8 });
        assert_eq!(d.installed, flow_rules(&steering(2)).unwrap());
        // A new pool address: the rules are replaced, not added to.
        let mut s = steering(2);
        s.pool_v4.push([192, 168, 100, 201]);
        assert_eq!(install(&mut d, &s), SteerPath::Flow { rules: 12 });
        assert_eq!(d.installed.len(), 12);
    }

    #[test]
    fn a_device_that_refuses_falls_back_to_hand_off_with_its_reason() {
        let mut d = Fake {
            refuse_validate: Some("Function not implemented"),
            ..Fake::default()
        };
        let p = probe(&mut d, 2, 2).unwrap_err();
        assert_eq!(
            p.to_string(),
            "hand-off (no rte_flow: rte_flow_validate: Function not implemented)"
        );
        // Validated but refused when created: nothing half-installed.
        let mut d = Fake {
            refuse_create_after: Some(3),
            ..Fake::default()
        };
        let p = install(&mut d, &steering(2));
        assert_eq!(
            p,
            SteerPath::HandOff {
                why: "rte_flow_create: no room".into()
            }
        );
        assert!(d.installed.is_empty());
    }

    #[test]
    fn geometry_decides_before_the_device_is_asked() {
        let mut d = Fake::default();
        assert_eq!(probe(&mut d, 1, 1), Err(SteerPath::OneWorker));
        let p = probe(&mut d, 2, 1).unwrap_err();
        assert_eq!(
            p.to_string(),
            "hand-off (no rte_flow: 1 device queue(s) for 2 workers)"
        );
        let p = probe(&mut d, 3, 3).unwrap_err();
        assert!(p.to_string().contains("power of two"), "{p}");
        assert!(d.validated.is_empty());
    }
}
