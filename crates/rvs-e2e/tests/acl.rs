//! Allow and deny lists on the tutorial's FNAT service, changed live with
//! rvsadm and rvsip: a denied client's curl fails and is counted, an
//! allowed one is served, and deleting the rule lets the client back in.

use rvs_e2e::topo::{RvsdOpts, TwoArm};

/// curl from `src` (an address of the client namespace) to the VIP.
fn curl_from(t: &TwoArm, src: &str) -> Result<String, String> {
    let o = t.lab.exec(
        "client",
        &[
            "curl",
            "-sS",
            "--interface",
            src,
            "--connect-timeout",
            "2",
            "--max-time",
            "4",
            "http://10.0.0.100/",
        ],
    );
    match o.status.success() {
        true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
    }
}

#[track_caller]
fn served(t: &TwoArm, src: &str) {
    if let Err(e) = curl_from(t, src) {
        panic!("curl from {src} failed: {e}\nrvsd log:\n{}", t.rvsd_log());
    }
}

#[track_caller]
fn refused(t: &TwoArm, src: &str) {
    if let Ok(body) = curl_from(t, src) {
        panic!("curl from {src} was served: {body}");
    }
}

/// The count of drop reason `why` in `rvsip -s link show` (summed over ports).
fn drops(t: &TwoArm, why: &str) -> u64 {
    let out = t.ok("rvsip", &["-s", "link", "show"]);
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{why}: ")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// The HITS column of the `--get-*lst --stats` row whose subject is `subject`.
fn hits(listing: &str, subject: &str) -> u64 {
    listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.get(2) == Some(&subject))
        .and_then(|w| w.last().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no row for {subject}:\n{listing}"))
}

#[test]
fn blacklist_whitelist_and_ipsets_live() {
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let t = TwoArm::new(&RvsdOpts::default());
    t.tutorial_fnat();
    let o = t.lab.exec(
        "client",
        &["ip", "addr", "add", "10.0.0.49/16", "dev", "eth0"],
    );
    assert!(o.status.success(), "second client address");
    served(&t, "10.0.0.48");
    served(&t, "10.0.0.49");

    // A per-service blacklist entry: 10.0.0.49 is refused, 10.0.0.48 served.
    t.ok(
        "rvsadm",
        &["--add-blklst", "-t", "10.0.0.100:80", "-k", "10.0.0.49"],
    );
    refused(&t, "10.0.0.49");
    served(&t, "10.0.0.48");
    let l = t.ok("rvsadm", &["--get-blklst", "--stats"]);
    println!("$ rvsadm --get-blklst --stats\n{l}");
    assert!(l.starts_with("PROTO    VIP:VPORT"), "{l}");
    assert!(hits(&l, "10.0.0.49") >= 1, "{l}");
    let denied = drops(&t, "acl_deny");
    assert!(denied >= 1, "acl_deny not counted");

    // Deleted live: the client is served again.
    t.ok(
        "rvsadm",
        &["--del-blklst", "-t", "10.0.0.100:80", "-k", "10.0.0.49"],
    );
    served(&t, "10.0.0.49");

    // A whitelist through an ipset: only its members get in.
    t.ok("rvsip", &["ipset", "create", "friends", "hash:net"]);
    t.ok("rvsip", &["ipset", "add", "friends", "10.0.0.48/32"]);
    t.ok(
        "rvsadm",
        &["--add-whtlst", "-t", "10.0.0.100:80", "-2", "ipset:friends"],
    );
    served(&t, "10.0.0.48");
    refused(&t, "10.0.0.49");
    assert!(drops(&t, "acl_not_allowed") >= 1);
    let w = t.ok("rvsadm", &["--get-whtlst", "--stats"]);
    println!("$ rvsadm --get-whtlst --stats\n{w}");
    assert!(hits(&w, "ipset:friends") >= 1, "{w}");
    let set = t.ok("rvsip", &["ipset", "list", "friends"]);
    println!("$ rvsip ipset list friends\n{set}");
    assert!(set.contains("Type: hash:net"), "{set}");
    assert!(set.contains("References: 1"), "{set}");
    assert!(set.lines().any(|l| l == "10.0.0.48/32"), "{set}");
    // Growing the set lets 10.0.0.49 in, with no rule change.
    t.ok("rvsip", &["ipset", "add", "friends", "10.0.0.49"]);
    served(&t, "10.0.0.49");
    assert_eq!(
        t.ok("rvsip", &["ipset", "test", "friends", "10.0.0.49"]),
        "true\n"
    );

    // A global blacklist (no -t) applies to the service too; deny wins.
    t.ok("rvsadm", &["--add-blklst", "-k", "10.0.0.48"]);
    refused(&t, "10.0.0.48");
    served(&t, "10.0.0.49");
    assert!(drops(&t, "acl_deny") > denied);

    // -S writes the rules; destroying a set in use is refused with a reason.
    let saved = t.ok("rvsadm", &["-S", "-n"]);
    println!("$ rvsadm -S -n\n{saved}");
    assert!(saved.contains("--add-blklst -k 10.0.0.48\n"), "{saved}");
    assert!(
        saved.contains("--add-whtlst -t 10.0.0.100:80 -2 ipset:friends\n"),
        "{saved}"
    );
    let o = t.rvsip(&["ipset", "destroy", "friends"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("in use"), "{err}");

    // A large set through `restore` (batches under the request line limit),
    // then `save` gives it back.
    let mut text = String::from("create big hash:ip maxelem 200000\n");
    for i in 0..100_000u32 {
        text.push_str(&format!(
            "add big 10.{}.{}.{}\n",
            100 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        ));
    }
    let mut child = std::process::Command::new(rvs_e2e::bin("rvsip"))
        .args(["ipset", "restore"])
        .env("RVS_SOCKET", &t.socket)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rvsip ipset restore");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the sets");
    let o = child.wait_with_output().expect("rvsip ipset restore");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let big = t.ok("rvsip", &["ipset", "list", "big"]);
    assert!(
        big.contains("Number of entries: 100000"),
        "{}",
        &big[..300.min(big.len())]
    );
    assert_eq!(
        t.ok("rvsip", &["ipset", "test", "big", "10.101.134.159"]),
        "true\n"
    );
    let saved = t.ok("rvsip", &["ipset", "save", "big"]);
    assert_eq!(saved.lines().count(), 100_001);
}
