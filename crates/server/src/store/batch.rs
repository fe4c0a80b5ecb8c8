//! The statements of one group-commit transaction. Each takes the whole batch at once
//! (arrays bound as parameters), so a batch costs the same number of round trips whatever
//! its size.

use super::citus::ShardMap;
use super::rows::{
    self, HOLD_COLUMNS, HoldRow, HoldStatusColumn, OPERATION_COLUMNS, OperationRow, StatusColumn,
    TRANSFER_COLUMNS, TransferRow,
};
use super::statement::Sql;
use super::{StoreError, StoreResult, uuids};
use crate::domain::{
    Funds, HoldRecord, HoldStatus, IdempotencyKey, OperationId, OperationRecord, RejectReason,
    TransferRecord, WalletId,
};
use crate::events::Event;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Appends `UNNEST($n::type[], ...)` over `columns`, each bound as one array parameter of
/// its element type given.
macro_rules! push_unnest {
    ($query:expr, $($column:expr => $cast:literal),+ $(,)?) => {{
        $query.push("UNNEST(");
        $($query.push_bind($column).push(concat!("::", $cast, "[], "));)+
        $query.close_list();
    }};
}

/// Appends the rows an `INSERT` takes from `columns`: `SELECT * FROM UNNEST(...)`, one array
/// parameter per column; with `$values` (on Citus, rows of several shards) `VALUES (...), ...`,
/// one parameter per value, a row per record, which Citus hands to each shard as its own
/// insert. From `UNNEST`, an insert with `ON CONFLICT` goes through intermediate results on
/// every shard it touches (measured: half a second for 256 ids over 32 shards).
macro_rules! push_rows {
    ($query:expr, $values:expr, $first:expr => $cast:literal $(, $column:expr => $casts:literal)* $(,)?) => {{
        if $values {
            $query.push("VALUES ");
            for i in 0..$first.len() {
                $query.push(if i == 0 { "(" } else { ", (" });
                $query.push_bind($first[i].clone()).push(concat!("::", $cast, ", "));
                $($query.push_bind($column[i].clone()).push(concat!("::", $casts, ", "));)*
                $query.close_list();
            }
        } else {
            $query.push("SELECT * FROM ");
            push_unnest!($query, $first => $cast $(, $column => $casts)*);
        }
    }};
}

/// Locks the existing wallets among `ids` (sorted ascending) and returns their funds.
///
/// On Citus a `FOR UPDATE` may name the wallets of one shard only: there the wallets are
/// locked shard by shard, in the order of (shard, id), which every batch follows as it
/// follows the ids alone on plain PostgreSQL, so batches still cannot deadlock.
pub async fn lock_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
    citus: Option<&ShardMap>,
) -> StoreResult<HashMap<WalletId, Funds>> {
    let Some(map) = citus else {
        return lock_some_wallets(conn, ids).await;
    };
    let mut ids: Vec<(usize, WalletId)> = ids.iter().map(|&id| (map.shard_of(id), id)).collect();
    ids.sort_unstable();
    let mut funds = HashMap::with_capacity(ids.len());
    for shard in ids.chunk_by(|a, b| a.0 == b.0) {
        let shard: Vec<WalletId> = shard.iter().map(|&(_, id)| id).collect();
        funds.extend(lock_some_wallets(conn, &shard).await?);
    }
    Ok(funds)
}

async fn lock_some_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
) -> StoreResult<HashMap<WalletId, Funds>> {
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT id, balance, held FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(uuids(ids))
    .fetch_all(conn)
    .await?;
    let funds = rows
        .into_iter()
        .map(|(id, balance, held)| {
            Ok((
                WalletId::from(id),
                rows::held_funds(balance, held, "wallets")?,
            ))
        })
        .collect::<sqlx::Result<_>>()?;
    Ok(funds)
}

/// Creates the wallets among `ids` (sorted ascending) that do not exist yet, and returns
/// the ones it created.
pub async fn create_wallets(
    conn: &mut PgConnection,
    ids: &[WalletId],
) -> StoreResult<HashSet<WalletId>> {
    let created: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO wallets (id) SELECT * FROM UNNEST($1::uuid[]) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(uuids(ids))
    .fetch_all(conn)
    .await?;
    Ok(created.into_iter().map(WalletId::from).collect())
}

