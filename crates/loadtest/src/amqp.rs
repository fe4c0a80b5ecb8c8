//! The service's event stream as the load generator sees it: a private queue bound to every
//! event of the `wallet.events` exchange before the run creates its wallets, consumed in the
//! background while the load runs, each delivery read and stamped with its arrival time as it
//! comes, and kept when it concerns the run's wallets.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::events::{Arrival, Event, EventKind, Expectation, Received};

/// The topic exchange the service publishes every committed change to.
pub const EXCHANGE: &str = "wallet.events";
/// The content type of every event.
const CONTENT_TYPE: &str = "application/json";
/// Names the consumer to the broker, and so to whoever looks at its management page.
const CONSUMER_TAG: &str = "wallet-loadtest";
/// Deliveries the broker may send before they are acknowledged: enough to keep a fast stream
/// flowing, few enough that a stalled load generator stalls the broker rather than its own
/// memory.
const PREFETCH: u16 = 1000;
/// How long a cancelled consumer may take to hand over what it still has.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A delivery as the consumer sorted it.
#[derive(Debug)]
enum Delivery {
    /// An event about one of the run's wallets.
    Event(Arrival),
    /// An event about other wallets: another run, or other users of the service.
    OtherTraffic,
    /// A message that is no event as documented, with why.
    Unreadable(String),
}

/// A consumer running in the background; what it took waits in a channel until
/// [`Listener::finish`].
pub struct Listener {
    connection: Connection,
    channel: Channel,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    consumer: JoinHandle<lapin::Result<()>>,
}

