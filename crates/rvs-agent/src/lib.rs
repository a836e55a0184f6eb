//! rvs-agent: a REST API over rvs's control API, as DPVS's dpvs-agent.
//!
//! Its own process: every HTTP request becomes one control-API request on
//! rvsd's unix socket (the same client code as `rvsadm` and `rvsip`), and
//! rvsd's answer or refusal becomes the HTTP answer (see
//! [`error::status_of`]). The OpenAPI document ([`openapi_json`]) is
//! generated from the control API's own types and the handlers' annotations,
//! served at `/openapi.json` and committed as `crates/rvs-agent/openapi.json`.
#![forbid(unsafe_code)]

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod backend;
pub mod error;
pub mod ids;
pub mod routes_net;
pub mod routes_sec;
pub mod routes_vs;

pub use backend::AgentState;
use error::AgentError;
use routes_net as n;
use routes_sec as s;
use routes_vs as v;

/// The OpenAPI description of the agent.
#[derive(OpenApi)]
#[openapi(
    info(title = "rvs-agent", description = "REST API of rvs (userspace L4 load balancer) over its control API"),
    paths(
        v::list_services, v::add_service, v::get_service, v::edit_service, v::del_service,
        v::zero_service, v::list_dests, v::add_dest, v::edit_dest, v::del_dest,
        v::list_laddrs, v::add_laddr, v::del_laddr, v::get_limits, v::set_limits, v::list_limits,
        n::status, n::reload, n::zero_all, n::list_addrs, n::add_addr, n::del_addr,
        n::set_standby, n::list_routes, n::add_route, n::del_route, n::list_neigh,
        n::add_neigh, n::del_neigh, n::list_links, n::list_conns,
        s::list_acl, s::add_acl, s::del_acl, s::list_ipsets, s::create_ipset, s::get_ipset,
        s::destroy_ipset, s::ipset_add, s::ipset_del, s::ipset_flush, s::ipset_test,
        v::clear_services, n::list_daemons, n::start_daemon, n::stop_daemon,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = api.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The OpenAPI document as committed: pretty JSON with a final newline,
/// independent of the build (the version is the crate's).
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.info.license = None;
    doc.info.contact = None;
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

async fn openapi_doc() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

async fn not_found() -> AgentError {
    AgentError {
        status: axum::http::StatusCode::NOT_FOUND,
        body: error::ErrorBody {
            error: "not_found".into(),
            message: "no such API path (see /openapi.json)".into(),
            field: None,
        },
    }
}

/// Constant-time comparison, so that the answer time does not tell how much
/// of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

async fn auth(State(st): State<AgentState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        match given {
            None => {
                return AgentError::unauthorized(
                    "this agent needs an Authorization: Bearer <token> header",
                )
                .into_response()
            }
            Some(g) if !same(g.trim().as_bytes(), token.as_bytes()) => {
                return AgentError::unauthorized("wrong bearer token").into_response()
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

/// The agent's routes, with the bearer check when `st` has a token.
pub fn app(st: AgentState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi_doc))
        .route("/v2/status", get(n::status))
        .route("/v2/reload", post(n::reload))
        .route("/v2/zero", post(n::zero_all))
        .route("/v2/daemon", get(n::list_daemons).post(n::start_daemon))
        .route("/v2/daemon/{role}", axum::routing::delete(n::stop_daemon))
        .route(
            "/v2/vs",
            get(v::list_services)
                .post(v::add_service)
                .delete(v::clear_services),
        )
        .route(
            "/v2/vs/{service}",
            get(v::get_service)
                .put(v::edit_service)
                .delete(v::del_service),
        )
        .route("/v2/vs/{service}/zero", post(v::zero_service))
        .route(
            "/v2/vs/{service}/rs",
            get(v::list_dests).post(v::add_dest).put(v::edit_dest),
        )
        .route(
            "/v2/vs/{service}/rs/{dest}",
            axum::routing::delete(v::del_dest),
        )
        .route(
            "/v2/vs/{service}/laddr",
            get(v::list_laddrs).post(v::add_laddr).delete(v::del_laddr),
        )
        .route(
            "/v2/vs/{service}/limits",
            get(v::get_limits).put(v::set_limits),
        )
        .route("/v2/limits", get(v::list_limits))
        .route("/v2/conn", get(n::list_conns))
        .route("/v2/addr", get(n::list_addrs).post(n::add_addr))
        .route("/v2/addr/standby", put(n::set_standby))
        .route("/v2/addr/{addr}", axum::routing::delete(n::del_addr))
        .route("/v2/route", get(n::list_routes).post(n::add_route))
        .route(
            "/v2/route/{prefix}/{plen}",
            axum::routing::delete(n::del_route),
        )
        .route("/v2/neigh", get(n::list_neigh).post(n::add_neigh))
        .route("/v2/neigh/{addr}", axum::routing::delete(n::del_neigh))
        .route("/v2/link", get(n::list_links))
        .route("/v2/acl", post(s::add_acl).delete(s::del_acl))
        .route("/v2/acl/{kind}", get(s::list_acl))
        .route("/v2/ipset", get(s::list_ipsets).post(s::create_ipset))
        .route(
            "/v2/ipset/{name}",
            get(s::get_ipset).delete(s::destroy_ipset),
        )
        .route(
            "/v2/ipset/{name}/members",
            post(s::ipset_add).delete(s::ipset_del),
        )
        .route("/v2/ipset/{name}/flush", post(s::ipset_flush))
        .route("/v2/ipset/{name}/test", get(s::ipset_test))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(st.clone(), auth))
        .with_state(st)
}