/// The operations already stored under any of `ids`.
pub async fn find_operations(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, OperationRecord>> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ANY($1)");
    let rows: Vec<OperationRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<OperationRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// The transfers stored under any of `ids`.
pub async fn find_transfers(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, TransferRecord>> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)");
    let rows: Vec<TransferRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<TransferRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// The holds stored under any of `ids`.
pub async fn find_holds(
    conn: &mut PgConnection,
    ids: &[OperationId],
) -> StoreResult<HashMap<OperationId, HoldRecord>> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = ANY($1)");
    let rows: Vec<HoldRow> = sqlx::query_as(&sql)
        .bind(uuids(ids))
        .fetch_all(conn)
        .await?;
    let records: Vec<HoldRecord> = rows::convert(rows)?;
    Ok(records.into_iter().map(|r| (r.id, r)).collect())
}

/// Everything one batch writes, laid out column by column, the shape `UNNEST` takes.
#[derive(Default)]
pub struct Writes {
    operations: OperationColumns,
    transfers: TransferColumns,
    holds: HoldColumns,
    resolutions: ResolutionColumns,
    events: EventColumns,
    dropped_wallets: Vec<Uuid>,
}

impl Writes {
    /// A decided deposit or withdrawal (applied, rejected or pending), or an entry that
    /// resolves a hold.
    pub fn operation(&mut self, record: &OperationRecord, key: Option<&IdempotencyKey>) {
        self.operations.push(record, key);
    }

    /// A decided transfer: its own record and its entries in the wallets' histories.
    pub fn transfer(&mut self, record: &TransferRecord, key: Option<&IdempotencyKey>) {
        self.transfers.push(record, key);
        for leg in record.legs() {
            self.operations.push(&leg, None);
        }
    }

    /// A hold placed in the batch, as it stands at the end of it.
    pub fn new_hold(&mut self, record: &HoldRecord) {
        self.holds.push(record);
    }

    /// A stored hold the batch resolved.
    pub fn resolved_hold(&mut self, record: &HoldRecord) {
        self.resolutions.push(record);
    }

    /// The event of something the batch decided, for the outbox.
    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Wallets the batch created that must not remain.
    pub fn drop_wallets(&mut self, wallets: impl IntoIterator<Item = WalletId>) {
        self.dropped_wallets
            .extend(wallets.into_iter().map(Uuid::from));
    }

