//! `wallet-loadtest`: drives the wallet API, reports throughput and latency, and verifies that
//! every balance is exact afterwards and, when asked, that the service's event stream showed
//! every change in order. Exits non-zero on any error answer or discrepancy.

mod amqp;
mod api;
mod app;
mod cli;
mod events;
mod plot;
mod progress;
mod report;
mod runner;
mod setup;
mod stats;
mod verify;
mod workload;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(error) = cli.validate() {
        cli::Cli::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("{error:#}"),
            )
            .exit();
    }
    let runtime = if cli.threads.get() == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads.get())
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(app::run(cli)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
