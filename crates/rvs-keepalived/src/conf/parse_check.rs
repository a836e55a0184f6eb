//! Health checkers (`TCP_CHECK`, `UDP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `MISC_CHECK`) and the settings a virtual server passes to its real
//! servers and a real server to its checkers.

use std::time::Duration;

use super::lvs_types::*;
use super::tree::Stmt;
use super::values::Ctx;
use super::ConfError;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);
const MICRO: Duration = Duration::from_micros(1);

/// keepalived's defaults.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// `delay_loop` when nobody sets it.
pub(crate) const DELAY_LOOP: Duration = Duration::from_secs(60);

/// Settings that may be given at virtual server, real server or checker
/// level, the nearer one winning.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inherit {
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub inhibit_on_failure: Option<bool>,
    pub alpha: Option<bool>,
    pub virtualhost: Option<String>,
    pub weight: Option<u32>,
}

impl Inherit {
    /// These settings, with `parent`'s where unset.
    pub fn or(&self, parent: &Inherit) -> Inherit {
        Inherit {
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            delay_loop: self.delay_loop.or(parent.delay_loop),
            inhibit_on_failure: self.inhibit_on_failure.or(parent.inhibit_on_failure),
            alpha: self.alpha.or(parent.alpha),
            virtualhost: self.virtualhost.clone().or(parent.virtualhost.clone()),
            weight: self.weight.or(parent.weight),
        }
    }

