//! The `vestibule` command: the ingress controller (`serve`), a view of the routes a manifest
//! directory translates to (`routes`), the ingress-nginx migration report (`check`), and a demo
//! backend (`echo`).

mod check;
mod cli;
mod cluster;
mod control;
mod control_metrics;
mod routes;
mod serve;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use std::num::NonZeroUsize;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// mimalloc rather than glibc's malloc: about 7% less CPU per proxied request (see
/// bench/RESULTS.md), as a request still allocates a dozen times in hyper and its client.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a thread that scanned or translated a configuration waits for more such work before
/// it exits (tokio's default is 10 s). The allocator hands memory freed on any thread back to the
/// system when its purge delay (1 s) has passed and a page is next freed; a large configuration
/// frees tens of MiB while it is read and replaced, and these threads' exit is what frees pages
/// next when no request arrives. Two seconds makes that happen soon after a change settles.
const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let workers = match &cli.command {
        Command::Serve(args) => args.workers,
        Command::Echo(_) => None,
        Command::Routes(args) => return Ok(routes::run(args)),
        Command::Check(args) => return Ok(check::run(args)),
    };
    // One worker needs no work-stealing: a single-threaded runtime skips its synchronisation.
    let mut runtime = match workers.map(NonZeroUsize::get) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(workers);
            runtime
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime
        .enable_all()
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Echo(args) => {
                let listener = tokio::net::TcpListener::bind(args.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", args.listen))?;
                vestibule_echo::serve(listener, args.name).await?;
                Ok(())
            }
            // Answered above: it reads files once and needs no runtime.
            Command::Routes(_) | Command::Check(_) => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
