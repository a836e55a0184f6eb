//! The VRRP state machine of one `vrrp_instance` (RFC 5798 section 6.4,
//! RFC 3768 section 6.4), sans-IO: events in ([`Event`]), actions out
//! ([`Action`]), time passed in by the caller.
//!
//! Timers (milliseconds, truncated):
//! - Skew_Time = ((256 - Priority) × Master_Adver_Interval) / 256; VRRPv2
//!   uses one second for the interval (RFC 3768: (256 - Priority) / 256 s),
//!   VRRPv3 the interval the master advertises.
//! - Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.
//!
//! Where RFC 5798 leaves room, keepalived's behaviour is followed, so that a
//! pair made of rvs-keepalived and stock keepalived behaves like two stock
//! ones:
//! - `state MASTER` makes an instance master at start-up only with priority
//!   255; otherwise it starts as backup and the priorities decide.
//! - A master that hears a lower-priority advert answers at once with its own
//!   and re-announces its addresses (unless `lower_prio_no_advert`), which
//!   ends a split brain within one round trip.
//! - `preempt_delay`: a preempting backup keeps accepting a lower-priority
//!   master for that long after first hearing it, then preempts.
//! - A master that enters FAULT sends a priority-0 advert first.
//! - Start-up removes the virtual addresses (a previous run may have left
//!   them in rvsd).
//! - VRRPv2 adverts with another interval are discarded; the TTL is checked
//!   for multicast only (unicast may cross routers with `unicast_ttl`).

use std::net::IpAddr;

use super::config::{ConfError, InitialState, InstanceConf, Tracked, PRIORITY_OWNER};
use super::events::{Action, Event, State, Stats};
use super::packet::{
    Advert, AdvertRepr, ChecksumMode, Expect, Family, IpMeta, PacketError, Version,
};

/// Skew_Time in ms for `priority` (RFC 5798 6.1; for VRRPv2, RFC 3768 6.1).
pub fn skew_ms(version: Version, priority: u8, master_adver_int_cs: u16) -> u64 {
    let p = 256 - priority as u64;
    match version {
        Version::V2 => p * 1000 / 256,
        Version::V3 => p * master_adver_int_cs as u64 * 10 / 256,
    }
}

/// Master_Down_Interval in ms: 3 × Master_Adver_Interval + Skew_Time.
pub fn master_down_interval_ms(version: Version, priority: u8, master_adver_int_cs: u16) -> u64 {
    3 * master_adver_int_cs as u64 * 10 + skew_ms(version, priority, master_adver_int_cs)
}

/// Whether a tracked object puts the instance in FAULT, and what it adds to
/// the priority, given whether it is up.
fn tracker_effect(t: &Tracked, up: bool) -> (bool, i32) {
    let up = up != t.reverse;
    match t.weight {
        0 => (!up, 0),
        w if w > 0 => (false, if up { w } else { 0 }),
        w => (false, if up { 0 } else { w }),
    }
}

/// One VRRP instance.
#[derive(Clone, Debug)]
pub struct Instance {
    conf: InstanceConf,
    state: State,
    priority: u8,
    master_adver_int_cs: u16,
    adver_at: Option<u64>,
    down_at: Option<u64>,
    garp_at: Option<(u64, u32)>,
    refresh_at: Option<u64>,
    preempt_until: Option<u64>,
    link_up: bool,
    track_if_up: Vec<bool>,
    track_script_ok: Vec<bool>,
    sync_fault: bool,
    sync_hold: bool,
    wants_master: bool,
    checksum_mode: ChecksumMode,
    master: Option<(IpAddr, u8)>,
    stats: Stats,
}

impl Instance {
    /// A stopped instance (state INIT) for a valid configuration. Its
    /// interface and tracked interfaces are taken as up, and its tracked
    /// scripts as succeeding (unless `init_fail`), until told otherwise.
    pub fn new(conf: InstanceConf) -> Result<Self, ConfError> {
        conf.validate()?;
        let mut i = Instance {
            state: State::Init,
            priority: conf.priority,
            master_adver_int_cs: conf.interval_cs,
            adver_at: None,
            down_at: None,
            garp_at: None,
            refresh_at: None,
            preempt_until: None,
            link_up: true,
            track_if_up: vec![true; conf.track_interfaces.len()],
            track_script_ok: conf.track_scripts.iter().map(|t| !t.init_fail).collect(),
            sync_fault: false,
            sync_hold: false,
            wants_master: false,
            checksum_mode: conf.checksum_mode,
            master: None,
            stats: Stats::default(),
            conf,
        };
        i.priority = i.evaluate().1;
        Ok(i)
    }

