use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::vs;
use crate::check::runner::{checker_plans, describe, spawn};
use crate::check::{HealthState, Status};

#[test]
fn checker_thread_reports_down_then_up_on_its_timer() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let cfg = vs(&format!(
        " delay_loop 0.05\n real_server 127.0.0.1 {} {{\n TCP_CHECK {{\n connect_timeout 0.2\n retry 1\n delay_before_retry 0.02\n warmup 0.02\n }}\n }}\n real_server 127.0.0.2 1 {{\n SSL_GET {{\n url {{\n path /\n }}\n }}\n }}",
        addr.port()
    ));
    let (health, notes) = HealthState::new(&cfg);
    assert!(notes.is_empty());
    let (plans, warnings) = checker_plans(&cfg, &health);
    assert_eq!(plans.len(), 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("SSL_GET is not run"), "{warnings:?}");
    let (tx, rx) = mpsc::channel();
    let checkers = spawn(plans, tx).unwrap();
    // Up from the start: nothing to report while the server answers.
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    drop(l);
    let t = Instant::now();
    let ev = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("a Down event");
    assert_eq!(
        (ev.vs, ev.rs, ev.checker, ev.status),
        (0, 0, 0, Status::Down)
    );
    assert!(
        ev.detail
            .starts_with(&format!("TCP connection to {addr} failed")),
        "{}",
        ev.detail
    );
    assert!(describe(&cfg, &ev).starts_with(&format!(
        "checker 0 of real server 127.0.0.1 port {}: down (TCP connection",
        addr.port()
    )));
    // Within one delay_loop plus the retry (and scheduling slack).
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let _l = TcpListener::bind(addr).unwrap();
    let ev = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("an Up event");
    assert_eq!(ev.status, Status::Up);
    let t = Instant::now();
    checkers.stop();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        t.elapsed()
    );
}
