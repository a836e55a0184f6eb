//! Reading values out of statements: numbers in a range, decimal seconds,
//! addresses and address ranges, booleans; and the warnings list.

use std::net::IpAddr;
use std::time::Duration;

use super::tree::Stmt;
use super::{ConfError, Diagnostic, Loc};

/// What a name in the configuration refers to (checked once all is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// `laddr_group_name` -> `local_address_group`.
    Laddr,
    /// `daddr_group_name` -> `deny_address_group`.
    Deny,
    /// `waddr_group_name` -> `allow_address_group`.
    Allow,
    /// `virtual_server group` -> `virtual_server_group`.
    VsGroup,
}

/// A reference to a named group, and the statement that makes it.
pub(crate) struct Ref {
    /// What it refers to.
    pub kind: RefKind,
    /// The name.
    pub name: String,
    /// The statement's location.
    pub loc: Loc,
    /// The statement's keyword.
    pub keyword: String,
}

/// Collects warnings and references while the typed configuration is built.
pub(crate) struct Ctx<'a> {
    /// Where warnings go.
    pub warnings: &'a mut Vec<Diagnostic>,
    /// Names to check once everything is read.
    pub refs: Vec<Ref>,
}

impl Ctx<'_> {
    /// Records that statement `s` names `name`, a group of `kind`.
    pub fn refer(&mut self, s: &Stmt, kind: RefKind, name: &str) {
        self.refs.push(Ref {
            kind,
            name: name.to_string(),
            loc: s.loc.clone(),
            keyword: s.kw().to_string(),
        });
    }

    /// A warning about statement `s`.
    pub fn warn(&mut self, s: &Stmt, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            loc: s.loc.clone(),
            keyword: s.kw().to_string(),
            message: message.into(),
        });
    }

    /// The warning for a keyword `section` does not know (its block is skipped).
    pub fn unknown(&mut self, s: &Stmt, section: &str) {
        let skipped = if s.block.is_some() {
            " (its block is skipped)"
        } else {
            ""
        };
        self.warn(s, format!("unknown keyword in {section}; ignored{skipped}"));
    }

    /// The warning for a keyword keepalived has and rvs-keepalived does not.
    pub fn unsupported(&mut self, s: &Stmt) {
        self.warn(s, "not supported by rvs-keepalived; ignored");
    }

    /// Warns when a value statement has more words than it uses.
    pub fn extra(&mut self, s: &Stmt, used: usize) {
        if s.words.len() > used {
            let extra = s.words[used..].join(" ");
            self.warn(s, format!("extra words '{extra}' ignored"));
        }
        if s.block.is_some() {
            self.warn(s, "takes no block; block ignored");
        }
    }
}

impl Stmt {
    /// The keyword (first word).
    pub fn kw(&self) -> &str {
        &self.words[0]
    }

    /// An error about this statement.
    pub fn err(&self, message: impl Into<String>) -> ConfError {
        ConfError::new(&self.loc, self.kw(), message)
    }

    /// Word `i` (1 = first value), or a "missing value" error.
    pub fn arg(&self, i: usize) -> Result<&str, ConfError> {
        self.words
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.err("missing value"))
    }

    /// The words from `i` on, joined by a space (empty when none).
    pub fn rest(&self, i: usize) -> String {
        self.words.get(i..).map(|w| w.join(" ")).unwrap_or_default()
    }

    /// The block, required.
    pub fn body(&self) -> Result<&[Stmt], ConfError> {
        self.block
            .as_deref()
            .ok_or_else(|| self.err("needs a { ... } block"))
    }

    /// Word `i` as an integer in `lo..=hi`.
    pub fn num(&self, i: usize, lo: i64, hi: i64) -> Result<i64, ConfError> {
        let v = self.arg(i)?;
        match v.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            Ok(_) => Err(self.err(format!("{v} is out of range ({lo}..{hi})"))),
            Err(_) => Err(self.err(format!("'{v}' is not a number"))),
        }
    }

    /// Word `i` as a `u32` in `lo..=hi`.
    pub fn u32_in(&self, i: usize, lo: u32, hi: u32) -> Result<u32, ConfError> {
        let n = self.num(i, i64::from(lo), i64::from(hi))?;
        u32::try_from(n).map_err(|_| self.err("out of range"))
    }

    /// Word `i` as a port (0..65535).
    pub fn port(&self, i: usize) -> Result<u16, ConfError> {
        let n = self.num(i, 0, 65535)?;
        u16::try_from(n).map_err(|_| self.err("out of range"))
    }

    /// Word `i` as seconds with an optional fraction (`0.1`, `3`), in `lo..=hi`.
    pub fn secs(&self, i: usize, lo: Duration, hi: Duration) -> Result<Duration, ConfError> {
        let v = self.arg(i)?;
        let d =
            parse_secs(v).ok_or_else(|| self.err(format!("'{v}' is not a number of seconds")))?;
        if d < lo || d > hi {
            return Err(self.err(format!(
                "{v} is out of range ({}..{} seconds)",
                fmt_secs(lo),
                fmt_secs(hi)
            )));
        }
        Ok(d)
    }

    /// Word `i` as an IP address.
    pub fn ip(&self, i: usize) -> Result<IpAddr, ConfError> {
        let v = self.arg(i)?;
        v.parse()
            .map_err(|_| self.err(format!("'{v}' is not an IP address")))
    }

    /// An optional `<BOOL>` after the keyword (none = true).
    pub fn flag(&self) -> Result<bool, ConfError> {
        match self.words.get(1).map(String::as_str) {
            None => Ok(true),
            Some("on" | "true" | "yes") => Ok(true),
            Some("off" | "false" | "no") => Ok(false),
            Some(v) => Err(self.err(format!("'{v}' is not a boolean (on|off|true|false|yes|no)"))),
        }
    }

    /// Word `i` as an address range `IP[-END]`: END replaces the last byte
    /// (IPv4, decimal) or the last 16-bit group (IPv6, hex), as keepalived's
    /// `192.168.1.1-10`. Returns the first and the last address.
    pub fn ip_range(&self, i: usize) -> Result<(IpAddr, IpAddr), ConfError> {
        let v = self.arg(i)?;
        parse_ip_range(v).map_err(|m| self.err(m))
    }
}