impl Listener {
    /// Connects to the broker at `uri`, declares the exchange as the service does (so that the
    /// binding holds even before the service has connected), binds a private queue to every
    /// routing key and starts consuming it. From then on every event published reaches the
    /// run; only those about `wallets` (the run's) are kept.
    pub async fn start(uri: &AMQPUri, wallets: &[Uuid]) -> anyhow::Result<Self> {
        let connection = Connection::connect_uri(uri.clone(), ConnectionProperties::default())
            .await
            .context("connecting to the broker")?;
        let channel = connection.create_channel().await?;
        channel
            .exchange_declare(
                EXCHANGE.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("declaring the exchange {EXCHANGE}"))?;
        // Named by the broker, gone with the connection: no leftover for the next run.
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
            .context("declaring the queue")?;
        channel
            .queue_bind(
                queue.name().clone(),
                EXCHANGE.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("binding the queue to every event")?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                CONSUMER_TAG.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("consuming the queue")?;
        let (sink, deliveries) = mpsc::unbounded_channel();
        let wallets = wallets.iter().copied().collect();
        Ok(Listener {
            connection,
            channel,
            deliveries,
            consumer: tokio::spawn(consume(consumer, wallets, sink)),
        })
    }

    /// Waits until every event `expected` requires has arrived or `grace` has passed (or the
    /// consumer has failed), then stops consuming and hands over everything received, what
    /// arrived while stopping included.
    pub async fn finish(mut self, expected: &Expectation, grace: Duration) -> Received {
        let start = Instant::now();
        let mut received = Received::default();
        let mut outstanding: HashSet<(Uuid, EventKind)> = expected.required().collect();
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while !outstanding.is_empty() {
            tokio::select! {
                delivery = self.deliveries.recv() => match delivery {
                    Some(delivery) => {
                        if let Some(key) = file(&mut received, delivery) {
                            outstanding.remove(&key);
                        }
                    }
                    // The consumer stopped: its result tells why.
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
        received.waited = start.elapsed();

        // A failed channel cannot cancel; the consumer has stopped already then.
        let _ = self
            .channel
            .basic_cancel(CONSUMER_TAG.into(), BasicCancelOptions::default())
            .await;
        match tokio::time::timeout(STOP_TIMEOUT, &mut self.consumer).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => received.failure = Some(error.to_string()),
            Ok(Err(panic)) => received.failure = Some(format!("the consumer panicked: {panic}")),
            Err(_) => self.consumer.abort(),
        }
        while let Ok(delivery) = self.deliveries.try_recv() {
            file(&mut received, delivery);
        }
        // The queue goes with the connection; a close that fails leaves nothing behind either.
        let _ = self.connection.close(200, "run checked".into()).await;
        received
    }
}

/// Takes deliveries until the consumer is cancelled or fails, sorting each for the listener,
/// and acknowledges them: whatever has already arrived with one acknowledgement, so that a
/// fast stream costs one frame per burst rather than one per event.
async fn consume(
    mut consumer: Consumer,
    wallets: HashSet<Uuid>,
    sink: mpsc::UnboundedSender<Delivery>,
) -> lapin::Result<()> {
    while let Some(delivery) = consumer.next().await {
        let mut last = delivery?;
        let mut listening = sink.send(sort(&last, &wallets)).is_ok();
        while let Some(Some(delivery)) = consumer.next().now_or_never() {
            last = delivery?;
            listening &= sink.send(sort(&last, &wallets)).is_ok();
        }
        last.ack(BasicAckOptions { multiple: true }).await?;
        if !listening {
            // The listener is gone: nobody will look at what comes next.
            return Ok(());
        }
    }
    Ok(())
}

/// Reads a delivery and sorts it, stamped with the time it arrived.
fn sort(delivery: &lapin::message::Delivery, wallets: &HashSet<Uuid>) -> Delivery {
    let arrived_at = SystemTime::now();
    let routing_key = delivery.routing_key.as_str();
    let event = match Event::parse(&delivery.data) {
        Ok(event) => event,
        Err(error) => {
            return Delivery::Unreadable(format!("routing key `{routing_key}`: {error:#}"));
        }
    };
    if !event.wallets().any(|wallet| wallets.contains(&wallet)) {
        return Delivery::OtherTraffic;
    }
    let flaw = flaw(routing_key, &delivery.properties, &event);
    Delivery::Event(Arrival {
        event,
        arrived_at,
        flaw,
    })
}

/// How a message's routing key and properties contradict its event, if they do: the routing
/// key must be the type, `message_id` the event id, and the content type JSON.
fn flaw(routing_key: &str, properties: &BasicProperties, event: &Event) -> Option<String> {
    let mut flaws = Vec::new();
    if routing_key != event.kind.name() {
        flaws.push(format!("routing key `{routing_key}`"));
    }
    let message_id = properties.message_id().as_ref().map(|id| id.as_str());
    if message_id.and_then(|id| id.parse::<Uuid>().ok()) != Some(event.id) {
        flaws.push(format!("message_id {message_id:?}"));
    }
    let content_type = properties.content_type().as_ref().map(|t| t.as_str());
    if content_type != Some(CONTENT_TYPE) {
        flaws.push(format!("content type {content_type:?}"));
    }
    (!flaws.is_empty()).then(|| flaws.join(", "))
}

/// Files a delivery with what was received; returns an event's write id and type, to be struck
/// off the events still awaited.
fn file(received: &mut Received, delivery: Delivery) -> Option<(Uuid, EventKind)> {
    match delivery {
        Delivery::Event(arrival) => {
            let key = (arrival.event.write_id(), arrival.event.kind);
            received.arrivals.push(arrival);
            Some(key)
        }
        Delivery::OtherTraffic => {
            received.other_traffic += 1;
            None
        }
        Delivery::Unreadable(why) => {
            received.unreadable.push(|| why);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events;
    use crate::workload::{Settle, Write, WriteKind, new_id};
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use rand::rngs::SmallRng;
    use serde_json::json;

    /// The broker every developer machine and CI runs.
    const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    fn properties(event_id: &str) -> BasicProperties {
        BasicProperties::default()
            .with_message_id(event_id.into())
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(2)
    }

    /// Publishes `body` as the service would, with its type as the routing key, and waits for
    /// the broker's confirmation.
    async fn publish(channel: &Channel, body: &serde_json::Value) {
        let event_id = body["eventId"].as_str().unwrap_or("none");
        let kind = body["type"].as_str().unwrap_or("none");
        let confirmation = channel
            .basic_publish(
                EXCHANGE.into(),
                kind.into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(body).unwrap(),
                properties(event_id),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirmation.is_ack(), "{confirmation:?}");
    }

    /// An event body of type `kind` about `data`, with a fresh event id.
    fn body(rng: &mut SmallRng, kind: &str, data: serde_json::Value) -> serde_json::Value {
        json!({
            "eventId": new_id(rng),
            "type": kind,
            "occurredAt": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            "data": data,
        })
    }

    #[test]
    fn properties_that_contradict_the_body_are_a_flaw() {
        let event = Event::parse(
            json!({
                "eventId": "7d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a10",
                "type": "hold.voided",
                "occurredAt": "2026-01-01T00:00:00Z",
                "data": {"holdId": "6f1c7c1e-2a8f-4a55-9a4e-0d7c3c1b2a13", "holdType": "WITHDRAW",
                    "walletId": "0b0e5a55-7f1e-4f0c-8d7d-5c7f1a2b3c4d", "amount": 40,
                    "status": "VOIDED", "createdAt": "2026-01-01T00:00:00Z"},
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let id = event.id.to_string();
        assert_eq!(flaw("hold.voided", &properties(&id), &event), None);
        let flawed = flaw("hold.expired", &BasicProperties::default(), &event).unwrap();
        assert_eq!(
            flawed,
            "routing key `hold.expired`, message_id None, content type None"
        );
        let other_id = properties("7d0c7c1e-2a8f-5a55-9a4e-0d7c3c1b2a11");
        assert!(flaw("hold.voided", &other_id, &event).is_some());
    }

    /// Talks to the real broker: events published to the exchange as the service publishes
    /// them reach the listener, other traffic and garbage are set aside, and the check finds
    /// the stream complete and in order. The wallets are fresh, so whatever else is on the
    /// broker cannot interfere.
    #[tokio::test]
    async fn events_published_to_the_exchange_are_received_and_checked() {
        let mut rng: SmallRng = rand::make_rng();
        let wallets = [new_id(&mut rng), new_id(&mut rng)];
        let [w0, w1] = wallets.map(|id| id.to_string());
        let uri: AMQPUri = BROKER.parse().unwrap();
        let listener = Listener::start(&uri, &wallets).await.unwrap();

        // The run: wallet 0 funded with 100, 30 moved to wallet 1, a withdrawal of 500 from
        // wallet 1 refused, a payment of 20 on wallet 0 confirmed for 15, and a withdrawal of
        // 5 from wallet 1 whose answer was lost.
        let write = |kind, amount, rng: &mut SmallRng| Write {
            kind,
            amount,
            id: new_id(rng),
        };
        let deposit = write(WriteKind::Deposit { wallet: 0 }, 100, &mut rng);
        let transfer = write(WriteKind::Transfer { from: 0, to: 1 }, 30, &mut rng);
        let refused = write(WriteKind::Withdraw { wallet: 1 }, 500, &mut rng);
        let settle = Settle::ConfirmPart(15);
        let payment = write(WriteKind::Capture { wallet: 0, settle }, 20, &mut rng);
        let lost = write(WriteKind::Withdraw { wallet: 1 }, 5, &mut rng);
        let expected =
            Expectation::new(&wallets, &[deposit, transfer, payment], &[refused], &[lost]);

        let operation = |write: &Write, wallet: &str, kind: &str, status: &str, money: i64| {
            json!({"operationId": write.id, "walletId": wallet, "operationType": kind,
                "amount": write.amount, "status": status, "balance": money, "available": money,
                "createdAt": "2026-01-01T00:00:00Z"})
        };
        let hold = |status: &str, confirmed: Option<u64>| {
            json!({"holdId": payment.id, "holdType": "WITHDRAW", "walletId": w0,
                "amount": payment.amount, "confirmedAmount": confirmed, "status": status,
                "createdAt": "2026-01-01T00:00:00Z"})
        };
        let transferred = body(
            &mut rng,
            "transfer.applied",
            json!({"transferId": transfer.id, "fromWalletId": w0, "toWalletId": w1,
                "amount": 30, "status": "APPLIED", "fromBalance": 70, "fromAvailable": 70,
                "toBalance": 30, "toAvailable": 30, "createdAt": "2026-01-01T00:00:00Z"}),
        );
        let foreign = operation(
            &deposit,
            &new_id(&mut rng).to_string(),
            "DEPOSIT",
            "APPLIED",
            100,
        );
        // Each wallet's events in commit order; the last one required comes last, so that
        // everything before it has arrived when the listener stops waiting.
        let stream = [
            body(
                &mut rng,
                "operation.applied",
                operation(&deposit, &w0, "DEPOSIT", "APPLIED", 100),
            ),
            transferred.clone(),
            body(
                &mut rng,
                "operation.rejected",
                operation(&refused, &w1, "WITHDRAW", "REJECTED", 30),
            ),
            body(
                &mut rng,
                "operation.applied",
                operation(&lost, &w1, "WITHDRAW", "APPLIED", 25),
            ),
            transferred,
            body(&mut rng, "operation.applied", foreign),
            json!({"not": "an event"}),
            body(&mut rng, "hold.pending", hold("PENDING", None)),
            body(&mut rng, "hold.confirmed", hold("CONFIRMED", Some(15))),
        ];
        let connection = Connection::connect_uri(uri, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for event in &stream {
            publish(&channel, event).await;
        }
        connection.close(200, "published".into()).await.unwrap();

        let grace = Duration::from_secs(20);
        let received = listener.finish(&expected, grace).await;
        assert!(
            received.waited < grace / 2,
            "waited {:?}: the listener should stop once all expected events are in",
            received.waited
        );
        assert!(received.other_traffic >= 1 && received.unreadable.count >= 1);
        let verdict = events::check(&expected, &received);
        assert!(verdict.failures().is_empty(), "{verdict}");
        assert_eq!((verdict.received, verdict.duplicates), (7, 1));
        assert_eq!(verdict.expected, 5);
        assert!(
            verdict.lag_max_ms < grace.as_secs_f64() * 1000.0,
            "{verdict:?}"
        );
    }
}
