//! [`IpSet`]: a named set of addresses, prefixes or address/port pairs
//! (`dpip ipset`), immutable once published in a snapshot.
//!
//! The control plane changes a set by cloning it, applying a batch of adds
//! or deletes and calling [`IpSet::finish`]; the workers only call
//! [`IpSet::matches`], which neither allocates nor locks.

use std::collections::HashSet;
use std::sync::Arc;

use super::entry::{width, Member, SetKind};
use super::net::NetTable;
use super::{AclError, AclErrorKind, Hits};
use crate::addr::Addr;
use crate::hash::{FastBuildHasher, FastMap};

/// Value of a matching `hash:net`/`hash:ip` entry.
const MATCH: u32 = 0;
/// Value of a `nomatch` (exception) entry.
const NOMATCH: u32 = 1;

/// DPVS's and the kernel's default `maxelem`.
pub const DEFAULT_MAXELEM: u32 = 65_536;
/// DPVS's default `hashsize` (shown; rvs sizes its tables itself).
pub const DEFAULT_HASHSIZE: u32 = 1024;

/// Options given at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetOpts {
    /// IPv6 (`family inet6`, dpip's `-6`); IPv4 otherwise.
    pub v6: bool,
    /// `hashsize`: kept and shown; tables grow as needed.
    pub hashsize: u32,
    /// `maxelem`: most members the set takes.
    pub maxelem: u32,
    /// `comment`: members may carry a comment.
    pub comment: bool,
}

impl Default for SetOpts {
    fn default() -> Self {
        SetOpts {
            v6: false,
            hashsize: DEFAULT_HASHSIZE,
            maxelem: DEFAULT_MAXELEM,
            comment: false,
        }
    }
}

/// A named set.
#[derive(Clone, Debug)]
pub struct IpSet {
    name: String,
    kind: SetKind,
    opts: SetOpts,
    /// `hash:ip` and `hash:net` members ([`MATCH`] or [`NOMATCH`]).
    nets: NetTable,
    /// `hash:ip,port` members.
    ports: HashSet<(Addr, u8, u16), FastBuildHasher>,
    /// `hash:ip,port` members without a protocol.
    any_proto: usize,
    comments: FastMap<Member, Box<str>>,
    hits: Arc<Hits>,
}

/// Longest set name (DPVS's `IPSET_MAXNAMELEN` less its NUL).
pub const NAME_MAX: usize = 31;

/// Checks a set name: 1 to [`NAME_MAX`] letters, digits, `-`, `_` or `.`.
pub fn check_name(name: &str) -> Result<(), AclError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AclError::invalid(format!(
            "invalid ipset name '{name}' (1 to {NAME_MAX} letters, digits, '-', '_' or '.')"
        )))
    }
}

