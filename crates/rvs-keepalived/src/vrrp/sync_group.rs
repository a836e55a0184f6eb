//! `vrrp_sync_group`: instances that change state together, sans-IO.
//!
//! As keepalived: when a member goes to FAULT, every member goes to FAULT
//! (and stays there until no member has a fault of its own); when a member
//! leaves MASTER for BACKUP, the members still master become backups; when
//! a member becomes MASTER, the members that are backups become masters
//! too. A member can become master only when none is in FAULT (they would
//! all be), so the group is master only when all its members can be.
//!
//! The coordinator holds no instance: the runtime tells it each member's
//! transition that the member made on its own (not one the group caused),
//! with every member's state, and feeds back the [`Event::Sync`]s it
//! returns; then calls [`SyncGroup::settle`] until it returns nothing.
//! When all members agree on a state, the group's `notify_*` scripts run.
//!
//! [`Event::Sync`]: super::Event::Sync

use super::config::NotifyScripts;
use super::events::{Action, State};

/// One `vrrp_sync_group`.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    name: String,
    notify: NotifyScripts,
    state: State,
}

/// A command to a member: feed it `Event::Sync { to }`.
pub type Command = (usize, State);

impl SyncGroup {
    /// A group named `name` with its notify scripts, state INIT.
    pub fn new(name: &str, notify: NotifyScripts) -> SyncGroup {
        SyncGroup {
            name: name.to_string(),
            notify,
            state: State::Init,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state all members last agreed on (INIT before).
    pub fn state(&self) -> State {
        self.state
    }

    /// Member `member` went from `from` to `to` on its own; `states` are
    /// all members' states now (indexed as `member`). The commands for the
    /// others.
    pub fn on_transition(
        &self,
        member: usize,
        from: State,
        to: State,
        states: &[State],
    ) -> Vec<Command> {
        let others = |want: &dyn Fn(State) -> bool, go: State| -> Vec<Command> {
            let all = states.iter().enumerate();
            all.filter(|&(i, &s)| i != member && want(s))
                .map(|(i, _)| (i, go))
                .collect()
        };
        match (from, to) {
            (_, State::Fault) => others(&|s| s != State::Fault, State::Fault),
            // Out of FAULT: release the members the group held there (those
            // with a fault of their own stay, and settle puts it back).
            (State::Fault, State::Backup) => others(&|s| s == State::Fault, State::Backup),
            (State::Master, State::Backup) => others(&|s| s == State::Master, State::Backup),
            (_, State::Master) => others(&|s| s == State::Backup, State::Master),
            _ => Vec::new(),
        }
    }

    /// Whether the group can go master: when every member is MASTER or
    /// wants to be (`wants`, [`wants_master`]), and one wants, the commands
    /// that make the waiting ones masters.
    ///
    /// [`wants_master`]: super::Instance::wants_master
    pub fn ready(&self, states: &[State], wants: &[bool]) -> Vec<Command> {
        let can = states
            .iter()
            .zip(wants)
            .all(|(&s, &w)| s == State::Master || w);
        if !can || !wants.contains(&true) {
            return Vec::new();
        }
        (0..wants.len())
            .filter(|&i| wants[i])
            .map(|i| (i, State::Master))
            .collect()
    }

    /// After the commands were carried out: a member still in FAULT holds
    /// the others there (commands returned); otherwise, when all members
    /// agree on a new state, the group's notify scripts go to `out`.
    pub fn settle(&mut self, states: &[State], out: &mut Vec<Action>) -> Vec<Command> {
        if states.contains(&State::Fault) {
            let cmds: Vec<Command> = (0..states.len())
                .filter(|&i| states[i] != State::Fault)
                .map(|i| (i, State::Fault))
                .collect();
            if !cmds.is_empty() {
                return cmds;
            }
        }
        let Some(&first) = states.first() else {
            return Vec::new();
        };
        if states.iter().all(|&s| s == first) && first != self.state {
            self.state = first;
            self.notify(first, out);
        }
        Vec::new()
    }

    fn notify(&self, state: State, out: &mut Vec<Action>) {
        let n = &self.notify;
        let script = match state {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Init => &n.stop,
        };
        if let Some(s) = script {
            out.push(Action::RunScript {
                script: s.clone(),
                args: Vec::new(),
            });
        }
        if let Some(s) = &n.any {
            let name = if state == State::Init {
                "STOP"
            } else {
                state.name()
            };
            let args = ["GROUP", &self.name, name, "0"];
            out.push(Action::RunScript {
                script: s.clone(),
                args: args.iter().map(|a| a.to_string()).collect(),
            });
        }
    }
}
