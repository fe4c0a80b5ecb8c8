//! Before the run: the tool's own fresh wallets, each funded with one deposit, so that every
//! balance starts from a known value and no other traffic can touch them; then warm keep-alive
//! connections. Nothing here is measured.

use anyhow::bail;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::api::{Api, Outcome};
use crate::workload::{Write, WriteKind, new_id};

/// Setup requests in flight at once; this also leaves that many warm keep-alive connections.
const PARALLEL_SETUP: usize = 32;

/// Creates every wallet of `api` and deposits `funding(wallet)` into each (nothing where that
/// is 0). Returns the funding deposits, which count as acknowledged writes for verification.
pub async fn prepare(
    api: &Api,
    funding: impl Fn(u32) -> u64,
    rng: &mut impl rand::Rng,
) -> anyhow::Result<Vec<Write>> {
    let deposits: Vec<(u32, Write)> = (0..api.wallets().len() as u32)
        .map(|wallet| {
            let deposit = Write {
                kind: WriteKind::Deposit { wallet },
                amount: funding(wallet),
                id: new_id(rng),
            };
            (wallet, deposit)
        })
        .collect();
    stream::iter(&deposits)
        .map(|(wallet, deposit)| async move {
            api.create_wallet(*wallet).await?;
            if deposit.amount == 0 {
                return Ok(());
            }
            match api.submit(deposit).await {
                Outcome::Applied => Ok(()),
                other => bail!(
                    "funding wallet {}: {other:?}",
                    api.wallets()[*wallet as usize]
                ),
            }
        })
        .buffer_unordered(PARALLEL_SETUP)
        .try_collect::<()>()
        .await?;
    Ok(deposits
        .into_iter()
        .map(|(_, deposit)| deposit)
        .filter(|deposit| deposit.amount > 0)
        .collect())
}

/// Opens about `connections` keep-alive connections by sending that many balance reads at once
/// (liveness checks when the run has no wallets), so that the first second of the run measures
/// the server rather than TCP handshakes.
pub async fn warm_up(api: &Api, connections: usize) -> anyhow::Result<()> {
    let wallets = api.wallets().len();
    stream::iter(0..connections)
        .map(|i| async move {
            if wallets > 0 {
                return api.funds((i % wallets) as u32).await.map(drop);
            }
            match api.live().await {
                Outcome::Alive => Ok(()),
                other => bail!("liveness check: {other:?}"),
            }
        })
        .buffer_unordered(connections.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await
}
