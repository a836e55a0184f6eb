//! `vrrp_sync_group`s in the runtime: after an instance changes state on
//! its own, its group's coordinator ([`SyncGroup`]) moves the other
//! members, and runs the group's notify scripts when they agree.

use crate::vrrp::{Action, Event, State, SyncGroup};

use super::{actions, Runtime};

/// Rounds of [`SyncGroup::settle`] at most (two suffice: FAULT spreads in
/// one, and a member put in FAULT stays there).
const MAX_SETTLE: usize = 4;

impl Runtime {
    /// The coordinators of the groups the instances belong to (those of
    /// groups still present keep their state).
    pub(super) fn refresh_groups(&mut self) {
        let mut groups: Vec<SyncGroup> = Vec::new();
        for s in &self.slots {
            let Some(g) = &s.run.group else { continue };
            if groups.iter().any(|x| x.name() == g.name) {
                continue;
            }
            let old = self.groups.iter().position(|x| x.name() == g.name);
            let sg = match old {
                Some(j) => self.groups.swap_remove(j),
                None => SyncGroup::new(&g.name, g.notify.clone()),
            };
            groups.push(sg);
        }
        self.groups = groups;
    }

    /// The slot indices of the members of the group of slot `i`.
    fn members(&self, i: usize) -> Option<(usize, Vec<usize>)> {
        let g = self.slots[i].run.group.as_ref()?;
        let gi = self.groups.iter().position(|x| x.name() == g.name)?;
        let members = g
            .members
            .iter()
            .filter_map(|m| self.slots.iter().position(|s| &s.run.vrrp.name == m))
            .collect();
        Some((gi, members))
    }

    fn member_states(&self, members: &[usize]) -> Vec<State> {
        members
            .iter()
            .map(|&m| self.slots[m].inst.state())
            .collect()
    }

    /// Moves the group of slot `i` after its own actions `out`.
    pub(super) fn follow_group(&mut self, i: usize, out: &[Action]) {
        let Some((gi, members)) = self.members(i) else {
            return;
        };
        let Some(me) = members.iter().position(|&m| m == i) else {
            return;
        };
        let mut moved = false;
        for a in out {
            if let Action::Transition { from, to } = *a {
                let states = self.member_states(&members);
                let cmds = self.groups[gi].on_transition(me, from, to, &states);
                self.apply(&members, &cmds);
                moved = true;
            }
        }
        let states = self.member_states(&members);
        let wants: Vec<bool> = members
            .iter()
            .map(|&m| self.slots[m].inst.wants_master())
            .collect();
        let cmds = self.groups[gi].ready(&states, &wants);
        if !moved && cmds.is_empty() {
            return;
        }
        self.apply(&members, &cmds);
        for _ in 0..MAX_SETTLE {
            let states = self.member_states(&members);
            let mut acts = Vec::new();
            let cmds = self.groups[gi].settle(&states, &mut acts);
            self.run_group_actions(i, &acts);
            if cmds.is_empty() {
                break;
            }
            self.apply(&members, &cmds);
        }
    }

    fn apply(&mut self, members: &[usize], cmds: &[(usize, State)]) {
        for &(m, to) in cmds {
            self.feed(members[m], Event::Sync { to });
        }
    }

    fn run_group_actions(&mut self, i: usize, acts: &[Action]) {
        let s = &self.slots[i];
        let target = actions::Target {
            instance: &s.run.vrrp.name,
            kni: &s.run.vrrp.interface,
            port: &s.run.port,
            sync: None,
        };
        for a in acts {
            self.exec.run(&target, a);
        }
    }
}
