//! Prometheus metrics at `GET /metrics` (`metrics_listen` in the
//! configuration; off when absent), in the text format of the
//! `prometheus-client` crate.
//!
//! A scrape reads what `rvsadm -ln --stats`, `rvsip -s link show`,
//! `rvsadm -G` and `rvsadm --status` read: counters the workers bump and
//! gauges they publish, summed by the control plane. No worker is stopped
//! or locked; the port-pool usage is the one question asked over the
//! workers' query channels (answered between bursts, O(local addresses)).
//! The [`http`] server runs in its own thread, off the data path.
//!
//! Names (`_total` for counters, `_seconds` for times), see [`EXPORTED`].

mod bond;
pub mod http;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rvs_api::{AddrInfo, LinkInfo, Request, ServiceInfo, ServiceKey, Stats};
use rvs_core::stats::DropReason;

use crate::control::Control;

/// Label pairs of one series.
type Labels = Vec<(String, String)>;

/// The control-plane latency histogram, by request kind.
type OpHist = Family<Labels, Histogram, fn() -> Histogram>;

/// Every metric family rvsd exports, as named in the text format (counters
/// with their `_total`); the Grafana dashboard may use only these (and a
/// histogram's `_bucket`, `_sum` and `_count`).
pub const EXPORTED: &[&str] = &[
    "rvs_service_packets_total",
    "rvs_service_bytes_total",
    "rvs_service_connections_total",
    "rvs_dest_packets_total",
    "rvs_dest_bytes_total",
    "rvs_dest_connections_total",
    "rvs_dest_current_connections",
    "rvs_laddr_ports_in_use",
    "rvs_laddr_ports_free",
    "rvs_laddr_port_misses_total",
    "rvs_port_rx_packets_total",
    "rvs_port_rx_bytes_total",
    "rvs_port_rx_dropped_total",
    "rvs_port_tx_packets_total",
    "rvs_port_tx_bytes_total",
    "rvs_port_tx_dropped_total",
    "rvs_port_kni_packets_total",
    "rvs_port_rx_full_bursts_total",
    "rvs_port_fast_packets_total",
    "rvs_worker_drops_total",
    "rvs_conn_table_entries",
    "rvs_conn_table_capacity",
    "rvs_control_op_duration_seconds",
    "rvs_worker_uoa_sent_total",
    "rvs_worker_uoa_too_big_total",
    "rvs_worker_icmp_sent_total",
    "rvs_worker_icmp_rate_limited_total",
    "rvs_bond_slave_distributing",
    "rvs_bond_drops_total",
    "rvs_mld_reports_sent_total",
];

