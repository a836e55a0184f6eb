//! The agent's HTTP answers without a real rvsd: validation errors naming
//! the field, the bearer check, 503 without rvsd, and control-API errors
//! mapped to HTTP statuses (through a fake rvsd on a unix socket).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rvs_agent::{app, AgentState};
use tower::ServiceExt;

async fn send(
    st: &AgentState,
    method: &str,
    uri: &str,
    body: &str,
    auth: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let req = b.body(Body::from(body.to_string())).unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, v)
}

fn no_rvsd() -> AgentState {
    AgentState::new("/nonexistent/rvs-agent-test.sock", None)
}

const SVC: &str = r#"{"key":{"vs":{"proto":"tcp","vip":"10.0.0.100","port":80}},"sched":"rr"}"#;

#[tokio::test]
async fn bodies_and_parameters_are_validated_naming_the_field() {
    let st = no_rvsd();
    let (s, v) = send(&st, "POST", "/v2/vs", "{\"key\":", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "body");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON body"),
        "{v}"
    );
    let (s, v) = send(
        &st,
        "POST",
        "/v2/vs",
        r#"{"key":{"vs":{"proto":"tcp","vip":"10.0.0.100","port":80}}}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "sched", "{v}");
    let (s, v) = send(
        &st,
        "POST",
        "/v2/vs",
        &SVC.replace("10.0.0.100", "10.0.0.300"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "key.vs.vip", "{v}");
    let (s, v) = send(&st, "POST", "/v2/vs", &SVC.replace("tcp", "sctp"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "key.vs.proto", "{v}");
    let (s, v) = send(&st, "GET", "/v2/vs/10.0.0.100-80-sctp", "", None).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("service")),
        "{v}"
    );
    let (s, v) = send(&st, "GET", "/v2/conn?limit=lots", "", None).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit")),
        "{v}"
    );
    let (s, v) = send(&st, "GET", "/v2/conn?limit=0", "", None).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit")),
        "{v}"
    );
    let (s, v) = send(&st, "POST", "/v2/vs", "", None).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body")),
        "{v}"
    );
    let (s, v) = send(&st, "GET", "/v2/nothing", "", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
}

#[tokio::test]
async fn no_rvsd_is_503_naming_the_socket() {
    let (s, v) = send(&no_rvsd(), "GET", "/v2/vs", "", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"], "unavailable");
    let m = v["message"].as_str().unwrap();
    assert!(
        m.contains("cannot connect to rvsd at /nonexistent/rvs-agent-test.sock"),
        "{m}"
    );
    assert!(m.contains("is rvsd running?"), "{m}");
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let st = AgentState::new(
        "/nonexistent/rvs-agent-test.sock",
        Some("0123456789abcdef-token".into()),
    );
    let (s, v) = send(&st, "GET", "/v2/vs", "", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = send(
        &st,
        "GET",
        "/v2/vs",
        "",
        Some("Bearer 0123456789abcdef-tokeN"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = send(&st, "GET", "/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Through the check: then no rvsd.
    let (s, _) = send(
        &st,
        "GET",
        "/v2/vs",
        "",
        Some("Bearer 0123456789abcdef-token"),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// A fake rvsd answering every request with `reply` (one JSON line).
fn fake_rvsd(reply: &'static str) -> AgentState {
    let dir = std::env::temp_dir().join(format!(
        "rvs-agent-test-{}-{}",
        std::process::id(),
        reply.len()
    ));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("rvs.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut r = BufReader::new(c);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = r.get_mut().write_all(format!("{reply}\n").as_bytes());
        }
    });
    AgentState::new(path.to_string_lossy().into_owned(), None)
}

#[tokio::test]
async fn control_api_errors_become_http_statuses() {
    let st = fake_rvsd(
        r#"{"kind":"error","data":{"kind":"exists","message":"Service already exists"}}"#,
    );
    let (s, v) = send(&st, "POST", "/v2/vs", SVC, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        (v["error"].as_str(), v["message"].as_str()),
        (Some("exists"), Some("Service already exists"))
    );
    let st =
        fake_rvsd(r#"{"kind":"error","data":{"kind":"not_found","message":"No such service"}}"#);
    let (s, _) = send(&st, "DELETE", "/v2/vs/10.0.0.100-80-tcp", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let st = fake_rvsd(
        r#"{"kind":"error","data":{"kind":"invalid","message":"unknown scheduler 'x'"}}"#,
    );
    let (s, v) = send(&st, "POST", "/v2/vs", SVC, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    let st = fake_rvsd(r#"{"kind":"ok"}"#);
    let (s, _) = send(&st, "POST", "/v2/vs", SVC, None).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = send(&st, "GET", "/v2/vs", "", None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "an ok is not a service list");
    let st = fake_rvsd(r#"{"kind":"services","data":[]}"#);
    let (s, v) = send(&st, "GET", "/v2/vs/10.0.0.100-80-tcp", "", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
    let (s, v) = send(&st, "GET", "/v2/vs", "", None).await;
    assert_eq!((s, v), (StatusCode::OK, serde_json::json!([])));
}