    /// The one statement that records everything and writes each changed wallet's final
    /// funds once, however many operations hit it; `None` when the batch writes nothing.
    ///
    /// With `remembered`, the funds the batch was decided on without locking its wallets
    /// (plain PostgreSQL only), the statement is the whole transaction: it locks those
    /// wallets first, in the order of their ids as every batch does, and fails as a whole
    /// (nothing stored) when one of them no longer holds those funds, or anything else
    /// [`Statement::run`] tells of is found. Every part of it waits for those locks, so that,
    /// as in a locked batch, nothing is written to a wallet before it is locked.
    pub fn statement(
        self,
        funds: &[(WalletId, Funds)],
        remembered: Option<&[(WalletId, Funds)]>,
        citus: Option<&ShardMap>,
    ) -> Option<Statement> {
        let Self {
            operations,
            transfers,
            holds,
            resolutions,
            events,
            dropped_wallets,
        } = self;
        if operations.id.is_empty() && dropped_wallets.is_empty() {
            return None;
        }
        // On Citus a taken id is learnt from `operation_ids`, which every id of `operations`
        // enters, whichever wallet it is of; the records themselves skip a key that exists
        // (their keys there include the wallet), and the count of ids entered tells.
        let registered = if citus.is_some() {
            operations.id.len()
        } else {
            0
        };
        // Rows of one shard go in from arrays, as on plain PostgreSQL: Citus routes that insert
        // to the shard. Rows of several shards go in as rows of values (see `push_rows!`).
        let values = citus.is_some_and(|map| {
            let mut shards = operations
                .wallet_id
                .iter()
                .map(|&id| map.shard_of(id.into()));
            shards
                .next()
                .is_some_and(|first| shards.any(|shard| shard != first))
        });
        assert!(
            remembered.is_none() || citus.is_none(),
            "a batch on Citus locks its wallets first"
        );
        let citus = citus.is_some();
        let resolved = resolutions.id.len();
        // Only the parts the batch has: a batch of deposits inserts operations and updates
        // wallets, nothing else. Each shape is one prepared statement, kept by the connection.
        let mut query = Sql::new("WITH ");
        let mut separator = "";
        let mut part = |query: &mut Sql| {
            query.push(separator);
            separator = ", ";
        };
        // A filter that holds once the remembered wallets are locked, and that every part
        // below evaluates before its first row (a one-time filter).
        let locked = remembered.map(|remembered| {
            part(&mut query);
            push_lock_remembered(&mut query, remembered);
            "(SELECT yes FROM unchanged)"
        });
        let inserts = Inserts {
            citus,
            values,
            locked,
        };
        if registered > 0 {
            part(&mut query);
            query.push("registered_ids AS (INSERT INTO operation_ids (id) ");
            // Rows of values, as `push_rows!` writes them on Citus.
            let ids = operations.id.clone();
            push_rows!(query, true, ids => "uuid");
            query.push(" ON CONFLICT DO NOTHING RETURNING 1)");
        }
        if !operations.id.is_empty() {
            part(&mut query);
            operations.push_insert(&mut query, inserts);
        }
        if !transfers.id.is_empty() {
            part(&mut query);
            transfers.push_insert(&mut query, inserts);
        }
        if !holds.id.is_empty() {
            part(&mut query);
            holds.push_insert(&mut query, inserts);
        }
        if resolved > 0 {
            part(&mut query);
            resolutions.push_update(&mut query, citus, locked);
        }
        if !funds.is_empty() {
            part(&mut query);
            push_funds_update(&mut query, funds, citus, locked);
        }
        if !events.id.is_empty() {
            part(&mut query);
            events.push_insert(&mut query, locked);
        }
        if !dropped_wallets.is_empty() {
            part(&mut query);
            query.push("dropped_wallets AS (DELETE FROM wallets WHERE id = ANY(");
            query.push_bind(dropped_wallets);
            query.push(")");
            push_filter(&mut query, " AND ", locked);
            query.push(")");
        }
        // What the batch expects to have changed, counted by the statement.
        let counts: Vec<&str> = [
            (resolved > 0).then_some("(SELECT count(*) FROM resolved_holds)"),
            (registered > 0).then_some("(SELECT count(*) FROM registered_ids)"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let counted = if counts.is_empty() {
            "0::int8".to_owned()
        } else {
            counts.join(" + ")
        };
        let expected = (resolved + registered) as i64;
        query.push(" SELECT ");
        match locked {
            // Committed when it ends: it must fail rather than answer `false`.
            Some(locked) => {
                query.push(format_args!("CASE WHEN {locked} AND {counted} = "));
                query.push_bind(expected);
                query.push(format_args!(
                    " THEN {counted} ELSE batch_not_as_decided() END"
                ));
            }
            None => {
                query.push(counted);
            }
        }
        Some(Statement {
            sql: query,
            expected,
        })
    }
}

/// A batch's write statement, and the count it returns when it wrote everything as decided.
pub struct Statement {
    sql: Sql,
    expected: i64,
}

impl Statement {
    pub fn sql(&self) -> &Sql {
        &self.sql
    }

    /// Runs the statement in the caller's transaction. `false` when the batch was decided
    /// on something no longer true: some record's id was taken already (the statement
    /// failed, or on Citus, its id was found in `operation_ids`), some hold it resolves was
    /// no longer pending (not updated), or a remembered wallet's funds changed. The caller
    /// must roll back then.
    pub async fn run(self, conn: &mut PgConnection) -> StoreResult<bool> {
        let expected = self.expected;
        match self.sql.fetch_one(conn).await {
            Ok(written) => Ok(written == expected),
            Err(sqlx::Error::Database(error)) if not_as_decided(error.constraint()) => Ok(false),
            Err(error) => Err(StoreError::from(error)),
        }
    }

    /// Whether the statement, having returned `written`, wrote the batch as decided.
    pub fn as_decided(&self, written: i64) -> bool {
        written == self.expected
    }
}

/// Whether a write statement that failed on `constraint` found its batch decided on
/// something no longer true, rather than failing for any other reason.
pub fn not_as_decided(constraint: Option<&str>) -> bool {
    matches!(
        constraint,
        // A new hold takes its request's id, so its key reports a taken id too.
        Some("operations_pkey" | "transfers_pkey" | "holds_pkey" | "batch_as_decided")
    )
}

/// `locked`: the wallets of `remembered` that still hold those funds, locked in the order of
/// their ids; `unchanged`: whether that is all of them.
fn push_lock_remembered(query: &mut Sql, remembered: &[(WalletId, Funds)]) {
    let count = remembered.len() as i64;
    let (ids, balances, held) = funds_columns(remembered);
    query.push("locked AS MATERIALIZED (SELECT wallets.id FROM wallets JOIN ");
    push_unnest!(query, ids => "uuid", balances => "int8", held => "int8");
    query.push(
        " AS v (id, balance, held) ON wallets.id = v.id AND wallets.balance = v.balance \
         AND wallets.held = v.held ORDER BY wallets.id FOR UPDATE OF wallets), \
         unchanged AS MATERIALIZED (SELECT count(*) = ",
    );
    query.push_bind(count);
    query.push(" AS yes FROM locked)");
}

/// How a batch's records are inserted.
#[derive(Clone, Copy)]
struct Inserts<'a> {
    /// On Citus: a record whose key exists is skipped, not an error (see `write`).
    citus: bool,
    /// From rows of values rather than arrays (see `push_rows!`).
    values: bool,
    /// Behind the locks of the remembered wallets (see `write`).
    locked: Option<&'a str>,
}

impl Inserts<'_> {
    /// Ends an insert, after its rows.
    fn finish(self, query: &mut Sql) {
        push_filter(query, " WHERE ", self.locked);
        if self.citus {
            query.push(" ON CONFLICT DO NOTHING");
        }
        query.push(")");
    }
}

