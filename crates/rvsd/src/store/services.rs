//! Services, dests and local addresses (`ipvsadm`).

use std::net::IpAddr;
use std::sync::Arc;

use rvs_api::{
    ApiError, DestSpec, ErrorKind, Forward, Proto, ProxyProtocol, ServiceKey, ServiceSpec,
};
use rvs_core::addr::{proto, Addr, PortId};
use rvs_core::conn::FwdMode;
use rvs_core::sched::{DestKey, SchedKind, SchedOpts, SchedTable};
use rvs_core::service::{Dest, Laddr, Match, ServiceKey as CoreKey};
use rvs_core::stats::PerWorker;

use super::{endpoint, err, exists, invalid, max_plen, not_found};
use super::{AddrEntry, DestEntry, LaddrEntry, RateObj, RouteEntry, Store, SvcEntry};

/// ipvsadm's upper bound for `-w`.
const MAX_WEIGHT: u32 = 65535;
/// Largest connection threshold (`-x`, `-y`), as ipvsadm accepts (INT_MAX).
const MAX_THRESHOLD: u32 = i32::MAX as u32;

fn fwd_mode(f: Forward) -> FwdMode {
    match f {
        Forward::Fnat => FwdMode::Fnat,
        Forward::Dr => FwdMode::Dr,
        Forward::Nat => FwdMode::Nat,
        Forward::Tunnel => FwdMode::Tunnel,
        Forward::Snat => FwdMode::Snat,
    }
}

/// The SYN proxy setting of service `key` after `want` (`None`: keep
/// `have`), refused where the proxy cannot work: a service other than TCP
/// `-t`, or real servers whose replies bypass rvs.
fn synproxy_setting(
    key: &ServiceKey,
    core: &CoreKey,
    want: Option<bool>,
    have: bool,
    dests: &[DestEntry],
) -> Result<bool, ApiError> {
    let on = want.unwrap_or(have);
    if !on {
        return Ok(false);
    }
    if !matches!(core, CoreKey::Vs { proto, .. } if *proto == proto::TCP) {
        return Err(invalid(format!(
            "SYN proxy (-j enable) needs a TCP virtual service (-t), not {key}"
        )));
    }
    if let Some(d) = dests.iter().find(|d| !synproxy_mode(d.spec.forward)) {
        return Err(synproxy_dest_error(key, &d.spec));
    }
    if let CoreKey::Vs { vip, .. } = core {
        if let Some(d) = dests.iter().find(|d| d.spec.addr.is_ipv4() != vip.is_v4()) {
            return Err(invalid(format!(
                "SYN proxy (-j enable) on {key}: destination {} is of the other family; \
                 the SYN proxy does not do NAT64/NAT46",
                endpoint(&d.spec.addr, d.spec.port)
            )));
        }
    }
    Ok(true)
}

/// The PROXY protocol a service gets from `want` (unchanged: `have`):
/// `None` when off; only TCP services carry it.
fn proxy_protocol_setting(
    key: &ServiceKey,
    core: &CoreKey,
    want: Option<ProxyProtocol>,
    have: Option<ProxyProtocol>,
) -> Result<Option<ProxyProtocol>, ApiError> {
    let v = match want {
        Some(ProxyProtocol::Disable) => return Ok(None),
        None => return Ok(have),
        Some(v) => v,
    };
    if !matches!(core, CoreKey::Vs { proto, .. } if *proto == proto::TCP) {
        return Err(invalid(format!(
            "PROXY protocol (--proxy-protocol {}) needs a TCP virtual service (-t), not {key}",
            v.name()
        )));
    }
    Ok(Some(v))
}

/// Whether the SYN proxy works with real servers of this forwarding: the
/// real server's replies must come back through rvs, to be shifted.
fn synproxy_mode(f: Forward) -> bool {
    matches!(f, Forward::Fnat | Forward::Nat)
}

fn synproxy_dest_error(key: &ServiceKey, d: &DestSpec) -> ApiError {
    invalid(format!(
        "SYN proxy service {key}: destination {} uses {} forwarding, whose replies bypass rvs; \
         the SYN proxy needs FullNat (-b) or Masq (-m)",
        endpoint(&d.addr, d.port),
        d.forward.column()
    ))
}

