//! The store as requests ([`Store::to_requests`]): what a successor rvsd
//! (hot upgrade, warm standby) applies to a fresh [`Store`] built from the
//! same configuration file to hold exactly the same configuration, and what
//! `rvsadm -S` can print.
//!
//! Replaying the user's history is not enough (it is not kept, and it may
//! hold refused or undone requests), nor is adding every object once: some
//! state depends on the order things happened in. The plan here rebuilds it:
//!
//! 0. VLAN devices in slot order (their port indexes), free slots between
//!    them held by placeholders deleted at once;
//! 1. ipsets (created, then filled), so that list rules can name them;
//! 2. services with their dests (in order) and limits;
//! 3. interface addresses in their order, with the local addresses of the
//!    services: a local address that is not an interface address creates one
//!    (dpip's implicit address) where the first service used it, so each
//!    service's local addresses are added as soon as their address exists,
//!    and an implicit address that no service can take at its place in the
//!    order is created through a holder service (a TCP service on
//!    192.0.2.1, TEST-NET-1, deleted again at the end of this step; only
//!    needed after local addresses were deleted and re-added in another
//!    order);
//! 4. automatic routes: an address adds its host and on-link routes unless
//!    a route for the prefix exists, and an on-link route goes to another
//!    address of the network when its owner goes; so before an address is
//!    added, a placeholder route blocks each automatic route it must not get
//!    (the route is another's or static, or was deleted), and a placeholder
//!    is removed before the address that owns the route is added;
//! 5. static routes once every automatic route exists, a route whose
//!    gateway needs another on-link route after it; a gateway no on-link
//!    route covers any more (the route covering it was deleted after) gets
//!    a temporary one while its route is added;
//! 6. static neighbours in order, standby marks, then the allow/deny lists
//!    (global first, then per service, each in rule order).
//!
//! Steps 3 to 5 are checked on a scratch store as they are planned, so the
//! plan follows the store's own rules rather than a copy of them.
//! Counters, rates, object ids and the generation are not configuration and
//! are not carried; neither are the settings of the configuration file
//! (ports, workers, timeouts, pipeline switches), which the successor reads
//! itself.

use std::net::{IpAddr, Ipv4Addr};

use rvs_api::{
    AclKind, AclRule, Family, IpsetEntry, IpsetSpec, Proto, Request, RouteSpec, Scope, ServiceKey,
    ServiceSpec, VlanProto, VlanSel, VlanSpec,
};
use rvs_core::acl::{IpSet, Member, SetKind, SetOpts};

use super::acl::{AclStore, ListsEntry};
use super::vlan::VlanDef;
use super::{max_plen, network, AddrEntry, RouteEntry, Store, SvcEntry};

/// Most ipset entries per request (as `rvsip ipset restore` batches).
pub const IPSET_BATCH: usize = 4096;

/// The requests of the plan and the scratch store they are checked on.
struct Plan {
    out: Vec<Request>,
    scratch: Store,
}

impl Plan {
    /// Adds `req` to the plan without checking it (steps the scratch store
    /// does not need: ipsets, dests, limits, lists, neighbours).
    fn push(&mut self, req: Request) {
        self.out.push(req);
    }

    /// Adds `req` if the scratch store accepts it.
    fn try_push(&mut self, req: Request) -> bool {
        let ok = self.scratch.apply(&req).is_ok();
        if ok {
            self.out.push(req);
        }
        ok
    }

    /// Adds `req`, which the plan guarantees the store accepts. A refusal
    /// is a bug here, logged; the request is kept, so that the successor's
    /// apply fails naming it rather than the state differing silently (no
    /// panic: the running daemon calls this and must keep forwarding).
    fn must(&mut self, req: Request) {
        if let Err(e) = self.scratch.apply(&req) {
            tracing::error!("to_requests: planned request refused: {req:?}: {e}");
        }
        self.out.push(req);
    }

    fn has_route(&self, prefix: IpAddr, plen: u8) -> bool {
        self.scratch
            .routes
            .iter()
            .any(|r| r.spec.prefix == prefix && r.spec.plen == plen)
    }
}

