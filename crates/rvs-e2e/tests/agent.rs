//! rvs-agent, the REST API, against a real rvsd: a service and a real
//! server added over HTTP and seen by `rvsadm -ln`, listed over HTTP, bad
//! requests answered 4xx naming what was wrong, the bearer token required
//! off loopback, a unix-socket listener, and 503 once rvsd is gone.

use std::time::{Duration, Instant};

use rvs_e2e::bin;
use rvs_e2e::topo::{Rvsd, RvsdOpts};
use rvs_e2e::Lab;

/// curl in the lab's `lb` namespace: (HTTP status, body).
fn http(
    lab: &Lab,
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut cmd = vec![
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ];
    if let Some(a) = &auth {
        cmd.extend(["-H", a.as_str()]);
    }
    if let Some(b) = body {
        cmd.extend(["-H", "Content-Type: application/json", "--data-raw", b]);
    }
    cmd.push(url);
    let o = lab.exec("lb", &cmd);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Starts rvs-agent in `lb` with `args`; waits until `url` answers (any status).
fn agent(lab: &mut Lab, name: &str, args: &[&str], url: &str) -> usize {
    let exe = bin("rvs-agent").to_string_lossy().into_owned();
    let mut cmd = vec![exe.as_str()];
    cmd.extend_from_slice(args);
    let i = lab.spawn("lb", name, &cmd, &[]);
    let end = Instant::now() + Duration::from_secs(10);
    while http(lab, "GET", url, None, None).0 == 0 {
        assert!(lab.proc(i).alive(), "{name} exited: {}", lab.proc(i).log());
        assert!(
            Instant::now() < end,
            "{name} did not answer: {}",
            lab.proc(i).log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    i
}

const API: &str = "http://127.0.0.1:8082/v2";
const SVC: &str = r#"{"key":{"vs":{"proto":"tcp","vip":"10.0.0.100","port":80}},"sched":"wrr"}"#;
const RS: &str = r#"{"addr":"192.168.100.2","port":8080,"weight":3,"forward":"fnat","u_threshold":0,"l_threshold":0}"#;

/// A bad request: its status, and the error body's field and message.
fn refused(lab: &Lab, method: &str, url: &str, body: &str) -> (u16, String, String) {
    let (code, b) = http(lab, method, url, Some(body), None);
    let v = json(&b);
    let field = v["field"].as_str().unwrap_or("").to_string();
    (code, field, v["message"].as_str().unwrap_or("").to_string())
}

#[test]
fn rest_api_sets_lists_refuses_and_guards() {
    rvs_e2e::require_tools(&["ip", "curl"]);
    let mut lab = Lab::new();
    lab.add_ns("lb");
    lab.add_ns("peer");
    lab.veth("peer", "eth0", "lb", "wan");
    let rvsd = Rvsd::start(&mut lab, &[("dpdk0", "wan")], &RvsdOpts::default());
    let sock = rvsd.socket.clone();
    agent(
        &mut lab,
        "agent",
        &["--socket", &sock],
        &format!("{API}/status"),
    );

    // Set over REST, seen by rvsadm.
    let (code, body) = http(&lab, "POST", &format!("{API}/vs"), Some(SVC), None);
    assert_eq!(code, 201, "{body}");
    let rs_url = format!("{API}/vs/10.0.0.100-80-tcp/rs");
    let (code, body) = http(&lab, "POST", &rs_url, Some(RS), None);
    assert_eq!(code, 201, "{body}");
    let ln = rvsd.ok("rvsadm", &["-ln"]);
    assert!(ln.contains("TCP  10.0.0.100:80 wrr"), "{ln}");
    assert!(
        ln.lines().any(|l| l.contains("192.168.100.2:8080")
            && l.contains("FullNat")
            && l.contains(" 3 ")),
        "{ln}"
    );

    // Listed over REST.
    let (code, body) = http(&lab, "GET", &format!("{API}/vs"), None, None);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v[0]["spec"]["sched"], "wrr", "{v}");
    assert_eq!(v[0]["spec"]["key"]["vs"]["vip"], "10.0.0.100", "{v}");
    assert_eq!(v[0]["dests"][0]["spec"]["addr"], "192.168.100.2", "{v}");
    assert_eq!(v[0]["dests"][0]["spec"]["weight"], 3, "{v}");
    let (code, body) = http(&lab, "GET", &rs_url, None, None);
    assert_eq!(
        (code, json(&body)[0]["spec"]["port"].as_u64()),
        (200, Some(8080)),
        "{body}"
    );
    let (code, body) = http(&lab, "GET", &format!("{API}/conn?limit=10"), None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["conns"], serde_json::json!([]), "{body}");

    // Bad requests: 4xx with the field and what was wrong.
    let vs = format!("{API}/vs");
    let (c, f, m) = refused(&lab, "POST", &vs, r#"{"key":{"vs":"#);
    assert_eq!((c, f.as_str()), (400, "body"), "{m}");
    assert!(m.starts_with("malformed JSON body"), "{m}");
    let (c, _, m) = refused(
        &lab,
        "POST",
        &vs,
        &SVC.replace("10.0.0.100", "10.0.0.101")
            .replace("wrr", "lblcx"),
    );
    assert_eq!(c, 400, "{m}");
    assert!(m.contains("unknown scheduler 'lblcx'"), "{m}");
    let (c, f, m) = refused(
        &lab,
        "POST",
        &rs_url,
        &RS.replace(r#""forward":"fnat","#, ""),
    );
    assert_eq!((c, f.as_str()), (400, "forward"), "{m}");
    assert!(m.contains("missing field `forward`"), "{m}");
    let (c, f, m) = refused(
        &lab,
        "POST",
        &rs_url,
        &RS.replace("192.168.100.2", "192.168.100.300"),
    );
    assert_eq!((c, f.as_str()), (400, "addr"), "{m}");
    let (c, f, m) = refused(&lab, "POST", &format!("{API}/vs/10.0.0.100-80-sctp/rs"), RS);
    assert_eq!((c, f.as_str()), (400, "service"), "{m}");
    assert!(m.contains("\"sctp\" is not tcp or udp"), "{m}");
    let (c, _, m) = refused(&lab, "POST", &vs, SVC);
    assert_eq!(c, 409, "{m}");
    let (c, _, m) = refused(&lab, "DELETE", &format!("{API}/vs/10.0.0.100-81-tcp"), "");
    assert_eq!(c, 404, "{m}");
    assert!(
        !rvsd.ok("rvsadm", &["-ln"]).contains("10.0.0.101"),
        "a refused request changed nothing"
    );

    // Deleted over REST.
    let (code, body) = http(
        &lab,
        "DELETE",
        &format!("{rs_url}/192.168.100.2-8080"),
        None,
        None,
    );
    assert_eq!(code, 204, "{body}");
    assert!(!rvsd.ok("rvsadm", &["-ln"]).contains("192.168.100.2"));

    // Off loopback: refused without a token, and then every request needs it.
    let exe = bin("rvs-agent").to_string_lossy().into_owned();
    let open = lab.spawn(
        "lb",
        "agent-open",
        &[&exe, "--socket", &sock, "--listen", "0.0.0.0:8083"],
        &[],
    );
    assert_eq!(lab.proc(open).wait_exit(Duration::from_secs(5)), Some(1));
    let log = lab.proc(open).log();
    assert!(
        log.contains("refusing to listen on 0.0.0.0:8083") && log.contains("--token-file"),
        "{log}"
    );
    let token = "e2e-token-0123456789abcdef";
    let tf = lab.file("agent.token", &format!("{token}\n"));
    let tf = tf.to_string_lossy().into_owned();
    let guarded = "http://127.0.0.1:8083/v2/vs";
    agent(
        &mut lab,
        "agent-token",
        &[
            "--socket",
            &sock,
            "--listen",
            "0.0.0.0:8083",
            "--token-file",
            &tf,
        ],
        guarded,
    );
    let (code, body) = http(&lab, "GET", guarded, None, None);
    assert_eq!(
        (code, json(&body)["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert_eq!(
        http(&lab, "GET", guarded, None, Some("wrong-token-0123456789")).0,
        401
    );
    let (code, body) = http(&lab, "GET", guarded, None, Some(token));
    assert_eq!(code, 200, "{body}");

    // On a unix socket, root's only.
    let us = lab.dir.join("agent.sock").to_string_lossy().into_owned();
    let u = lab.spawn(
        "lb",
        "agent-unix",
        &[&exe, "--socket", &sock, "--listen", &format!("unix:{us}")],
        &[],
    );
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let o = lab.exec(
            "lb",
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                "--unix-socket",
                &us,
                "http://agent/v2/status",
            ],
        );
        if o.status.success() {
            break json(&String::from_utf8_lossy(&o.stdout));
        }
        assert!(
            lab.proc(u).alive() && Instant::now() < end,
            "agent-unix: {}",
            lab.proc(u).log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["workers"], 1, "{status}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&us).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "agent socket mode {mode:o}");

    // rvsd gone: 503 saying so.
    let i = rvsd.index;
    lab.proc(i).signal("TERM");
    assert!(
        lab.proc(i).wait_exit(Duration::from_secs(10)).is_some(),
        "rvsd did not stop"
    );
    let (code, body) = http(&lab, "GET", &format!("{API}/vs"), None, None);
    assert_eq!(code, 503, "{body}");
    let m = json(&body)["message"].as_str().unwrap_or("").to_string();
    assert!(
        m.contains("cannot connect to rvsd") && m.contains("is rvsd running?"),
        "{m}"
    );
}
