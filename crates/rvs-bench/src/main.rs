//! rvs-bench: benchmarks of rvs.
//!
//! `rvs-bench pipeline [--json]` measures the real packet pipeline in memory on
//! one core (see BENCHMARKS.md for figures and how to read them).
#![forbid(unsafe_code)]

mod pipeline;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rvs-bench",
    version,
    about = "Benchmarks of the rvs load balancer"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The packet pipeline in memory, one core, 64-byte TCP frames.
    Pipeline(pipeline::Args),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Pipeline(a) => pipeline::run(a),
    };
    std::process::exit(code);
}
