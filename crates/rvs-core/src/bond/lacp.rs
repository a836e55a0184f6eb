//! LACP (IEEE 802.1AX-2008 §5.4) for one bond, sans-IO.
//!
//! Per slave: the Receive, Periodic, Mux (coupled control, as Linux) and
//! Transmit machines; per bond: one aggregator chosen as Linux's
//! `ad_select=stable` does. Time is the caller's `now` in milliseconds (any
//! monotonic origin). The caller feeds received slow-protocols frames to
//! [`Lacp::receive`], carrier changes to [`Lacp::link`], calls
//! [`Lacp::tick`] at least at [`Lacp::next_deadline`] and after each
//! `receive`/`link`, sends the frames `tick` hands out on the named slave,
//! and publishes [`Lacp::masks`] to the data path. No allocation after
//! [`Lacp::new`], no syscalls.

use core::fmt;

use super::pdu::{self, state, LacpPdu, PduError, PortInfo, FRAME_LEN};

/// Fast periodic time: LACPDUs every second when the partner asks for it.
pub const FAST_PERIODIC_MS: u64 = 1_000;
/// Slow periodic time.
pub const SLOW_PERIODIC_MS: u64 = 30_000;
/// Short timeout (3 fast periods).
pub const SHORT_TIMEOUT_MS: u64 = 3_000;
/// Long timeout (3 slow periods).
pub const LONG_TIMEOUT_MS: u64 = 90_000;
/// Aggregate wait time: lets the other ports join before attaching.
pub const AGGREGATE_WAIT_MS: u64 = 2_000;
/// At most this many LACPDUs per port in any [`FAST_PERIODIC_MS`] interval.
pub const MAX_TX_PER_PERIOD: usize = 3;
/// The port priority rvs sends (802.1AX's usual default).
pub const PORT_PRIORITY: u16 = 255;
/// Most slaves a bond may have (the masks are `u32`).
pub const MAX_SLAVES: usize = 32;

/// The configuration of one bond's LACP.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LacpConf {
    /// Actor system priority (lower wins; Linux's default 65535).
    pub system_priority: u16,
    /// Actor system identifier: the bond's MAC.
    pub system_mac: [u8; 6],
    /// Actor operational key, the same on every slave.
    pub key: u16,
    /// `lacp_rate = fast`: set the actor Timeout bit (ask the partner for
    /// LACPDUs every second; time it out after 3 s instead of 90 s).
    pub fast: bool,
    /// `lacp_active`: send LACPDUs even to a passive (or absent) partner.
    pub active: bool,
    /// `lacp_fallback`: with no LACP partner on any slave, use one slave
    /// (the lowest-numbered one that is up) as an individual link.
    pub fallback: bool,
}

/// The Receive machine's state of a slave.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RxState {
    /// Carrier down.
    PortDisabled,
    /// The partner's information is stale: no LACPDU for a timeout.
    Expired,
    /// No LACPDU for two timeouts: the partner is the administrative default.
    Defaulted,
    /// The partner's information is current.
    Current,
}

impl RxState {
    /// The 802.1AX name, e.g. `CURRENT`.
    pub fn name(self) -> &'static str {
        match self {
            RxState::PortDisabled => "PORT_DISABLED",
            RxState::Expired => "EXPIRED",
            RxState::Defaulted => "DEFAULTED",
            RxState::Current => "CURRENT",
        }
    }
}

/// The Mux machine's state of a slave (coupled control).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MuxState {
    /// Not attached to the aggregator.
    Detached,
    /// Selected; waiting [`AGGREGATE_WAIT_MS`] before attaching.
    Waiting,
    /// Attached, actor in sync; waiting for the partner's sync.
    Attached,
    /// Collecting and distributing: carries traffic.
    CollectingDistributing,
}

impl MuxState {
    /// The 802.1AX name, e.g. `COLLECTING_DISTRIBUTING`.
    pub fn name(self) -> &'static str {
        match self {
            MuxState::Detached => "DETACHED",
            MuxState::Waiting => "WAITING",
            MuxState::Attached => "ATTACHED",
            MuxState::CollectingDistributing => "COLLECTING_DISTRIBUTING",
        }
    }
}

