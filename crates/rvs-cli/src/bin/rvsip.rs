//! rvsip: dpip's command line for rvsd.

use rvs_cli::client::{report, SocketTransport};
use rvs_cli::ip;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = ip::parse_args(&args)
        .and_then(|cmd| ip::execute(&cmd, &mut SocketTransport::from_env("rvsip")));
    std::process::exit(report(result));
}
