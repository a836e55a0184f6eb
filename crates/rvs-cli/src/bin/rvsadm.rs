//! rvsadm: ipvsadm's command line for rvsd.

use rvs_cli::adm;
use rvs_cli::client::{report, SocketTransport};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = adm::parse_args(&args).and_then(|cmd| {
        if let adm::AdmCommand::Capture { spec, out } = &cmd {
            return adm::capture::run(spec, out, &rvs_api::socket_path());
        }
        let mut transport = SocketTransport::from_env("rvsadm");
        adm::execute(&cmd, &mut transport, &mut std::io::stdin().lock())
    });
    std::process::exit(report(result));
}
