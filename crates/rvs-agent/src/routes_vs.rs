//! Virtual services, their real servers, local addresses and limits
//! (`rvsadm -A/-E/-D/-a/-e/-d/--add-laddr/-G`, limit options).

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rvs_api::{
    DestInfo, DestSpec, LaddrInfo, LimitInfo, Limits, Reply, Request, ServiceInfo, ServiceSpec,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::backend::{want, AgentState};
use crate::error::{AgentError, Body, ErrorBody};
use crate::ids;

/// A local address of a service (`--add-laddr -z ADDR -F DEV`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaddrBody {
    /// The local address.
    #[schema(value_type = String, format = "ip")]
    pub addr: IpAddr,
    /// The device it is on (`dpdk0`).
    pub dev: String,
}

type Res<T> = Result<T, AgentError>;

async fn one_service(st: &AgentState, service: &str) -> Res<ServiceInfo> {
    let key = ids::service("service", service)?;
    let list = want!(
        st.call(Request::ListServices { key: Some(key) }).await?,
        Reply::Services
    )?;
    list.into_iter().next().ok_or_else(|| {
        AgentError::from(rvs_api::ApiError::new(
            rvs_api::ErrorKind::NotFound,
            format!("no service {service}"),
        ))
    })
}

/// Every service with its real servers and counters (`rvsadm -ln --stats`).
#[utoipa::path(get, path = "/v2/vs", tag = "services",
    responses((status = 200, body = Vec<ServiceInfo>), (status = 503, body = ErrorBody)))]
pub async fn list_services(State(st): State<AgentState>) -> Res<Json<Vec<ServiceInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListServices { key: None }).await?,
        Reply::Services
    )?))
}

/// Adds a service (`rvsadm -A`).
#[utoipa::path(post, path = "/v2/vs", tag = "services", request_body = ServiceSpec,
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn add_service(
    State(st): State<AgentState>,
    Body(spec): Body<ServiceSpec>,
) -> Res<StatusCode> {
    st.call(Request::AddService { spec }).await?;
    Ok(StatusCode::CREATED)
}

/// One service (`rvsadm -ln -t VIP:PORT`).
#[utoipa::path(get, path = "/v2/vs/{service}", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO (10.0.0.100-80-tcp) or match:SPEC")),
    responses((status = 200, body = ServiceInfo), (status = 404, body = ErrorBody)))]
