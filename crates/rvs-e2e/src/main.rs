//! rvs-lab: `rvs-lab demo` builds the DPVS tutorial's FNAT two-arm example in
//! network namespaces (client, rvs, two nginx real servers), applies the
//! tutorial's commands, curls the VIP, then a second service with the PROXY
//! protocol (nginx printing the client's real address), and shows `rvsadm -ln`, `rvsadm -G` and
//! `rvsip addr show`. Everything it creates is removed when it exits.
use rvs_e2e::topo::{RvsdOpts, TwoArm};

fn main() {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    if cmd != "demo" {
        eprintln!("usage: rvs-lab demo");
        std::process::exit(2);
    }
    rvs_e2e::require_tools(&["ip", "nginx", "curl", "nft"]);
    let mut t = TwoArm::new(&RvsdOpts::default());
    println!(
        "# lab {}: client 10.0.0.48 -- [dpdk1 rvs dpdk0] -- rs1 192.168.100.2, rs2 192.168.100.3",
        t.lab.id
    );
    println!("# applying the tutorial's FNAT two-arm commands");
    t.tutorial_fnat();
    for _ in 0..4 {
        match t.lab.curl("client", "http://10.0.0.100/") {
            Ok(body) => print!("client$ curl 10.0.0.100\n{body}"),
            Err(e) => {
                eprintln!("curl failed: {e}\nrvsd log:\n{}", t.rvsd_log());
                std::process::exit(1);
            }
        }
    }
    // The tutorial's nginx has the TOA module; this one reads the client's
    // address from a PROXY protocol header instead (no kernel module).
    println!("# the client's address through the PROXY protocol: rs1/rs2 nginx `listen 8080 proxy_protocol`");
    for rs in ["rs1", "rs2"] {
        t.lab.nginx_proxy_protocol(rs, rs, 8080);
    }
    println!("$ rvsadm -A -t 10.0.0.100:8080 -s rr --proxy-protocol v2 (and -a ... -b, --add-laddr as for port 80)");
    t.proxy_protocol_service(8080, "v2");
    for _ in 0..2 {
        match t.lab.curl("client", "http://10.0.0.100:8080/") {
            Ok(body) => print!("client$ curl 10.0.0.100:8080\n{body}"),
            Err(e) => {
                eprintln!("curl failed: {e}\nrvsd log:\n{}", t.rvsd_log());
                std::process::exit(1);
            }
        }
    }
    for (tool, args) in [
        ("rvsadm", vec!["-ln"]),
        ("rvsadm", vec!["-G"]),
        ("rvsip", vec!["addr", "show"]),
    ] {
        println!("$ {tool} {}", args.join(" "));
        print!("{}", t.ok(tool, &args));
    }
}
