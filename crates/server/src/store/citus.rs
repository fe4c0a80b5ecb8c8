//! Running on Citus: a coordinator whose database has the `citus` extension and workers.
//! There the service distributes its own tables by wallet id (see `citus.sql`) and learns
//! which shard holds each wallet, so that a batch locks its wallets shard by shard (Citus
//! refuses a `FOR UPDATE` over several shards) and the ledger sends one shard's wallets to
//! one writer. On plain PostgreSQL none of this runs.

use crate::domain::WalletId;
use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// Which shard of the distributed tables holds each wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    /// The highest hash value of each shard's range, ascending; the ranges cover every
    /// 32-bit value without gaps, as Citus lays them out.
    upper: Vec<i32>,
}

impl ShardMap {
    /// The index, in hash order, of the shard that holds `wallet`'s rows in every table.
    pub fn shard_of(&self, wallet: WalletId) -> usize {
        let hash = uuid_hash(wallet.as_uuid().as_bytes());
        self.upper
            .partition_point(|&upper| upper < hash)
            .min(self.upper.len() - 1)
    }

    /// How many shards each table has.
    pub fn shards(&self) -> usize {
        self.upper.len()
    }
}

/// Distributes the tables when `options` lead to a Citus coordinator with workers, and
/// returns the connection settings every connection of the service must use from then on
/// (see [`session`]) and where the wallets live; on plain PostgreSQL (or Citus without
/// workers) nothing is changed: `options` as given and `None`. Runs after the migrations, at
/// every start: it does only what is not done yet.
pub async fn distribute(
    options: PgConnectOptions,
) -> anyhow::Result<(PgConnectOptions, Option<ShardMap>)> {
    Ok(match distribute_tables(&options).await? {
        Some(map) => (session(options), Some(map)),
        None => (options, None),
    })
}

async fn distribute_tables(options: &PgConnectOptions) -> anyhow::Result<Option<ShardMap>> {
    let mut conn = PgConnection::connect_with(options)
        .await
        .context("cannot connect to the database")?;
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&mut conn)
            .await
            .context("cannot tell whether the database is a Citus coordinator")?;
    let workers: i64 = if citus {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_dist_node \
             WHERE noderole = 'primary' AND isactive AND shouldhaveshards",
        )
        .fetch_one(&mut conn)
        .await
        .context("cannot read the Citus workers")?
    } else {
        0
    };
    if workers == 0 {
        conn.close().await?;
        return Ok(None);
    }
    sqlx::raw_sql(concat!(
        "SET statement_timeout = 0;\n",
        include_str!("citus.sql")
    ))
    .execute(&mut conn)
    .await
    .context("cannot distribute the tables over the Citus workers")?;
    let upper: Vec<i32> = sqlx::query_scalar(
        "SELECT shardmaxvalue::int4 FROM pg_dist_shard \
         WHERE logicalrelid = 'wallets'::regclass ORDER BY shardminvalue::int4",
    )
    .fetch_all(&mut conn)
    .await
    .context("cannot read the shards of the wallets")?;
    conn.close().await?;
    anyhow::ensure!(!upper.is_empty(), "the wallets table has no shards");
    tracing::info!(
        workers,
        shards = upper.len(),
        "Citus: tables distributed by wallet id"
    );
    Ok(Some(ShardMap { upper }))
}

/// The settings every connection of the service needs on Citus, on top of
/// [`super::connect_options`]'s: a plan made for each execution, so that Citus sees the ids
/// a statement names and sends it only to the shards that hold them (a generic plan goes to
/// every shard, or is refused with `FOR UPDATE`).
fn session(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_custom_plan")])
}

/// PostgreSQL's hash of a uuid (`uuid_hash`: Bob Jenkins' lookup3 `hash_bytes` over its 16
/// bytes, read as little-endian words), which Citus maps to a shard.
fn uuid_hash(bytes: &[u8; 16]) -> i32 {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let initial = 0x9e37_79b9_u32.wrapping_add(16).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (initial, initial, initial);
    // One full block of 12 bytes, mixed.
    a = a.wrapping_add(word(0));
    b = b.wrapping_add(word(4));
    c = c.wrapping_add(word(8));
    a = a.wrapping_sub(c) ^ c.rotate_left(4);
    c = c.wrapping_add(b);
    b = b.wrapping_sub(a) ^ a.rotate_left(6);
    a = a.wrapping_add(c);
    c = c.wrapping_sub(b) ^ b.rotate_left(8);
    b = b.wrapping_add(a);
    a = a.wrapping_sub(c) ^ c.rotate_left(16);
    c = c.wrapping_add(b);
    b = b.wrapping_sub(a) ^ a.rotate_left(19);
    a = a.wrapping_add(c);
    c = c.wrapping_sub(b) ^ b.rotate_left(4);
    b = b.wrapping_add(a);
    // The last 4 bytes, then the final avalanche.
    a = a.wrapping_add(word(12));
    c = (c ^ b).wrapping_sub(b.rotate_left(14));
    a = (a ^ c).wrapping_sub(c.rotate_left(11));
    b = (b ^ a).wrapping_sub(a.rotate_left(25));
    c = (c ^ b).wrapping_sub(b.rotate_left(16));
    a = (a ^ c).wrapping_sub(c.rotate_left(4));
    b = (b ^ a).wrapping_sub(a.rotate_left(14));
    c = (c ^ b).wrapping_sub(b.rotate_left(24));
    c as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_falls_in_the_shard_whose_range_holds_its_hash() {
        let map = ShardMap {
            upper: vec![-1, i32::MAX],
        };
        for _ in 0..100 {
            let wallet = WalletId::from(uuid::Uuid::new_v4());
            let expected = usize::from(uuid_hash(wallet.as_uuid().as_bytes()) >= 0);
            assert_eq!(map.shard_of(wallet), expected);
        }
    }
}