fn op_buckets() -> Histogram {
    // 10 µs .. ~2.6 s, factor 4.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

static OPS: LazyLock<OpHist> = LazyLock::new(|| Family::new_with_constructor(op_buckets));

/// The request kind as the API's `op` tag names it (`list_services`).
pub fn op_name(req: &Request) -> String {
    let dbg = format!("{req:?}");
    let camel: String = dbg
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Records how long the control plane took to answer `req`.
pub fn observe_op(req: &Request, took: Duration) {
    OPS.get_or_create(&vec![("op".to_string(), op_name(req))])
        .observe(took.as_secs_f64());
}

/// What one scrape reads.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Services with their dests and counters.
    pub services: Vec<ServiceInfo>,
    /// Interface addresses; those with a port pool are local addresses.
    pub addrs: Vec<AddrInfo>,
    /// Ports with per-worker counters.
    pub links: Vec<LinkInfo>,
    /// Per worker: every drop reason with its count.
    pub drops: Vec<Vec<(&'static str, u64)>>,
    /// Per worker: live connections.
    pub conns: Vec<u64>,
    /// Connection-table capacity per worker.
    pub capacity: usize,
    /// Per worker: datagrams sent with UOA, and without it for the MTU.
    pub uoa: Vec<(u64, u64)>,
    /// Per worker: ICMP errors sent, and not sent for the rate limit.
    pub icmp: Vec<(u64, u64)>,
    /// MLDv2 Reports sent, by port name.
    pub mld: Vec<(String, u64)>,
}

/// Reads a [`Scrape`] from the control plane. A part that cannot be read
/// (a worker that does not answer the pool question) is left out and logged.
pub fn collect(ctl: &Control) -> Scrape {
    let services = match ctl.query(&Request::ListServices { key: None }) {
        Ok(rvs_api::Reply::Services(s)) => s,
        _ => Vec::new(),
    };
    let addrs = match ctl.query(&Request::ListAddrs { dev: None }) {
        Ok(rvs_api::Reply::Addrs(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!("metrics: local addresses left out of this scrape: {e}");
            Vec::new()
        }
    };
    Scrape {
        services,
        addrs,
        links: (ctl.links)(),
        drops: ctl
            .workers
            .iter()
            .map(|w| {
                DropReason::ALL
                    .iter()
                    .map(|r| (r.name(), w.drops.get(*r)))
                    .collect()
            })
            .collect(),
        conns: ctl
            .workers
            .iter()
            .map(|w| w.gauges.conns.load(std::sync::atomic::Ordering::Relaxed))
            .collect(),
        capacity: ctl.conn_capacity,
        uoa: ctl
            .workers
            .iter()
            .map(|w| {
                let g = &w.gauges;
                let r = std::sync::atomic::Ordering::Relaxed;
                (g.uoa_sent.load(r), g.uoa_too_big.load(r))
            })
            .collect(),
        icmp: ctl
            .workers
            .iter()
            .map(|w| {
                let g = &w.gauges;
                let r = std::sync::atomic::Ordering::Relaxed;
                (g.icmp_sent.load(r), g.icmp_rate_limited.load(r))
            })
            .collect(),
        mld: crate::daemon::mld::reports_sent(),
    }
}

fn lbl(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn gauge_val(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The families of one scrape, filled then registered.
#[derive(Default)]
struct Families {
    counters: Vec<(&'static str, &'static str, Family<Labels, Counter>)>,
    gauges: Vec<(&'static str, &'static str, Family<Labels, Gauge>)>,
}

impl Families {
    fn counter(&mut self, name: &'static str, help: &'static str, l: Labels, v: u64) {
        let f = match self.counters.iter().position(|c| c.0 == name) {
            Some(i) => &self.counters[i].2,
            None => {
                self.counters.push((name, help, Family::default()));
                &self.counters[self.counters.len() - 1].2
            }
        };
        f.get_or_create(&l).inc_by(v);
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, l: Labels, v: u64) {
        let f = match self.gauges.iter().position(|c| c.0 == name) {
            Some(i) => &self.gauges[i].2,
            None => {
                self.gauges.push((name, help, Family::default()));
                &self.gauges[self.gauges.len() - 1].2
            }
        };
        f.get_or_create(&l).set(gauge_val(v));
    }

    fn traffic(&mut self, what: &'static str, base: &[(&str, String)], s: &Stats) {
        let (pk, by, cn) = match what {
            "service" => (
                "rvs_service_packets",
                "rvs_service_bytes",
                "rvs_service_connections",
            ),
            _ => ("rvs_dest_packets", "rvs_dest_bytes", "rvs_dest_connections"),
        };
        for (dir, p, b) in [("in", s.inpkts, s.inbytes), ("out", s.outpkts, s.outbytes)] {
            let mut l = lbl(base);
            l.push(("direction".into(), dir.into()));
            self.counter(
                pk,
                "Packets forwarded (in: from clients, out: to clients)",
                l.clone(),
                p,
            );
            self.counter(by, "Bytes forwarded (IP length)", l, b);
        }
        self.counter(cn, "Connections created", lbl(base), s.conns);
    }

    fn services(&mut self, services: &[ServiceInfo]) {
        for s in services {
            let ServiceKey::Vs { proto, vip, port } = &s.spec.key else {
                continue;
            };
            let proto = if *proto == rvs_api::Proto::Tcp {
                "tcp"
            } else {
                "udp"
            };
            let base = [
                ("vip", vip.to_string()),
                ("port", port.to_string()),
                ("proto", proto.to_string()),
            ];
            self.traffic("service", &base, &s.stats);
            for d in &s.dests {
                let mut db = base.to_vec();
                db.push(("dest", d.spec.addr.to_string()));
                db.push(("dest_port", d.spec.port.to_string()));
                self.traffic("dest", &db, &d.stats);
                for (state, n) in [("active", d.active), ("inactive", d.inactive)] {
                    let mut l = lbl(&db);
                    l.push(("state".into(), state.into()));
                    self.gauge(
                        "rvs_dest_current_connections",
                        "Connections to the real server now, by state",
                        l,
                        n,
                    );
                }
            }
        }
    }

    fn laddrs(&mut self, addrs: &[AddrInfo]) {
        for a in addrs {
            let Some((used, free, miss)) = a.sapool else {
                continue;
            };
            let l = lbl(&[("addr", a.addr.to_string()), ("dev", a.dev.clone())]);
            self.gauge(
                "rvs_laddr_ports_in_use",
                "Ports of the local address in use",
                l.clone(),
                used,
            );
            self.gauge(
                "rvs_laddr_ports_free",
                "Ports of the local address free",
                l.clone(),
                free,
            );
            self.counter(
                "rvs_laddr_port_misses",
                "Port allocations that failed",
                l,
                miss,
            );
        }
    }

    fn ports(&mut self, links: &[LinkInfo]) {
        for p in links {
            for (w, s) in p.stats.workers.iter().enumerate() {
                let l = lbl(&[("dev", p.name.clone()), ("worker", w.to_string())]);
                let rows: [(&'static str, &'static str, u64); 9] = [
                    ("rvs_port_rx_packets", "Frames received", s.rx_packets),
                    ("rvs_port_rx_bytes", "Bytes received", s.rx_bytes),
                    (
                        "rvs_port_rx_dropped",
                        "Frames the kernel dropped before rvs saw them",
                        s.rx_dropped,
                    ),
                    ("rvs_port_tx_packets", "Frames sent", s.tx_packets),
                    ("rvs_port_tx_bytes", "Bytes sent", s.tx_bytes),
                    (
                        "rvs_port_tx_dropped",
                        "Frames that found the transmit ring full",
                        s.tx_dropped,
                    ),
                    (
                        "rvs_port_kni_packets",
                        "Frames handed to the kernel",
                        s.kni_packets,
                    ),
                    (
                        "rvs_port_rx_full_bursts",
                        "Receive bursts that came back full (ring fill: the worker is behind)",
                        s.rx_full_bursts,
                    ),
                    (
                        "rvs_port_fast_packets",
                        "Frames received that the XDP fast path forwarded without a worker (read every ~0.5 s)",
                        s.fast_packets,
                    ),
                ];
                for (name, help, v) in rows {
                    self.counter(name, help, l.clone(), v);
                }
            }
        }
    }

    fn workers(&mut self, sc: &Scrape) {
        for (w, &(sent, too_big)) in sc.uoa.iter().enumerate() {
            let l = lbl(&[("worker", w.to_string())]);
            let help = "FNAT UDP datagrams sent with UOA (the client's address)";
            self.counter("rvs_worker_uoa_sent", help, l.clone(), sent);
            let help = "FNAT UDP datagrams sent without UOA: it would have exceeded the MTU";
            self.counter("rvs_worker_uoa_too_big", help, l, too_big);
        }
        for (w, &(sent, limited)) in sc.icmp.iter().enumerate() {
            let l = lbl(&[("worker", w.to_string())]);
            let help = "ICMP/ICMPv6 errors rvs sent (fragmentation needed, time exceeded)";
            self.counter("rvs_worker_icmp_sent", help, l.clone(), sent);
            let help = "ICMP/ICMPv6 errors not sent for the rate limit (the packets were dropped)";
            self.counter("rvs_worker_icmp_rate_limited", help, l, limited);
        }
        for (w, reasons) in sc.drops.iter().enumerate() {
            for (why, n) in reasons {
                let l = lbl(&[("worker", w.to_string()), ("reason", why.to_string())]);
                self.counter(
                    "rvs_worker_drops",
                    "Packets the pipeline dropped, by reason",
                    l,
                    *n,
                );
            }
        }
        for (w, n) in sc.conns.iter().enumerate() {
            let l = lbl(&[("worker", w.to_string())]);
            self.gauge(
                "rvs_conn_table_entries",
                "Live connections in the worker's table",
                l.clone(),
                *n,
            );
            self.gauge(
                "rvs_conn_table_capacity",
                "Connection-table capacity",
                l,
                sc.capacity as u64,
            );
        }
    }
}

/// The text exposition of a scrape (with the control-plane latencies).
pub fn render(sc: &Scrape) -> String {
    let mut f = Families::default();
    f.services(&sc.services);
    f.laddrs(&sc.addrs);
    f.ports(&sc.links);
    f.workers(sc);
    f.bonds(&sc.links);
    for (port, n) in &sc.mld {
        f.counter(
            "rvs_mld_reports_sent",
            "MLDv2 Reports rvs sent for its groups, by port",
            lbl(&[("port", port.clone())]),
            *n,
        );
    }
    let mut reg = Registry::default();
    for (name, help, fam) in f.counters {
        reg.register(name, help, fam);
    }
    for (name, help, fam) in f.gauges {
        reg.register(name, help, fam);
    }
    reg.register(
        "rvs_control_op_duration_seconds",
        "Time the control plane took to answer a request, by kind",
        OPS.clone(),
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}
