//! The store's fingerprint ([`Store::fingerprint`]): a hash of a canonical
//! rendering ([`Store::canonical`]) of the configuration the control API
//! set, so that a successor rvsd can check, after applying
//! [`Store::to_requests`], that it holds exactly the running one's.
//!
//! The rendering keeps the order wherever the order is part of the state
//! (services, each service's dests and local addresses, interface
//! addresses, static neighbours, the rules of each list: listings and
//! schedulers follow it) and sorts where it is not (routes, which are keyed
//! by prefix; standby marks; ipset members). It leaves out counters, rates,
//! object ids, the generation and what the configuration file sets (ports,
//! workers, timeouts, pipeline switches: the file may change those in a
//! takeover, and the ports and workers are compared by the HELLO check).
//!
//! Both processes must render alike: the text is written field by field
//! (no `Debug`), starts with [`FORMAT`], and the hash is FNV-1a, fixed
//! forever (`std`'s hasher may change between Rust releases). A change of
//! the rendering bumps [`FORMAT`] and the version of the STORE frame.

use std::fmt::{self, Display, Write};

use rvs_api::{
    DestSpec, LimitSet, Limits, ProxyProtocol, RateLimit, RouteSpec, Scope, ServiceSpec,
};
use rvs_core::acl::{Member, SetOpts};

use super::acl::{AclStore, ListsEntry, RuleEntry};
use super::limits::LimitEntry;
use super::{AddrEntry, DestEntry, LaddrEntry, NeighEntry, RouteEntry, Store, SvcEntry};

/// Version of the canonical rendering, its first line.
pub const FORMAT: u32 = 1;

/// FNV-1a, 64 bits, fed by `write!`.
struct Fnv(u64);

impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(())
    }
}

/// A user-given string, quoted so that no value can pass for another
/// field or line.
struct Q<'a>(&'a str);

impl Display for Q<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// An optional value, `-` when absent.
struct O<T>(Option<T>);

impl<T: Display> Display for O<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Host => "host",
        Scope::Link => "link",
        Scope::Global => "global",
        Scope::KniHost => "kni_host",
    }
}

fn pp_name(p: Option<ProxyProtocol>) -> &'static str {
    p.map_or("-", ProxyProtocol::name)
}

fn rate(r: Option<RateLimit>) -> String {
    match r {
        None => "-".into(),
        Some(RateLimit { rate, burst }) => format!("{rate}/{burst}"),
    }
}

fn limit_set(w: &mut dyn Write, what: &str, s: &LimitSet) -> fmt::Result {
    let LimitSet {
        conn_rate,
        pkt_rate,
        bit_rate,
        max_conns,
    } = s;
    write!(
        w,
        " {what}: conn-rate={} pkt-rate={} bit-rate={} max-conns={}",
        rate(*conn_rate),
        rate(*pkt_rate),
        rate(*bit_rate),
        O(*max_conns)
    )
}

fn limits(w: &mut dyn Write, l: &LimitEntry) -> fmt::Result {
    let LimitEntry { limits, core: _ } = l;
    let Limits {
        service,
        source,
        src_prefix_v4,
        src_prefix_v6,
    } = limits;
    w.write_str("  limits")?;
    limit_set(w, "service", service)?;
    limit_set(w, "source", source)?;
    writeln!(w, " src-prefix={}/{}", O(*src_prefix_v4), O(*src_prefix_v6))
}

fn lists(w: &mut dyn Write, indent: &str, l: &ListsEntry) -> fmt::Result {
    let ListsEntry {
        deny,
        allow,
        rejected: _,
    } = l;
    for (name, rules) in [("blklst", deny), ("whtlst", allow)] {
        for RuleEntry { subject, hits: _ } in rules {
            writeln!(w, "{indent}{name} {}", Q(&subject.to_string()))?;
        }
    }
    Ok(())
}

fn dest(w: &mut dyn Write, d: &DestEntry) -> fmt::Result {
    let DestEntry { spec, dest: _ } = d;
    let DestSpec {
        addr,
        port,
        weight,
        forward,
        u_threshold,
        l_threshold,
    } = spec;
    writeln!(
        w,
        "  dest {addr} {port} weight={weight} forward={} u-threshold={u_threshold} l-threshold={l_threshold}",
        forward.column()
    )
}

fn route(w: &mut dyn Write, r: &RouteEntry) -> fmt::Result {
    let RouteEntry {
        spec,
        port,
        scope,
        auto_of,
    } = r;
    let RouteSpec {
        prefix,
        plen,
        via,
        dev,
        scope: given,
        src,
        mtu,
        metric,
    } = spec;
    writeln!(
        w,
        "route {prefix}/{plen} via={} dev={} port={port} scope={} given-scope={} src={} mtu={} metric={metric} auto-of={}",
        O(*via),
        Q(dev),
        scope_name(*scope),
        given.map_or("-", scope_name),
        O(*src),
        O(*mtu),
        O(*auto_of)
    )
}

