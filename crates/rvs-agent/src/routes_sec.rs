//! Black and white lists and ipsets (`rvsadm --add-blklst/--add-whtlst`,
//! `rvsip ipset`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rvs_api::{AclKind, AclListing, AclRule, IpsetEntry, IpsetInfo, IpsetSpec, Reply, Request};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::backend::{want, AgentState};
use crate::error::{AgentError, Body, ErrorBody, Params};
use crate::ids;

type Res<T> = Result<T, AgentError>;

/// Only one service's rules.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AclQuery {
    /// The service (VIP-PORT-PROTO or match:SPEC); every rule, global ones too, when left out.
    pub service: Option<String>,
}

/// Whether to list the members.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IpsetListQuery {
    /// With the members (default false: headers only).
    pub members: Option<bool>,
}

/// What to look up in a set.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IpsetTestQuery {
    /// The entry (an address, prefix, `addr,proto:port`... as the set type takes).
    pub entry: String,
}

/// Entries to add to a set, all or none.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpsetAddBody {
    /// The entries.
    pub entries: Vec<IpsetEntry>,
    /// Replace members already there instead of refusing.
    #[serde(default)]
    pub force: bool,
}

/// Entries to delete from a set, all or none.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpsetDelBody {
    /// The entries.
    pub entries: Vec<String>,
    /// Skip members not there instead of refusing.
    #[serde(default)]
    pub force: bool,
}

/// The answer of a set lookup.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IpsetTestResult {
    /// Whether the entry is in the set.
    pub member: bool,
}

/// A list's rules with their hits and what each service refused (`--get-blklst`, `--get-whtlst`).
#[utoipa::path(get, path = "/v2/acl/{kind}", tag = "security",
    params(("kind" = AclKind, Path, description = "blklst or whtlst"), AclQuery),
    responses((status = 200, body = AclListing), (status = 400, body = ErrorBody)))]
pub async fn list_acl(
    State(st): State<AgentState>,
    Path(kind): Path<String>,
    Params(q): Params<AclQuery>,
) -> Res<Json<AclListing>> {
    let kind = match kind.as_str() {
        "blklst" => AclKind::Blklst,
        "whtlst" => AclKind::Whtlst,
        other => {
            return Err(AgentError::invalid(
                "kind",
                format!("list {other:?} is not blklst or whtlst"),
            ))
        }
    };
    let key = match &q.service {
        Some(s) => Some(ids::service("service", s)?),
        None => None,
    };
    Ok(Json(want!(
        st.call(Request::ListAcl { kind, key }).await?,
        Reply::Acl
    )?))
}