/// The Selection logic's verdict on a slave.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Not in the bond's aggregator (no partner, link down, or another LAG).
    Unselected,
    /// In the bond's aggregator.
    Selected,
    /// Used alone as an individual link while the bond has no aggregator:
    /// its partner's port is individual (Aggregation bit off), or, with
    /// `fallback`, it has no LACP partner at all (DEFAULTED).
    Fallback,
}

impl Selection {
    /// `SELECTED`, `UNSELECTED` or `FALLBACK`.
    pub fn name(self) -> &'static str {
        match self {
            Selection::Unselected => "UNSELECTED",
            Selection::Selected => "SELECTED",
            Selection::Fallback => "FALLBACK",
        }
    }
}

/// A LAG identifier: both ends' system and key (the ports' part is left
/// out: every slave of a bond shares the actor part).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LagId {
    /// Actor system priority.
    pub actor_system_priority: u16,
    /// Actor system.
    pub actor_system: [u8; 6],
    /// Actor key.
    pub actor_key: u16,
    /// Partner system priority.
    pub partner_system_priority: u16,
    /// Partner system.
    pub partner_system: [u8; 6],
    /// Partner key.
    pub partner_key: u16,
}

impl fmt::Display for LagId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = |s: &[u8; 6]| {
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                s[0], s[1], s[2], s[3], s[4], s[5]
            )
        };
        write!(
            f,
            "[({},{},{}),({},{},{})]",
            self.actor_system_priority,
            m(&self.actor_system),
            self.actor_key,
            self.partner_system_priority,
            m(&self.partner_system),
            self.partner_key
        )
    }
}

/// One slave's LACP state, for `rvsip link show` and metrics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SlaveLacp {
    /// Carrier as last told by [`Lacp::link`].
    pub link: bool,
    /// rvs's side: system, priority, key, port, port priority, state bits.
    pub actor: PortInfo,
    /// The partner as recorded (the administrative default, all zero but
    /// for the port state, when DEFAULTED).
    pub partner: PortInfo,
    /// Receive machine state.
    pub rx: RxState,
    /// Mux machine state.
    pub mux: MuxState,
    /// Selection verdict.
    pub selected: Selection,
    /// This slave's LAG id (`None` while it has no aggregatable partner).
    pub lag: Option<LagId>,
    /// LACPDUs received and taken.
    pub lacpdu_rx: u64,
    /// LACPDUs sent (handed out by [`Lacp::tick`]).
    pub lacpdu_tx: u64,
    /// Slow-protocols frames refused on this slave (see [`PduError`]).
    pub lacpdu_bad: u64,
    /// Marker Information frames received (each answered).
    pub marker_rx: u64,
}

#[derive(Clone, Debug)]
struct Port {
    mac: [u8; 6],
    number: u16,
    link: bool,
    actor_state: u8,
    partner: PortInfo,
    rx: RxState,
    mux: MuxState,
    sel: Selection,
    /// Receive machine's timer (CURRENT and EXPIRED).
    current_while: u64,
    /// Periodic machine's next transmission; `u64::MAX` = NO_PERIODIC.
    periodic: u64,
    /// Mux WAITING's end.
    wait_while: u64,
    ntt: bool,
    /// Send times of the last [`MAX_TX_PER_PERIOD`] LACPDUs (a ring).
    sent: [u64; MAX_TX_PER_PERIOD],
    sent_next: usize,
    rx_count: u64,
    tx_count: u64,
    bad: u64,
    marker_rx: u64,
}

/// The LACP machines of one bond's slaves. See the module doc.
#[derive(Clone, Debug)]
pub struct Lacp {
    conf: LacpConf,
    ports: Vec<Port>,
    /// The bond's one aggregator (stable: kept while a slave holds it).
    agg: Option<LagId>,
}

/// The partner's administrative default: individual, no system, short
/// timeout (so that an active rvs keeps probing every second while no
/// partner answers, and a partner that comes back forms quickly).
const PARTNER_ADMIN: PortInfo = PortInfo {
    system_priority: 0,
    system: [0; 6],
    key: 0,
    port_priority: 0,
    port: 0,
    state: state::TIMEOUT,
};