impl IpSet {
    /// An empty set; `hits` counts the connections it matched (kept across
    /// the set's versions by the control plane).
    pub fn new(
        name: &str,
        kind: SetKind,
        opts: SetOpts,
        hits: Arc<Hits>,
    ) -> Result<IpSet, AclError> {
        check_name(name)?;
        if opts.maxelem == 0 {
            return Err(AclError::invalid(format!(
                "maxelem of ipset {name} must be at least 1"
            )));
        }
        Ok(IpSet {
            name: name.to_string(),
            kind,
            opts,
            nets: NetTable::new(),
            ports: HashSet::default(),
            any_proto: 0,
            comments: FastMap::default(),
            hits,
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind.
    pub fn kind(&self) -> SetKind {
        self.kind
    }

    /// The creation options.
    pub fn opts(&self) -> SetOpts {
        self.opts
    }

    /// The connections this set matched in a list, summed over workers.
    pub fn hits(&self) -> &Arc<Hits> {
        &self.hits
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.nets.len() + self.ports.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate memory of the members, in bytes.
    pub fn memory_bytes(&self) -> usize {
        let port = std::mem::size_of::<(Addr, u8, u16)>() + 1;
        std::mem::size_of::<IpSet>()
            + self.nets.heap_bytes()
            + self.ports.capacity() * port
            + self.comments.values().map(|c| 48 + c.len()).sum::<usize>()
    }

    fn contains(&self, m: &Member) -> Option<bool> {
        match m {
            Member::Net { addr, plen } => self.nets.get(addr, *plen).map(|v| v == NOMATCH),
            Member::IpPort { addr, proto, port } => self
                .ports
                .contains(&(*addr, *proto, *port))
                .then_some(false),
        }
    }

    fn fits(&self, m: &Member) -> bool {
        let kind_ok = match (m, self.kind) {
            (Member::Net { addr, plen }, SetKind::HashIp) => *plen == width(addr),
            (Member::Net { .. }, SetKind::HashNet) => true,
            (Member::IpPort { .. }, SetKind::HashIpPort) => true,
            _ => false,
        };
        kind_ok && m_addr(m).is_v4() != self.opts.v6
    }

    /// Adds `members` (one entry's expansion); with `force` (dpip's `-F`)
    /// members already there are replaced, else any of them is an error.
    /// Nothing changes on error. Returns how many members are new. Call
    /// [`IpSet::finish`] after the last change of a batch.
    pub fn add(
        &mut self,
        members: &[Member],
        nomatch: bool,
        comment: Option<&str>,
        force: bool,
    ) -> Result<usize, AclError> {
        if nomatch && self.kind != SetKind::HashNet {
            return Err(AclError::invalid(format!(
                "nomatch is for hash:net sets; {} is {}",
                self.name, self.kind
            )));
        }
        if comment.is_some() && !self.opts.comment {
            return Err(AclError::invalid(format!(
                "ipset {} was created without comment support",
                self.name
            )));
        }
        let mut fresh: HashSet<Member, FastBuildHasher> = HashSet::default();
        for m in members {
            if !self.fits(m) {
                return Err(AclError::invalid(format!(
                    "{} does not fit {} set {}",
                    m.display(self.kind),
                    self.kind,
                    self.name
                )));
            }
            match self.contains(m) {
                Some(_) if !force => {
                    return Err(AclError {
                        kind: AclErrorKind::Exists,
                        message: format!(
                            "{} is already in ipset {}",
                            m.display(self.kind),
                            self.name
                        ),
                    })
                }
                Some(_) => {}
                None => {
                    fresh.insert(*m);
                }
            }
        }
        let after = self.len() + fresh.len();
        if after > self.opts.maxelem as usize {
            return Err(AclError {
                kind: AclErrorKind::Full,
                message: format!(
                    "ipset {} is full: maxelem {}, {} members, {} more asked",
                    self.name,
                    self.opts.maxelem,
                    self.len(),
                    fresh.len()
                ),
            });
        }
        for m in members {
            self.insert(m, nomatch);
            match comment {
                Some(c) => {
                    self.comments.insert(*m, c.into());
                }
                None => {
                    self.comments.remove(m);
                }
            }
        }
        Ok(fresh.len())
    }

    fn insert(&mut self, m: &Member, nomatch: bool) {
        match m {
            Member::Net { addr, plen } => {
                let v = if nomatch { NOMATCH } else { MATCH };
                self.nets.insert(addr, *plen, v);
            }
            Member::IpPort { addr, proto, port } => {
                if self.ports.insert((*addr, *proto, *port)) && *proto == 0 {
                    self.any_proto += 1;
                }
            }
        }
    }

    /// Deletes `members`; with `force` missing ones are skipped, else any of
    /// them is an error. Nothing changes on error. Returns how many went.
    pub fn del(&mut self, members: &[Member], force: bool) -> Result<usize, AclError> {
        if !force {
            if let Some(m) = members.iter().find(|m| self.contains(m).is_none()) {
                return Err(AclError {
                    kind: AclErrorKind::NotFound,
                    message: format!("{} is not in ipset {}", m.display(self.kind), self.name),
                });
            }
        }
        let mut n = 0;
        for m in members {
            let gone = match m {
                Member::Net { addr, plen } => self.nets.remove(addr, *plen).is_some(),
                Member::IpPort { addr, proto, port } => {
                    let gone = self.ports.remove(&(*addr, *proto, *port));
                    if gone && *proto == 0 {
                        self.any_proto -= 1;
                    }
                    gone
                }
            };
            if gone {
                self.comments.remove(m);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes every member.
    pub fn flush(&mut self) {
        self.nets.clear();
        self.ports = HashSet::default();
        self.any_proto = 0;
        self.comments = FastMap::default();
    }

    /// Rebuilds the lookup index after a batch of changes; a set must be
    /// finished before it is published.
    pub fn finish(&mut self) {
        self.nets.reindex();
    }

    /// `dpip ipset test`: whether `probe` (from [`super::entry::parse_probe`])
    /// is in the set, `nomatch` exceptions applied.
    pub fn test(&self, probe: &Member) -> bool {
        match probe {
            Member::Net { addr, .. } => self.nets.lookup(addr) == Some(MATCH),
            Member::IpPort { addr, proto, port } => self.matches(addr, *proto, *port),
        }
    }

    /// Whether a connection from `src` to port `dport` over `proto` matches
    /// (`hash:ip,port`: the client's address with the service's port). The
    /// per-connection lookup: no allocation.
    #[inline]
    pub fn matches(&self, src: &Addr, proto: u8, dport: u16) -> bool {
        match self.kind {
            SetKind::HashIp | SetKind::HashNet => self.nets.lookup(src) == Some(MATCH),
            SetKind::HashIpPort => self.matches_port(src, proto, dport),
        }
    }

    /// `hash:ip,port`'s lookup, kept out of line: inlined, its hashing is
    /// hoisted out of a list's loop over its sets and paid for sets of
    /// every kind.
    #[inline(never)]
    fn matches_port(&self, src: &Addr, proto: u8, dport: u16) -> bool {
        self.ports.contains(&(*src, proto, dport))
            || (self.any_proto > 0 && self.ports.contains(&(*src, 0, dport)))
    }

    /// The set's own flat IPv4 index (value 0: a match), when it is all
    /// the set holds: `hash:ip` or `hash:net` with 1,024 IPv4 members or more.
    pub(super) fn v4_flat(&self) -> Option<&Arc<super::net::Flat>> {
        match self.kind {
            SetKind::HashIpPort => None,
            _ => self.nets.v4_flat(),
        }
    }

    /// Appends the IPv4 ranges a connection may match in (for
    /// `hash:ip,port`, every address, whatever the port).
    pub(super) fn v4_ranges(&self, out: &mut Vec<(u32, u32)>) {
        self.nets.v4_ranges(|v| v == MATCH, out);
        for (a, _, _) in &self.ports {
            if a.is_v4() {
                out.push((a.v4_u32(), a.v4_u32()));
            }
        }
    }

    /// Every member with its `nomatch` flag and comment, in no particular order.
    pub fn members(&self) -> impl Iterator<Item = (Member, bool, Option<&str>)> + '_ {
        let nets = self
            .nets
            .iter()
            .map(|(addr, plen, v)| (Member::Net { addr, plen }, v == NOMATCH));
        let ports = self.ports.iter().map(|(addr, proto, port)| {
            (
                Member::IpPort {
                    addr: *addr,
                    proto: *proto,
                    port: *port,
                },
                false,
            )
        });
        nets.chain(ports)
            .map(|(m, nm)| (m, nm, self.comments.get(&m).map(|c| &**c)))
    }
}

fn m_addr(m: &Member) -> Addr {
    match m {
        Member::Net { addr, .. } | Member::IpPort { addr, .. } => *addr,
    }
}