/// Decimal seconds with up to 6 fraction digits (keepalived's resolution).
pub(crate) fn parse_secs(v: &str) -> Option<Duration> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || frac.len() > 6 {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_micros() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// See [`Stmt::ip_range`].
pub(crate) fn parse_ip_range(v: &str) -> Result<(IpAddr, IpAddr), String> {
    let bad = || format!("'{v}' is not an IP address or range");
    let Some((first, end)) = v.rsplit_once('-') else {
        let a: IpAddr = v.parse().map_err(|_| bad())?;
        return Ok((a, a));
    };
    let a: IpAddr = first.parse().map_err(|_| bad())?;
    let last = match a {
        IpAddr::V4(a4) => {
            let end: u8 = end.parse().map_err(|_| bad())?;
            let mut o = a4.octets();
            if end <= o[3] {
                return Err(format!("range end {end} is not above its start in '{v}'"));
            }
            o[3] = end;
            IpAddr::from(o)
        }
        IpAddr::V6(a6) => {
            let end = u16::from_str_radix(end, 16).map_err(|_| bad())?;
            let mut s = a6.segments();
            if end <= s[7] {
                return Err(format!("range end {end:x} is not above its start in '{v}'"));
            }
            s[7] = end;
            IpAddr::from(s)
        }
    };
    Ok((a, last))
}

/// Every address from `first` to `last` (same prefix, last byte/group varies).
pub(crate) fn range_addrs(first: IpAddr, last: IpAddr) -> Vec<IpAddr> {
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) => {
            let (mut o, lo, hi) = (f.octets(), f.octets()[3], l.octets()[3]);
            (lo..=hi)
                .map(|b| {
                    o[3] = b;
                    IpAddr::from(o)
                })
                .collect()
        }
        (IpAddr::V6(f), IpAddr::V6(l)) => {
            let (mut s, lo, hi) = (f.segments(), f.segments()[7], l.segments()[7]);
            (lo..=hi)
                .map(|g| {
                    s[7] = g;
                    IpAddr::from(s)
                })
                .collect()
        }
        _ => vec![first],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(parse_secs("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_secs("0.1"), Some(Duration::from_millis(100)));
        assert_eq!(parse_secs("4.12"), Some(Duration::from_millis(4120)));
        assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("1.0000001"), None);
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("x"), None);
        assert_eq!(parse_secs("."), None);
    }

    #[test]
    fn ranges_replace_the_last_byte_or_group() {
        let (a, b) = parse_ip_range("192.168.1.1-10").unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("192.168.1.1".into(), "192.168.1.10".into())
        );
        assert_eq!(range_addrs(a, b).len(), 10);
        let (a, b) = parse_ip_range("2001:db8::1-a").unwrap();
        assert_eq!(b.to_string(), "2001:db8::a");
        assert_eq!(range_addrs(a, b).len(), 10);
        assert!(parse_ip_range("192.168.1.10-5").is_err());
        assert!(parse_ip_range("192.168.1.1-256").is_err());
        assert!(parse_ip_range("192.168.1.300").is_err());
    }
}