/// An on-link route without gateway: the placeholders of steps 4 and 5.
fn link_route(prefix: IpAddr, plen: u8, dev: &str) -> Request {
    Request::AddRoute {
        route: RouteSpec {
            prefix,
            plen,
            via: None,
            dev: dev.to_string(),
            scope: Some(Scope::Link),
            src: None,
            mtu: None,
            metric: 0,
        },
    }
}

fn del_route(prefix: IpAddr, plen: u8) -> Request {
    Request::DelRoute { prefix, plen }
}

/// The prefixes of the automatic routes adding `e` creates (when free).
fn auto_prefixes(e: &AddrEntry) -> Vec<(IpAddr, u8)> {
    let max = max_plen(&e.addr);
    let mut v = vec![(e.addr.to_ip(), max)];
    if e.explicit && e.plen < max {
        v.push((network(&e.addr, e.plen).to_ip(), e.plen));
    }
    v
}

/// The text of an ipset member that `parse_entry` reads back as exactly it.
fn member_entry(m: &Member, kind: SetKind, v6: bool) -> String {
    match m {
        // "0.0.0.0/0" is refused as an entry; the whole range is the same member.
        Member::Net { plen: 0, .. } if v6 => format!("::-{}", std::net::Ipv6Addr::from(u128::MAX)),
        Member::Net { plen: 0, .. } => format!("0.0.0.0-{}", Ipv4Addr::BROADCAST),
        _ => m.display(kind),
    }
}

/// Step 0: the VLAN devices (`[[vlan]]` ones too: a successor applies the
/// plan to a store without them) in slot order, so that each gets the port
/// index it has here; a free slot between two is held by a placeholder
/// device, deleted again once the slots after it are taken.
fn vlan_requests(plan: &mut Plan, ports: &[super::PortDef], vlans: &[Option<VlanDef>]) {
    let Some(first) = ports.first() else { return };
    let mut holders = Vec::new();
    // Placeholder IDs count down from 4094, skipping the devices' own.
    let mut next_id = 4094u16;
    for (slot, v) in vlans.iter().enumerate() {
        let spec = match v {
            Some(v) => VlanSpec {
                name: Some(v.name.clone()),
                link: ports
                    .get(usize::from(v.parent))
                    .map_or_else(String::new, |p| p.name.clone()),
                proto: v.proto,
                id: v.id,
            },
            None => {
                // An ID no device of the first port uses (4094 of them, at
                // most 256 devices).
                let used = |id: u16| {
                    vlans
                        .iter()
                        .flatten()
                        .any(|d| d.parent == 0 && d.proto == VlanProto::Dot1ad && d.id == id)
                };
                while next_id > 1 && used(next_id) {
                    next_id -= 1;
                }
                let id = next_id;
                next_id = next_id.saturating_sub(1).max(1);
                let name = format!("rvshole{slot}");
                holders.push(name.clone());
                VlanSpec {
                    name: Some(name),
                    link: first.name.clone(),
                    proto: VlanProto::Dot1ad,
                    id,
                }
            }
        };
        plan.must(Request::AddVlan { spec });
    }
    for name in holders {
        plan.must(Request::DelVlan {
            sel: VlanSel {
                name: Some(name),
                ..Default::default()
            },
        });
    }
}

/// A key no service of `services` has, for the holder service of step 3.
fn holder_key(services: &[SvcEntry]) -> ServiceKey {
    let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mut port = 1u16;
    loop {
        let key = ServiceKey::Vs {
            proto: Proto::Tcp,
            vip,
            port,
        };
        if !services.iter().any(|s| s.spec.key == key) {
            return key;
        }
        port = port.wrapping_add(1).max(1);
    }
}

