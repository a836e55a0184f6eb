//! `rvsip ipset`, DPVS's `dpip ipset`:
//!
//! ```text
//! rvsip ipset create SETNAME TYPE [ family inet|inet6 ] [ hashsize NUM ] [ maxelem NUM ] [ comment ]
//! rvsip ipset destroy SETNAME
//! rvsip ipset { add | del | test } SETNAME ENTRY [ comment STRING ] [ nomatch ]
//! rvsip ipset { list | show | flush } [ SETNAME ]
//! rvsip ipset save [ SETNAME ]       (create/add lines, as `ipset save` writes them)
//! rvsip ipset restore                (those lines from stdin, sent in batches)
//! flags anywhere: -F (--force) -4 -6 -v
//! ```

use std::io::Read;

use rvs_api::{Family, IpsetEntry, IpsetInfo, IpsetSpec, Reply, Request};

use super::IpCommand;
use crate::adm::split_line;
use crate::client::{expect_ok, unexpected, CliError, Transport};

/// The text of `rvsip ipset help`.
pub const IPSET_HELP: &str = "Usage:
    rvsip ipset create SETNAME TYPE [ OPTIONS ]
    rvsip ipset destroy SETNAME
    rvsip ipset { add | del | test } SETNAME ENTRY [ ADTOPTS ]
    rvsip ipset { list | show | flush } [ SETNAME ]
    rvsip ipset save [ SETNAME ]
    rvsip ipset restore < FILE
Parameters:
    TYPE      := { hash:ip | hash:net | hash:ip,port }
    ENTRY     := { IP | NET } [ ,PORT ]
    IP        := ipv4 or ipv6 string literal
    NET       := \"{ IP/prefix | IP(range from)[-IP(range end)] }\"
    PORT      := \"[{ tcp | udp }:]port1[-port2]\"
    OPTIONS   := { comment | family { inet | inet6 } | hashsize NUM | maxelem NUM }
    ADTOPTS   := { comment STRING | nomatch (for add only) }
    flag      := { -F(--force) | { -4 | -6 } | -v }
";

/// Most entries per request of `restore`.
pub const RESTORE_BATCH: usize = 8192;
/// Most bytes of entries per request of `restore`: half of rvsd's 1 MiB
/// request line, leaving room for the JSON around them.
pub const RESTORE_BYTES: usize = 512 << 10;

/// What an entry adds to a request line, roughly (its JSON included).
fn entry_bytes(e: &IpsetEntry) -> usize {
    48 + e.entry.len() + e.comment.as_ref().map_or(0, |c| 2 * c.len() + 16)
}

/// A parsed `rvsip ipset` command.
#[derive(Debug, Clone, PartialEq)]
pub enum IpsetCmd {
    /// create, destroy, add, del, flush.
    Apply(Request),
    /// list/show.
    List {
        /// One set or all.
        name: Option<String>,
    },
    /// test.
    Test {
        /// The set.
        name: String,
        /// The entry.
        entry: String,
        /// `-v`: dpip's sentence instead of true/false.
        verbose: bool,
    },
    /// save.
    Save {
        /// One set or all.
        name: Option<String>,
    },
    /// restore from stdin.
    Restore {
        /// `-F`.
        force: bool,
    },
}

/// Flags and words of an `ipset` command line.
struct Line<'a> {
    words: Vec<&'a str>,
    force: bool,
    v6: Option<bool>,
    verbose: bool,
}

/// Splits flags (anywhere, as dpip takes them) from words; the word after
/// `comment` is a value even when it starts with `-`.
fn split<'a>(args: &[&'a str]) -> Result<Line<'a>, CliError> {
    let mut l = Line {
        words: Vec::new(),
        force: false,
        v6: None,
        verbose: false,
    };
    const FLAGS: [&str; 8] = [
        "-F",
        "--force",
        "-4",
        "-6",
        "-v",
        "--verbose",
        "-s",
        "--stats",
    ];
    let mut value_next = false;
    for a in args {
        let flag = FLAGS.contains(a) || (a.starts_with('-') && a.len() > 1 && !value_next);
        if !flag {
            value_next = *a == "comment" && !value_next;
            l.words.push(a);
            continue;
        }
        value_next = false;
        match *a {
            "-F" | "--force" => l.force = true,
            "-4" => l.v6 = Some(false),
            "-6" => l.v6 = Some(true),
            "-v" | "--verbose" | "-s" | "--stats" => l.verbose = true,
            _ => {
                return Err(CliError::usage(format!(
                    "invalid option \"{a}\" for ipset (-F, -4, -6, -v)"
                )))
            }
        }
    }
    Ok(l)
}

/// The `ipset` command in `args` (everything after the tool's name), or
/// `None` when the object is not `ipset`.
pub fn parse_ipset(args: &[&str]) -> Option<Result<IpCommand, CliError>> {
    let obj = args.iter().position(|a| !a.starts_with('-'))?;
    if args[obj] != "ipset" {
        return None;
    }
    let mut rest: Vec<&str> = args[..obj].to_vec();
    rest.extend_from_slice(&args[obj + 1..]);
    Some(split(&rest).and_then(|l| parse(&l)).map(IpCommand::Ipset))
}

