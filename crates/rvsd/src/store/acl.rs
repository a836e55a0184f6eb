//! Allow/deny lists (`rvsadm --add-blklst -k`, `--add-whtlst -2`), global
//! or per service, and their place in the snapshot.
//!
//! A list rule names an address, a prefix or `ipset:NAME`. Rules of a
//! service go with it (`-D`, `-C`); the global lists go with `-C` too (the
//! whole table). Counters live in the rules and survive every change but
//! the rule's removal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rvs_api::{
    AclKind, AclListing, AclRejected, AclRule, AclRuleInfo, ApiError, ErrorKind, ServiceKey,
};
use rvs_core::acl::{AclError, AclErrorKind, Hits, IpSet, Lists, RuleList, Subject, Target};
use rvs_core::service::ServiceKey as CoreKey;

use super::{err, exists, invalid, not_found, Store};

/// Most rules of one list: beyond, addresses belong in an ipset.
pub(super) const LIST_MAX: usize = 65_536;

/// The API error for a core list/set error.
pub(super) fn api_err(e: AclError) -> ApiError {
    let kind = match e.kind {
        AclErrorKind::Invalid => ErrorKind::Invalid,
        AclErrorKind::Exists => ErrorKind::Exists,
        AclErrorKind::NotFound => ErrorKind::NotFound,
        AclErrorKind::Full => ErrorKind::Full,
    };
    err(kind, e.message)
}

/// A rule with its counter.
#[derive(Debug)]
pub(super) struct RuleEntry {
    pub(super) subject: Subject,
    pub(super) hits: Arc<Hits>,
}

/// A deny and an allow list.
#[derive(Debug)]
pub(super) struct ListsEntry {
    pub(super) deny: Vec<RuleEntry>,
    pub(super) allow: Vec<RuleEntry>,
    pub(super) rejected: Arc<Hits>,
}

impl ListsEntry {
    fn new(workers: usize) -> ListsEntry {
        ListsEntry {
            deny: Vec::new(),
            allow: Vec::new(),
            rejected: Arc::new(Hits::new(workers)),
        }
    }

    fn list(&self, k: AclKind) -> &Vec<RuleEntry> {
        match k {
            AclKind::Blklst => &self.deny,
            AclKind::Whtlst => &self.allow,
        }
    }

    fn list_mut(&mut self, k: AclKind) -> &mut Vec<RuleEntry> {
        match k {
            AclKind::Blklst => &mut self.deny,
            AclKind::Whtlst => &mut self.allow,
        }
    }

    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }

    fn uses(&self, set: &str) -> impl Iterator<Item = AclKind> + '_ {
        let name = set.to_string();
        [AclKind::Blklst, AclKind::Whtlst]
            .into_iter()
            .filter(move |k| {
                self.list(*k)
                    .iter()
                    .any(|r| matches!(&r.subject, Subject::Set(n) if *n == name))
            })
    }

    fn build(&self, sets: &BTreeMap<String, Arc<IpSet>>) -> Arc<Lists> {
        let rules = |v: &Vec<RuleEntry>| {
            RuleList::new(v.iter().filter_map(|r| {
                let t = match &r.subject {
                    Subject::Net { addr, plen } => Target::Net(*addr, *plen),
                    // A rule's set exists (destroy refuses a set in use).
                    Subject::Set(n) => Target::Set(sets.get(n)?.clone()),
                };
                Some((t, r.hits.clone()))
            }))
        };
        Arc::new(Lists {
            deny: rules(&self.deny),
            allow: rules(&self.allow),
            rejected: self.rejected.clone(),
        })
    }
}

/// The lists of a snapshot: the global ones, and per service id.
pub(super) type SnapLists = (Option<Arc<Lists>>, Vec<(u32, Arc<Lists>)>);

/// Lists and sets of the store.
#[derive(Debug)]
pub(super) struct AclStore {
    pub(super) global: ListsEntry,
    /// By service id.
    pub(super) per_svc: HashMap<u32, ListsEntry>,
    pub(super) sets: BTreeMap<String, Arc<IpSet>>,
}

impl AclStore {
    pub(super) fn new(workers: usize) -> AclStore {
        AclStore {
            global: ListsEntry::new(workers),
            per_svc: HashMap::new(),
            sets: BTreeMap::new(),
        }
    }

    /// Where set `name` is used, for messages ("blklst of TCP 10.0.0.1:80").
    pub(super) fn users(&self, name: &str, svc_name: impl Fn(u32) -> String) -> Vec<String> {
        let mut out: Vec<String> = self
            .global
            .uses(name)
            .map(|k| format!("the global {}", k.name()))
            .collect();
        let mut ids: Vec<&u32> = self.per_svc.keys().collect();
        ids.sort();
        for id in ids {
            if let Some(l) = self.per_svc.get(id) {
                out.extend(
                    l.uses(name)
                        .map(|k| format!("{} of {}", k.name(), svc_name(*id))),
                );
            }
        }
        out
    }
}

/// "for TCP 10.0.0.100:80" or "(global)".
fn scope(key: Option<&ServiceKey>) -> String {
    match key {
        Some(k) => format!("for {k}"),
        None => "(global)".to_string(),
    }
}