/// `{prefix}{filter}`, when there is one.
fn push_filter(query: &mut Sql, prefix: &str, filter: Option<&str>) {
    if let Some(filter) = filter {
        query.push(prefix);
        query.push(filter);
    }
}

fn funds_columns(funds: &[(WalletId, Funds)]) -> (Vec<Uuid>, Vec<i64>, Vec<i64>) {
    let ids = funds.iter().map(|&(id, _)| id.into()).collect();
    let balances = funds.iter().map(|&(_, f)| f.balance().into()).collect();
    let held = funds.iter().map(|&(_, f)| f.held().into()).collect();
    (ids, balances, held)
}

/// Writes each changed wallet's final funds. On Citus the ids are named once more, so that
/// the update goes to their shards only.
fn push_funds_update(
    query: &mut Sql,
    funds: &[(WalletId, Funds)],
    citus: bool,
    locked: Option<&str>,
) {
    let (ids, balances, held) = funds_columns(funds);
    query.push(
        "updated AS (UPDATE wallets SET balance = v.balance, held = v.held, updated_at = now() \
         FROM ",
    );
    let shards = citus.then(|| ids.clone());
    push_unnest!(query, ids => "uuid", balances => "int8", held => "int8");
    query.push(" AS v (id, balance, held) WHERE wallets.id = v.id");
    push_shards(query, "wallets.id", shards);
    push_filter(query, " AND ", locked);
    query.push(")");
}

/// `AND column = ANY($n)`, when `ids` are given: the filter by which Citus sends a
/// statement that joins on `column` to the shards of `ids` only.
fn push_shards(query: &mut Sql, column: &str, ids: Option<Vec<Uuid>>) {
    if let Some(ids) = ids {
        query.push(format_args!(" AND {column} = ANY("));
        query.push_bind(ids);
        query.push(")");
    }
}

#[derive(Default)]
struct OperationColumns {
    id: Vec<Uuid>,
    wallet_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    amount: Vec<i64>,
    status: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    balance_after: Vec<i64>,
    available_after: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    transfer_id: Vec<Option<Uuid>>,
    counterparty: Vec<Option<Uuid>>,
    hold_id: Vec<Option<Uuid>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
}

