//! Wallet service: an HTTP API where clients deposit to and withdraw from wallets, backed by
//! PostgreSQL, exact under any concurrency and fast on a single hot wallet.
//!
//! - [`domain`]: identifiers, money and the rule that decides an operation (pure).
//! - [`ledger`]: the group-commit write path.
//! - [`events`]: the outbox and its relay to RabbitMQ.
//! - [`reader`]: coalesced balance reads.
//! - [`store`]: PostgreSQL statements.
//! - [`http`]: routes, extractors, problem+json errors and the OpenAPI description.
//! - [`admin`]: the operators' listener: metrics and CPU profiles.
//! - [`telemetry`]: log and metric setup.

pub mod admin;
pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod ledger;
pub mod reader;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
