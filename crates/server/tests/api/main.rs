//! Black-box tests of the service: over HTTP against real PostgreSQL, on the real binary where
//! only a process shows the behaviour, and on the router in process where no database is
//! needed.
//!
//! One test binary, so the service is compiled and linked into tests once; each module below
//! is one area of behaviour, and `helpers` is the one harness they share.

mod helpers;

mod admin;
mod auth;
mod batches;
mod citus;
mod concurrency;
mod endpoints;
mod event_faults;
mod events;
mod faults;
mod hardening;
mod health;
mod holds;
mod hostile;
mod idempotency;
mod ledger_model;
mod limits;
mod logs;
mod openapi;
mod resilience;
mod shutdown;
mod transfers;