impl Lacp {
    /// A bond whose slave `i` has the MAC `slave_macs[i]` (the source of its
    /// LACPDUs) and port number `i + 1`. Every slave starts with carrier
    /// down: call [`Lacp::link`] for those that are up. At most
    /// [`MAX_SLAVES`] slaves (extra ones are ignored).
    pub fn new(conf: LacpConf, slave_macs: &[[u8; 6]], now: u64) -> Lacp {
        let _ = now;
        let mut actor_state = state::AGGREGATION;
        if conf.active {
            actor_state |= state::ACTIVITY;
        }
        if conf.fast {
            actor_state |= state::TIMEOUT;
        }
        let ports = slave_macs
            .iter()
            .take(MAX_SLAVES)
            .enumerate()
            .map(|(i, &mac)| Port {
                mac,
                number: i as u16 + 1,
                link: false,
                actor_state,
                partner: PARTNER_ADMIN,
                rx: RxState::PortDisabled,
                mux: MuxState::Detached,
                sel: Selection::Unselected,
                current_while: u64::MAX,
                periodic: u64::MAX,
                wait_while: u64::MAX,
                ntt: false,
                sent: [0; MAX_TX_PER_PERIOD],
                sent_next: 0,
                rx_count: 0,
                tx_count: 0,
                bad: 0,
                marker_rx: 0,
            })
            .collect();
        Lacp {
            conf,
            ports,
            agg: None,
        }
    }

    /// The configuration.
    pub fn conf(&self) -> &LacpConf {
        &self.conf
    }

    /// How many slaves.
    pub fn slaves(&self) -> usize {
        self.ports.len()
    }

    /// Takes a slow-protocols frame (whole, from the destination MAC)
    /// received on `slave`. A LACPDU updates the machines (call
    /// [`Lacp::tick`] next to send what they want); a Marker Information
    /// frame returns `Some(response)` to send on that slave at once; a
    /// Marker Response returns `None`. Anything else is an error naming
    /// why, counted in that slave's `lacpdu_bad`.
    pub fn receive(
        &mut self,
        slave: usize,
        frame: &[u8],
        now: u64,
    ) -> Result<Option<[u8; FRAME_LEN]>, PduError> {
        let conf = self.conf;
        let Some(p) = self.ports.get_mut(slave) else {
            return Err(PduError::NoSuchSlave(slave));
        };
        let r = p.receive(&conf, frame, now);
        if r.is_err() {
            p.bad += 1;
        }
        self.settle(now);
        r
    }

    /// Carrier of `slave` went up or down (a down slave leaves the masks
    /// at once). Unknown slaves are ignored.
    pub fn link(&mut self, slave: usize, up: bool, now: u64) {
        let Some(p) = self.ports.get_mut(slave) else {
            return;
        };
        if p.link == up {
            return;
        }
        p.link = up;
        if up {
            p.expire(now);
        } else {
            p.disable();
        }
        self.settle(now);
    }

    /// Runs the timers due at `now` and hands out the LACPDUs to send, as
    /// `out(slave, frame)`, within the rate limit.
    pub fn tick(&mut self, now: u64, out: &mut impl FnMut(usize, &[u8; FRAME_LEN])) {
        let conf = self.conf;
        for p in &mut self.ports {
            p.timers(&conf, now);
        }
        self.settle(now);
        for (i, p) in self.ports.iter_mut().enumerate() {
            if let Some(f) = p.transmit(&conf, now) {
                out(i, &f);
            }
        }
    }

