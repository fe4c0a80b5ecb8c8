//! A consumer of the service's event stream: a private queue bound to every event on the
//! real RabbitMQ, read in the background. Tests share the broker, so each looks only at the
//! events of its own wallets.

use lapin::message::DeliveryResult;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The broker the tests publish through: `WALLET_TEST_AMQP_URL`, or the local RabbitMQ.
pub fn broker_url() -> String {
    std::env::var("WALLET_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub delivery_mode: Option<u8>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Received {
    pub fn event_id(&self) -> &str {
        self.body["eventId"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The wallets the event is about.
    pub fn wallets(&self) -> Vec<Uuid> {
        ["walletId", "fromWalletId", "toWalletId"]
            .iter()
            .filter_map(|field| self.data()[*field].as_str()?.parse().ok())
            .collect()
    }
}

/// Reads every event published to `wallet.events` from the moment it starts.
pub struct EventConsumer {
    received: Arc<Mutex<Vec<Received>>>,
    _connection: Connection,
}

impl EventConsumer {
    pub async fn start() -> Self {
        let connection = Connection::connect(&broker_url(), ConnectionProperties::default())
            .await
            .expect("RabbitMQ is reachable");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .exchange_declare(
                "wallet.events".into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the exchange is declared");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("a private queue");
        channel
            .queue_bind(
                queue.name().clone(),
                "wallet.events".into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the queue is bound");
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consuming");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        consumer.set_delegate(move |delivery: DeliveryResult| {
            let sink = Arc::clone(&sink);
            async move {
                let Ok(Some(delivery)) = delivery else {
                    return;
                };
                let properties = &delivery.properties;
                let message = Received {
                    routing_key: delivery.routing_key.to_string(),
                    message_id: properties.message_id().as_ref().map(ToString::to_string),
                    delivery_mode: *properties.delivery_mode(),
                    content_type: properties.content_type().as_ref().map(ToString::to_string),
                    body: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
                };
                sink.lock().unwrap().push(message);
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        Self {
            received,
            _connection: connection,
        }
    }

    /// The events about any of `wallets` received so far, in arrival order.
    pub fn about(&self, wallets: &[Uuid]) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event.wallets().iter().any(|w| wallets.contains(w)))
            .cloned()
            .collect()
    }

    /// Waits until the events about `wallets` include `count` distinct ones, and returns
    /// them (first arrival of each, in arrival order); panics after `limit`.
    pub async fn wait_for(&self, wallets: &[Uuid], count: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let distinct = distinct(self.about(wallets));
            if distinct.len() >= count {
                return distinct;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} events arrived within {limit:?}: {distinct:#?}",
                distinct.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The first arrival of each event, in arrival order.
pub fn distinct(events: Vec<Received>) -> Vec<Received> {
    let mut seen = std::collections::HashSet::new();
    events
        .into_iter()
        .filter(|event| seen.insert(event.event_id().to_owned()))
        .collect()
}
