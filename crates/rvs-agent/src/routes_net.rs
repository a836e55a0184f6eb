//! Daemon status, addresses, routes, neighbours, ports and connections
//! (`rvsip addr/route/neigh/link`, `rvsadm -lnc`).

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rvs_api::{
    AddrInfo, ConnCursor, ConnPage, DaemonList, LinkInfo, NeighInfo, Reply, Request, RouteInfo,
    RouteSpec, StatusInfo, SyncDaemonSpec, SyncRole, CONN_PAGE_MAX,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::backend::{want, AgentState};
use crate::error::{AgentError, Body, ErrorBody, Params};
use crate::ids;

type Res<T> = Result<T, AgentError>;

/// An address of rvs (`rvsip addr add ADDR/PLEN dev DEV [sapool]`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddrBody {
    /// The address.
    #[schema(value_type = String, format = "ip")]
    pub addr: IpAddr,
    /// Prefix length (32/128 when left out).
    pub plen: Option<u8>,
    /// Device.
    pub dev: String,
    /// With a socket-address pool (for local addresses).
    #[serde(default)]
    pub sapool: bool,
}

/// Standby or active addresses (`rvsip addr set IP... standby|active`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StandbyBody {
    /// The addresses.
    #[schema(value_type = Vec<String>)]
    pub addrs: Vec<IpAddr>,
    /// Standby (true) or active (false).
    pub standby: bool,
}

/// A static neighbour (`rvsip neigh add ADDR lladdr MAC dev DEV`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeighBody {
    /// The address.
    #[schema(value_type = String, format = "ip")]
    pub addr: IpAddr,
    /// MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Device.
    pub dev: String,
}

/// Only one device's objects.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DevQuery {
    /// The device (`dpdk0`); all when left out.
    pub dev: Option<String>,
}

/// The device of an address or neighbour to delete.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DevRequired {
    /// The device (`dpdk0`).
    pub dev: String,
}

/// Where a connection page starts and how long it is.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnQuery {
    /// Only this service's connections (VIP-PORT-PROTO or match:SPEC).
    pub service: Option<String>,
    /// The cursor's worker (the previous page's `next.worker`; 0 at first).
    pub worker: Option<u16>,
    /// The cursor's slot (the previous page's `next.slot`; 0 at first).
    pub slot: Option<u32>,
    /// At most this many connections (1-4096, default 1024).
    pub limit: Option<usize>,
}

/// The daemon's version, uptime, workers and connection count.
#[utoipa::path(get, path = "/v2/status", tag = "daemon",
    responses((status = 200, body = StatusInfo), (status = 503, body = ErrorBody)))]
pub async fn status(State(st): State<AgentState>) -> Res<Json<StatusInfo>> {
    Ok(Json(want!(st.call(Request::Status).await?, Reply::Status)?))
}

/// Re-reads rvsd's configuration file (like SIGHUP).
#[utoipa::path(post, path = "/v2/reload", tag = "daemon",
    responses((status = 204, description = "reloaded"), (status = 400, body = ErrorBody)))]
pub async fn reload(State(st): State<AgentState>) -> Res<StatusCode> {
    st.call(Request::Reload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Zeroes every service's counters (`rvsadm -Z`).
#[utoipa::path(post, path = "/v2/zero", tag = "daemon",
    responses((status = 204, description = "zeroed"), (status = 503, body = ErrorBody)))]
pub async fn zero_all(State(st): State<AgentState>) -> Res<StatusCode> {
    st.call(Request::Zero { key: None }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// rvs's addresses (`rvsip addr show`).
#[utoipa::path(get, path = "/v2/addr", tag = "network", params(DevQuery),
    responses((status = 200, body = Vec<AddrInfo>), (status = 400, body = ErrorBody)))]
pub async fn list_addrs(
    State(st): State<AgentState>,
    Params(q): Params<DevQuery>,
) -> Res<Json<Vec<AddrInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListAddrs { dev: q.dev }).await?,
        Reply::Addrs
    )?))
}