impl OperationColumns {
    fn push_insert(self, query: &mut Sql, how: Inserts<'_>) {
        query.push(
            "operation_rows AS (INSERT INTO operations (id, wallet_id, kind, amount, status, \
             reason, balance_after, available_after, idempotency_key, created_at, transfer_id, \
             counterparty_wallet_id, hold_id, expires_at) ",
        );
        push_rows!(query, how.values,
            self.id => "uuid", self.wallet_id => "uuid", self.kind => "text",
            self.amount => "int8", self.status => "text", self.reason => "text",
            self.balance_after => "int8", self.available_after => "int8",
            self.idempotency_key => "text", self.created_at => "timestamptz",
            self.transfer_id => "uuid", self.counterparty => "uuid",
            self.hold_id => "uuid", self.expires_at => "timestamptz",
        );
        how.finish(query);
    }

    fn push(&mut self, record: &OperationRecord, key: Option<&IdempotencyKey>) {
        self.id.push(record.id.into());
        self.wallet_id.push(record.wallet_id.into());
        self.kind.push(record.kind.as_str());
        self.amount.push(record.amount.into());
        self.status.push(StatusColumn::from(record.status).as_str());
        self.reason
            .push(record.status.reason().map(RejectReason::as_str));
        self.balance_after.push(record.balance_after.into());
        self.available_after.push(record.available_after.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
        self.transfer_id
            .push(record.transfer.map(|leg| leg.transfer_id.into()));
        self.counterparty
            .push(record.transfer.map(|leg| leg.counterparty.into()));
        self.hold_id.push(record.hold_id.map(Uuid::from));
        self.expires_at.push(record.expires_at);
    }
}

#[derive(Default)]
struct TransferColumns {
    id: Vec<Uuid>,
    from: Vec<Uuid>,
    to: Vec<Uuid>,
    amount: Vec<i64>,
    status: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    from_balance: Vec<i64>,
    from_available: Vec<i64>,
    to_balance: Vec<i64>,
    to_available: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    pending: Vec<bool>,
    expires_at: Vec<Option<DateTime<Utc>>>,
}

impl TransferColumns {
    fn push_insert(self, query: &mut Sql, how: Inserts<'_>) {
        query.push(
            "transfer_rows AS (INSERT INTO transfers (id, from_wallet_id, to_wallet_id, amount, \
             status, reason, from_balance, from_available, to_balance, to_available, \
             idempotency_key, created_at, pending, expires_at) ",
        );
        push_rows!(query, how.values,
            self.id => "uuid", self.from => "uuid", self.to => "uuid",
            self.amount => "int8", self.status => "text", self.reason => "text",
            self.from_balance => "int8", self.from_available => "int8",
            self.to_balance => "int8", self.to_available => "int8",
            self.idempotency_key => "text", self.created_at => "timestamptz",
            self.pending => "bool", self.expires_at => "timestamptz",
        );
        how.finish(query);
    }

    fn push(&mut self, record: &TransferRecord, key: Option<&IdempotencyKey>) {
        self.id.push(record.id.into());
        self.from.push(record.from.into());
        self.to.push(record.to.into());
        self.amount.push(record.amount.into());
        self.status.push(StatusColumn::from(record.status).as_str());
        self.reason
            .push(record.status.reason().map(RejectReason::as_str));
        self.from_balance.push(record.from_balance.into());
        self.from_available.push(record.from_available.into());
        self.to_balance.push(record.to_balance.into());
        self.to_available.push(record.to_available.into());
        self.idempotency_key
            .push(key.map(|k| k.as_str().to_owned()));
        self.created_at.push(record.created_at);
        self.pending.push(record.pending.is_some());
        self.expires_at.push(record.expires_at());
    }
}

#[derive(Default)]
struct HoldColumns {
    id: Vec<Uuid>,
    wallet: Vec<Uuid>,
    to: Vec<Option<Uuid>>,
    amount: Vec<i64>,
    status: Vec<&'static str>,
    confirmed_amount: Vec<Option<i64>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<DateTime<Utc>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
}

impl HoldColumns {
    fn push_insert(self, query: &mut Sql, how: Inserts<'_>) {
        query.push(
            "hold_rows AS (INSERT INTO holds (id, wallet_id, to_wallet_id, amount, status, \
             confirmed_amount, expires_at, created_at, resolved_at) ",
        );
        push_rows!(query, how.values,
            self.id => "uuid", self.wallet => "uuid", self.to => "uuid",
            self.amount => "int8", self.status => "text",
            self.confirmed_amount => "int8", self.expires_at => "timestamptz",
            self.created_at => "timestamptz", self.resolved_at => "timestamptz",
        );
        how.finish(query);
    }