    /// The configuration.
    pub fn conf(&self) -> &InstanceConf {
        &self.conf
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority (configured priority plus tracking weights).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Master_Adver_Interval in centiseconds: the interval of the master we
    /// follow (VRRPv3), otherwise ours.
    pub fn master_adver_int_cs(&self) -> u16 {
        self.master_adver_int_cs
    }

    /// Skew_Time now, in ms.
    pub fn skew_ms(&self) -> u64 {
        skew_ms(
            self.conf.version,
            self.skew_priority(),
            self.master_adver_int_cs,
        )
    }

    /// Master_Down_Interval now, in ms.
    pub fn master_down_interval_ms(&self) -> u64 {
        let (v, p) = (self.conf.version, self.skew_priority());
        master_down_interval_ms(v, p, self.master_adver_int_cs)
    }

    /// The address and priority of the last master a backup accepted.
    pub fn current_master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The VRRPv3 IPv4 checksum flavour in use (it changes to keepalived
    /// ≤ 1.3.6's when a unicast peer is seen to use it).
    pub fn checksum_mode(&self) -> ChecksumMode {
        self.checksum_mode
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Makes it a `vrrp_sync_group` member: when its Master_Down_Timer
    /// expires it does not become master but [`wants_master`] until its
    /// group sends [`Event::Sync`] to MASTER (or a master is heard again).
    ///
    /// [`wants_master`]: Instance::wants_master
    pub fn set_sync_hold(&mut self, hold: bool) {
        self.sync_hold = hold;
    }

    /// Whether it is a held backup whose Master_Down_Timer expired.
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// When [`Event::Timeout`] is next due (ms), if a timer runs.
    pub fn next_timeout(&self) -> Option<u64> {
        [
            self.adver_at,
            self.down_at,
            self.garp_at.map(|g| g.0),
            self.refresh_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one event at time `now` (ms); the resulting actions are pushed
    /// to `out` in the order they are to be carried out.
    pub fn handle(&mut self, now: u64, event: Event<'_>, out: &mut Vec<Action>) {
        match event {
            Event::Startup => self.startup(now, out),
            Event::Advert { meta, payload } => self.receive(now, meta, payload, out),
            Event::Timeout => self.timeout(now, out),
            Event::Link { ifname, up } => self.link(now, ifname, up, out),
            Event::Script { name, ok } => self.script(now, name, ok, out),
            Event::Shutdown => self.shutdown(out),
            Event::Sync { to } => self.sync(now, to, out),
        }
    }

    fn skew_priority(&self) -> u8 {
        if self.conf.priority == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            self.priority
        }
    }

    fn interval_ms(&self) -> u64 {
        self.conf.interval_cs as u64 * 10
    }

    fn is_owner_master(&self) -> bool {
        self.conf.priority == PRIORITY_OWNER && self.conf.initial_state == InitialState::Master
    }

    /// Whether a tracked object is failed (weight 0), and the priority.
    fn evaluate(&self) -> (bool, u8) {
        let ifs = self.conf.track_interfaces.iter().zip(&self.track_if_up);
        let scripts = self.conf.track_scripts.iter().zip(&self.track_script_ok);
        let mut fault = !self.link_up || self.sync_fault;
        let mut delta = 0i32;
        for (t, &up) in ifs.chain(scripts) {
            let (f, d) = tracker_effect(t, up);
            fault |= f;
            delta += d;
        }
        let prio = if self.conf.priority == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            (self.conf.priority as i32 + delta).clamp(1, 254) as u8
        };
        (fault, prio)
    }

    fn startup(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state != State::Init {
            return;
        }
        self.master_adver_int_cs = self.conf.interval_cs;
        let (fault, prio) = self.evaluate();
        self.priority = prio;
        if fault {
            self.enter_fault(out);
        } else if self.is_owner_master() {
            self.become_master(now, out);
        } else {
            self.become_backup(now, out);
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        let from = self.state;
        if from == State::Init {
            return;
        }
        self.set_state(State::Init, out);
        if from == State::Master {
            self.send_adverts(0, out);
            self.release_vips(out);
        }
        self.stop_timers();
        self.notify(State::Init, out);
    }

    fn timeout(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| t <= now) => {
                if self.sync_hold {
                    self.down_at = None;
                    self.wants_master = true;
                } else {
                    self.become_master(now, out);
                }
            }
            State::Master => {
                if self.adver_at.is_some_and(|t| t <= now) {
                    self.send_adverts(self.priority, out);
                    self.adver_at = Some(now + self.interval_ms());
                }
                if let Some((_, repeat)) = self.garp_at.filter(|g| g.0 <= now) {
                    self.announce(repeat, out);
                    self.garp_at = None;
                }
                if self.refresh_at.is_some_and(|t| t <= now) {
                    self.announce(self.conf.garp.refresh_repeat, out);
                    self.refresh_at = Some(now + self.conf.garp.refresh_ms);
                }
            }
            _ => {}
        }
    }

    fn link(&mut self, now: u64, ifname: &str, up: bool, out: &mut Vec<Action>) {
        if ifname == self.conf.interface {
            self.link_up = up;
        }
        for (t, s) in self.conf.track_interfaces.iter().zip(&mut self.track_if_up) {
            if t.name == ifname {
                *s = up;
            }
        }
        self.reevaluate(now, out);
    }

    fn script(&mut self, now: u64, name: &str, ok: bool, out: &mut Vec<Action>) {
        for (t, s) in self
            .conf
            .track_scripts
            .iter()
            .zip(&mut self.track_script_ok)
        {
            if t.name == name {
                *s = ok;
            }
        }
        self.reevaluate(now, out);
    }

    /// Follows the sync group (see [`Event::Sync`]).
    fn sync(&mut self, now: u64, to: State, out: &mut Vec<Action>) {
        self.sync_fault = to == State::Fault;
        self.reevaluate(now, out);
        match (self.state, to) {
            (State::Master, State::Backup) => self.become_backup(now, out),
            (State::Backup, State::Master) => self.become_master(now, out),
            _ => {}
        }
    }

    /// Applies a tracking change: FAULT in or out, or a new priority (used
    /// from the next advert or timer on).
    fn reevaluate(&mut self, now: u64, out: &mut Vec<Action>) {
        let (fault, prio) = self.evaluate();
        self.priority = prio;
        match (self.state, fault) {
            (State::Init, _) => {}
            (State::Fault, false) => {
                self.master_adver_int_cs = self.conf.interval_cs;
                if self.is_owner_master() {
                    self.become_master(now, out);
                } else {
                    self.become_backup(now, out);
                }
            }
            (State::Backup | State::Master, true) => self.enter_fault(out),
            _ => {}
        }
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Action>) {
        self.wants_master = false;
        let from = self.state;
        self.state = to;
        out.push(Action::Transition { from, to });
    }

    fn stop_timers(&mut self) {
        self.adver_at = None;
        self.down_at = None;
        self.garp_at = None;
        self.refresh_at = None;
        self.preempt_until = None;
    }

    fn become_master(&mut self, now: u64, out: &mut Vec<Action>) {
        self.set_state(State::Master, out);
        self.stop_timers();
        self.master = None;
        self.master_adver_int_cs = self.conf.interval_cs;
        // The advert first: the old master must drop the addresses before
        // our announcements reach the switches (keepalived's order).
        self.send_adverts(self.priority, out);
        self.adver_at = Some(now + self.interval_ms());
        out.push(Action::AddVips(self.conf.virtual_addresses.clone()));
        if !self.conf.owned_addresses.is_empty() {
            out.push(Action::ActivateLaddrs(self.conf.owned_addresses.clone()));
        }
        let g = self.conf.garp;
        self.announce(g.master_repeat, out);
        if g.master_delay_ms > 0 {
            self.garp_at = Some((now + g.master_delay_ms, g.master_repeat));
        }
        if g.refresh_ms > 0 {
            self.refresh_at = Some(now + g.master_delay_ms + g.refresh_ms);
        }
        self.stats.became_master += 1;
        self.notify(State::Master, out);
    }

    /// To BACKUP, with the Master_Down_Timer from the current
    /// Master_Adver_Interval.
    fn become_backup(&mut self, now: u64, out: &mut Vec<Action>) {
        let from = self.state;
        self.set_state(State::Backup, out);
        match from {
            State::Master => self.release_vips(out),
            State::Init => self.drop_addresses(out),
            _ => {}
        }
        self.stop_timers();
        self.down_at = Some(now + self.master_down_interval_ms());
        self.notify(State::Backup, out);
    }

    fn enter_fault(&mut self, out: &mut Vec<Action>) {
        let from = self.state;
        self.set_state(State::Fault, out);
        match from {
            State::Master => {
                self.send_adverts(0, out);
                self.release_vips(out);
            }
            State::Init => self.drop_addresses(out),
            _ => {}
        }
        self.stop_timers();
        self.master = None;
        self.notify(State::Fault, out);
    }

    fn release_vips(&mut self, out: &mut Vec<Action>) {
        self.drop_addresses(out);
        self.stats.released_master += 1;
    }

    /// The VIPs removed and the local addresses made standby.
    fn drop_addresses(&self, out: &mut Vec<Action>) {
        out.push(Action::RemoveVips(self.conf.virtual_addresses.clone()));
        if !self.conf.owned_addresses.is_empty() {
            out.push(Action::StandbyLaddrs(self.conf.owned_addresses.clone()));
        }
    }

    fn announce(&self, repeat: u32, out: &mut Vec<Action>) {
        let c = &self.conf;
        if repeat == 0 || (c.virtual_addresses.is_empty() && c.owned_addresses.is_empty()) {
            return;
        }
        let vips = c.virtual_addresses.iter().map(|v| v.addr);
        let mut addresses: Vec<IpAddr> = vips.collect();
        for a in &c.owned_addresses {
            if !addresses.contains(a) {
                addresses.push(*a);
            }
        }
        out.push(Action::Announce { addresses, repeat });
    }

    /// Sends an advert with `priority` to the group or to every peer.
    fn send_adverts(&mut self, priority: u8, out: &mut Vec<Action>) {
        let c = &self.conf;
        let repr = AdvertRepr {
            version: c.version,
            vrid: c.vrid,
            priority,
            interval_cs: c.interval_cs,
            auth: c.auth,
            addresses: c.virtual_addresses.iter().map(|v| v.addr).collect(),
        };
        let group = [c.family().multicast_group()];
        let dsts = if c.is_unicast() {
            &c.unicast_peers[..]
        } else {
            &group[..]
        };
        for &dst in dsts {
            // The configuration was validated, so encoding cannot fail.
            let Ok(payload) = repr.to_bytes(c.src, dst, self.checksum_mode) else {
                continue;
            };
            out.push(Action::SendAdvert {
                src: c.src,
                dst,
                priority,
                payload,
            });
            self.stats.adverts_sent += 1;
            if priority == 0 {
                self.stats.priority_zero_sent += 1;
            }
        }
    }

    fn notify(&self, state: State, out: &mut Vec<Action>) {
        let n = &self.conf.notify;
        let (script, name) = match state {
            State::Master => (&n.master, "MASTER"),
            State::Backup => (&n.backup, "BACKUP"),
            State::Fault => (&n.fault, "FAULT"),
            State::Init => (&n.stop, "STOP"),
        };
        if let Some(s) = script {
            out.push(Action::RunScript {
                script: s.clone(),
                args: Vec::new(),
            });
        }
        if let Some(s) = &n.any {
            let args = [
                "INSTANCE",
                &self.conf.name,
                name,
                &self.priority.to_string(),
            ];
            out.push(Action::RunScript {
                script: s.clone(),
                args: args.iter().map(|a| a.to_string()).collect(),
            });
        }
    }

    fn receive(&mut self, now: u64, meta: IpMeta, payload: &[u8], out: &mut Vec<Action>) {
        if !matches!(self.state, State::Backup | State::Master) {
            self.stats.drops.not_running += 1;
            return;
        }
        let (prio, interval) = match self.validate(meta, payload) {
            Ok(v) => v,
            Err(Some(e)) => return self.stats.drops.count(&e),
            Err(None) => return,
        };
        self.stats.adverts_received += 1;
        if prio == 0 {
            self.stats.priority_zero_received += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(now, meta.src, prio, interval),
            _ => self.master_rx(now, meta.src, prio, interval, out),
        }
    }

    /// The receiver checks of RFC 5798 7.1; returns priority and interval,
    /// or the error to count (`None`: already counted).
    fn validate(&mut self, meta: IpMeta, payload: &[u8]) -> Result<(u8, u16), Option<PacketError>> {
        let family = self.conf.family();
        let advert = Advert::new_checked(payload, family)?;
        let d = &mut self.stats.drops;
        if advert.vrid() != self.conf.vrid {
            d.wrong_vrid += 1;
            return Err(None);
        }
        if Family::of(meta.src) != family || Family::of(meta.dst) != family {
            return Err(Some(PacketError::FamilyMismatch));
        }
        if meta.src == self.conf.src {
            d.own_advert += 1;
            return Err(None);
        }
        if meta.dst.is_multicast() == self.conf.is_unicast() {
            d.cast_mismatch += 1;
            return Err(None);
        }
        self.verify_checksum(&advert, meta)?;
        let expect = Expect {
            version: self.conf.version,
            auth: self.conf.auth,
            interval_cs: self.conf.interval_cs,
            check_ttl: !self.conf.is_unicast(),
        };
        advert.check(meta.ttl, &expect)?;
        let count = self.conf.virtual_addresses.len().min(255) as u8;
        if advert.check_address_count(count).is_err() {
            self.stats.address_list_errors += 1;
        }
        Ok((advert.priority(), advert.interval_cs()))
    }

    /// Verifies the checksum; a VRRPv3 IPv4 unicast advert that only
    /// verifies with keepalived ≤ 1.3.6's pseudo-header switches us to it,
    /// as keepalived does.
    fn verify_checksum(&mut self, advert: &Advert<&[u8]>, meta: IpMeta) -> Result<(), PacketError> {
        let e = match advert.verify_checksum(meta.src, meta.dst, self.checksum_mode) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let old = ChecksumMode::V3MulticastPseudoDst;
        let may_be_old = self.conf.version == Version::V3
            && self.conf.family() == Family::V4
            && self.conf.is_unicast()
            && self.checksum_mode == ChecksumMode::Rfc;
        if may_be_old && advert.verify_checksum(meta.src, meta.dst, old).is_ok() {
            self.checksum_mode = old;
            self.stats.old_checksum_detected += 1;
            return Ok(());
        }
        Err(e)
    }

    /// RFC 5798 6.4.2, an ADVERTISEMENT in BACKUP.
    fn backup_rx(&mut self, now: u64, src: IpAddr, prio: u8, interval_cs: u16) {
        if prio == 0 {
            self.wants_master = false;
            self.down_at = Some(now + self.skew_ms());
            return;
        }
        let delaying = self.conf.preempt_delay_ms > 0 && self.preempt_until.is_none_or(|t| t > now);
        if !self.conf.preempt || prio >= self.priority || delaying {
            if self.conf.version == Version::V3 {
                self.master_adver_int_cs = interval_cs;
            }
            self.wants_master = false;
            self.down_at = Some(now + self.master_down_interval_ms());
            self.master = Some((src, prio));
            if self.conf.preempt_delay_ms > 0 {
                if prio >= self.priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.conf.preempt_delay_ms);
                }
            }
        } else {
            self.stats.lower_priority_ignored += 1;
        }
    }

    /// RFC 5798 6.4.3, an ADVERTISEMENT in MASTER.
    fn master_rx(
        &mut self,
        now: u64,
        src: IpAddr,
        prio: u8,
        interval_cs: u16,
        out: &mut Vec<Action>,
    ) {
        if prio == 0 {
            self.send_adverts(self.priority, out);
            self.adver_at = Some(now + self.interval_ms());
            return;
        }
        if prio > self.priority || (prio == self.priority && src > self.conf.src) {
            if self.conf.version == Version::V3 {
                self.master_adver_int_cs = interval_cs;
            }
            self.become_backup(now, out);
            self.master = Some((src, prio));
            return;
        }
        // A lower priority (or equal with a lower address): keepalived
        // answers at once so that the other side steps down now.
        if !self.conf.lower_prio_no_advert {
            self.send_adverts(self.priority, out);
        }
        let g = self.conf.garp;
        self.announce(g.lower_prio_repeat, out);
        if g.lower_prio_repeat > 0 && g.lower_prio_delay_ms > 0 {
            self.garp_at = Some((now + g.lower_prio_delay_ms, g.lower_prio_repeat));
        }
    }
}