fn need<'a>(w: &[&'a str], i: usize, what: &str) -> Result<&'a str, CliError> {
    w.get(i)
        .copied()
        .ok_or_else(|| CliError::usage(format!("missing {what}; try \"rvsip ipset help\"")))
}

fn num(kw: &str, v: &str) -> Result<u32, CliError> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(CliError::usage(format!(
            "invalid {kw} \"{v}\" (a number from 1)"
        ))),
    }
}

fn create(l: &Line<'_>) -> Result<Request, CliError> {
    let w = &l.words;
    let mut spec = IpsetSpec {
        name: need(w, 1, "set name")?.to_string(),
        kind: need(w, 2, "set type")?.to_string(),
        family: if l.v6 == Some(true) {
            Family::Inet6
        } else {
            Family::Inet
        },
        hashsize: None,
        maxelem: None,
        comment: false,
    };
    let mut i = 3;
    while let Some(k) = w.get(i).copied() {
        i += 1;
        match k {
            "comment" => spec.comment = true,
            "family" => {
                spec.family = match need(w, i, "family")? {
                    "inet" => Family::Inet,
                    "inet6" => Family::Inet6,
                    f => {
                        return Err(CliError::usage(format!(
                            "invalid family \"{f}\" (inet or inet6)"
                        )))
                    }
                };
                i += 1;
            }
            "hashsize" | "maxelem" => {
                let n = num(k, need(w, i, k)?)?;
                i += 1;
                if k == "hashsize" {
                    spec.hashsize = Some(n);
                } else {
                    spec.maxelem = Some(n);
                }
            }
            _ => {
                return Err(CliError::usage(format!(
                    "unknown create option \"{k}\" (comment, family, hashsize, maxelem)"
                )))
            }
        }
    }
    Ok(Request::IpsetCreate { spec })
}

/// `ENTRY [comment STRING] [nomatch]` from word `i` on.
fn entry(w: &[&str], i: usize, add: bool) -> Result<IpsetEntry, CliError> {
    let mut e = IpsetEntry {
        entry: need(w, i, "entry")?.to_string(),
        nomatch: false,
        comment: None,
    };
    let mut j = i + 1;
    while let Some(k) = w.get(j).copied() {
        j += 1;
        match k {
            "nomatch" if add => e.nomatch = true,
            "comment" if add => {
                e.comment = Some(need(w, j, "comment")?.to_string());
                j += 1;
            }
            _ => return Err(CliError::usage(format!("unexpected argument \"{k}\""))),
        }
    }
    Ok(e)
}

fn opt_name(w: &[&str], cmd: &str) -> Result<Option<String>, CliError> {
    match w.len() {
        0 | 1 => Ok(None),
        2 => Ok(Some(w[1].to_string())),
        _ => Err(CliError::usage(format!(
            "unexpected argument \"{}\" for ipset {cmd}",
            w[2]
        ))),
    }
}

fn parse(l: &Line<'_>) -> Result<IpsetCmd, CliError> {
    let w = &l.words;
    let cmd = w.first().copied().unwrap_or("list");
    let name = || need(w, 1, "set name").map(str::to_string);
    Ok(match cmd {
        "create" => IpsetCmd::Apply(create(l)?),
        "destroy" => {
            opt_name(w, cmd)?;
            IpsetCmd::Apply(Request::IpsetDestroy { name: name()? })
        }
        "add" => IpsetCmd::Apply(Request::IpsetAdd {
            name: name()?,
            entries: vec![entry(w, 2, true)?],
            force: l.force,
        }),
        "del" | "delete" => IpsetCmd::Apply(Request::IpsetDel {
            name: name()?,
            entries: vec![entry(w, 2, false)?.entry],
            force: l.force,
        }),
        "test" => {
            let e = entry(w, 2, false)?;
            IpsetCmd::Test {
                name: name()?,
                entry: e.entry,
                verbose: l.verbose,
            }
        }
        "list" | "show" => IpsetCmd::List {
            name: opt_name(w, cmd)?,
        },
        "flush" => IpsetCmd::Apply(Request::IpsetFlush {
            name: opt_name(w, cmd)?,
        }),
        "save" => IpsetCmd::Save {
            name: opt_name(w, cmd)?,
        },
        "restore" => {
            opt_name(w, cmd).and_then(|n| match n {
                None => Ok(()),
                Some(x) => Err(CliError::usage(format!("unexpected argument \"{x}\""))),
            })?;
            IpsetCmd::Restore { force: l.force }
        }
        "help" => return Err(CliError::usage(IPSET_HELP.trim_end())),
        c => {
            return Err(CliError::usage(format!(
                "unknown command \"{c}\" for ipset, try \"rvsip ipset help\""
            )))
        }
    })
}

/// A member line of `list`: the member, `nomatch`, the comment.
fn member_line(m: &rvs_api::IpsetMember) -> String {
    let mut s = m.entry.clone();
    if m.nomatch {
        s.push_str(" nomatch");
    }
    if let Some(c) = &m.comment {
        s.push_str(&format!("  comment \"{c}\""));
    }
    s
}