impl Store {
    /// A hash of [`Store::canonical`]: equal for two stores holding the
    /// same configuration, whatever the order of changes that made it
    /// where order does not matter; different when any setting differs.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        // Writing to the hasher cannot fail.
        let _ = self.render(&mut h);
        h.0
    }

    /// The canonical rendering the fingerprint hashes, one object per line
    /// (to show what differs when two fingerprints do).
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        let _ = self.render(&mut s);
        s
    }

    fn render(&self, w: &mut dyn Write) -> fmt::Result {
        // Every field is named: a new kind of state must be rendered here
        // (and planned by `to_requests`) or be declared not configuration.
        let Store {
            ports: _,
            workers: _,
            timeouts: _,
            conf: _,
            generation: _,
            next_svc_id: _,
            next_dest_id: _,
            services,
            addrs,
            routes,
            neigh,
            standby,
            rates: _,
            limits: svc_limits,
            acl,
            vlans,
        } = self;
        let AclStore {
            global,
            per_svc,
            sets,
        } = acl;
        writeln!(w, "rvs store format {FORMAT}")?;
        // Slots too: they are port indexes, which connections keep.
        for (slot, v) in vlans.iter().enumerate() {
            if let Some(v) = v {
                writeln!(
                    w,
                    "vlan {slot} {} link={} proto={} id={}",
                    Q(&v.name),
                    Q(self.port_name(v.parent)),
                    v.proto.name(),
                    v.id
                )?;
            }
        }
        for s in services {
            self.render_service(w, s)?;
            if let Some(l) = svc_limits.get(&s.id) {
                limits(w, l)?;
            }
            if let Some(l) = per_svc.get(&s.id) {
                lists(w, "  ", l)?;
            }
        }
        lists(w, "global ", global)?;
        for AddrEntry {
            addr,
            plen,
            port,
            sapool,
            explicit,
        } in addrs
        {
            writeln!(
                w,
                "addr {addr}/{plen} dev={} sapool={sapool} explicit={explicit}",
                Q(self.port_name(*port))
            )?;
        }
        let mut sorted: Vec<&RouteEntry> = routes.iter().collect();
        sorted.sort_by_key(|r| (rvs_core::addr::Addr::from(r.spec.prefix), r.spec.plen));
        for r in sorted {
            route(w, r)?;
        }
        for NeighEntry { addr, mac, port } in neigh {
            writeln!(w, "neigh {addr} {mac} dev={}", Q(self.port_name(*port)))?;
        }
        let mut marks: Vec<_> = standby.iter().collect();
        marks.sort();
        for a in marks {
            writeln!(w, "standby {a}")?;
        }
        for set in sets.values() {
            let SetOpts {
                v6,
                hashsize,
                maxelem,
                comment,
            } = set.opts();
            writeln!(
                w,
                "ipset {} {} v6={v6} hashsize={hashsize} maxelem={maxelem} comment={comment}",
                Q(set.name()),
                set.kind().name()
            )?;
            let mut members: Vec<(Member, bool, Option<&str>)> = set.members().collect();
            members.sort_unstable_by_key(|(m, _, _)| *m);
            for (m, nomatch, c) in members {
                writeln!(
                    w,
                    "  member {} nomatch={nomatch} comment={}",
                    m.display(set.kind()),
                    O(c.map(Q))
                )?;
            }
        }
        Ok(())
    }

    fn render_service(&self, w: &mut dyn Write, s: &SvcEntry) -> fmt::Result {
        // Ids, counters and what is derived from the spec (the core key,
        // the scheduler table) are not rendered.
        let SvcEntry {
            id: _,
            spec,
            key: _,
            kind: _,
            persistence_ms: _,
            stats: _,
            sched: _,
            dests,
            laddrs,
        } = s;
        let ServiceSpec {
            key,
            sched,
            persistence,
            sched_flags,
            synproxy,
            proxy_protocol,
        } = spec;
        writeln!(
            w,
            "svc {} sched={} persistence={} flags={} synproxy={} proxy-protocol={}",
            Q(&key.to_string()),
            Q(sched),
            O(*persistence),
            Q(&sched_flags.join(",")),
            O(*synproxy),
            pp_name(*proxy_protocol)
        )?;
        for d in dests {
            dest(w, d)?;
        }
        for LaddrEntry { dev, laddr } in laddrs {
            writeln!(w, "  laddr {} dev={}", laddr.addr, Q(dev))?;
        }
        Ok(())
    }
}