/// Adds an address (`rvsip addr add`).
#[utoipa::path(post, path = "/v2/addr", tag = "network", request_body = AddrBody,
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn add_addr(State(st): State<AgentState>, Body(b): Body<AddrBody>) -> Res<StatusCode> {
    let max = if b.addr.is_ipv4() { 32 } else { 128 };
    let plen = b.plen.unwrap_or(max);
    if plen > max {
        return Err(AgentError::invalid(
            "plen",
            format!("prefix length {plen} is above {max}"),
        ));
    }
    st.call(Request::AddAddr {
        addr: b.addr,
        plen,
        dev: b.dev,
        sapool: b.sapool,
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// Deletes an address (`rvsip addr del`).
#[utoipa::path(delete, path = "/v2/addr/{addr}", tag = "network",
    params(("addr" = String, Path, description = "The address"), DevRequired),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn del_addr(
    State(st): State<AgentState>,
    Path(addr): Path<String>,
    Params(q): Params<DevRequired>,
) -> Res<StatusCode> {
    let addr = ids::addr("addr", &addr)?;
    st.call(Request::DelAddr { addr, dev: q.dev }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks addresses standby or active (`rvsip addr set`).
#[utoipa::path(put, path = "/v2/addr/standby", tag = "network", request_body = StandbyBody,
    responses((status = 204, description = "set"), (status = 400, body = ErrorBody)))]
pub async fn set_standby(
    State(st): State<AgentState>,
    Body(b): Body<StandbyBody>,
) -> Res<StatusCode> {
    if b.addrs.is_empty() {
        return Err(AgentError::invalid("addrs", "no address given"));
    }
    st.call(Request::SetAddrStandby {
        addrs: b.addrs,
        standby: b.standby,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes (`rvsip route show`).
#[utoipa::path(get, path = "/v2/route", tag = "network",
    responses((status = 200, body = Vec<RouteInfo>), (status = 503, body = ErrorBody)))]
pub async fn list_routes(State(st): State<AgentState>) -> Res<Json<Vec<RouteInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListRoutes).await?,
        Reply::Routes
    )?))
}

/// Adds a route (`rvsip route add`).
#[utoipa::path(post, path = "/v2/route", tag = "network", request_body = RouteSpec,
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn add_route(
    State(st): State<AgentState>,
    Body(route): Body<RouteSpec>,
) -> Res<StatusCode> {
    let max = if route.prefix.is_ipv4() { 32 } else { 128 };
    if route.plen > max {
        return Err(AgentError::invalid(
            "plen",
            format!("prefix length {} is above {max}", route.plen),
        ));
    }
    st.call(Request::AddRoute { route }).await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a route (`rvsip route del PREFIX/PLEN`).
#[utoipa::path(delete, path = "/v2/route/{prefix}/{plen}", tag = "network",
    params(("prefix" = String, Path, description = "Network address"),
        ("plen" = u8, Path, description = "Prefix length")),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn del_route(
    State(st): State<AgentState>,
    Path((prefix, plen)): Path<(String, String)>,
) -> Res<StatusCode> {
    let prefix = ids::addr("prefix", &prefix)?;
    let plen: u8 = plen
        .parse()
        .map_err(|_| AgentError::invalid("plen", format!("{plen:?} is not a prefix length")))?;
    st.call(Request::DelRoute { prefix, plen }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The neighbours (`rvsip neigh show`).
#[utoipa::path(get, path = "/v2/neigh", tag = "network", params(DevQuery),
    responses((status = 200, body = Vec<NeighInfo>), (status = 400, body = ErrorBody)))]
pub async fn list_neigh(
    State(st): State<AgentState>,
    Params(q): Params<DevQuery>,
) -> Res<Json<Vec<NeighInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListNeigh { dev: q.dev }).await?,
        Reply::Neigh
    )?))
}

