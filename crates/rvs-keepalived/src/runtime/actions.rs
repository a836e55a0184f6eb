//! Carrying out the state machine's [`Action`]s: the VIPs in rvsd through
//! the control API, the local addresses active or standby, the sync daemon
//! ([`super::sync`]) on every transition, gratuitous ARP / unsolicited NA
//! on the kni device, the notify scripts.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};

use rvs_api::{Reply, Request};

use super::log;
use super::net;
use crate::vrrp::{Action, VirtualAddress};

/// Sends one request to rvsd (`RVS_SOCKET` or the default socket). The one
/// place this crate talks to rvsd for VRRP, so that moving the tools'
/// client into rvs-api changes only this function.
pub fn rvsd_call(req: &Request) -> Result<Reply, String> {
    let path = rvs_api::socket_path();
    let mut s = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|e| format!("cannot connect to rvsd at {path}: {e}"))?;
    let t = Some(std::time::Duration::from_secs(5));
    let _ = s.set_read_timeout(t);
    let _ = s.set_write_timeout(t);
    rvs_api::call(&mut s, req).map_err(|e| e.message)
}

/// What the actions of one instance need to know.
pub struct Target<'a> {
    /// The instance name (for logs).
    pub instance: &'a str,
    /// The kni device (announcements go out there).
    pub kni: &'a str,
    /// The rvs port the VIPs go on (`dpdk_interface`).
    pub port: &'a str,
    /// `lvs_sync_daemon`, when it follows this instance.
    pub sync: Option<&'a crate::conf::LvsSyncDaemon>,
}

/// Carries out the actions (sending adverts is the caller's: it owns the
/// sockets). Failures are logged; the protocol goes on.
pub struct Executor {
    children: Vec<Child>,
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// An executor with no script running.
    pub fn new() -> Executor {
        Executor {
            children: Vec::new(),
        }
    }

    /// Carries out one action other than `SendAdvert`.
    pub fn run(&mut self, t: &Target<'_>, a: &Action) {
        match a {
            Action::Transition { from, to } => {
                log::info(&format!("VRRP_Instance({}) {from} -> {to}", t.instance));
                if let Some(d) = t.sync {
                    super::sync::follow(t.instance, d, *to);
                }
            }
            Action::AddVips(v) => v.iter().for_each(|v| add_vip(t, v)),
            Action::RemoveVips(v) => v.iter().for_each(|v| del_vip(t, v)),
            Action::ActivateLaddrs(v) => set_standby(t, v, false),
            Action::StandbyLaddrs(v) => set_standby(t, v, true),
            Action::Announce { addresses, repeat } => announce(t, addresses, *repeat),
            Action::RunScript { script, args } => self.script(t, script, args),
            Action::SendAdvert { .. } => {}
        }
    }

    /// Reaps the scripts that have finished.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }

    fn script(&mut self, t: &Target<'_>, script: &str, args: &[String]) {
        let mut line = script.to_string();
        for a in args {
            line.push_str(" '");
            line.push_str(&a.replace('\'', "'\\''"));
            line.push('\'');
        }
        log::info(&format!("VRRP_Instance({}) running {line}", t.instance));
        match Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(c) => self.children.push(c),
            Err(e) => log::warn(&format!("cannot run {line}: {e}")),
        }
    }
}

fn add_vip(t: &Target<'_>, v: &VirtualAddress) {
    let dev = v.dev.clone().unwrap_or_else(|| t.port.to_string());
    let req = Request::AddAddr {
        addr: v.addr,
        plen: v.prefix_len,
        dev: dev.clone(),
        sapool: false,
    };
    match rvsd_call(&req) {
        Ok(Reply::Ok) => log::info(&format!(
            "VRRP_Instance({}) added {}/{} on {dev}",
            t.instance, v.addr, v.prefix_len
        )),
        Ok(Reply::Error(e)) if e.message.to_lowercase().contains("exist") => {
            log::debug(&format!("{} already on {dev}", v.addr))
        }
        Ok(r) => log::warn(&format!("adding {} on {dev}: rvsd answered {r:?}", v.addr)),
        Err(e) => log::warn(&format!("adding {} on {dev}: {e}", v.addr)),
    }
}

/// Local addresses standby (the backup's) or active (the master's).
fn set_standby(t: &Target<'_>, addrs: &[IpAddr], standby: bool) {
    let req = Request::SetAddrStandby {
        addrs: addrs.to_vec(),
        standby,
    };
    let what = if standby { "standby" } else { "active" };
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    match rvsd_call(&req) {
        Ok(Reply::Ok) => log::info(&format!(
            "VRRP_Instance({}) local addresses {} {what}",
            t.instance,
            list.join(" ")
        )),
        Ok(r) => log::warn(&format!(
            "setting local addresses {what}: rvsd answered {r:?}"
        )),
        Err(e) => log::warn(&format!("setting local addresses {what}: {e}")),
    }
}

fn del_vip(t: &Target<'_>, v: &VirtualAddress) {
    let dev = v.dev.clone().unwrap_or_else(|| t.port.to_string());
    let req = Request::DelAddr {
        addr: v.addr,
        dev: dev.clone(),
    };
    match rvsd_call(&req) {
        Ok(Reply::Ok) => log::info(&format!(
            "VRRP_Instance({}) removed {} from {dev}",
            t.instance, v.addr
        )),
        Ok(Reply::Error(e)) => {
            log::debug(&format!("removing {} from {dev}: {}", v.addr, e.message))
        }
        Ok(r) => log::warn(&format!(
            "removing {} from {dev}: rvsd answered {r:?}",
            v.addr
        )),
        Err(e) => log::warn(&format!("removing {} from {dev}: {e}", v.addr)),
    }
}

fn announce(t: &Target<'_>, addresses: &[IpAddr], repeat: u32) {
    let Some(info) = net::if_info(t.kni) else {
        return log::warn(&format!("cannot announce on {}: no such interface", t.kni));
    };
    let mut frames = Vec::new();
    for _ in 0..repeat {
        for a in addresses {
            frames.push(match a {
                IpAddr::V4(a) => net::garp_frame(info.mac, *a),
                IpAddr::V6(a) => net::unsolicited_na_frame(info.mac, *a),
            });
        }
    }
    match net::send_frames(t.kni, &frames) {
        Ok(()) => log::debug(&format!(
            "VRRP_Instance({}) sent {} announcements on {}",
            t.instance,
            frames.len(),
            t.kni
        )),
        Err(e) => log::warn(&format!("announcing on {}: {e}", t.kni)),
    }
}
