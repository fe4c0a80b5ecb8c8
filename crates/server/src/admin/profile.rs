//! CPU profiles on demand, like Go's `net/http/pprof`: `go tool pprof` and any flamegraph
//! viewer read them.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pprof::protos::Message;
use serde::Deserialize;
use std::time::Duration;

/// Samples per second: off the beat of 100 Hz timers so that periodic work is not missed
/// or over-counted.
const FREQUENCY: i32 = 99;
const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;
/// Unwinding through these inside the signal handler can deadlock; their frames are skipped.
const BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

const IDLE_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"40\">\
    <text x=\"10\" y=\"25\">No CPU samples: the process was idle while profiled.</text></svg>";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    seconds: Option<u64>,
}

/// `?seconds=N` of CPU samples as a gzip-free pprof protobuf (`go tool pprof` reads it).
pub async fn pprof(query: Result<Query<ProfileQuery>, QueryRejection>) -> Response {
    let result = sample(query).await.and_then(|report| {
        let profile = report.pprof().map_err(failed)?;
        profile.write_to_bytes().map_err(failed)
    });
    match result {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile.pb\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// `?seconds=N` of CPU samples as a flamegraph SVG.
pub async fn flamegraph(query: Result<Query<ProfileQuery>, QueryRejection>) -> Response {
    let result = sample(query).await.and_then(|report| {
        let mut svg = Vec::new();
        report.flamegraph(&mut svg).map_err(failed)?;
        // Without a single sample the flamegraph writer writes nothing at all.
        if svg.is_empty() {
            svg.extend_from_slice(IDLE_SVG.as_bytes());
        }
        Ok(svg)
    });
    match result {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(error) => error.into_response(),
    }
}

type Failure = (StatusCode, String);

fn failed(error: impl std::fmt::Display) -> Failure {
    tracing::error!(%error, "CPU profile failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the profile could not be built\n".into(),
    )
}

/// Samples the whole process for the requested time. One profile at a time: the sampler is
/// a process-wide signal timer.
async fn sample(
    query: Result<Query<ProfileQuery>, QueryRejection>,
) -> Result<pprof::Report, Failure> {
    let Query(query) =
        query.map_err(|rejection| (StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let seconds = query.seconds.unwrap_or(DEFAULT_SECONDS);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("seconds must be between 1 and {MAX_SECONDS}\n"),
        ));
    }
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(BLOCKLIST)
        .build()
        .map_err(|error| match error {
            pprof::Error::Running => (
                StatusCode::CONFLICT,
                "another profile is being recorded\n".into(),
            ),
            other => failed(other),
        })?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    // Symbolising takes a while and blocks: off the async workers.
    tokio::task::spawn_blocking(move || guard.report().build())
        .await
        .map_err(failed)?
        .map_err(failed)
}