    /// The earliest time at which [`Lacp::tick`] has work (`now`-like
    /// values when a LACPDU is pending; `u64::MAX` when nothing is timed).
    pub fn next_deadline(&self) -> u64 {
        self.ports
            .iter()
            .map(|p| p.deadline())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// `(collecting, distributing)`: bit `i` set when slave `i` may receive
    /// / send traffic (coupled control: both masks are equal).
    pub fn masks(&self) -> (u32, u32) {
        let mut m = 0u32;
        for (i, p) in self.ports.iter().enumerate() {
            if p.link && p.mux == MuxState::CollectingDistributing {
                m |= 1 << i;
            }
        }
        (m, m)
    }

    /// The bond's aggregator's LAG id, if one is formed.
    pub fn aggregator(&self) -> Option<LagId> {
        self.agg
    }

    /// The state of `slave` (panics if `slave >= self.slaves()`).
    pub fn info(&self, slave: usize) -> SlaveLacp {
        let p = &self.ports[slave];
        SlaveLacp {
            link: p.link,
            actor: p.actor(&self.conf),
            partner: p.partner,
            rx: p.rx,
            mux: p.mux,
            selected: p.sel,
            lag: p.lag(&self.conf),
            lacpdu_rx: p.rx_count,
            lacpdu_tx: p.tx_count,
            lacpdu_bad: p.bad,
            marker_rx: p.marker_rx,
        }
    }

    /// Selection then the Mux machines, until nothing changes.
    fn settle(&mut self, now: u64) {
        self.select();
        for p in &mut self.ports {
            p.mux_run(now);
        }
    }

    /// One aggregator per bond, `ad_select=stable`: a selected slave whose
    /// LAG id no longer matches (or that lost its partner) is unselected;
    /// the aggregator is dropped when no slave holds it and then taken by
    /// the first eligible slave; eligible slaves with its LAG id join.
    fn select(&mut self) {
        let conf = self.conf;
        let agg = self.agg;
        for p in &mut self.ports {
            if p.sel == Selection::Selected && (p.lag(&conf) != agg || agg.is_none()) {
                p.sel = Selection::Unselected;
            }
        }
        if !self.ports.iter().any(|p| p.sel == Selection::Selected) {
            self.agg = self.ports.iter().find_map(|p| p.lag(&conf));
        }
        let agg = self.agg;
        for p in &mut self.ports {
            let lag = p.lag(&conf);
            if lag.is_some() && lag == agg {
                p.sel = Selection::Selected;
            } else if p.sel == Selection::Fallback && agg.is_some() {
                p.sel = Selection::Unselected;
            }
        }
        self.fallback();
    }

    /// With no aggregator, one slave carries traffic alone as an individual
    /// link: the one already doing so while it still qualifies, else the
    /// first whose partner port is individual (802.1AX: an aggregator of
    /// one), else with `fallback` the first that is up and DEFAULTED (no LACP
    /// partner at all). Any other such slave is released.
    fn fallback(&mut self) {
        let fb = self.conf.fallback;
        let ok = |p: &Port| p.individual() || (fb && p.link && p.rx == RxState::Defaulted);
        let want = if self.agg.is_some() {
            None
        } else {
            let ports = &self.ports;
            ports
                .iter()
                .position(|p| p.sel == Selection::Fallback && ok(p))
                .or_else(|| ports.iter().position(Port::individual))
                .or_else(|| ports.iter().position(ok))
        };
        for (i, p) in self.ports.iter_mut().enumerate() {
            if Some(i) == want {
                p.sel = Selection::Fallback;
            } else if p.sel == Selection::Fallback {
                p.sel = Selection::Unselected;
            }
        }
    }
}

impl Port {
    fn actor(&self, conf: &LacpConf) -> PortInfo {
        PortInfo {
            system_priority: conf.system_priority,
            system: conf.system_mac,
            key: conf.key,
            port_priority: PORT_PRIORITY,
            port: self.number,
            state: self.actor_state,
        }
    }

    /// The LAG id when this slave can aggregate: carrier up, a partner
    /// heard (CURRENT or EXPIRED) that is aggregatable.
    fn lag(&self, conf: &LacpConf) -> Option<LagId> {
        let heard = matches!(self.rx, RxState::Current | RxState::Expired);
        if !self.link || !heard || self.partner.state & state::AGGREGATION == 0 {
            return None;
        }
        Some(LagId {
            actor_system_priority: conf.system_priority,
            actor_system: conf.system_mac,
            actor_key: conf.key,
            partner_system_priority: self.partner.system_priority,
            partner_system: self.partner.system,
            partner_key: self.partner.key,
        })
    }

    /// Carrier up and a current partner whose port is individual.
    fn individual(&self) -> bool {
        self.link && self.rx == RxState::Current && self.partner.state & state::AGGREGATION == 0
    }