impl Store {
    /// The service id for a list key (`None` = global), checking the subject's family.
    fn acl_target(&self, rule: &AclRule, subject: &Subject) -> Result<Option<u32>, ApiError> {
        if let Subject::Set(n) = subject {
            if !self.acl.sets.contains_key(n) {
                return Err(not_found(format!("no such ipset {n}")));
            }
        }
        let Some(key) = &rule.key else {
            return Ok(None);
        };
        if matches!(key, ServiceKey::Match(_)) {
            return Err(invalid(format!(
                "{} rules take a -t/-u service (or none, for every service), not -H",
                rule.kind.name()
            )));
        }
        let i = self.svc_index(key, "No such service")?;
        let s = &self.services[i];
        let v4 = matches!(&s.key, CoreKey::Vs { vip, .. } if vip.is_v4());
        let set_v6 = match subject {
            Subject::Set(n) => self.acl.sets.get(n).map(|s| s.opts().v6),
            Subject::Net { .. } => None,
        };
        if subject.family_differs(v4) || set_v6.is_some_and(|v6| v6 == v4) {
            return Err(invalid(format!(
                "{} entry {subject} is not of the address family of {key}",
                rule.kind.name()
            )));
        }
        Ok(Some(s.id))
    }

    pub(super) fn add_acl(&mut self, rule: &AclRule) -> Result<(), ApiError> {
        let subject = Subject::parse(&rule.subject).map_err(api_err)?;
        let id = self.acl_target(rule, &subject)?;
        let workers = usize::from(self.workers);
        let lists = match id {
            None => &mut self.acl.global,
            Some(id) => self
                .acl
                .per_svc
                .entry(id)
                .or_insert_with(|| ListsEntry::new(workers)),
        };
        let list = lists.list_mut(rule.kind);
        if list.iter().any(|r| r.subject == subject) {
            return Err(exists(format!(
                "{} entry {subject} already exists {}",
                rule.kind.name(),
                scope(rule.key.as_ref())
            )));
        }
        if list.len() >= LIST_MAX {
            return Err(err(
                ErrorKind::Full,
                format!(
                    "{} {} has {LIST_MAX} entries; put more addresses in an ipset",
                    rule.kind.name(),
                    scope(rule.key.as_ref())
                ),
            ));
        }
        list.push(RuleEntry {
            subject,
            hits: Arc::new(Hits::new(workers)),
        });
        Ok(())
    }

    pub(super) fn del_acl(&mut self, rule: &AclRule) -> Result<(), ApiError> {
        let subject = Subject::parse(&rule.subject).map_err(api_err)?;
        let missing = || {
            not_found(format!(
                "no such {} entry {subject} {}",
                rule.kind.name(),
                scope(rule.key.as_ref())
            ))
        };
        let lists = match &rule.key {
            None => &mut self.acl.global,
            Some(key) => {
                let i = self.svc_index(key, "No such service")?;
                let id = self.services[i].id;
                self.acl.per_svc.get_mut(&id).ok_or_else(missing)?
            }
        };
        let list = lists.list_mut(rule.kind);
        let at = list
            .iter()
            .position(|r| r.subject == subject)
            .ok_or_else(missing)?;
        list.remove(at);
        Ok(())
    }

    /// Drops the lists of services that no longer exist, and with `global`
    /// the global lists too (`-C`).
    pub(super) fn prune_acl(&mut self, global: bool) {
        let live: Vec<u32> = self.services.iter().map(|s| s.id).collect();
        self.acl
            .per_svc
            .retain(|id, l| live.contains(id) && !l.is_empty());
        if global {
            self.acl.global = ListsEntry::new(usize::from(self.workers));
        }
    }

    /// The lists as the snapshot takes them: global, and per service id.
    pub(super) fn acl_lists(&self) -> SnapLists {
        let sets = &self.acl.sets;
        let global = (!self.acl.global.is_empty()).then(|| self.acl.global.build(sets));
        let per = self
            .acl
            .per_svc
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(id, l)| (*id, l.build(sets)))
            .collect();
        (global, per)
    }

    /// `--get-blklst` / `--get-whtlst`: every rule (global first, then by
    /// service), or one service's.
    pub fn list_acl(
        &self,
        kind: AclKind,
        key: Option<&ServiceKey>,
    ) -> Result<AclListing, ApiError> {
        let mut out = AclListing::default();
        let mut push = |key: Option<ServiceKey>, l: &ListsEntry| {
            for r in l.list(kind) {
                out.rules.push(AclRuleInfo {
                    rule: AclRule {
                        kind,
                        key: key.clone(),
                        subject: r.subject.to_string(),
                    },
                    hits: r.hits.sum(),
                });
            }
            if kind == AclKind::Whtlst && !l.allow.is_empty() {
                out.rejected.push(AclRejected {
                    key,
                    count: l.rejected.sum(),
                });
            }
        };
        if key.is_none() {
            push(None, &self.acl.global);
        }
        let svcs = match key {
            None => &self.services[..],
            Some(k) => {
                let i = self.svc_index(k, "No such service")?;
                &self.services[i..=i]
            }
        };
        for s in svcs {
            if let Some(l) = self.acl.per_svc.get(&s.id) {
                push(Some(s.spec.key.clone()), l);
            }
        }
        Ok(out)
    }
}
