use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::vs;
use crate::check::probe::{md5_hex, split_words, Probe};
use crate::check::retry::Outcome;

/// The probe of the only checker of real server `rs` (e.g. `127.0.0.1 80`)
/// with checker block `checker`.
fn probe(rs: &str, checker: &str) -> Probe {
    let c = vs(&format!(" real_server {rs} {{\n {checker}\n }}"));
    let rs = &c.virtual_servers[0].real_servers[0];
    Probe::new(&rs.checkers[0], rs).expect("probe")
}

#[test]
fn tcp_check_up_on_a_listener_down_on_a_closed_port() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "TCP_CHECK {\n connect_timeout 0.5\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    drop(l);
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(
        why.starts_with(&format!("TCP connection to 127.0.0.1:{port} failed")),
        "{why}"
    );
}

#[test]
fn tcp_check_uses_connect_ip_and_connect_port() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The real server's own address is unreachable (TEST-NET-1).
    let p = probe(
        "192.0.2.1 1",
        &format!("TCP_CHECK {{\n connect_ip 127.0.0.1\n connect_port {port}\n connect_timeout 0.5\n bindto 127.0.0.1\n }}"),
    );
    assert_eq!(p.run().0, Outcome::Up);
}

/// Serves `answers.len()` HTTP connections, one answer each; sends back
/// each request's head.
fn http_server(answers: Vec<String>) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for a in answers {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
            s.write_all(a.as_bytes()).unwrap();
        }
    });
    (port, rx)
}

fn answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.0 {status}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn http_get_checks_status_and_sends_path_and_host() {
    let (port, reqs) = http_server(vec![answer("200 OK", "hi"), answer("500 Oops", "no")]);
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "HTTP_GET {\n url {\n path /health\n }\n connect_timeout 1\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    let req = reqs.recv().unwrap();
    assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
    assert!(
        req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{req}"
    );
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(why.contains("status code 500"), "{why}");
}

#[test]
fn http_get_status_code_list_and_virtualhost() {
    let (port, reqs) = http_server(vec![answer("503 Busy", ""), answer("200 OK", "")]);
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "HTTP_GET {\n url {\n path /\n status_code 301-399 503\n virtualhost www.example.com\n }\n connect_timeout 1\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    assert!(reqs
        .recv()
        .unwrap()
        .contains("\r\nHost: www.example.com\r\n"));
    assert_eq!(p.run().0, Outcome::Down, "200 is not in the list");
}

#[test]
fn http_get_digest_is_the_md5_of_the_body() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"hello\n"), "b1946ac92492d2347c6235b4d2611184");
    let (port, _reqs) = http_server(vec![
        answer("200 OK", "hello\n"),
        answer("200 OK", "changed\n"),
    ]);
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "HTTP_GET {\n url {\n path /\n digest b1946ac92492d2347c6235b4d2611184\n }\n connect_timeout 1\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(
        why.contains("is not b1946ac92492d2347c6235b4d2611184"),
        "{why}"
    );
}

#[test]
fn http_get_down_when_the_server_does_not_answer_in_time() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "HTTP_GET {\n url {\n path /\n }\n connect_timeout 0.2\n }",
    );
    let t = Instant::now();
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(why.ends_with("no complete answer within 200ms"), "{why}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(l);
}

#[test]
fn udp_check_down_on_port_unreachable_up_on_reply() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((n, from)) = echo.recv_from(&mut b) {
            let _ = echo.send_to(&b[..n], from);
        }
    });
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "UDP_CHECK {\n payload 68656c6c6f\n require_reply 6865\n connect_timeout 0.5\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let p = probe(
        &format!("127.0.0.1 {closed}"),
        "UDP_CHECK {\n connect_timeout 0.5\n }",
    );
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(why.ends_with("port unreachable"), "{why}");
}

#[test]
fn udp_check_silence_is_up_unless_a_reply_is_required() {
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = quiet.local_addr().unwrap().port();
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "UDP_CHECK {\n connect_timeout 0.1\n }",
    );
    assert_eq!(p.run().0, Outcome::Up);
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "UDP_CHECK {\n require_reply 00\n connect_timeout 0.1\n }",
    );
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Down);
    assert!(why.contains("no reply"), "{why}");
    drop(quiet);
}

#[test]
fn misc_check_exit_status() {
    let run = |c: &str| probe("127.0.0.1 80", c).run();
    assert_eq!(run("MISC_CHECK {\n misc_path /bin/true\n }").0, Outcome::Up);
    let (o, why) = run("MISC_CHECK {\n misc_path /bin/false\n }");
    assert_eq!(o, Outcome::Down);
    assert_eq!(why, "MISC_CHECK '/bin/false' exited with status 1");
    let dynamic = "MISC_CHECK {\n misc_path \"/bin/sh -c 'exit 12'\"\n misc_dynamic\n }";
    assert_eq!(run(dynamic).0, Outcome::UpWeight(10));
    let dynamic_fail = "MISC_CHECK {\n misc_path /bin/false\n misc_dynamic\n }";
    assert_eq!(run(dynamic_fail).0, Outcome::Down);
    let not_dynamic = "MISC_CHECK {\n misc_path \"/bin/sh -c 'exit 12'\"\n }";
    assert_eq!(run(not_dynamic).0, Outcome::Down);
}

#[test]
fn misc_check_is_killed_after_misc_timeout() {
    let t = Instant::now();
    let (o, why) = probe(
        "127.0.0.1 80",
        "MISC_CHECK {\n misc_path \"/bin/sleep 5\"\n misc_timeout 0.1\n }",
    )
    .run();
    assert_eq!(o, Outcome::Down);
    assert!(why.contains("timed out"), "{why}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn command_lines_split_like_keepalived() {
    assert_eq!(
        split_words(r#"/bin/sh -c "exit 3" 'a b' c\ d"#),
        vec!["/bin/sh", "-c", "exit 3", "a b", "c d"]
    );
    assert_eq!(split_words("  "), Vec::<String>::new());
}

#[test]
fn ssl_get_is_not_run() {
    let p = probe("127.0.0.1 1", "SSL_GET {\n url {\n path /\n }\n }");
    assert!(!p.is_run());
    assert_eq!(p.run().0, Outcome::Up);
}

#[test]
fn http_get_does_not_wait_for_a_server_that_keeps_the_connection_open() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 1024];
        let _ = s.read(&mut b);
        s.write_all(answer("200 OK", "hello\n").as_bytes()).unwrap();
        // Keeps the connection open until the test ends.
        let _ = rx.recv();
    });
    let p = probe(
        &format!("127.0.0.1 {port}"),
        "HTTP_GET {\n url {\n path /\n digest b1946ac92492d2347c6235b4d2611184\n }\n connect_timeout 0.3\n }",
    );
    let (o, why) = p.run();
    assert_eq!(o, Outcome::Up, "{why}");
    drop(tx);
}
