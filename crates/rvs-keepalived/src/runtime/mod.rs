//! The VRRP socket runtime: the thin I/O around the sans-IO [`vrrp`]
//! state machines, as quinn is to quinn-proto.
//!
//! One loop for every `vrrp_instance`: per interface (the kni device), a
//! raw IPv4 socket for protocol 112 bound to it (SO_BINDTODEVICE), joined
//! to 224.0.0.18, read by a small thread that hands each message (IP header
//! parsed, payload cut at the IP length, TTL kept) to the loop; a raw socket
//! with the header included sends adverts with TTL 255 from the instance's
//! address. The loop feeds each instance its messages, its timers (from a
//! monotonic clock) and its interface going up or down (checked twice a
//! second; a kni device that comes back, e.g. after rvsd restarted, gets
//! new sockets), and carries out the actions ([`actions`]). The interface
//! is down when the kni device is, or when rvsd reports the instance's rvs
//! port (`dpdk_interface`) down: its cable pulled ([`carrier`]).
//!
//! VRRPv3 over IPv6: a raw IPv6 socket joined to ff02::12 sends with hop
//! limit 255 (the kernel picks the source: the interface's link-local
//! address, which is the instance's unless `unicast_src_ip` says
//! otherwise); the receive side reads the interface's IPv6 packets from an
//! AF_PACKET socket, which gives source and hop limit without ancillary
//! data (reading those from a raw socket takes `recvmsg` with control
//! messages, which socket2 offers only over uninitialised buffers).
//!
//! `vrrp_script`s run on threads of their own ([`scripts`]), their
//! statuses fed to the instances tracking them. The members of a
//! `vrrp_sync_group` move together ([`crate::vrrp::SyncGroup`]).
//!
//! Not done yet: a
//! reload that changes an instance restarts it (a master hands over, then
//! the priorities decide again).
//!
//! [`vrrp`]: crate::vrrp

pub mod actions;
pub mod build;
pub mod carrier;
mod groups;
pub mod log;
pub mod net;
pub mod scripts;
pub mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::conf::Config;
use crate::vrrp::packet::{peek_vrid, Family};
use crate::vrrp::{Action, Event, Instance};

pub use build::{run_conf, RunConf};

/// How often interfaces are checked.
const LINK_CHECK_MS: u64 = 500;
/// The longest the loop sleeps (signals are seen within this).
const MAX_SLEEP_MS: u64 = 100;

struct Slot {
    run: RunConf,
    inst: Instance,
}

/// The runtime of every VRRP instance of a configuration.
pub struct Runtime {
    start: Instant,
    slots: Vec<Slot>,
    links: HashMap<String, net::VrrpLink>,
    link_up: HashMap<String, bool>,
    ports: HashMap<String, carrier::PortCarrier>,
    sink: Sender<net::Received>,
    rx: Receiver<net::Received>,
    exec: actions::Executor,
    next_link_check: u64,
    scripts: ScriptFeed,
    groups: Vec<crate::vrrp::SyncGroup>,
}

/// The `vrrp_script` threads and their results' channel.
struct ScriptFeed {
    tx: Sender<scripts::Status>,
    rx: Receiver<scripts::Status>,
    threads: Option<ScriptThreads>,
}

struct ScriptThreads {
    list: Vec<crate::conf::VrrpScript>,
    threads: scripts::Scripts,
}

fn iface_addr(name: &str, family: Family) -> Option<std::net::IpAddr> {
    let i = net::if_info(name)?;
    match family {
        Family::V4 => i.ipv4.map(Into::into),
        Family::V6 => i.link_local.map(Into::into),
    }
}

/// The instances of `cfg` as the runtime runs them; the first error stops.
pub fn run_confs(cfg: &Config) -> Result<Vec<RunConf>, String> {
    cfg.vrrp_instances
        .iter()
        .map(|vi| run_conf(vi, cfg, &iface_addr))
        .collect()
}

impl Runtime {
    /// A runtime for `confs` (not started).
    pub fn new(confs: Vec<RunConf>) -> Result<Runtime, String> {
        let (sink, rx) = channel();
        let mut rt = Runtime {
            start: Instant::now(),
            slots: Vec::new(),
            links: HashMap::new(),
            link_up: HashMap::new(),
            ports: HashMap::new(),
            sink,
            rx,
            exec: actions::Executor::new(),
            next_link_check: 0,
            scripts: ScriptFeed::new(),
            groups: Vec::new(),
        };
        rt.slots = confs
            .into_iter()
            .map(Self::slot)
            .collect::<Result<_, _>>()?;
        Ok(rt)
    }

