//! Events: every committed change, published to RabbitMQ for other systems to follow.
//!
//! A batch writes the events of what it decided to the outbox table in its own transaction,
//! so an event exists exactly when its change is committed (see `store::batch`). The
//! [`relay`] publishes them, oldest first, with publisher confirms, and deletes each only
//! once the broker has confirmed it: at least once, and one wallet's events in the order
//! its changes were committed.

pub mod relay;

use crate::domain::{HoldStatus, OperationStatus, WalletId};
use crate::ledger::Record;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// How the API shows a record: the `data` of its events.
pub type ShowRecord = fn(&Record) -> Box<RawValue>;

/// Names event ids: an event's id follows from its change, so the same change always
/// carries the same id.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_4d52_8a0e_4f4b_9b57_2f0c_5e1d_7a43);

/// One event, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    /// The wallet whose order it keeps: an operation's, a transfer's or a hold's source.
    pub wallet: WalletId,
    /// The event type, also its routing key.
    pub kind: &'static str,
    /// The message body.
    pub body: String,
    pub occurred_at: DateTime<Utc>,
}

/// The message body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    event_id: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    occurred_at: DateTime<Utc>,
    data: &'a RawValue,
}

/// The event of a record a batch has just decided and stored, or of a hold it resolved,
/// shown by `show`. A pending withdrawal or transfer is the hold it placed.
pub fn of(record: &Record, show: ShowRecord) -> Event {
    let placed = match record {
        Record::Operation(operation) => operation.placed_hold(),
        Record::Transfer(transfer) => transfer.placed_hold(),
        Record::Hold(_) => None,
    }
    .map(Record::Hold);
    let record = placed.as_ref().unwrap_or(record);
    let (id, wallet, at) = match record {
        Record::Operation(operation) => (operation.id, operation.wallet_id, operation.created_at),
        Record::Transfer(transfer) => (transfer.id, transfer.from, transfer.created_at),
        Record::Hold(hold) => (
            hold.id,
            hold.wallet,
            hold.resolved_at.unwrap_or(hold.created_at),
        ),
    };
    let kind = kind(record);
    let event_id = Uuid::new_v5(
        &EVENT_NAMESPACE,
        &[Uuid::from(id).as_bytes().as_slice(), kind.as_bytes()].concat(),
    );
    let data = show(record);
    let body = serde_json::to_string(&Body {
        event_id,
        kind,
        occurred_at: at,
        data: &data,
    })
    .expect("an event body is plain JSON");
    Event {
        id: event_id,
        wallet,
        kind,
        body,
        occurred_at: at,
    }
}

/// The event type of a decided record.
fn kind(record: &Record) -> &'static str {
    match record {
        Record::Operation(operation) => match operation.status {
            OperationStatus::Rejected(_) => "operation.rejected",
            _ => "operation.applied",
        },
        Record::Transfer(transfer) => match transfer.status {
            OperationStatus::Rejected(_) => "transfer.rejected",
            _ => "transfer.applied",
        },
        Record::Hold(hold) => match hold.status {
            HoldStatus::Pending => "hold.pending",
            HoldStatus::Confirmed(_) => "hold.confirmed",
            HoldStatus::Voided => "hold.voided",
            HoldStatus::Expired => "hold.expired",
        },
    }
}