fn parse_sched(name: &str) -> Result<SchedKind, ApiError> {
    name.parse::<SchedKind>()
        .map_err(|e| invalid(e.to_string()))
}

/// The scheduler flags of `--sched-flags` for scheduler `kind`, as options
/// and in canonical order (duplicates dropped).
fn parse_sched_flags(
    kind: SchedKind,
    flags: &[String],
) -> Result<(SchedOpts, Vec<String>), ApiError> {
    let mut opts = SchedOpts::default();
    for f in flags {
        match (kind, f.as_str()) {
            (SchedKind::Sh, "sh-fallback") => opts.sh_fallback = true,
            (SchedKind::Sh, "sh-port") => opts.sh_port = true,
            (SchedKind::Mh, "mh-fallback") => opts.mh_fallback = true,
            (SchedKind::Mh, "mh-port") => opts.mh_port = true,
            _ => {
                let known = match kind {
                    SchedKind::Sh => "sh-fallback, sh-port",
                    SchedKind::Mh => "mh-fallback, mh-port",
                    _ => "none",
                };
                return Err(invalid(format!(
                    "invalid scheduler flag '{f}' for scheduler {} (its flags: {known})",
                    kind.name()
                )));
            }
        }
    }
    Ok((opts, sched_flag_names(opts)))
}