/// `list` as dpip prints it (rvs adds the `Hits` line: connections the set
/// matched in a list), one blank line after each set.
pub fn format_ipsets(sets: &[IpsetInfo]) -> String {
    let mut out = String::new();
    for s in sets {
        let p = &s.spec;
        let mut header = format!(
            "family {}  hashsize {}  maxelem {}",
            p.family.name(),
            p.hashsize.unwrap_or(0),
            p.maxelem.unwrap_or(0)
        );
        if p.comment {
            header.push_str("  comment");
        }
        out.push_str(&format!(
            "Name: {}\nType: {}\nHeader: {header}\nSize in memory: {}\nReferences: {}\nHits: {}\nNumber of entries: {}\nMembers:\n",
            p.name, p.kind, s.size, s.references, s.hits, s.entries
        ));
        for m in &s.members {
            out.push_str(&member_line(m));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// `save`: a `create` line and an `add` line per member, which `restore` reads back.
pub fn format_save(sets: &[IpsetInfo]) -> String {
    let mut out = String::new();
    for s in sets {
        let p = &s.spec;
        out.push_str(&format!(
            "create {} {} family {} hashsize {} maxelem {}{}\n",
            p.name,
            p.kind,
            p.family.name(),
            p.hashsize.unwrap_or(0),
            p.maxelem.unwrap_or(0),
            if p.comment { " comment" } else { "" }
        ));
        for m in &s.members {
            out.push_str(&format!("add {} {}\n", p.name, member_line(m)));
        }
    }
    out
}

/// `restore` input: the requests, `add` lines of one set merged into
/// batches of up to [`RESTORE_BATCH`] entries and [`RESTORE_BYTES`]. Every line is checked before
/// anything is sent; blank lines and `#` comments are skipped.
pub fn parse_restore(text: &str, force: bool) -> Result<Vec<Request>, CliError> {
    let mut out: Vec<Request> = Vec::new();
    let mut batch_bytes = 0usize;
    for (n, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let at = |e: CliError| CliError::usage(format!("line {}: {}", n + 1, e.message));
        let words = split_line(t).map_err(|e| at(CliError::usage(e)))?;
        let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
        while matches!(w.first(), Some(&("rvsip" | "dpip" | "ipset"))) {
            w.remove(0);
        }
        let mut l = split(&w).map_err(at)?;
        l.force |= force;
        let req = match parse(&l).map_err(at)? {
            IpsetCmd::Apply(r) => r,
            _ => {
                return Err(at(CliError::usage(format!(
                    "only create, destroy, add, del and flush can be restored: {t}"
                ))))
            }
        };
        if let Request::IpsetAdd { name, entries, .. } = &req {
            if let Some(Request::IpsetAdd {
                name: last,
                entries: batch,
                force: f,
            }) = out.last_mut()
            {
                let more: usize = entries.iter().map(entry_bytes).sum();
                if last == name
                    && *f == l.force
                    && batch.len() < RESTORE_BATCH
                    && batch_bytes + more <= RESTORE_BYTES
                {
                    batch.extend(entries.iter().cloned());
                    batch_bytes += more;
                    continue;
                }
            }
        }
        batch_bytes = match &req {
            Request::IpsetAdd { entries, .. } => entries.iter().map(entry_bytes).sum(),
            _ => 0,
        };
        out.push(req);
    }
    Ok(out)
}

fn list(t: &mut dyn Transport, name: Option<String>) -> Result<Vec<IpsetInfo>, CliError> {
    match t.call(&Request::IpsetList {
        name,
        members: true,
    })? {
        Reply::Ipsets(v) => Ok(v),
        other => Err(unexpected(other, "ipset list")),
    }
}

/// Runs an `ipset` command; `stdin` is read by `restore` only.
pub fn execute(
    cmd: &IpsetCmd,
    t: &mut dyn Transport,
    stdin: &mut dyn Read,
) -> Result<String, CliError> {
    match cmd {
        IpsetCmd::Apply(req) => {
            expect_ok(t.call(req)?)?;
            Ok(String::new())
        }
        IpsetCmd::List { name } => Ok(format_ipsets(&list(t, name.clone())?)),
        IpsetCmd::Save { name } => Ok(format_save(&list(t, name.clone())?)),
        IpsetCmd::Test {
            name,
            entry,
            verbose,
        } => {
            let req = Request::IpsetTest {
                name: name.clone(),
                entry: entry.clone(),
            };
            match t.call(&req)? {
                Reply::IpsetTest(hit) => Ok(match (verbose, hit) {
                    (false, true) => "true\n".to_string(),
                    (false, false) => "false\n".to_string(),
                    (true, true) => format!("{entry} is in set {name}\n"),
                    (true, false) => format!("{entry} is NOT in set {name}\n"),
                }),
                other => Err(unexpected(other, "ipset test")),
            }
        }
        IpsetCmd::Restore { force } => {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(|e| {
                CliError::failure(format!("rvsip: cannot read the sets from stdin: {e}"))
            })?;
            for req in parse_restore(&text, *force)? {
                expect_ok(t.call(&req)?)?;
            }
            Ok(String::new())
        }
    }
}