/// Adds a static neighbour (`rvsip neigh add`).
#[utoipa::path(post, path = "/v2/neigh", tag = "network", request_body = NeighBody,
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody)))]
pub async fn add_neigh(State(st): State<AgentState>, Body(b): Body<NeighBody>) -> Res<StatusCode> {
    st.call(Request::AddNeigh {
        addr: b.addr,
        mac: b.mac,
        dev: b.dev,
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a neighbour (`rvsip neigh del`).
#[utoipa::path(delete, path = "/v2/neigh/{addr}", tag = "network",
    params(("addr" = String, Path, description = "The address"), DevRequired),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn del_neigh(
    State(st): State<AgentState>,
    Path(addr): Path<String>,
    Params(q): Params<DevRequired>,
) -> Res<StatusCode> {
    let addr = ids::addr("addr", &addr)?;
    st.call(Request::DelNeigh { addr, dev: q.dev }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ports with their counters and drops by reason (`rvsip -s link show`).
#[utoipa::path(get, path = "/v2/link", tag = "network", params(DevQuery),
    responses((status = 200, body = Vec<LinkInfo>), (status = 400, body = ErrorBody)))]
pub async fn list_links(
    State(st): State<AgentState>,
    Params(q): Params<DevQuery>,
) -> Res<Json<Vec<LinkInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListLinks { dev: q.dev }).await?,
        Reply::Links
    )?))
}

/// One page of connections (`rvsadm -lnc`): start with no cursor, then pass
/// the answer's `next` as `worker` and `slot` until it is null.
#[utoipa::path(get, path = "/v2/conn", tag = "services", params(ConnQuery),
    responses((status = 200, body = ConnPage), (status = 400, body = ErrorBody)))]
pub async fn list_conns(
    State(st): State<AgentState>,
    Params(q): Params<ConnQuery>,
) -> Res<Json<ConnPage>> {
    let key = match &q.service {
        Some(s) => Some(ids::service("service", s)?),
        None => None,
    };
    let limit = q.limit.unwrap_or(1024);
    if limit == 0 || limit > CONN_PAGE_MAX {
        return Err(AgentError::invalid(
            "limit",
            format!("limit {limit} is not within 1-{CONN_PAGE_MAX}"),
        ));
    }
    let cursor = ConnCursor {
        worker: q.worker.unwrap_or(0),
        slot: q.slot.unwrap_or(0),
    };
    Ok(Json(want!(
        st.call(Request::ListConnPage { key, cursor, limit })
            .await?,
        Reply::ConnPage
    )?))
}

/// The connection-sync daemons and their counters (`rvsadm -L --daemon`).
#[utoipa::path(get, path = "/v2/daemon", tag = "daemon",
    responses((status = 200, body = DaemonList), (status = 503, body = ErrorBody)))]
pub async fn list_daemons(State(st): State<AgentState>) -> Res<Json<DaemonList>> {
    Ok(Json(want!(
        st.call(Request::ListDaemon).await?,
        Reply::Daemons
    )?))
}

/// Starts a connection-sync daemon (`rvsadm --start-daemon`).
#[utoipa::path(post, path = "/v2/daemon", tag = "daemon", request_body = SyncDaemonSpec,
    responses((status = 201, description = "started"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn start_daemon(
    State(st): State<AgentState>,
    Body(spec): Body<SyncDaemonSpec>,
) -> Res<StatusCode> {
    st.call(Request::StartDaemon { spec }).await?;
    Ok(StatusCode::CREATED)
}

/// Stops a connection-sync daemon (`rvsadm --stop-daemon`).
#[utoipa::path(delete, path = "/v2/daemon/{role}", tag = "daemon",
    params(("role" = SyncRole, Path, description = "master or backup")),
    responses((status = 204, description = "stopped"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn stop_daemon(
    State(st): State<AgentState>,
    Path(role): Path<String>,
) -> Res<StatusCode> {
    let role = match role.as_str() {
        "master" => SyncRole::Master,
        "backup" => SyncRole::Backup,
        other => {
            return Err(AgentError::invalid(
                "role",
                format!("role {other:?} is not master or backup"),
            ))
        }
    };
    st.call(Request::StopDaemon { role }).await?;
    Ok(StatusCode::NO_CONTENT)
}