    fn push(&mut self, record: &HoldRecord) {
        self.id.push(record.id.into());
        self.wallet.push(record.wallet.into());
        self.to.push(record.to.map(Uuid::from));
        self.amount.push(record.amount.into());
        self.status
            .push(HoldStatusColumn::from(record.status).as_str());
        self.confirmed_amount.push(confirmed_amount(record.status));
        self.expires_at.push(record.expires_at);
        self.created_at.push(record.created_at);
        self.resolved_at.push(record.resolved_at);
    }
}

/// What resolving a stored hold changes of its row.
#[derive(Default)]
struct ResolutionColumns {
    id: Vec<Uuid>,
    wallet: Vec<Uuid>,
    status: Vec<&'static str>,
    confirmed_amount: Vec<Option<i64>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
}

impl ResolutionColumns {
    /// Updates only holds still pending, and returns one row for each it updated.
    fn push_update(self, query: &mut Sql, citus: bool, locked: Option<&str>) {
        query.push(
            "resolved_holds AS (UPDATE holds SET status = v.status, \
             confirmed_amount = v.confirmed_amount, resolved_at = v.resolved_at FROM ",
        );
        let shards = citus.then(|| self.wallet.clone());
        push_unnest!(query,
            self.id => "uuid", self.wallet => "uuid", self.status => "text",
            self.confirmed_amount => "int8", self.resolved_at => "timestamptz",
        );
        query.push(
            " AS v (id, wallet_id, status, confirmed_amount, resolved_at) \
             WHERE holds.id = v.id AND holds.wallet_id = v.wallet_id \
             AND holds.status = 'PENDING'",
        );
        push_shards(query, "holds.wallet_id", shards);
        push_filter(query, " AND ", locked);
        query.push(" RETURNING 1)");
    }

    fn push(&mut self, record: &HoldRecord) {
        self.id.push(record.id.into());
        self.wallet.push(record.wallet.into());
        self.status
            .push(HoldStatusColumn::from(record.status).as_str());
        self.confirmed_amount.push(confirmed_amount(record.status));
        self.resolved_at.push(record.resolved_at);
    }
}

#[derive(Default)]
struct EventColumns {
    id: Vec<Uuid>,
    wallet: Vec<Uuid>,
    kind: Vec<&'static str>,
    body: Vec<String>,
    occurred_at: Vec<DateTime<Utc>>,
}

impl EventColumns {
    /// Inserts the events in the order the batch decided them: that order numbers them.
    fn push_insert(self, query: &mut Sql, locked: Option<&str>) {
        query.push(
            "event_rows AS (INSERT INTO outbox (event_id, wallet_id, type, body, occurred_at) \
             SELECT event_id, wallet_id, type, body, occurred_at FROM ",
        );
        push_unnest!(query,
            self.id => "uuid", self.wallet => "uuid", self.kind => "text",
            self.body => "text", self.occurred_at => "timestamptz",
        );
        query.push(" WITH ORDINALITY AS v (event_id, wallet_id, type, body, occurred_at, n)");
        push_filter(query, " WHERE ", locked);
        query.push(" ORDER BY n)");
    }

    fn push(&mut self, event: Event) {
        self.id.push(event.id);
        self.wallet.push(event.wallet.into());
        self.kind.push(event.kind);
        self.body.push(event.body);
        self.occurred_at.push(event.occurred_at);
    }
}

fn confirmed_amount(status: HoldStatus) -> Option<i64> {
    match status {
        HoldStatus::Confirmed(amount) => Some(amount.into()),
        HoldStatus::Pending | HoldStatus::Voided | HoldStatus::Expired => None,
    }
}
