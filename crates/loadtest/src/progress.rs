//! A progress bar on stderr while the load runs. Runners only bump an atomic counter; a ticker
//! task redraws a few times per second, so the bar costs nothing per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// The bar and its ticker. Hidden when `--quiet` or when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    completed: Arc<AtomicU64>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts a bar that fills over `duration`; must be called inside the runtime.
    pub fn start(duration: Duration, quiet: bool) -> Self {
        let completed = Arc::new(AtomicU64::new(0));
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(duration.as_millis() as u64), target);
        if bar.is_hidden() {
            return Progress {
                bar,
                completed,
                ticker: None,
            };
        }
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {msg}")
                .expect("static template is valid")
                .progress_chars("=> "),
        );
        let ticker = tokio::spawn(tick(bar.clone(), Arc::clone(&completed)));
        Progress {
            bar,
            completed,
            ticker: Some(ticker),
        }
    }

    /// The counter the runners increment once per finished request.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.completed)
    }

    /// Stops redrawing and clears the bar, so the report starts on a clean line.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

async fn tick(bar: ProgressBar, completed: Arc<AtomicU64>) {
    let start = Instant::now();
    let mut interval = tokio::time::interval(REDRAW_EVERY);
    let mut previous = 0;
    loop {
        interval.tick().await;
        let done = completed.load(Ordering::Relaxed);
        let per_second = (done - previous) as f64 / REDRAW_EVERY.as_secs_f64();
        previous = done;
        bar.set_position(start.elapsed().as_millis() as u64);
        bar.set_message(format!("{done} requests, {per_second:.0}/s"));
    }
}
