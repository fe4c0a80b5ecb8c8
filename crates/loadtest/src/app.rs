//! One run from start to verdict: listen to the event stream when asked, set up wallets,
//! generate load, summarise, verify, check the event stream, write the report files.

use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use rand::rngs::SmallRng;

use crate::amqp::Listener;
use crate::api::Api;
use crate::cli::{Cli, Distribution};
use crate::events::{self, Expectation};
use crate::report::{self, Report, Summary};
use crate::runner::{self, Plan};
use crate::workload::{WalletChoice, Workload, Zipf, new_id};
use crate::{plot, progress::Progress, setup, verify};

/// Runs everything the command line asks for; `Ok(false)` means the run completed but failed
/// (an error answer or a discrepancy), `Err` that it could not be carried out.
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let mut rng: SmallRng = rand::make_rng();
    // A mix of liveness checks alone (the ceiling measurement) needs no wallets.
    let wallets = if cli.mix.touches_wallets() {
        cli.wallets.get()
    } else {
        0
    };
    let ids = (0..wallets).map(|_| new_id(&mut rng)).collect();
    let api = Arc::new(Api::new(&cli.url, ids, cli.timeout)?);
    let choice = match cli.distribution {
        Distribution::Zipf if wallets > 0 => WalletChoice::Zipf(Zipf::new(wallets, cli.zipf_s)),
        _ => WalletChoice::Uniform { wallets },
    };
    let transfers = cli.transfer_pattern();
    let workload = Arc::new(Workload::new(
        cli.mix,
        choice,
        transfers,
        cli.amount_min..=cli.amount_max,
        cli.batch_size,
    ));

    // Bound before the first wallet exists, so that the stream shows each wallet from its
    // start: its funding deposit included.
    let listener = match &cli.events_amqp_url {
        Some(uri) => {
            status(&cli, "binding a queue to the event stream");
            let listener = Listener::start(uri, api.wallets()).await;
            Some(listener.context("listening to the event stream")?)
        }
        None => None,
    };
    if wallets > 0 {
        status(
            &cli,
            &format!("creating and funding {wallets} wallets at {}", cli.url),
        );
    }
    let funding = setup::prepare(
        &api,
        |wallet| transfers.funding(wallet, cli.initial_balance),
        &mut rng,
    )
    .await
    .context("setting up wallets")?;

    let plan = Plan {
        mode: cli.mode(),
        duration: cli.duration,
        max_in_flight: cli.max_in_flight.get(),
        runners: cli.threads.get(),
    };
    setup::warm_up(&api, plan.expected_connections())
        .await
        .context("opening connections")?;
    let progress = Progress::start(cli.duration, cli.quiet);
    let recorder = runner::run(plan, Arc::clone(&api), workload, progress.counter()).await;
    progress.finish();

    let summary = Summary::new(
        &plan,
        wallets,
        cli.mix.to_string(),
        cli.mix.has_transfers().then(|| {
            let name = transfers.to_possible_value().expect("no pattern is hidden");
            name.get_name().to_owned()
        }),
        cli.batch_size,
        &recorder,
    );
    let timeline = report::timeline(&recorder);
    status(&cli, "verifying balances and histories");
    let sample = verify::history_sample(wallets, cli.verify_history_sample, &mut rng);
    let mut acknowledged = funding;
    acknowledged.extend_from_slice(&recorder.acknowledged);
    // What the stream must show follows from the answers the run saw; a write whose answer was
    // lost may have events or not, whatever verification learns of it afterwards.
    let listening = listener.map(|listener| {
        let expected = Expectation::new(
            api.wallets(),
            &acknowledged,
            &recorder.rejected,
            &recorder.unsettled,
        );
        (listener, expected)
    });
    let verification = verify::verify(&api, acknowledged, &recorder.unsettled, &sample).await;
    let events = match listening {
        Some((listener, expected)) => {
            status(&cli, "waiting for the event stream to catch up");
            let received = listener.finish(&expected, cli.events_grace).await;
            Some(events::check(&expected, &received))
        }
        None => None,
    };

    let report = Report {
        summary,
        timeline,
        verification,
        events,
    };
    print!("{report}");
    if let Some(path) = &cli.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        let svg = plot::render(&report.timeline, cli.duration.as_secs_f64())
            .context("drawing the chart")?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.passed())
}

/// A phase announcement on stderr, so stdout carries only the report.
fn status(cli: &Cli, message: &str) {
    if !cli.quiet {
        eprintln!("{message}");
    }
}
