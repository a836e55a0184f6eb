//! The command line: `-t` checks a file as keepalived does (exit 0 when
//! usable, 2 when not, diagnostics with file:line:keyword), and a file
//! that cannot be used stops the daemon before it touches anything.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvs-keepalived"))
        .args(args)
        .output()
        .expect("run rvs-keepalived")
}

fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rvs-ka-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn test_mode_accepts_the_tutorial_and_warns_on_unknown_keywords() {
    let tutorial = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tutorial-master.conf");
    let o = run(&["-t", "-f", tutorial]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = std::fs::read_to_string(tutorial).unwrap() + "frobnicate 1\n";
    let f = write("unknown.conf", &text);
    let o = run(&["-t", "-f", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let line = text.lines().count();
    assert!(
        err.contains(&format!("unknown.conf:{line}: frobnicate")),
        "{err}"
    );
}

#[test]
fn test_mode_exits_2_naming_file_line_keyword() {
    let f = write(
        "bad.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n}\n",
    );
    let o = run(&["-t", "-f", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.conf:3: virtual_router_id"), "{err}");
}

#[test]
fn test_mode_checks_instance_values_too() {
    // Parses, but an address owner (priority 255) may not track with a
    // weight: the state machine refuses it.
    let f = write(
        "owner.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority 255\n track_interface {\n eth1 weight 10\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n",
    );
    let o = run(&["-t", "-f", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("owner.conf:1: vrrp_instance VI_1: weight:"),
        "{err}"
    );
}

#[test]
fn missing_file_and_bad_options_exit_2() {
    let o = run(&[
        "-f",
        "/nonexistent/keepalived.conf",
        "-p",
        "/nonexistent/pid",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("/nonexistent/keepalived.conf"), "{err}");
    let o = run(&["-x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option -x"));
}
