//! Allow/deny lists (`rvsadm --add-blklst/--add-whtlst`) and named sets
//! (`rvsip ipset`), as DPVS's ipvsadm and dpip have them.

use serde::{Deserialize, Serialize};

use crate::ServiceKey;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AclKind {
    /// Deny list (`--add-blklst -k`).
    Blklst,
    /// Allow list (`--add-whtlst -2`): a service with one accepts only its sources.
    Whtlst,
}

impl AclKind {
    /// `blklst` or `whtlst`.
    pub fn name(&self) -> &'static str {
        match self {
            AclKind::Blklst => "blklst",
            AclKind::Whtlst => "whtlst",
        }
    }
}

/// One rule of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AclRule {
    /// Which list.
    pub kind: AclKind,
    /// The service (`-t/-u`); `None` = the global list, for every service.
    pub key: Option<ServiceKey>,
    /// `ADDR`, `ADDR/PLEN` or `ipset:NAME`.
    pub subject: String,
}

/// A rule as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AclRuleInfo {
    /// The rule, its subject in canonical form.
    pub rule: AclRule,
    /// New connections it matched: refused (blklst) or admitted (whtlst).
    pub hits: u64,
}

/// Connections a whitelist refused (no rule matched), per list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AclRejected {
    /// The service; `None` = the global whitelist.
    pub key: Option<ServiceKey>,
    /// Connections refused.
    pub count: u64,
}

/// [`crate::Request::ListAcl`]'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AclListing {
    /// Rules: the global ones first, then per service in service order.
    pub rules: Vec<AclRuleInfo>,
    /// For whitelists: refusals per list that has rules.
    pub rejected: Vec<AclRejected>,
}

/// Address family of a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    #[default]
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// `inet` or `inet6`.
    pub fn name(&self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }
}

/// A set's creation options (`rvsip ipset create NAME TYPE ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpsetSpec {
    /// Name.
    pub name: String,
    /// `hash:ip`, `hash:net` or `hash:ip,port`.
    pub kind: String,
    /// Family (dpip's `-6` or `family inet6`).
    pub family: Family,
    /// `hashsize` (kept and shown; `None` = the default).
    pub hashsize: Option<u32>,
    /// `maxelem` (`None` = 65536).
    pub maxelem: Option<u32>,
    /// `comment`: members may carry comments.
    pub comment: bool,
}

/// One entry to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpsetEntry {
    /// The entry, e.g. `10.0.0.0/24`, `10.0.0.1-10.0.0.9`, `10.0.0.1,tcp:80`.
    pub entry: String,
    /// `nomatch` (hash:net): an exception inside a larger prefix.
    #[serde(default)]
    pub nomatch: bool,
    /// `comment STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A member as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpsetMember {
    /// The member as dpip prints it.
    pub entry: String,
    /// `nomatch`.
    pub nomatch: bool,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A set as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpsetInfo {
    /// Options, with the defaults filled in.
    pub spec: IpsetSpec,
    /// Approximate memory, bytes.
    pub size: u64,
    /// Lists that refer to it.
    pub references: u32,
    /// Members.
    pub entries: u64,
    /// Connections it matched in a list.
    pub hits: u64,
    /// The members (empty when not asked for), sorted.
    pub members: Vec<IpsetMember>,
}

#[cfg(test)]
mod tests {
    use crate::{decode_reply, decode_request, encode_reply, encode_request, Reply, Request};

    use super::*;

    #[test]
    fn acl_and_ipset_requests_round_trip() {
        let reqs = [
            Request::AddAcl {
                rule: AclRule {
                    kind: AclKind::Blklst,
                    key: None,
                    subject: "ipset:bad".into(),
                },
            },
            Request::IpsetAdd {
                name: "bad".into(),
                entries: vec![IpsetEntry {
                    entry: "10.0.0.0/8".into(),
                    nomatch: true,
                    comment: Some("x y".into()),
                }],
                force: false,
            },
        ];
        for r in reqs {
            assert_eq!(decode_request(encode_request(&r).trim()).unwrap(), r);
        }
        // An entry without the optional fields decodes.
        let line = r#"{"v":1,"req":{"op":"ipset_add","name":"a","entries":[{"entry":"1.2.3.4"}],"force":true}}"#;
        assert!(matches!(
            decode_request(line).unwrap(),
            Request::IpsetAdd { force: true, .. }
        ));
        let r = Reply::IpsetTest(true);
        assert_eq!(decode_reply(encode_reply(&r).trim()).unwrap(), r);
    }
}