impl Store {
    /// The whole configuration the control API set, as an ordered list of
    /// requests that, applied with [`Store::apply`] to a fresh store of the
    /// same ports and workers, give a store with the same
    /// [`Store::fingerprint`] and the same listings (counters aside). The
    /// hot-upgrade STORE step sends it; `rvsadm -S` can print it. Every
    /// request is one the fresh store accepts (see the module doc for the
    /// order).
    pub fn to_requests(&self) -> Vec<Request> {
        // Every field is named: a new kind of state must be handled here
        // (and in `fingerprint`) or be declared not configuration.
        let Store {
            ports,
            workers,
            timeouts,
            conf,
            generation: _,
            next_svc_id: _,
            next_dest_id: _,
            services,
            addrs,
            routes,
            neigh,
            standby,
            rates: _,
            limits,
            acl,
            vlans,
        } = self;
        let mut plan = Plan {
            out: Vec::new(),
            scratch: Store::new(ports.clone(), *workers, *timeouts, conf.clone()),
        };
        let AclStore {
            global,
            per_svc,
            sets,
        } = acl;
        vlan_requests(&mut plan, ports, vlans);
        for set in sets.values() {
            ipset_requests(&mut plan, set);
        }
        for s in services {
            self.service_requests(&mut plan, s);
            if let Some(l) = limits.get(&s.id) {
                plan.push(Request::SetLimits {
                    key: s.spec.key.clone(),
                    limits: l.limits,
                });
            }
        }
        self.address_requests(&mut plan, addrs, routes);
        static_route_requests(&mut plan, routes);
        for n in neigh {
            plan.push(Request::AddNeigh {
                addr: n.addr.to_ip(),
                mac: n.mac.to_string(),
                dev: self.port_name(n.port).to_string(),
            });
        }
        if !standby.is_empty() {
            let mut v: Vec<_> = standby.iter().copied().collect();
            v.sort();
            plan.push(Request::SetAddrStandby {
                addrs: v.iter().map(|a| a.to_ip()).collect(),
                standby: true,
            });
        }
        list_requests(&mut plan, None, global);
        for s in services {
            if let Some(l) = per_svc.get(&s.id) {
                list_requests(&mut plan, Some(&s.spec.key), l);
            }
        }
        plan.out
    }

    /// Step 2: a service, added to the scratch store too (its local
    /// addresses come in step 3), and its dests.
    fn service_requests(&self, plan: &mut Plan, s: &SvcEntry) {
        let ServiceSpec {
            key,
            sched,
            persistence,
            sched_flags,
            synproxy,
            proxy_protocol,
        } = &s.spec;
        plan.must(Request::AddService {
            spec: ServiceSpec {
                key: key.clone(),
                sched: sched.clone(),
                persistence: *persistence,
                sched_flags: sched_flags.clone(),
                synproxy: *synproxy,
                proxy_protocol: *proxy_protocol,
            },
        });
        for d in &s.dests {
            plan.push(Request::AddDest {
                key: key.clone(),
                dest: d.spec.clone(),
            });
        }
    }

    /// Steps 3 and 4: addresses in order with the local addresses of the
    /// services, placeholders keeping each automatic route where it is.
    fn address_requests(&self, plan: &mut Plan, addrs: &[AddrEntry], routes: &[RouteEntry]) {
        let services = &self.services;
        let mut next = vec![0usize; services.len()];
        let mut holder: Option<ServiceKey> = None;
        let mut placeholders: Vec<(IpAddr, u8)> = Vec::new();
        for e in addrs {
            self.laddrs_ready(plan, &mut next);
            let dev = self.port_name(e.port).to_string();
            for (prefix, plen) in auto_prefixes(e) {
                let owned = routes.iter().any(|r| {
                    r.auto_of == Some(e.addr) && r.spec.prefix == prefix && r.spec.plen == plen
                });
                let present = plan.has_route(prefix, plen);
                if owned && present {
                    plan.must(del_route(prefix, plen));
                    placeholders.retain(|p| *p != (prefix, plen));
                } else if !owned && !present {
                    plan.must(link_route(prefix, plen, &dev));
                    placeholders.push((prefix, plen));
                }
            }
            if e.explicit {
                plan.must(Request::AddAddr {
                    addr: e.addr.to_ip(),
                    plen: e.plen,
                    dev,
                    sapool: e.sapool,
                });
                continue;
            }
            let taker = (0..services.len()).find(|i| {
                services[*i]
                    .laddrs
                    .get(next[*i])
                    .is_some_and(|l| l.laddr.addr == e.addr)
            });
            let (key, dev) = match taker {
                Some(i) => {
                    next[i] += 1;
                    let l = &services[i].laddrs[next[i] - 1];
                    (services[i].spec.key.clone(), l.dev.clone())
                }
                None => (
                    holder
                        .get_or_insert_with(|| {
                            let key = holder_key(services);
                            plan.must(Request::AddService {
                                spec: ServiceSpec {
                                    key: key.clone(),
                                    sched: "rr".into(),
                                    persistence: None,
                                    sched_flags: Vec::new(),
                                    synproxy: None,
                                    proxy_protocol: None,
                                },
                            });
                            key
                        })
                        .clone(),
                    dev,
                ),
            };
            plan.must(Request::AddLaddr {
                key,
                addr: e.addr.to_ip(),
                dev,
            });
        }
        self.laddrs_ready(plan, &mut next);
        if let Some(key) = holder {
            // Every address it holds has a real user by now: none goes.
            plan.must(Request::DelService { key });
        }
        for (prefix, plen) in placeholders {
            plan.must(del_route(prefix, plen));
        }
    }

