//! The control API of rvs: what `rvsadm`, `rvsip` and other tools ask `rvsd`,
//! and what it answers.
//!
//! Transport: a unix stream socket (default `/run/rvs/rvs.sock`, or the
//! `RVS_SOCKET` environment variable), one JSON object per line each way: an
//! [`Envelope`] with the protocol version and a [`Request`], answered by a
//! [`Reply`]. The daemon refuses a version it does not speak, with a message
//! naming both versions. Types here are plain data: no behaviour beyond
//! (de)serialisation and small helpers, so the daemon and every tool agree on
//! them by construction.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

mod acl;
mod bond;
mod capture;
mod conn;
mod limits;
mod net;
mod reply;
mod request;
mod service;
mod sync;
mod vlan;
pub use acl::{
    AclKind, AclListing, AclRejected, AclRule, AclRuleInfo, Family, IpsetEntry, IpsetInfo,
    IpsetMember, IpsetSpec,
};
pub use bond::{lacp_state_names, BondInfo, BondSlaveInfo, LacpEnd, SlaveLacpInfo};
pub use capture::{
    from_hex, to_hex, CaptureDir, CaptureEnd, CaptureFrame, CaptureMode, CaptureSpec, Endpoint,
    CAPTURE_COUNT_DEFAULT, SNAPLEN_DEFAULT, SNAPLEN_MAX,
};
pub use conn::{ConnCursor, ConnInfo, ConnOrigin, ConnPage, CONN_PAGE_MAX};
pub use limits::{LimitDropStats, LimitInfo, LimitSet, Limits, RateLimit, LIMIT_MAX};
pub use net::{AddrInfo, LinkInfo, LinkStats, NeighInfo, RouteInfo, RouteSpec, Scope};
pub use reply::{ApiError, ErrorKind, Reply, StatusInfo};
pub use request::Request;
pub use service::ProxyProtocol;
pub use service::{
    DestInfo, DestSpec, Forward, LaddrGroup, LaddrInfo, Proto, Rates, ServiceInfo, ServiceKey,
    ServiceSpec, Stats,
};
pub use sync::{
    DaemonList, SyncDaemonInfo, SyncDaemonSpec, SyncRole, SyncStatsInfo, SYNC_GROUP, SYNC_PORT,
};
pub use vlan::{VlanProto, VlanSel, VlanSpec};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvs.sock";

/// The control socket path: `RVS_SOCKET` if set, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> String {
    std::env::var("RVS_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// A request with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version of the sender ([`VERSION`]).
    pub v: u32,
    /// The request.
    pub req: Request,
}

/// Encodes a request as one line (with the trailing newline).
pub fn encode_request(req: &Request) -> String {
    let mut s = serde_json::to_string(&Envelope {
        v: VERSION,
        req: req.clone(),
    })
    .unwrap_or_default();
    s.push('\n');
    s
}

/// Decodes a request line, checking the version.
pub fn decode_request(line: &str) -> Result<Request, ApiError> {
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("malformed request: {e}")))?;
    let ver = v.get("v").and_then(|x| x.as_u64()).unwrap_or(0);
    if ver != VERSION as u64 {
        return Err(ApiError::new(
            ErrorKind::Version,
            format!("request speaks protocol version {ver}, rvsd speaks {VERSION}"),
        ));
    }
    serde_json::from_value::<Envelope>(v)
        .map(|e| e.req)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("malformed request: {e}")))
}

/// Encodes a reply as one line.
pub fn encode_reply(r: &Reply) -> String {
    let mut s = serde_json::to_string(r).unwrap_or_else(|e| {
        serde_json::to_string(&Reply::Error(ApiError::new(
            ErrorKind::Internal,
            e.to_string(),
        )))
        .unwrap_or_default()
    });
    s.push('\n');
    s
}

/// Decodes a reply line.
pub fn decode_reply(line: &str) -> Result<Reply, ApiError> {
    serde_json::from_str(line).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("malformed reply from rvsd: {e}"),
        )
    })
}

/// Sends one request over a connected stream and reads the reply (blocking).
pub fn call<S: std::io::Read + std::io::Write>(
    stream: &mut S,
    req: &Request,
) -> Result<Reply, ApiError> {
    use std::io::BufRead;
    stream
        .write_all(encode_request(req).as_bytes())
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot send to rvsd: {e}")))?;
    let mut line = String::new();
    let mut r = std::io::BufReader::new(stream);
    r.read_line(&mut line)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("cannot read from rvsd: {e}")))?;
    if line.is_empty() {
        return Err(ApiError::new(
            ErrorKind::Internal,
            "rvsd closed the connection",
        ));
    }
    decode_reply(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_version_check() {
        let req = Request::AddDest {
            key: ServiceKey::Vs {
                proto: Proto::Tcp,
                vip: "10.0.0.100".parse().unwrap(),
                port: 80,
            },
            dest: DestSpec {
                addr: "192.168.100.2".parse().unwrap(),
                port: 80,
                weight: 1,
                forward: Forward::Fnat,
                u_threshold: 0,
                l_threshold: 0,
            },
        };
        let line = encode_request(&req);
        assert!(line.ends_with('\n'));
        assert_eq!(decode_request(line.trim()).unwrap(), req);
        let old = line.replace("\"v\":1", "\"v\":0");
        let e = decode_request(&old).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Version);
        assert!(e.message.contains("version 0"), "{e}");
        let e = decode_request("{\"v\":1,\"req\":{\"op\":\"fly\"}}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(decode_request("not json").is_err());
    }

    #[test]
    fn conn_page_round_trip() {
        let req = Request::ListConnPage {
            key: None,
            cursor: ConnCursor {
                worker: 1,
                slot: 42,
            },
            limit: 100,
        };
        assert_eq!(decode_request(encode_request(&req).trim()).unwrap(), req);
        let r = Reply::ConnPage(ConnPage {
            conns: vec![],
            next: Some(ConnCursor {
                worker: 1,
                slot: 99,
            }),
        });
        assert_eq!(decode_reply(encode_reply(&r).trim()).unwrap(), r);
        // A version-1 request without paging still decodes.
        let old = "{\"v\":1,\"req\":{\"op\":\"list_conns\",\"key\":null,\"limit\":5}}";
        assert_eq!(
            decode_request(old).unwrap(),
            Request::ListConns {
                key: None,
                limit: 5
            }
        );
    }

    #[test]
    fn reply_round_trip() {
        let r = Reply::Error(ApiError::new(
            ErrorKind::NotFound,
            "no such service TCP 10.0.0.1:80",
        ));
        assert_eq!(decode_reply(encode_reply(&r).trim()).unwrap(), r);
        let key = ServiceKey::Vs {
            proto: Proto::Udp,
            vip: "2001:db8::1".parse().unwrap(),
            port: 53,
        };
        assert_eq!(key.to_string(), "UDP [2001:db8::1]:53");
    }
}
