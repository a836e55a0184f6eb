//! Which packets a capture takes: the address criteria of a
//! [`CaptureSpec`] compiled once ([`Filter`]), the frame's 5-tuple read
//! through the `wire` views ([`Tuple::of`]), and the sampling state of one
//! worker ([`Sampler`]: 1 in N, or the first N of each flow in a fixed table).
//! Nothing here allocates per packet.

use rvs_api::{ApiError, CaptureMode, CaptureSpec, Endpoint, ErrorKind, Proto};
use rvs_core::addr::{proto, Addr};
use rvs_core::stats::DropReason;
use rvs_core::wire::ethernet::{ethertype, EthernetFrame};
use rvs_core::wire::ipv4::Ipv4Packet;
use rvs_core::wire::ipv6::Ipv6Packet;
use rvs_core::wire::tcp::TcpPacket;
use rvs_core::wire::udp::UdpPacket;

/// The 5-tuple of a frame (ports 0 for other protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Addr,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// The tuple of an Ethernet frame carrying IPv4 or IPv6; `None` for
    /// anything else (ARP, truncated headers).
    pub fn of(frame: &[u8]) -> Option<Tuple> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let (proto, src, dst, (sport, dport)) = match eth.ethertype() {
            ethertype::IPV4 => {
                let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                let l4 = if ip.frag_offset() == 0 {
                    ip.payload()
                } else {
                    &[]
                };
                (ip.protocol(), ip.src(), ip.dst(), ports(ip.protocol(), l4))
            }
            ethertype::IPV6 => {
                let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
                let (p, off, frag) = ip.upper_layer().ok()?;
                let l4 = if frag {
                    &[]
                } else {
                    ip.as_bytes().get(off..).unwrap_or(&[])
                };
                (p, ip.src(), ip.dst(), ports(p, l4))
            }
            _ => return None,
        };
        Some(Tuple {
            proto,
            src,
            sport,
            dst,
            dport,
        })
    }

    /// A key equal for both directions of the flow.
    fn flow_key(&self) -> u64 {
        let a = (self.src, self.sport);
        let b = (self.dst, self.dport);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.proto as u64;
        let mut mix = |v: u64| h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        for (addr, port) in [lo, hi] {
            let x = addr.as_u128();
            mix(x as u64);
            mix((x >> 64) as u64);
            mix(port as u64);
        }
        h | 1
    }
}

fn ports(p: u8, l4: &[u8]) -> (u16, u16) {
    match p {
        proto::TCP => TcpPacket::new_checked(l4)
            .map(|t| (t.src_port(), t.dst_port()))
            .unwrap_or((0, 0)),
        proto::UDP => UdpPacket::new_checked(l4)
            .map(|u| (u.src_port(), u.dst_port()))
            .unwrap_or((0, 0)),
        _ => (0, 0),
    }
}

/// An address prefix and optional port, ready to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    base: u128,
    mask: u128,
    port: Option<u16>,
}

impl Net {
    fn new(e: &Endpoint) -> Result<Net, ApiError> {
        let a = Addr::from(e.addr);
        let (max, shift) = if a.is_v4() { (32, 96) } else { (128, 0) };
        if e.len > max {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "prefix length /{} is longer than {max} bits for {}",
                    e.len, e.addr
                ),
            ));
        }
        let bits = shift + e.len as u32;
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        Ok(Net {
            base: a.as_u128() & mask,
            mask,
            port: e.port,
        })
    }

    fn has(&self, a: Addr, port: u16) -> bool {
        a.as_u128() & self.mask == self.base && self.port.is_none_or(|p| p == port)
    }
}

/// Which drops a capture takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropSel {
    /// Every packet, dropped or not.
    All,
    /// Only dropped packets, any reason.
    AnyDrop,
    /// Only packets dropped for this reason.
    Reason(DropReason),
}

/// The address criteria of a capture, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    service: Option<(u8, Addr, u16)>,
    proto: Option<u8>,
    src: Option<Net>,
    dst: Option<Net>,
    host: Option<Net>,
    /// Which drops.
    pub drop: DropSel,
}

