//! What rvsd does to the ports it takes, when things go wrong: a crash
//! (SIGKILL) must not leave a port black-holed (`rvsd --release`, or the
//! next start, gives it back), and a second rvsd on a taken port must be
//! refused without touching the first one's port.

use std::process::{Command, Output};
use std::time::Duration;

use rvs_e2e::topo::{Rvsd, RvsdOpts, TwoArm};
use rvs_e2e::{bin, run};

const V4: &str = "10.0.0.250/16";
const V6: &str = "fd00::250/64";

fn tools() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft", "ping"]);
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A two-arm lab whose `wan` port has kernel addresses of both families.
fn lab() -> TwoArm {
    let t = TwoArm::new(&RvsdOpts {
        lb_addrs: vec![("wan".into(), V4.into()), ("wan".into(), V6.into())],
        ..Default::default()
    });
    t.tutorial_fnat();
    t
}

fn addrs(t: &TwoArm, dev: &str) -> String {
    let o = t.lab.exec("lb", &["ip", "-o", "addr", "show", "dev", dev]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tables(t: &TwoArm) -> String {
    let o = t.lab.exec("lb", &["nft", "list", "tables"]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rvsd --release IFACE` in the lab's `lb` namespace, with the lab rvsd's
/// run directory.
fn release(t: &TwoArm, iface: &str) -> Output {
    let o = Command::new("ip")
        .args(["netns", "exec", &t.lab.ns("lb")])
        .arg(bin("rvsd"))
        .args(["--release", iface])
        .env("RVS_RUN_DIR", &t.run_dir)
        .output()
        .expect("rvsd --release");
    let (out, err) = text(&o);
    println!(
        "$ rvsd --release {iface} -> exit {:?}\n{out}{err}",
        o.status.code()
    );
    o
}

/// The kernel of `lb` answers a ping from the client on `wan`'s address:
/// one of 3 probes 0.2 s apart (the first may go to an address just given
/// back, before the client's ARP entry for it, failed while the port was
/// taken, is resolved again: CI saw that once).
fn kernel_answers(t: &TwoArm) -> bool {
    t.lab
        .exec(
            "client",
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.250"],
        )
        .status
        .success()
}

fn forwards(t: &TwoArm) {
    for _ in 0..2 {
        let body = t
            .lab
            .curl("client", "http://10.0.0.100/")
            .unwrap_or_else(|e| panic!("curl through the VIP: {e}\nrvsd log:\n{}", t.rvsd_log()));
        assert!(body.contains("192.168.100.200"), "{body}");
    }
}

fn sigkill(t: &mut TwoArm) {
    t.rvsd_proc().signal("KILL");
    assert!(
        t.rvsd_proc().wait_exit(Duration::from_secs(5)).is_some(),
        "rvsd survived SIGKILL"
    );
    // What a crash leaves: the addresses off the port, the drop table on it.
    assert!(!addrs(t, "wan").contains(V4), "{}", addrs(t, "wan"));
    assert!(tables(t).contains("rvs_wan"), "{}", tables(t));
}

#[test]
fn rvsd_release_gives_back_a_port_a_killed_rvsd_left() {
    tools();
    let mut t = lab();
    forwards(&t);
    // While rvsd runs, --release is refused, naming it, and changes nothing.
    let pid = t.rvsd_proc().pid();
    let o = release(&t, "wan");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(tables(&t).contains("rvs_wan"), "{}", tables(&t));
    forwards(&t);

    sigkill(&mut t);
    assert!(!kernel_answers(&t), "the dead rvsd's table still drops");
    let o = release(&t, "wan");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for want in [V4, V6, "rvs_wan", &format!("pid {pid}")] {
        assert!(
            out.contains(want),
            "the message says what was done ({want}): {out}"
        );
    }
    let a = addrs(&t, "wan");
    assert!(
        a.contains(V4) && a.contains(V6),
        "addresses not restored: {a}"
    );
    assert!(!tables(&t).contains("rvs_wan"), "{}", tables(&t));
    let v6off = t
        .lab
        .must_in("lb", &["cat", "/proc/sys/net/ipv6/conf/wan/disable_ipv6"]);
    assert_eq!(v6off.trim(), "0", "IPv6 is back on the port");
    assert!(kernel_answers(&t), "the kernel answers on the port again");

    // Twice is harmless; the other port (no address) is given back too.
    let o = release(&t, "wan");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).0.contains("nothing to give back"),
        "{:?}",
        text(&o)
    );
    let o = release(&t, "lan");
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("no kernel address"), "{:?}", text(&o));
    assert!(!tables(&t).contains("rvs_"), "{}", tables(&t));
}

#[test]
fn a_new_rvsd_after_a_kill_takes_the_port_and_gives_the_original_addresses_back() {
    tools();
    let mut t = lab();
    forwards(&t);
    let dead = t.rvsd_proc().pid();
    sigkill(&mut t);

    // The same configuration again (without adding the addresses again).
    t.rvsd = Rvsd::start(
        &mut t.lab,
        &[("dpdk0", "lan"), ("dpdk1", "wan")],
        &RvsdOpts::default(),
    );
    let log = t.rvsd_log();
    assert!(
        log.contains(&format!("gave back what rvsd pid {dead} left")),
        "{log}"
    );
    assert!(!addrs(&t, "wan").contains(V4), "{}", addrs(&t, "wan"));
    assert!(tables(&t).contains("rvs_wan"), "{}", tables(&t));
    t.tutorial_fnat();
    forwards(&t);

    t.rvsd_proc().signal("TERM");
    let code = t.rvsd_proc().wait_exit(Duration::from_secs(10));
    println!("rvsd exit: {code:?}\nlog:\n{}", t.rvsd_log());
    assert_eq!(code, Some(0));
    let a = addrs(&t, "wan");
    assert!(
        a.contains(V4) && a.contains(V6),
        "the addresses the port had before the first rvsd must come back: {a}"
    );
    assert!(!tables(&t).contains("rvs_"), "{}", tables(&t));
    assert!(kernel_answers(&t));
}

#[test]
fn a_second_rvsd_on_a_taken_port_is_refused_and_the_first_keeps_it() {
    tools();
    let mut t = lab();
    forwards(&t);
    let a_pid = t.rvsd_proc().pid();
    let before = tables(&t);
    let sock_b = t.lab.dir.join("b.sock").to_string_lossy().into_owned();
    let conf = t.conf.to_string_lossy().into_owned();
    let rvsd = bin("rvsd").to_string_lossy().into_owned();
    let run_dir = t.run_dir.clone();
    let b = t.lab.spawn(
        "lb",
        "rvsd-b",
        &[&rvsd, "-c", &conf],
        &[("RVS_SOCKET", &sock_b), ("RVS_RUN_DIR", &run_dir)],
    );
    let code = t.lab.proc(b).wait_exit(Duration::from_secs(10));
    let log = t.lab.proc(b).log();
    println!("second rvsd -> exit {code:?}\n{log}");
    assert_eq!(code, Some(1), "the second rvsd must stop: {log}");
    assert!(log.contains(&format!("pid {a_pid}")), "{log}");
    assert!(t.rvsd_proc().alive(), "the first rvsd died");
    assert_eq!(tables(&t), before, "the first rvsd's tables changed");
    assert!(!addrs(&t, "wan").contains(V4), "{}", addrs(&t, "wan"));
    assert!(
        !kernel_answers(&t),
        "the kernel answers on the first rvsd's port"
    );
    forwards(&t);
    assert!(t.ok("rvsadm", &["-ln"]).contains("10.0.0.100:80"));
}

#[test]
fn interface_names_the_kernel_refuses_are_refused_with_file_line_and_key() {
    tools();
    let lab = rvs_e2e::Lab::new();
    let f = lab.file(
        "bad.toml",
        "workers = 1\n\n[[netif]]\nname = \"dpdk0\"\niface = \"eth0\\\";drop\"\n",
    );
    let p = f.to_string_lossy().into_owned();
    let o = run(&[bin("rvsd").to_str().unwrap_or("rvsd"), "-c", &p]);
    let (_, err) = text(&o);
    println!("rvsd -c bad.toml -> exit {:?}: {err}", o.status.code());
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains(&format!("{p}:5: netif iface = ")), "{err}");
    assert!(err.contains("'\"' cannot appear"), "{err}");
    let o = run(&[bin("rvsd").to_str().unwrap_or("rvsd"), "--release", "../x"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("'/' cannot appear"), "{err}");
}