/// The names of the flags set in `o`, in ipvsadm's order.
fn sched_flag_names(o: SchedOpts) -> Vec<String> {
    [
        (o.sh_fallback, "sh-fallback"),
        (o.sh_port, "sh-port"),
        (o.mh_fallback, "mh-fallback"),
        (o.mh_port, "mh-port"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n.to_string())
    .collect()
}

fn persistence_ms(p: Option<u32>, key: &ServiceKey) -> Result<u32, ApiError> {
    match p {
        None => Ok(0),
        Some(0) => Err(invalid(format!(
            "persistence timeout of {key} must be at least 1 second"
        ))),
        Some(s) => s.checked_mul(1000).ok_or_else(|| {
            invalid(format!(
                "persistence timeout {s}s of {key} is too long (at most {}s)",
                u32::MAX / 1000
            ))
        }),
    }
}

fn build_sched(kind: SchedKind, opts: SchedOpts, dests: &[DestEntry]) -> Arc<SchedTable> {
    let keys: Vec<DestKey> = dests
        .iter()
        .map(|d| DestKey {
            addr: d.dest.addr,
            port: d.dest.port,
            weight: d.dest.weight,
        })
        .collect();
    Arc::new(SchedTable::build_with(kind, &keys, opts))
}

fn make_dest(id: u32, spec: &DestSpec, stats: Arc<PerWorker>) -> Arc<Dest> {
    Arc::new(Dest {
        id,
        addr: Addr::from(spec.addr),
        port: spec.port,
        weight: spec.weight,
        mode: fwd_mode(spec.forward),
        u_threshold: spec.u_threshold,
        l_threshold: spec.l_threshold,
        stats,
    })
}

fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Store {
    /// The store's form of an API key; a match string is parsed (its device
    /// names resolved against the ports), so that equivalent spellings of a
    /// match name the same service.
    pub(super) fn resolve_key(&self, key: &ServiceKey) -> Result<CoreKey, ApiError> {
        match key {
            ServiceKey::Vs {
                proto: p,
                vip,
                port,
            } => Ok(CoreKey::Vs {
                proto: if *p == Proto::Tcp {
                    proto::TCP
                } else {
                    proto::UDP
                },
                vip: Addr::from(*vip),
                vport: *port,
            }),
            ServiceKey::Match(s) => {
                let m = Match::parse(s, |dev| {
                    self.ports
                        .iter()
                        .position(|p| p.name == dev && p.slave_of.is_none())
                        .and_then(|i| PortId::try_from(i).ok())
                        .or_else(|| self.vlan_port(dev))
                })
                .map_err(|e| invalid(format!("{e} (in -H '{s}')")))?;
                Ok(CoreKey::Match(m))
            }
        }
    }

    /// The index of the service `key`, or NotFound with `missing` (the
    /// ipvsadm message for the operation) and the key.
    pub(super) fn svc_index(&self, key: &ServiceKey, missing: &str) -> Result<usize, ApiError> {
        let k = self.resolve_key(key)?;
        self.services
            .iter()
            .position(|s| s.key == k)
            .ok_or_else(|| not_found(format!("{missing}: {key}")))
    }

    pub(super) fn add_service(&mut self, spec: &ServiceSpec) -> Result<(), ApiError> {
        let key = self.resolve_key(&spec.key)?;
        let kind = parse_sched(&spec.sched)?;
        let (opts, flags) = parse_sched_flags(kind, &spec.sched_flags)?;
        let pms = persistence_ms(spec.persistence, &spec.key)?;
        let canonical = match &key {
            CoreKey::Vs { vip, vport, .. } => {
                if vip.is_unspecified() {
                    return Err(invalid(format!(
                        "virtual address of {} must not be unspecified",
                        spec.key
                    )));
                }
                if *vport == 0 {
                    return Err(invalid(format!(
                        "zero port specified for service {}",
                        spec.key
                    )));
                }
                spec.key.clone()
            }
            CoreKey::Match(m) => ServiceKey::Match(m.to_string()),
        };
        if self.services.iter().any(|s| s.key == key) {
            return Err(exists(format!("Service already exists: {}", spec.key)));
        }
        let sp = synproxy_setting(&spec.key, &key, spec.synproxy, false, &[])?;
        let pp = proxy_protocol_setting(&spec.key, &key, spec.proxy_protocol, None)?;
        let id = self.next_svc_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| err(ErrorKind::Full, "service ids exhausted; restart rvsd"))?;
        self.next_svc_id = next;
        self.services.push(SvcEntry {
            id,
            spec: ServiceSpec {
                key: canonical,
                sched: kind.name().to_string(),
                persistence: spec.persistence,
                sched_flags: flags.clone(),
                synproxy: sp.then_some(true),
                proxy_protocol: pp,
            },
            key,
            kind,
            persistence_ms: pms,
            stats: Arc::new(PerWorker::new(usize::from(self.workers))),
            sched: build_sched(kind, opts, &[]),
            dests: Vec::new(),
            laddrs: Vec::new(),
        });
        Ok(())
    }

    pub(super) fn edit_service(&mut self, spec: &ServiceSpec) -> Result<(), ApiError> {
        let i = self.svc_index(&spec.key, "No such service")?;
        let kind = parse_sched(&spec.sched)?;
        let (opts, flags) = parse_sched_flags(kind, &spec.sched_flags)?;
        let pms = persistence_ms(spec.persistence, &spec.key)?;
        let s = &mut self.services[i];
        let have = s.spec.synproxy == Some(true);
        let sp = synproxy_setting(&s.spec.key, &s.key, spec.synproxy, have, &s.dests)?;
        s.spec.synproxy = sp.then_some(true);
        s.spec.proxy_protocol = proxy_protocol_setting(
            &s.spec.key,
            &s.key,
            spec.proxy_protocol,
            s.spec.proxy_protocol,
        )?;
        if s.kind != kind || s.sched.opts() != opts {
            s.kind = kind;
            s.sched = build_sched(kind, opts, &s.dests);
        }
        s.persistence_ms = pms;
        s.spec.sched = kind.name().to_string();
        s.spec.persistence = spec.persistence;
        s.spec.sched_flags = flags;
        Ok(())
    }

    pub(super) fn del_service(&mut self, key: &ServiceKey) -> Result<(), ApiError> {
        let i = self.svc_index(key, "No such service")?;
        let s = self.services.remove(i);
        for l in &s.laddrs {
            self.release_laddr_addr(&l.laddr.addr);
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        let laddrs: Vec<Addr> = self
            .services
            .iter()
            .flat_map(|s| s.laddrs.iter().map(|l| l.laddr.addr))
            .collect();
        self.services.clear();
        for a in laddrs {
            self.release_laddr_addr(&a);
        }
    }

    pub(super) fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), ApiError> {
        let range = match key {
            Some(k) => {
                let i = self.svc_index(k, "No such service")?;
                i..i + 1
            }
            None => 0..self.services.len(),
        };
        for s in &self.services[range] {
            s.stats.zero();
            self.zero_limit_drops(s.id);
            self.rates.remove(&RateObj::Svc(s.id));
            for d in &s.dests {
                d.dest.stats.zero();
                self.rates.remove(&RateObj::Dest(d.dest.id));
            }
            for l in &s.laddrs {
                l.laddr.stats.zero();
            }
        }
        Ok(())
    }

    /// Checks a dest against its service: the rules ipvsadm and DPVS enforce,
    /// and those that keep the pipeline from meeting a dest it cannot serve.
    fn check_dest(&self, s: &SvcEntry, d: &DestSpec) -> Result<(), ApiError> {
        let ep = endpoint(&d.addr, d.port);
        let key = &s.spec.key;
        if d.weight > MAX_WEIGHT {
            return Err(invalid(format!(
                "weight {} of {ep} is out of range (0-{MAX_WEIGHT})",
                d.weight
            )));
        }
        for (what, t) in [("upper", d.u_threshold), ("lower", d.l_threshold)] {
            if t > MAX_THRESHOLD {
                return Err(invalid(format!(
                    "{what} threshold {t} of {ep} is out of range (0-{MAX_THRESHOLD})"
                )));
            }
        }
        if d.u_threshold != 0 && d.l_threshold > d.u_threshold {
            return Err(invalid(format!(
                "lower threshold {} of {ep} is above its upper threshold {}",
                d.l_threshold, d.u_threshold
            )));
        }
        if Addr::from(d.addr).is_unspecified() {
            return Err(invalid(format!("destination address {ep} is unspecified")));
        }
        if s.spec.synproxy == Some(true) && !synproxy_mode(d.forward) {
            return Err(synproxy_dest_error(key, d));
        }
        match &s.key {
            CoreKey::Match(m) => {
                if d.forward != Forward::Snat {
                    return Err(invalid(format!(
                        "{key} is a SNAT match (-H) service: destination {ep} must use SNAT forwarding (-J), not {}",
                        d.forward.column()
                    )));
                }
                if d.port != 0 {
                    return Err(invalid(format!(
                        "SNAT destination {ep}: the port part must be 0"
                    )));
                }
                Self::check_snat_family(s, m, d)?;
            }
            CoreKey::Vs { vip, vport, .. } => {
                if d.forward == Forward::Snat {
                    return Err(invalid(format!(
                        "SNAT forwarding (-J) of {ep} needs a match (-H) service, not {key}"
                    )));
                }
                if vip.is_v4() != d.addr.is_ipv4() {
                    let svc_fam = if vip.is_v4() { "IPv4" } else { "IPv6" };
                    if d.forward != Forward::Fnat {
                        return Err(invalid(format!(
                            "destination {ep} is {} but service {key} is {svc_fam}: only FullNat (-b) \
                             translates between IPv4 and IPv6 (NAT64/NAT46), not {}",
                            family(&d.addr),
                            d.forward.column()
                        )));
                    }
                    if s.spec.synproxy == Some(true) {
                        return Err(invalid(format!(
                            "SYN proxy service {key}: destination {ep} is {} and the service \
                             {svc_fam}; the SYN proxy does not do NAT64/NAT46",
                            family(&d.addr)
                        )));
                    }
                }
                if d.port == 0 {
                    return Err(invalid(format!("zero port specified for destination {ep}")));
                }
                if matches!(d.forward, Forward::Dr | Forward::Tunnel) && d.port != *vport {
                    return Err(invalid(format!(
                        "{} forwarding cannot change the port: destination {ep} must use the service port {vport}",
                        d.forward.column()
                    )));
                }
            }
        }
        Ok(())
    }

    /// A SNAT dest (the WAN address sources become) has the family of the
    /// match's address ranges and of the service's other dests: the pipeline
    /// cannot put an address of one family into a packet of the other.
    fn check_snat_family(s: &SvcEntry, m: &Match, d: &DestSpec) -> Result<(), ApiError> {
        let ep = endpoint(&d.addr, d.port);
        let fam = family(&d.addr);
        let ranges = [m.src.as_ref(), m.dst.as_ref()];
        for r in ranges.into_iter().flatten() {
            let any = r.lo.is_unspecified() && r.hi.is_unspecified();
            if !any && r.lo.is_v4() != d.addr.is_ipv4() {
                return Err(invalid(format!(
                    "SNAT destination {ep} is {fam} but match {} takes {} addresses only",
                    s.spec.key,
                    if r.lo.is_v4() { "IPv4" } else { "IPv6" }
                )));
            }
        }
        if let Some(o) = s
            .dests
            .iter()
            .find(|o| o.spec.addr.is_ipv4() != d.addr.is_ipv4())
        {
            return Err(invalid(format!(
                "SNAT destination {ep} is {fam} but match {} already has {} destination {}: one address family per match service",
                s.spec.key,
                family(&o.spec.addr),
                o.spec.addr
            )));
        }
        Ok(())
    }

    fn dest_index(s: &SvcEntry, addr: &IpAddr, port: u16) -> Option<usize> {
        s.dests
            .iter()
            .position(|d| d.spec.addr == *addr && d.spec.port == port)
    }

    pub(super) fn add_dest(&mut self, key: &ServiceKey, d: &DestSpec) -> Result<(), ApiError> {
        let i = self.svc_index(key, "Service not defined")?;
        self.check_dest(&self.services[i], d)?;
        if Self::dest_index(&self.services[i], &d.addr, d.port).is_some() {
            return Err(exists(format!(
                "Destination already exists: {} in {key}",
                endpoint(&d.addr, d.port)
            )));
        }
        let id = self.next_dest_id;
        self.next_dest_id = id
            .checked_add(1)
            .ok_or_else(|| err(ErrorKind::Full, "destination ids exhausted; restart rvsd"))?;
        let stats = Arc::new(PerWorker::new(usize::from(self.workers)));
        let s = &mut self.services[i];
        s.dests.push(DestEntry {
            spec: d.clone(),
            dest: make_dest(id, d, stats),
        });
        s.sched = build_sched(s.kind, s.sched.opts(), &s.dests);
        Ok(())
    }

    /// The warning for a NAT64/NAT46 dest `d` of service `key` while the
    /// service has no local address of the dest's family: its conns would
    /// be dropped as `no_laddr_port`. `None` otherwise.
    pub(super) fn xlate_warning(&self, key: &ServiceKey, d: &DestSpec) -> Option<String> {
        let i = self.svc_index(key, "").ok()?;
        let s = &self.services[i];
        let CoreKey::Vs { vip, .. } = s.key else {
            return None;
        };
        let v4 = d.addr.is_ipv4();
        if vip.is_v4() == v4 || s.laddrs.iter().any(|l| l.laddr.addr.is_v4() == v4) {
            return None;
        }
        Some(format!(
            "no {} local address yet for {key}: {} to {} needs one (rvsadm --add-laddr -z <address> -t ... -F <dev>)",
            family(&d.addr),
            if v4 { "NAT64" } else { "NAT46" },
            endpoint(&d.addr, d.port)
        ))
    }

    pub(super) fn edit_dest(&mut self, key: &ServiceKey, d: &DestSpec) -> Result<(), ApiError> {
        let i = self.svc_index(key, "Service not defined")?;
        let j = Self::dest_index(&self.services[i], &d.addr, d.port).ok_or_else(|| {
            not_found(format!(
                "No such destination: {} in {key}",
                endpoint(&d.addr, d.port)
            ))
        })?;
        self.check_dest(&self.services[i], d)?;
        let s = &mut self.services[i];
        let old = &s.dests[j].dest;
        let dest = make_dest(old.id, d, old.stats.clone());
        s.dests[j] = DestEntry {
            spec: d.clone(),
            dest,
        };
        s.sched = build_sched(s.kind, s.sched.opts(), &s.dests);
        Ok(())
    }

    pub(super) fn del_dest(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        port: u16,
    ) -> Result<(), ApiError> {
        let i = self.svc_index(key, "Service not defined")?;
        let j = Self::dest_index(&self.services[i], addr, port).ok_or_else(|| {
            not_found(format!(
                "No such destination: {} in {key}",
                endpoint(addr, port)
            ))
        })?;
        let s = &mut self.services[i];
        s.dests.remove(j);
        s.sched = build_sched(s.kind, s.sched.opts(), &s.dests);
        Ok(())
    }

    pub(super) fn add_laddr(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        dev: &str,
    ) -> Result<(), ApiError> {
        let i = self.svc_index(key, "Service not defined")?;
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        if a.is_unspecified() {
            return Err(invalid(format!("local address {a} is unspecified")));
        }
        let s = &self.services[i];
        if matches!(s.key, CoreKey::Match(_)) {
            return Err(invalid(format!(
                "{key} is a SNAT match service: it takes no local address (its WAN address {a} would be a -J destination)"
            )));
        }
        if s.laddrs.iter().any(|l| l.laddr.addr == a) {
            return Err(exists(format!("local address {a} already exists in {key}")));
        }
        let existing = self.addrs.iter().find(|e| e.addr == a);
        if let Some(e) = existing {
            if e.port != port {
                return Err(invalid(format!(
                    "local address {a} is already an address of {}, not {dev}",
                    self.port_name(e.port)
                )));
            }
        }
        let need_addr = existing.is_none();
        let stats = Arc::new(PerWorker::new(usize::from(self.workers)));
        self.services[i].laddrs.push(LaddrEntry {
            dev: dev.to_string(),
            laddr: Laddr {
                addr: a,
                port,
                stats,
            },
        });
        if need_addr {
            // DPVS makes a LIP an interface address with a pool, so that it
            // is answered for (ARP) and listed by `dpip addr show`.
            self.addrs.push(AddrEntry {
                addr: a,
                plen: max_plen(&a),
                port,
                sapool: true,
                explicit: false,
            });
            self.add_auto_routes(a, max_plen(&a), port);
        }
        Ok(())
    }

    pub(super) fn del_laddr(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        dev: &str,
    ) -> Result<(), ApiError> {
        let i = self.svc_index(key, "Service not defined")?;
        let port = self.port_of(dev)?;
        let a = Addr::from(*addr);
        let j = self.services[i]
            .laddrs
            .iter()
            .position(|l| l.laddr.addr == a && l.laddr.port == port)
            .ok_or_else(|| not_found(format!("No such local address {a} on {dev} in {key}")))?;
        self.services[i].laddrs.remove(j);
        self.release_laddr_addr(&a);
        Ok(())
    }

    /// Removes the interface address a local address brought, once no
    /// service uses it and nobody added it explicitly.
    fn release_laddr_addr(&mut self, a: &Addr) {
        if self.is_laddr(a) {
            return;
        }
        if let Some(k) = self.addrs.iter().position(|e| e.addr == *a && !e.explicit) {
            let e = self.addrs.remove(k);
            self.drop_auto_routes(&e);
        }
    }

    /// The services using `a` as a local address, for messages.
    pub(super) fn laddr_users(&self, a: &Addr) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| s.laddrs.iter().any(|l| l.laddr.addr == *a))
            .map(|s| s.spec.key.to_string())
            .collect()
    }

    /// Removes the auto routes created for `e`, handing an on-link network
    /// route over to another address of the same network when there is one.
    pub(super) fn drop_auto_routes(&mut self, e: &AddrEntry) {
        let heir = self
            .addrs
            .iter()
            .find(|o| {
                o.port == e.port
                    && o.plen == e.plen
                    && o.addr.is_v4() == e.addr.is_v4()
                    && super::network(&o.addr, o.plen) == super::network(&e.addr, e.plen)
            })
            .map(|o| o.addr);
        let max = max_plen(&e.addr);
        let mut kept: Vec<RouteEntry> = Vec::with_capacity(self.routes.len());
        for mut r in std::mem::take(&mut self.routes) {
            if r.auto_of == Some(e.addr) {
                if r.spec.plen < max {
                    if let Some(h) = heir {
                        r.auto_of = Some(h);
                        kept.push(r);
                    }
                }
                continue;
            }
            kept.push(r);
        }
        self.routes = kept;
    }
}