impl Filter {
    /// Compiles `spec`; an error names the bad value.
    pub fn new(spec: &CaptureSpec) -> Result<Filter, ApiError> {
        let net = |e: &Option<Endpoint>| e.as_ref().map(Net::new).transpose();
        let drop = match spec.drop.as_deref() {
            None => DropSel::All,
            Some("any") => DropSel::AnyDrop,
            Some(name) => DropSel::Reason(
                DropReason::ALL
                    .iter()
                    .copied()
                    .find(|r| r.name() == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
                        ApiError::new(
                            ErrorKind::Invalid,
                            format!(
                                "unknown drop reason {name:?}: one of any, {}",
                                names.join(", ")
                            ),
                        )
                    })?,
            ),
        };
        Ok(Filter {
            service: spec.service.map(|(p, a, port)| {
                let p = if p == Proto::Tcp {
                    proto::TCP
                } else {
                    proto::UDP
                };
                (p, Addr::from(a), port)
            }),
            proto: spec.proto,
            src: net(&spec.src)?,
            dst: net(&spec.dst)?,
            host: net(&spec.host)?,
            drop,
        })
    }

    /// Whether the frame's tuple meets every address criterion.
    pub fn matches(&self, t: &Tuple) -> bool {
        let svc = self.service.is_none_or(|(p, a, port)| {
            t.proto == p && ((t.dst == a && t.dport == port) || (t.src == a && t.sport == port))
        });
        svc && self.proto.is_none_or(|p| p == t.proto)
            && self.src.is_none_or(|n| n.has(t.src, t.sport))
            && self.dst.is_none_or(|n| n.has(t.dst, t.dport))
            && self
                .host
                .is_none_or(|n| n.has(t.src, t.sport) || n.has(t.dst, t.dport))
    }

    /// Whether any address criterion is set (without one, every frame
    /// matches, ARP and truncated ones too).
    pub fn has_addr(&self) -> bool {
        self.service.is_some()
            || self.proto.is_some()
            || self.src.is_some()
            || self.dst.is_some()
            || self.host.is_some()
    }

    /// Whether a packet with this drop reason (None: not dropped) qualifies.
    pub fn drop_ok(&self, dropped: Option<DropReason>) -> bool {
        match self.drop {
            DropSel::All => true,
            DropSel::AnyDrop => dropped.is_some(),
            DropSel::Reason(r) => dropped == Some(r),
        }
    }
}

/// Flows remembered by `--first N` per worker (a direct-mapped table: two
/// flows sharing a slot take turns, each restarting its count).
pub const FLOW_SLOTS: usize = 4096;

/// The sampling state of one worker.
#[derive(Debug)]
pub struct Sampler {
    mode: CaptureMode,
    seen: u64,
    flows: Vec<(u64, u32)>,
}

impl Sampler {
    /// The state for `mode` (the flow table is allocated here, once).
    pub fn new(mode: CaptureMode) -> Sampler {
        let flows = match mode {
            CaptureMode::FirstPerFlow(_) => vec![(0, 0); FLOW_SLOTS],
            _ => Vec::new(),
        };
        Sampler {
            mode,
            seen: 0,
            flows,
        }
    }

    /// Whether to take this matching packet (`t`: its received tuple).
    pub fn take(&mut self, t: Option<&Tuple>) -> bool {
        match self.mode {
            CaptureMode::Every => true,
            CaptureMode::OneIn(n) => {
                self.seen += 1;
                self.seen % n.max(1) as u64 == 1 || n <= 1
            }
            CaptureMode::FirstPerFlow(n) => {
                let Some(t) = t else { return false };
                let key = t.flow_key();
                let i = key as usize % FLOW_SLOTS;
                let Some(slot) = self.flows.get_mut(i) else {
                    return false;
                };
                if slot.0 != key {
                    *slot = (key, 0);
                }
                slot.1 = slot.1.saturating_add(1);
                slot.1 <= n
            }
        }
    }
}