/// Adds a black or white list rule.
#[utoipa::path(post, path = "/v2/acl", tag = "security", request_body = AclRule,
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn add_acl(State(st): State<AgentState>, Body(rule): Body<AclRule>) -> Res<StatusCode> {
    st.call(Request::AddAcl { rule }).await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a black or white list rule.
#[utoipa::path(delete, path = "/v2/acl", tag = "security", request_body = AclRule,
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn del_acl(State(st): State<AgentState>, Body(rule): Body<AclRule>) -> Res<StatusCode> {
    st.call(Request::DelAcl { rule }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every set (`rvsip ipset list`).
#[utoipa::path(get, path = "/v2/ipset", tag = "security", params(IpsetListQuery),
    responses((status = 200, body = Vec<IpsetInfo>), (status = 400, body = ErrorBody)))]
pub async fn list_ipsets(
    State(st): State<AgentState>,
    Params(q): Params<IpsetListQuery>,
) -> Res<Json<Vec<IpsetInfo>>> {
    let req = Request::IpsetList {
        name: None,
        members: q.members.unwrap_or(false),
    };
    Ok(Json(want!(st.call(req).await?, Reply::Ipsets)?))
}

/// Creates a set (`rvsip ipset create`).
#[utoipa::path(post, path = "/v2/ipset", tag = "security", request_body = IpsetSpec,
    responses((status = 201, description = "created"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_ipset(
    State(st): State<AgentState>,
    Body(spec): Body<IpsetSpec>,
) -> Res<StatusCode> {
    st.call(Request::IpsetCreate { spec }).await?;
    Ok(StatusCode::CREATED)
}

/// One set with its members.
#[utoipa::path(get, path = "/v2/ipset/{name}", tag = "security",
    params(("name" = String, Path, description = "The set")),
    responses((status = 200, body = IpsetInfo), (status = 404, body = ErrorBody)))]
pub async fn get_ipset(
    State(st): State<AgentState>,
    Path(name): Path<String>,
) -> Res<Json<IpsetInfo>> {
    let req = Request::IpsetList {
        name: Some(name.clone()),
        members: true,
    };
    let list = want!(st.call(req).await?, Reply::Ipsets)?;
    list.into_iter().next().map(Json).ok_or_else(|| {
        AgentError::from(rvs_api::ApiError::new(
            rvs_api::ErrorKind::NotFound,
            format!("no ipset {name}"),
        ))
    })
}

/// Destroys a set; refused while a list refers to it.
#[utoipa::path(delete, path = "/v2/ipset/{name}", tag = "security",
    params(("name" = String, Path, description = "The set")),
    responses((status = 204, description = "destroyed"), (status = 404, body = ErrorBody)))]
pub async fn destroy_ipset(
    State(st): State<AgentState>,
    Path(name): Path<String>,
) -> Res<StatusCode> {
    st.call(Request::IpsetDestroy { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds members (`rvsip ipset add`).
#[utoipa::path(post, path = "/v2/ipset/{name}/members", tag = "security", request_body = IpsetAddBody,
    params(("name" = String, Path, description = "The set")),
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn ipset_add(
    State(st): State<AgentState>,
    Path(name): Path<String>,
    Body(b): Body<IpsetAddBody>,
) -> Res<StatusCode> {
    if b.entries.is_empty() {
        return Err(AgentError::invalid("entries", "no entry given"));
    }
    st.call(Request::IpsetAdd {
        name,
        entries: b.entries,
        force: b.force,
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// Deletes members (`rvsip ipset del`).
#[utoipa::path(delete, path = "/v2/ipset/{name}/members", tag = "security", request_body = IpsetDelBody,
    params(("name" = String, Path, description = "The set")),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn ipset_del(
    State(st): State<AgentState>,
    Path(name): Path<String>,
    Body(b): Body<IpsetDelBody>,
) -> Res<StatusCode> {
    if b.entries.is_empty() {
        return Err(AgentError::invalid("entries", "no entry given"));
    }
    st.call(Request::IpsetDel {
        name,
        entries: b.entries,
        force: b.force,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes every member of a set (`rvsip ipset flush NAME`).
#[utoipa::path(post, path = "/v2/ipset/{name}/flush", tag = "security",
    params(("name" = String, Path, description = "The set")),
    responses((status = 204, description = "flushed"), (status = 404, body = ErrorBody)))]
pub async fn ipset_flush(
    State(st): State<AgentState>,
    Path(name): Path<String>,
) -> Res<StatusCode> {
    st.call(Request::IpsetFlush { name: Some(name) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Looks an entry up in a set (`rvsip ipset test`).
#[utoipa::path(get, path = "/v2/ipset/{name}/test", tag = "security",
    params(("name" = String, Path, description = "The set"), IpsetTestQuery),
    responses((status = 200, body = IpsetTestResult), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn ipset_test(
    State(st): State<AgentState>,
    Path(name): Path<String>,
    Params(q): Params<IpsetTestQuery>,
) -> Res<Json<IpsetTestResult>> {
    let member = want!(
        st.call(Request::IpsetTest {
            name,
            entry: q.entry
        })
        .await?,
        Reply::IpsetTest
    )?;
    Ok(Json(IpsetTestResult { member }))
}
