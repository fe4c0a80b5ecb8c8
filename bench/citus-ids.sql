-- One batch of 100 deposits on one wallet, written as the service writes it on Citus: lock
-- the wallet, insert the history from the coordinator, update the balance; with `registry`
-- set to 1, the batch's 100 ids also enter `operation_ids` as rows of values, each on its own
-- shard (what keeps ids unique across wallets). bench/citus-ids.sh runs it both ways.
BEGIN;
SELECT balance FROM wallets WHERE id = :wallet FOR UPDATE;
\if :registry
DO $$
BEGIN
    EXECUTE (SELECT 'INSERT INTO operation_ids (id) VALUES '
                    || string_agg(format('(%L::uuid)', gen_random_uuid()), ', ')
                    || ' ON CONFLICT DO NOTHING'
             FROM generate_series(1, 100));
END
$$;
\endif
INSERT INTO operations (id, wallet_id, kind, amount, status, balance_after, available_after, created_at)
SELECT gen_random_uuid(), :wallet, 'DEPOSIT', 1, 'APPLIED', 1, 1, now() FROM generate_series(1, 100);
UPDATE wallets SET balance = balance + 100 WHERE id = :wallet;
COMMIT;
