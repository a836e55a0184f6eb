//! rvs-bench: benchmarks of rvs.
//!
//! `rvs-bench pipeline [--json]` measures the real packet pipeline in memory on
//! one core, or on N cores side by side with `--workers N` (see BENCHMARKS.md
//! for figures and how to read them).
//!
//! `rvs-bench e2e [--json]` (root) measures rvs side by side with kernel
//! forwarding, nftables and HAProxy on veth pairs between network namespaces
//! it creates and removes: packet rate, HTTP, memory and startup time, and
//! (`--cases restart`) what an event on rvsd costs clients (issue 14).
//!
//! `rvs-bench listing` (root) measures the longest forwarding pause a 1 ms
//! UDP probe sees while `rvsadm -ln` and `rvsadm -lnc` list a large table.
//!
//! `rvs-bench flood` (root) measures wrk through the tutorial's FNAT service
//! while bounded floods (SYN, ACK, UDP, fragments, one source) run.
//!
//! `rvs-bench survival` (root) measures the share of established connections
//! that survive an ECMP reshuffle, with and without active-active sync.
//!
//! `rvs-bench handover` measures the state transfer of a hot upgrade per
//! connection (export and encode, decode and install), in memory.
#![forbid(unsafe_code)]

mod e2e;
mod flood;
mod handover;
mod listing;
mod pipeline;
mod pipeline_ab;
mod pipeline_acl;
mod pipeline_churn;
mod pipeline_drive;
mod pipeline_fam;
mod pipeline_mem;
mod pipeline_tx;
mod pipeline_workers;
mod survival;

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
    /// The packet pipeline in memory, one core (or N: `--workers`), 64-byte TCP frames.
    Pipeline(pipeline::Args),
    /// rvs, kernel forwarding, nftables and HAProxy on real interfaces (root).
    E2e(e2e::Args),
    /// Forwarding pauses while `rvsadm -ln` and `-lnc` list a large table (root).
    Listing(listing::Args),
    /// wrk through the tutorial's FNAT service under bounded floods (root).
    Flood(flood::Args),
    /// Established connections surviving an ECMP reshuffle (node join, node leave) (root).
    Survival(survival::Args),
    /// The keep-alive client `survival` runs in its client namespace.
    #[command(hide = true)]
    SurvivalClient(survival::client::ClientArgs),
    /// The connection filler `listing` runs in its client namespace.
    #[command(hide = true)]
    ListingFill(listing::FillArgs),
    /// The 1 ms UDP probe `listing` runs in its client namespace.
    #[command(hide = true)]
    ListingProbe(listing::ProbeArgs),
    /// The flood generator `flood` runs in its attacker namespace.
    #[command(hide = true)]
    FloodGen(flood::gen::GenArgs),
    /// The UDP generator `e2e` runs in its client namespace.
    #[command(hide = true)]
    E2eGen(e2e::GenArgs),
    /// The UDP receiver `e2e` runs in a real server's namespace.
    #[command(hide = true)]
    E2eSink(e2e::SinkArgs),
    /// The hot upgrade's state transfer per connection, in memory.
    Handover(handover::Args),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Pipeline(a) => pipeline::run(a),
        Cmd::E2e(a) => e2e::run(a),
        Cmd::Listing(a) => listing::run(a),
        Cmd::Flood(a) => flood::run(a),
        Cmd::FloodGen(a) => flood::gen::gen(a),
        Cmd::Survival(a) => survival::run(a),
        Cmd::SurvivalClient(a) => survival::client::run(a),
        Cmd::ListingFill(a) => listing::fill(a),
        Cmd::ListingProbe(a) => listing::probe(a),
        Cmd::E2eGen(a) => e2e::gen(a),
        Cmd::E2eSink(a) => e2e::sink(a),
        Cmd::Handover(a) => handover::run(a),
    };
    std::process::exit(code);
}