    fn slot(run: RunConf) -> Result<Slot, String> {
        let mut inst = Instance::new(run.vrrp.clone())
            .map_err(|e| format!("vrrp_instance {}: {e}", run.vrrp.name))?;
        inst.set_sync_hold(run.group.is_some());
        Ok(Slot { run, inst })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Marks every instance's local addresses standby in rvsd, before the
    /// virtual servers are applied: no node answers ARP for them until it
    /// is master (the instances' startup does the same, later).
    pub fn standby_laddrs(&mut self) {
        for s in &self.slots {
            let v = &s.run.vrrp.owned_addresses;
            if v.is_empty() {
                continue;
            }
            let target = actions::Target {
                instance: &s.run.vrrp.name,
                kni: &s.run.vrrp.interface,
                port: &s.run.port,
                sync: None,
            };
            self.exec.run(&target, &Action::StandbyLaddrs(v.clone()));
        }
    }

    /// Opens the sockets and starts every instance.
    pub fn start(&mut self) {
        self.refresh_scripts();
        self.refresh_groups();
        self.check_links();
        for i in 0..self.slots.len() {
            self.feed(i, Event::Startup);
        }
    }

    /// Runs until `term` is set; `hup` set means reload with `reload`
    /// (None: keep the running configuration).
    pub fn run(
        &mut self,
        term: &AtomicBool,
        hup: &AtomicBool,
        reload: &mut dyn FnMut() -> Option<Vec<RunConf>>,
    ) {
        while !term.load(Ordering::Relaxed) {
            if hup.swap(false, Ordering::Relaxed) {
                if let Some(confs) = reload() {
                    self.replace(confs);
                }
            }
            self.tick();
            let now = self.now();
            let next = self
                .slots
                .iter()
                .filter_map(|s| s.inst.next_timeout())
                .chain([self.next_link_check])
                .min()
                .unwrap_or(now + MAX_SLEEP_MS);
            let wait = next.saturating_sub(now).min(MAX_SLEEP_MS);
            match self.rx.recv_timeout(Duration::from_millis(wait)) {
                Ok(r) => self.dispatch(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Stops every instance: a master sends its priority-0 advert (so the
    /// backup takes over at once) and removes its VIPs from rvsd.
    pub fn shutdown(&mut self) {
        for i in 0..self.slots.len() {
            self.feed(i, Event::Shutdown);
        }
        self.scripts.threads = None;
        self.exec.reap();
    }

    /// Takes a new set of instances: unchanged ones keep running as they
    /// are; changed or removed ones stop, new or changed ones start.
    pub fn replace(&mut self, confs: Vec<RunConf>) {
        let mut keep = vec![false; self.slots.len()];
        let mut fresh = Vec::new();
        for rc in confs {
            match self.slots.iter().position(|s| s.run == rc) {
                Some(i) => keep[i] = true,
                None => match Self::slot(rc) {
                    Ok(s) => fresh.push(s),
                    Err(e) => log::warn(&e),
                },
            }
        }
        for i in (0..self.slots.len()).rev() {
            if !keep[i] {
                self.feed(i, Event::Shutdown);
                let s = self.slots.remove(i);
                log::info(&format!(
                    "vrrp_instance {} removed or changed",
                    s.run.vrrp.name
                ));
            }
        }
        let first = self.slots.len();
        self.slots.extend(fresh);
        self.refresh_scripts();
        self.refresh_groups();
        self.check_links();
        for i in first..self.slots.len() {
            self.feed(i, Event::Startup);
        }
    }

    fn tick(&mut self) {
        self.script_results();
        let now = self.now();
        if now >= self.next_link_check {
            self.check_links();
            self.exec.reap();
        }
        for i in 0..self.slots.len() {
            if self.slots[i].inst.next_timeout().is_some_and(|t| t <= now) {
                self.feed(i, Event::Timeout);
            }
        }
    }

    fn dispatch(&mut self, r: net::Received) {
        let vrid = peek_vrid(&r.payload);
        let i = self
            .slots
            .iter()
            .position(|s| s.run.vrrp.interface == r.ifname && Some(s.run.vrrp.vrid) == vrid);
        match i {
            Some(i) => self.feed(
                i,
                Event::Advert {
                    meta: r.meta,
                    payload: &r.payload,
                },
            ),
            None => log::debug(&format!(
                "VRRP from {} on {} for vrid {vrid:?}: no such instance",
                r.meta.src, r.ifname
            )),
        }
    }

    /// The interfaces: up or down to the instances, sockets (re)opened.
    fn check_links(&mut self) {
        self.next_link_check = self.now() + LINK_CHECK_MS;
        let mut names: Vec<String> = Vec::new();
        for s in &self.slots {
            let c = &s.run.vrrp;
            names.push(c.interface.clone());
            names.extend(c.track_interfaces.iter().map(|t| t.name.clone()));
        }
        names.sort();
        names.dedup();
        self.poll_ports();
        for name in names {
            let info = net::if_info(&name);
            let up = info.as_ref().is_some_and(|i| i.up);
            let vrrp_if = self.slots.iter().any(|s| s.run.vrrp.interface == name);
            let usable = vrrp_if && up && self.ensure_link(&name, info.as_ref().map(|i| i.index));
            let state = if vrrp_if {
                self.slots
                    .iter()
                    .filter(|s| s.run.vrrp.interface == name)
                    .all(|s| carrier::instance_link_up(usable, self.ports.get(&s.run.port)))
            } else {
                up
            };
            if self.link_up.insert(name.clone(), state) != Some(state) {
                log::info(&format!(
                    "interface {name} is {}",
                    if state { "up" } else { "down" }
                ));
                for i in 0..self.slots.len() {
                    self.feed(
                        i,
                        Event::Link {
                            ifname: &name,
                            up: state,
                        },
                    );
                }
            }
        }
    }

    /// Asks rvsd for the carrier of every instance's rvs port (not when an
    /// instance has no `dpdk_interface`: its port is its interface).
    fn poll_ports(&mut self) {
        let mut ports: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.run.port != s.run.vrrp.interface)
            .map(|s| s.run.port.clone())
            .collect();
        ports.sort();
        ports.dedup();
        self.ports.retain(|p, _| ports.contains(p));
        for port in ports {
            let poll = carrier::poll(&port);
            let c = self.ports.entry(port.clone()).or_default();
            let was = c.up();
            if c.observe(poll) != was {
                let why = match poll {
                    carrier::Poll::Carrier(true) => "up",
                    carrier::Poll::Carrier(false) => "down (no carrier)",
                    carrier::Poll::NoSuchPort => "down (rvsd has no such port)",
                    carrier::Poll::Failed => "down (rvsd does not answer)",
                };
                log::info(&format!("rvs port {port} is {why}"));
            }
        }
    }

    /// Whether the sockets of `name` are open on its current index.
    fn ensure_link(&mut self, name: &str, index: Option<u32>) -> bool {
        let Some(index) = index else {
            self.links.remove(name);
            return false;
        };
        if self.links.get(name).is_some_and(|l| l.index == index) {
            return true;
        }
        let v6 = self
            .slots
            .iter()
            .any(|s| s.run.vrrp.interface == name && s.run.vrrp.family() == Family::V6);
        match net::VrrpLink::open(name, index, v6, self.sink.clone()) {
            Ok(l) => {
                log::debug(&format!("VRRP sockets open on {name} (index {index})"));
                self.links.insert(name.to_string(), l);
                true
            }
            Err(e) => {
                log::warn(&format!("cannot run VRRP on {name}: {e}"));
                self.links.remove(name);
                false
            }
        }
    }

    fn feed(&mut self, i: usize, ev: Event<'_>) {
        let own = !matches!(ev, Event::Sync { .. });
        let now = self.now();
        let mut out = Vec::new();
        self.slots[i].inst.handle(now, ev, &mut out);
        let s = &self.slots[i];
        let c = &s.run.vrrp;
        let target = actions::Target {
            instance: &c.name,
            kni: &c.interface,
            port: &s.run.port,
            sync: s.run.sync.as_ref(),
        };
        for a in &out {
            if let Action::SendAdvert {
                src, dst, payload, ..
            } = a
            {
                let r = match self.links.get(&c.interface) {
                    Some(l) => l.send(*src, *dst, payload),
                    None => Err(std::io::Error::other("no socket (interface down)")),
                };
                if let Err(e) = r {
                    log::warn(&format!("VRRP_Instance({}) advert to {dst}: {e}", c.name));
                }
            } else {
                self.exec.run(&target, a);
            }
        }
        if own {
            self.follow_group(i, &out);
        }
    }

    /// The state of each instance, by name (for logs and tests).
    pub fn states(&self) -> Vec<(String, crate::vrrp::State)> {
        self.slots
            .iter()
            .map(|s| (s.run.vrrp.name.clone(), s.inst.state()))
            .collect()
    }
}

impl ScriptFeed {
    fn new() -> ScriptFeed {
        let (tx, rx) = channel();
        ScriptFeed {
            tx,
            rx,
            threads: None,
        }
    }
}

impl Runtime {
    /// Runs the `vrrp_script`s the instances track; restarts the threads
    /// when that list changed (a reload).
    fn refresh_scripts(&mut self) {
        let mut list: Vec<crate::conf::VrrpScript> = Vec::new();
        for s in self.slots.iter().flat_map(|s| &s.run.scripts) {
            if !list.iter().any(|x| x.name == s.name) {
                list.push(s.clone());
            }
        }
        if self
            .scripts
            .threads
            .as_ref()
            .is_some_and(|t| t.list == list)
        {
            return;
        }
        if let Some(mut old) = self.scripts.threads.take() {
            old.threads.stop();
        }
        while self.scripts.rx.try_recv().is_ok() {}
        let threads = scripts::Scripts::start(&list, self.scripts.tx.clone());
        self.scripts.threads = Some(ScriptThreads { list, threads });
    }

    /// Feeds the scripts' status changes to every instance.
    fn script_results(&mut self) {
        while let Ok(st) = self.scripts.rx.try_recv() {
            for i in 0..self.slots.len() {
                let ev = Event::Script {
                    name: &st.name,
                    ok: st.ok,
                };
                self.feed(i, ev);
            }
        }
    }
}