    fn partner_sync(&self) -> bool {
        self.partner.state & state::SYNC != 0
    }

    fn receive(
        &mut self,
        conf: &LacpConf,
        frame: &[u8],
        now: u64,
    ) -> Result<Option<[u8; FRAME_LEN]>, PduError> {
        if pdu::classify(frame)? == pdu::SUBTYPE_MARKER {
            let m = pdu::MarkerPdu::new_checked(&frame[14..])?;
            if m.tlv_type() != pdu::MARKER_INFO {
                return Ok(None);
            }
            self.marker_rx += 1;
            return Ok(pdu::marker_response(frame, self.mac));
        }
        let l = LacpPdu::new_checked(&frame[14..])?;
        if l.actor().system == conf.system_mac {
            return Err(PduError::Loopback);
        }
        self.rx_count += 1;
        if self.link {
            self.record(conf, &l.actor(), &l.partner(), now);
        }
        Ok(None)
    }

    /// Receive machine CURRENT (802.1AX §5.4.12): update_NTT, recordPDU.
    fn record(&mut self, conf: &LacpConf, actor: &PortInfo, partner: &PortInfo, now: u64) {
        let me = self.actor(conf);
        let sees_me = partner.port == me.port
            && partner.port_priority == me.port_priority
            && partner.system == me.system
            && partner.system_priority == me.system_priority
            && partner.key == me.key
            && partner.state & state::AGGREGATION == me.state & state::AGGREGATION;
        // update_NTT: the partner's view of us is stale.
        let mask = state::ACTIVITY | state::TIMEOUT | state::SYNC | state::AGGREGATION;
        if !sees_me || (partner.state & mask) != (me.state & mask) {
            self.ntt = true;
        }
        let mut rec = *actor;
        let in_sync = actor.state & state::SYNC != 0
            && (sees_me || actor.state & state::AGGREGATION == 0)
            && (actor.state & state::ACTIVITY != 0 || me.state & state::ACTIVITY != 0);
        if !in_sync {
            rec.state &= !state::SYNC;
        }
        let faster = rec.state & state::TIMEOUT != 0 && self.partner.state & state::TIMEOUT == 0;
        self.partner = rec;
        self.rx = RxState::Current;
        self.actor_state &= !(state::EXPIRED | state::DEFAULTED);
        self.current_while = now + timeout(conf);
        self.periodic_reset(now, faster);
    }

    /// Receive machine EXPIRED: partner sync off, partner timeout short.
    fn expire(&mut self, now: u64) {
        self.rx = RxState::Expired;
        self.partner.state &= !state::SYNC;
        self.partner.state |= state::TIMEOUT;
        self.actor_state |= state::EXPIRED;
        self.current_while = now + SHORT_TIMEOUT_MS;
        self.periodic_reset(now, true);
    }

    /// Receive machine DEFAULTED: the partner becomes the admin default.
    fn default(&mut self, now: u64) {
        self.rx = RxState::Defaulted;
        self.partner = PARTNER_ADMIN;
        self.actor_state &= !state::EXPIRED;
        self.actor_state |= state::DEFAULTED;
        self.current_while = u64::MAX;
        self.periodic_reset(now, false);
    }

    /// Carrier down: PORT_DISABLED, out of the aggregator at once.
    fn disable(&mut self) {
        self.rx = RxState::PortDisabled;
        self.partner.state &= !state::SYNC;
        self.sel = Selection::Unselected;
        self.current_while = u64::MAX;
        self.periodic = u64::MAX;
        self.ntt = false;
        self.detach();
    }

    /// The Periodic machine's period, `None` for NO_PERIODIC.
    fn period(&self) -> Option<u64> {
        let active = (self.actor_state | self.partner.state) & state::ACTIVITY != 0;
        if !self.link || !active {
            return None;
        }
        Some(if self.partner.state & state::TIMEOUT != 0 {
            FAST_PERIODIC_MS
        } else {
            SLOW_PERIODIC_MS
        })
    }