    /// Reads one of these settings from `s`; false when `s` is not one.
    pub fn keyword(&mut self, s: &Stmt) -> Result<bool, ConfError> {
        match s.kw() {
            "connect_timeout" => self.connect_timeout = Some(s.secs(1, MICRO, HOUR)?),
            "retry" | "nb_sock_retry" | "nb_get_retry" => {
                self.retry = Some(s.u32_in(1, 0, u32::MAX)?)
            }
            "delay_before_retry" => {
                self.delay_before_retry = Some(s.secs(1, Duration::ZERO, HOUR)?)
            }
            "warmup" => self.warmup = Some(s.secs(1, Duration::ZERO, DAY)?),
            "delay_loop" => self.delay_loop = Some(s.secs(1, MICRO, DAY)?),
            "inhibit_on_failure" => self.inhibit_on_failure = Some(s.flag()?),
            "alpha" => self.alpha = Some(s.flag()?),
            "virtualhost" => self.virtualhost = Some(s.arg(1)?.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A checker as read, before the settings of its real and virtual server
/// are known.
pub(crate) struct PendingChecker {
    checker: Checker,
    inherit: Inherit,
    misc_timeout: Option<Duration>,
}

impl PendingChecker {
    /// The checker with every setting resolved (`parent` = its real
    /// server's settings over its virtual server's).
    pub fn finish(mut self, parent: &Inherit) -> Checker {
        let eff = self.inherit.or(parent);
        let c = &mut self.checker;
        c.delay_loop = eff.delay_loop.unwrap_or(DELAY_LOOP);
        c.connect_timeout = eff.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let default_retry = u32::from(!matches!(c.kind, CheckKind::Misc(_)));
        c.retry = eff.retry.unwrap_or(default_retry);
        c.delay_before_retry = eff.delay_before_retry.unwrap_or(DELAY_BEFORE_RETRY);
        c.warmup = eff.warmup.unwrap_or(c.delay_loop);
        match &mut c.kind {
            CheckKind::Misc(m) => m.timeout = self.misc_timeout.unwrap_or(c.delay_loop),
            CheckKind::Http(h) => {
                for u in &mut h.urls {
                    if u.virtualhost.is_none() {
                        u.virtualhost = eff.virtualhost.clone();
                    }
                }
            }
            _ => {}
        }
        self.checker
    }
}

/// Checker keywords keepalived has and rvs-keepalived does not run.
const UNSUPPORTED_CHECKERS: &[&str] = &[
    "SMTP_CHECK",
    "DNS_CHECK",
    "BFD_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
];

/// Whether `kw` names a checker block.
pub(crate) fn is_checker(kw: &str) -> bool {
    matches!(
        kw,
        "TCP_CHECK" | "UDP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK"
    ) || UNSUPPORTED_CHECKERS.contains(&kw)
}

/// A checker block; `None` (with a warning) for kinds rvs-keepalived does
/// not run.
pub(crate) fn checker(s: &Stmt, ctx: &mut Ctx) -> Result<Option<PendingChecker>, ConfError> {
    let kind = match s.kw() {
        "TCP_CHECK" => CheckKind::Tcp,
        "UDP_CHECK" => CheckKind::Udp(UdpCheck::default()),
        "HTTP_GET" | "SSL_GET" => CheckKind::Http(HttpCheck {
            tls: s.kw() == "SSL_GET",
            urls: Vec::new(),
        }),
        "MISC_CHECK" => CheckKind::Misc(MiscCheck {
            path: String::new(),
            timeout: Duration::ZERO,
            dynamic: false,
        }),
        _ => {
            ctx.unsupported(s);
            return Ok(None);
        }
    };
    let mut p = PendingChecker {
        checker: Checker {
            loc: s.loc.clone(),
            kind,
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: CONNECT_TIMEOUT,
            retry: 1,
            delay_before_retry: DELAY_BEFORE_RETRY,
            warmup: Duration::ZERO,
            delay_loop: DELAY_LOOP,
        },
        inherit: Inherit::default(),
        misc_timeout: None,
    };
    if s.words.len() > 1 {
        ctx.warn(s, format!("extra words '{}' ignored", s.rest(1)));
    }
    for st in s.block.as_deref().unwrap_or_default() {
        if p.inherit.keyword(st)? {
            continue;
        }
        if common_keyword(st, &mut p.checker)? {
            continue;
        }
        let section = s.kw().to_string();
        match &mut p.checker.kind {
            CheckKind::Tcp => ctx.unknown(st, &section),
            CheckKind::Udp(u) => udp_keyword(st, u, ctx),
            CheckKind::Http(h) => http_keyword(st, h, &section, ctx)?,
            CheckKind::Misc(m) => misc_keyword(st, m, &mut p.misc_timeout, ctx)?,
        }
    }
    required(s, &p.checker.kind)?;
    Ok(Some(p))
}

fn common_keyword(st: &Stmt, c: &mut Checker) -> Result<bool, ConfError> {
    match st.kw() {
        "connect_ip" => c.connect_ip = Some(st.ip(1)?),
        "connect_port" => c.connect_port = Some(st.port(1)?),
        "bindto" => c.bindto = Some(st.ip(1)?),
        "bind_port" => c.bind_port = Some(st.port(1)?),
        _ => return Ok(false),
    }
    Ok(true)
}

fn required(s: &Stmt, kind: &CheckKind) -> Result<(), ConfError> {
    match kind {
        CheckKind::Http(h) if h.urls.is_empty() => {
            Err(s.err("needs at least one url { path ... } block"))
        }
        CheckKind::Misc(m) if m.path.is_empty() => Err(ConfError::new(
            &s.loc,
            "misc_path",
            "MISC_CHECK has no misc_path (required)",
        )),
        _ => Ok(()),
    }
}

fn udp_keyword(st: &Stmt, u: &mut UdpCheck, ctx: &mut Ctx) {
    match st.kw() {
        "payload" => u.payload = Some(st.rest(1)),
        "require_reply" => u.require_reply = Some(st.rest(1)),
        _ => ctx.unknown(st, "UDP_CHECK"),
    }
}

fn http_keyword(
    st: &Stmt,
    h: &mut HttpCheck,
    section: &str,
    ctx: &mut Ctx,
) -> Result<(), ConfError> {
    match st.kw() {
        "url" => h.urls.push(url(st, ctx)?),
        "http_protocol" | "fast_recovery" | "enable_sni" | "tls_compliant" => ctx.unsupported(st),
        _ => ctx.unknown(st, section),
    }
    Ok(())
}

fn url(s: &Stmt, ctx: &mut Ctx) -> Result<UrlCheck, ConfError> {
    let mut u = UrlCheck {
        path: String::new(),
        status_codes: Vec::new(),
        digest: None,
        virtualhost: None,
    };
    for st in s.body()? {
        match st.kw() {
            "path" => u.path = st.arg(1)?.to_string(),
            "digest" => {
                let d = st.arg(1)?;
                if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(st.err(format!("'{d}' is not an MD5 digest (32 hex digits)")));
                }
                u.digest = Some(d.to_ascii_lowercase());
            }
            "status_code" => {
                st.arg(1)?;
                for w in &st.words[1..] {
                    u.status_codes.push(status_range(st, w)?);
                }
            }
            "virtualhost" => u.virtualhost = Some(st.arg(1)?.to_string()),
            _ => ctx.unknown(st, "url"),
        }
    }
    if u.path.is_empty() {
        return Err(ConfError::new(&s.loc, "path", "url has no path (required)"));
    }
    Ok(u)
}

/// `200` or `200-299`.
fn status_range(st: &Stmt, w: &str) -> Result<(u16, u16), ConfError> {
    let code = |v: &str| match v.parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(st.err(format!("'{w}' is not an HTTP status code (100..599)"))),
    };
    let (lo, hi) = match w.split_once('-') {
        Some((a, b)) => (code(a)?, code(b)?),
        None => (code(w)?, code(w)?),
    };
    if lo > hi {
        return Err(st.err(format!("'{w}' is an empty range")));
    }
    Ok((lo, hi))
}

fn misc_keyword(
    st: &Stmt,
    m: &mut MiscCheck,
    timeout: &mut Option<Duration>,
    ctx: &mut Ctx,
) -> Result<(), ConfError> {
    match st.kw() {
        "misc_path" => {
            st.arg(1)?;
            m.path = st.rest(1);
        }
        "misc_timeout" => *timeout = Some(st.secs(1, MICRO, DAY)?),
        "misc_dynamic" => m.dynamic = true,
        "user" => ctx.unsupported(st),
        _ => ctx.unknown(st, "MISC_CHECK"),
    }
    Ok(())
}
