mod policy;
mod probe;
mod retry;
mod runner;

use crate::conf::{parse_str, Config};

/// The configuration in `text` (panics with the error otherwise).
fn cfg(text: &str) -> Config {
    parse_str(text, "keepalived.conf")
        .expect("config parses")
        .config
}

/// A virtual server 10.0.0.100:80 with `body` inside.
fn vs(body: &str) -> Config {
    cfg(&format!(
        "virtual_server 10.0.0.100 80 {{\n lb_algo rr\n lb_kind NAT\n{body}\n}}\n"
    ))
}