    /// Re-arms the Periodic machine after the partner's state changed;
    /// `now_due` transmits at once (a faster rate asked, or EXPIRED).
    fn periodic_reset(&mut self, now: u64, now_due: bool) {
        match self.period() {
            None => self.periodic = u64::MAX,
            Some(_) if now_due || self.periodic == u64::MAX => {
                self.periodic = now;
            }
            Some(t) => self.periodic = self.periodic.min(now + t),
        }
    }

    fn timers(&mut self, conf: &LacpConf, now: u64) {
        if now >= self.current_while {
            match self.rx {
                RxState::Current => self.expire(now),
                RxState::Expired => self.default(now),
                _ => self.current_while = u64::MAX,
            }
        }
        let _ = conf;
        if now >= self.periodic {
            self.ntt = true;
            self.periodic = match self.period() {
                Some(t) => now + t,
                None => u64::MAX,
            };
        }
    }

    fn detach(&mut self) {
        self.mux = MuxState::Detached;
        self.actor_state &= !(state::SYNC | state::COLLECTING | state::DISTRIBUTING);
        self.wait_while = u64::MAX;
        self.ntt = self.link;
    }

    /// The Mux machine (coupled control), run to a fixed point.
    fn mux_run(&mut self, now: u64) {
        for _ in 0..4 {
            let selected = self.sel != Selection::Unselected && self.link;
            let alone = self.sel == Selection::Fallback && self.rx == RxState::Defaulted;
            let go = self.partner_sync() || alone;
            let next = match self.mux {
                MuxState::Detached if selected => MuxState::Waiting,
                MuxState::Waiting if !selected => MuxState::Detached,
                MuxState::Waiting if now >= self.wait_while => MuxState::Attached,
                MuxState::Attached if !selected => MuxState::Detached,
                MuxState::Attached if go => MuxState::CollectingDistributing,
                MuxState::CollectingDistributing if !selected || !go => MuxState::Attached,
                s => s,
            };
            if next == self.mux {
                return;
            }
            self.enter(next, now);
        }
    }

    fn enter(&mut self, s: MuxState, now: u64) {
        let cd = state::COLLECTING | state::DISTRIBUTING;
        match s {
            MuxState::Detached => self.detach(),
            MuxState::Waiting => {
                self.mux = s;
                self.wait_while = now + AGGREGATE_WAIT_MS;
            }
            MuxState::Attached => {
                self.mux = s;
                self.actor_state |= state::SYNC;
                self.actor_state &= !cd;
                self.ntt = true;
            }
            MuxState::CollectingDistributing => {
                self.mux = s;
                self.actor_state |= state::SYNC | cd;
                self.ntt = true;
            }
        }
    }

    /// The Transmit machine: NTT, carrier up, periodic on, under the rate.
    fn transmit(&mut self, conf: &LacpConf, now: u64) -> Option<[u8; FRAME_LEN]> {
        if !self.ntt || self.period().is_none() || !self.may_send(now) {
            return None;
        }
        self.ntt = false;
        self.sent[self.sent_next] = now;
        self.sent_next = (self.sent_next + 1) % MAX_TX_PER_PERIOD;
        self.tx_count += 1;
        Some(pdu::build_lacpdu(
            self.mac,
            &self.actor(conf),
            &self.partner,
        ))
    }

    /// Under [`MAX_TX_PER_PERIOD`] LACPDUs in the last second.
    fn may_send(&self, now: u64) -> bool {
        let oldest = self.sent[self.sent_next];
        self.tx_count < MAX_TX_PER_PERIOD as u64 || now >= oldest + FAST_PERIODIC_MS
    }

    fn deadline(&self) -> u64 {
        let mut d = self.current_while.min(self.periodic);
        if self.mux == MuxState::Waiting {
            d = d.min(self.wait_while);
        }
        if self.ntt && self.period().is_some() {
            let rate = if self.may_send(0) {
                0
            } else {
                self.sent[self.sent_next] + FAST_PERIODIC_MS
            };
            d = d.min(rate);
        }
        d
    }
}

/// The receive timeout by the actor's own Timeout bit.
fn timeout(conf: &LacpConf) -> u64 {
    if conf.fast {
        SHORT_TIMEOUT_MS
    } else {
        LONG_TIMEOUT_MS
    }
}