pub async fn get_service(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<Json<ServiceInfo>> {
    Ok(Json(one_service(&st, &service).await?))
}

/// Edits a service (`rvsadm -E`); the body's key must be the path's.
#[utoipa::path(put, path = "/v2/vs/{service}", tag = "services", request_body = ServiceSpec,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "edited"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn edit_service(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(spec): Body<ServiceSpec>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    if spec.key != key {
        return Err(AgentError::invalid(
            "key",
            format!(
                "the body's key ({}) is not the path's service ({key})",
                spec.key
            ),
        ));
    }
    st.call(Request::EditService { spec }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a service (`rvsadm -D`).
#[utoipa::path(delete, path = "/v2/vs/{service}", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn del_service(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::DelService { key }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Zeroes a service's counters (`rvsadm -Z -t VIP:PORT`).
#[utoipa::path(post, path = "/v2/vs/{service}/zero", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "zeroed"), (status = 404, body = ErrorBody)))]
pub async fn zero_service(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::Zero { key: Some(key) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service's real servers with their counters.
#[utoipa::path(get, path = "/v2/vs/{service}/rs", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 200, body = Vec<DestInfo>), (status = 404, body = ErrorBody)))]
pub async fn list_dests(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<Json<Vec<DestInfo>>> {
    Ok(Json(one_service(&st, &service).await?.dests))
}

/// Adds a real server (`rvsadm -a`).
#[utoipa::path(post, path = "/v2/vs/{service}/rs", tag = "services", request_body = DestSpec,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_dest(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(dest): Body<DestSpec>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::AddDest { key, dest }).await?;
    Ok(StatusCode::CREATED)
}

/// Edits a real server, matched by address and port (`rvsadm -e`).
#[utoipa::path(put, path = "/v2/vs/{service}/rs", tag = "services", request_body = DestSpec,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "edited"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn edit_dest(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(dest): Body<DestSpec>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::EditDest { key, dest }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a real server (`rvsadm -d`).
#[utoipa::path(delete, path = "/v2/vs/{service}/rs/{dest}", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC"),
        ("dest" = String, Path, description = "IP-PORT, e.g. 192.168.100.2-80")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn del_dest(
    State(st): State<AgentState>,
    Path((service, dest)): Path<(String, String)>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    let (addr, port) = ids::dest("dest", &dest)?;
    st.call(Request::DelDest { key, addr, port }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service's local addresses (`rvsadm -G -t VIP:PORT`).
#[utoipa::path(get, path = "/v2/vs/{service}/laddr", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 200, body = Vec<LaddrInfo>), (status = 404, body = ErrorBody)))]
pub async fn list_laddrs(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<Json<Vec<LaddrInfo>>> {
    let key = ids::service("service", &service)?;
    let groups = want!(
        st.call(Request::ListLaddrs { key: Some(key) }).await?,
        Reply::Laddrs
    )?;
    Ok(Json(groups.into_iter().flat_map(|g| g.laddrs).collect()))
}

/// Adds a local address (`rvsadm --add-laddr`).
#[utoipa::path(post, path = "/v2/vs/{service}/laddr", tag = "services", request_body = LaddrBody,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 201, description = "added"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_laddr(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(b): Body<LaddrBody>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::AddLaddr {
        key,
        addr: b.addr,
        dev: b.dev,
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a local address (`rvsadm --del-laddr`).
#[utoipa::path(delete, path = "/v2/vs/{service}/laddr", tag = "services", request_body = LaddrBody,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn del_laddr(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(b): Body<LaddrBody>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    st.call(Request::DelLaddr {
        key,
        addr: b.addr,
        dev: b.dev,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service's rate and connection limits with what each refused (`rvsadm -L --rate`).
#[utoipa::path(get, path = "/v2/vs/{service}/limits", tag = "services",
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 200, body = LimitInfo), (status = 404, body = ErrorBody)))]
pub async fn get_limits(
    State(st): State<AgentState>,
    Path(service): Path<String>,
) -> Res<Json<LimitInfo>> {
    let key = ids::service("service", &service)?;
    let list = want!(
        st.call(Request::ListLimits { key: Some(key) }).await?,
        Reply::Limits
    )?;
    list.into_iter().next().map(Json).ok_or_else(|| {
        AgentError::from(rvs_api::ApiError::new(
            rvs_api::ErrorKind::NotFound,
            format!("no service {service}"),
        ))
    })
}

/// Replaces every limit of a service (empty object: none).
#[utoipa::path(put, path = "/v2/vs/{service}/limits", tag = "services", request_body = Limits,
    params(("service" = String, Path, description = "VIP-PORT-PROTO or match:SPEC")),
    responses((status = 204, description = "set"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn set_limits(
    State(st): State<AgentState>,
    Path(service): Path<String>,
    Body(limits): Body<Limits>,
) -> Res<StatusCode> {
    let key = ids::service("service", &service)?;
    limits
        .check()
        .map_err(|m| AgentError::invalid("limits", m))?;
    st.call(Request::SetLimits { key, limits }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The limits of every service.
#[utoipa::path(get, path = "/v2/limits", tag = "services",
    responses((status = 200, body = Vec<LimitInfo>), (status = 503, body = ErrorBody)))]
pub async fn list_limits(State(st): State<AgentState>) -> Res<Json<Vec<LimitInfo>>> {
    Ok(Json(want!(
        st.call(Request::ListLimits { key: None }).await?,
        Reply::Limits
    )?))
}

/// Deletes every service (`rvsadm -C`).
#[utoipa::path(delete, path = "/v2/vs", tag = "services",
    responses((status = 204, description = "cleared"), (status = 503, body = ErrorBody)))]
pub async fn clear_services(State(st): State<AgentState>) -> Res<StatusCode> {
    st.call(Request::Clear).await?;
    Ok(StatusCode::NO_CONTENT)
}