    /// Adds, per service, the local addresses from `next` on whose
    /// interface address exists already (adding one would create it).
    fn laddrs_ready(&self, plan: &mut Plan, next: &mut [usize]) {
        for (s, i) in self.services.iter().zip(next.iter_mut()) {
            while let Some(l) = s.laddrs.get(*i) {
                if !plan.scratch.addrs.iter().any(|a| a.addr == l.laddr.addr) {
                    break;
                }
                plan.must(Request::AddLaddr {
                    key: s.spec.key.clone(),
                    addr: l.laddr.addr.to_ip(),
                    dev: l.dev.clone(),
                });
                *i += 1;
            }
        }
    }
}

/// Step 1: one set, created with its options and filled in batches, its
/// members in a fixed order.
fn ipset_requests(plan: &mut Plan, set: &IpSet) {
    let SetOpts {
        v6,
        hashsize,
        maxelem,
        comment,
    } = set.opts();
    plan.push(Request::IpsetCreate {
        spec: IpsetSpec {
            name: set.name().to_string(),
            kind: set.kind().name().to_string(),
            family: if v6 { Family::Inet6 } else { Family::Inet },
            hashsize: Some(hashsize),
            maxelem: Some(maxelem),
            comment,
        },
    });
    let mut members: Vec<(Member, bool, Option<&str>)> = set.members().collect();
    members.sort_unstable_by_key(|(m, _, _)| *m);
    for chunk in members.chunks(IPSET_BATCH) {
        plan.push(Request::IpsetAdd {
            name: set.name().to_string(),
            entries: chunk
                .iter()
                .map(|(m, nomatch, c)| IpsetEntry {
                    entry: member_entry(m, set.kind(), v6),
                    nomatch: *nomatch,
                    comment: c.map(str::to_string),
                })
                .collect(),
            force: false,
        });
    }
}

/// Step 5: the static routes, each once the routes its gateway needs exist.
fn static_route_requests(plan: &mut Plan, routes: &[RouteEntry]) {
    let mut pending: Vec<&RouteEntry> = routes.iter().filter(|r| r.auto_of.is_none()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|r| {
            !plan.try_push(Request::AddRoute {
                route: r.spec.clone(),
            })
        });
        if pending.len() == before {
            let r = pending.remove(0);
            with_lent_gateway(plan, r);
        }
    }
}

/// Adds `r`, whose gateway no on-link route covers any more, with a
/// temporary on-link route for the gateway's longest free prefix.
fn with_lent_gateway(plan: &mut Plan, r: &RouteEntry) {
    let add = Request::AddRoute {
        route: r.spec.clone(),
    };
    let Some(gw) = r.spec.via else {
        return plan.must(add);
    };
    let g = rvs_core::addr::Addr::from(gw);
    for plen in (1..=max_plen(&g)).rev() {
        let prefix = network(&g, plen).to_ip();
        if plan.has_route(prefix, plen) {
            continue;
        }
        if plan.try_push(link_route(prefix, plen, &r.spec.dev)) {
            plan.must(add);
            plan.must(del_route(prefix, plen));
            return;
        }
    }
    plan.must(add);
}

/// Step 6: one service's lists (`None`: the global ones), deny then allow.
fn list_requests(plan: &mut Plan, key: Option<&ServiceKey>, l: &ListsEntry) {
    let ListsEntry {
        deny,
        allow,
        rejected: _,
    } = l;
    for (kind, rules) in [(AclKind::Blklst, deny), (AclKind::Whtlst, allow)] {
        for r in rules {
            plan.push(Request::AddAcl {
                rule: AclRule {
                    kind,
                    key: key.cloned(),
                    subject: r.subject.to_string(),
                },
            });
        }
    }
}
