//! Named sets (`rvsip ipset`, DPVS's `dpip ipset`): create, destroy, add,
//! del, flush, list, test.
//!
//! A set is immutable once published: a change clones it, applies every
//! entry of the request (all or none) and replaces it, so a worker reading
//! the previous snapshot never sees a half-changed set. The clone costs
//! time linear in the set's size: load large sets in batches (`rvsip ipset
//! restore` sends thousands of entries per request).

use std::sync::Arc;

use rvs_api::{ApiError, Family, IpsetEntry, IpsetInfo, IpsetMember, IpsetSpec};
use rvs_core::acl::set::{DEFAULT_HASHSIZE, DEFAULT_MAXELEM};
use rvs_core::acl::{parse_entry, parse_probe, Hits, IpSet, Member, SetKind, SetOpts};

use super::acl::api_err;
use super::{exists, invalid, not_found, Store};

/// Sort order of a listing: longer prefixes first (the order a lookup
/// decides in), then by address, protocol and port.
fn order(m: &Member) -> (u8, Member) {
    match m {
        Member::Net { plen, .. } => (u8::MAX - plen, *m),
        Member::IpPort { .. } => (0, *m),
    }
}

impl Store {
    fn set(&self, name: &str) -> Result<&Arc<IpSet>, ApiError> {
        self.acl
            .sets
            .get(name)
            .ok_or_else(|| not_found(format!("no such ipset {name}")))
    }

    pub(super) fn ipset_create(&mut self, spec: &IpsetSpec) -> Result<(), ApiError> {
        let kind: SetKind = spec.kind.parse().map_err(api_err)?;
        if self.acl.sets.contains_key(&spec.name) {
            return Err(exists(format!("ipset {} already exists", spec.name)));
        }
        if spec.hashsize == Some(0) {
            return Err(invalid(format!(
                "hashsize of ipset {} must be at least 1",
                spec.name
            )));
        }
        let opts = SetOpts {
            v6: spec.family == Family::Inet6,
            hashsize: spec.hashsize.unwrap_or(DEFAULT_HASHSIZE),
            maxelem: spec.maxelem.unwrap_or(DEFAULT_MAXELEM),
            comment: spec.comment,
        };
        let hits = Arc::new(Hits::new(usize::from(self.workers)));
        let set = IpSet::new(&spec.name, kind, opts, hits).map_err(api_err)?;
        self.acl.sets.insert(spec.name.clone(), Arc::new(set));
        Ok(())
    }

    pub(super) fn ipset_destroy(&mut self, name: &str) -> Result<(), ApiError> {
        self.set(name)?;
        let users = self.acl.users(name, |id| self.svc_name(id));
        if !users.is_empty() {
            return Err(invalid(format!(
                "ipset {name} is in use by {}; delete those rules first",
                users.join(", ")
            )));
        }
        self.acl.sets.remove(name);
        Ok(())
    }

    fn svc_name(&self, id: u32) -> String {
        self.services
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| format!("service {id}"), |s| s.spec.key.to_string())
    }

    /// Applies `f` to a copy of set `name` and publishes the copy; on error
    /// the set stays as it was.
    fn change_set(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut IpSet) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let mut copy = IpSet::clone(&**self.set(name)?);
        f(&mut copy)?;
        copy.finish();
        self.acl.sets.insert(name.to_string(), Arc::new(copy));
        Ok(())
    }

    pub(super) fn ipset_add(
        &mut self,
        name: &str,
        entries: &[IpsetEntry],
        force: bool,
    ) -> Result<(), ApiError> {
        self.change_set(name, |s| {
            for e in entries {
                let m = parse_entry(s.kind(), s.opts().v6, &e.entry).map_err(api_err)?;
                s.add(&m, e.nomatch, e.comment.as_deref(), force)
                    .map_err(api_err)?;
            }
            Ok(())
        })
    }

    pub(super) fn ipset_del(
        &mut self,
        name: &str,
        entries: &[String],
        force: bool,
    ) -> Result<(), ApiError> {
        self.change_set(name, |s| {
            for e in entries {
                let m = parse_entry(s.kind(), s.opts().v6, e).map_err(api_err)?;
                s.del(&m, force).map_err(api_err)?;
            }
            Ok(())
        })
    }

    pub(super) fn ipset_flush(&mut self, name: Option<&str>) -> Result<(), ApiError> {
        let names: Vec<String> = match name {
            Some(n) => {
                self.set(n)?;
                vec![n.to_string()]
            }
            None => self.acl.sets.keys().cloned().collect(),
        };
        for n in names {
            self.change_set(&n, |s| {
                s.flush();
                Ok(())
            })?;
        }
        Ok(())
    }

    /// `rvsip ipset list [NAME]`: sets in name order, members sorted when asked for.
    pub fn ipset_list(
        &self,
        name: Option<&str>,
        members: bool,
    ) -> Result<Vec<IpsetInfo>, ApiError> {
        let sets: Vec<&Arc<IpSet>> = match name {
            Some(n) => vec![self.set(n)?],
            None => self.acl.sets.values().collect(),
        };
        Ok(sets
            .into_iter()
            .map(|s| self.ipset_info(s, members))
            .collect())
    }

    fn ipset_info(&self, s: &IpSet, members: bool) -> IpsetInfo {
        let o = s.opts();
        let mut list = Vec::new();
        if members {
            let mut all: Vec<(Member, bool, Option<&str>)> = s.members().collect();
            all.sort_by_key(|(m, _, _)| order(m));
            list = all
                .into_iter()
                .map(|(m, nomatch, c)| IpsetMember {
                    entry: m.display(s.kind()),
                    nomatch,
                    comment: c.map(str::to_string),
                })
                .collect();
        }
        IpsetInfo {
            spec: IpsetSpec {
                name: s.name().to_string(),
                kind: s.kind().name().to_string(),
                family: if o.v6 { Family::Inet6 } else { Family::Inet },
                hashsize: Some(o.hashsize),
                maxelem: Some(o.maxelem),
                comment: o.comment,
            },
            size: s.memory_bytes() as u64,
            references: self.acl.users(s.name(), |id| self.svc_name(id)).len() as u32,
            entries: s.len() as u64,
            hits: s.hits().sum(),
            members: list,
        }
    }

    /// `rvsip ipset test NAME ENTRY`.
    pub fn ipset_test(&self, name: &str, entry: &str) -> Result<bool, ApiError> {
        let s = self.set(name)?;
        let probe = parse_probe(s.kind(), s.opts().v6, entry).map_err(api_err)?;
        Ok(s.test(&probe))
    }
}
