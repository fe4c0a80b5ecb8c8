-- Run after the migrations on a Citus coordinator with workers, at every start: it does
-- only what is not done yet, in one transaction. Every table is distributed by wallet id
-- and colocated with `wallets`, so that one wallet's rows, whichever table holds them, live
-- on one shard and a batch's statements about one wallet are answered by one worker.
--
-- Citus requires every primary key to include the distribution column: a history entry is
-- keyed by its wallet and its id, a transfer by its source and its id, an outbox row by its
-- wallet and its number. Ids stay unique across wallets through `operation_ids`, which
-- holds every id of `operations`, distributed by the id itself: a batch inserts its ids
-- there and learns of any that is taken, whichever wallet took it.
DO $$
DECLARE
    t record;
BEGIN
    -- Instances starting together take turns; the second finds everything done.
    PERFORM pg_advisory_xact_lock(hashtext('wallet-server distribute'));
    IF to_regclass('operation_ids') IS NULL THEN
        CREATE TABLE operation_ids (id uuid PRIMARY KEY);
        INSERT INTO operation_ids SELECT id FROM operations;
    END IF;
    FOR t IN
        SELECT * FROM (VALUES
            (1, 'wallets',       'id',             NULL),
            (2, 'operations',    'wallet_id',      'wallet_id, id'),
            (3, 'transfers',     'from_wallet_id', 'from_wallet_id, id'),
            (4, 'holds',         'wallet_id',      'wallet_id, id'),
            (5, 'outbox',        'wallet_id',      'wallet_id, seq'),
            (6, 'operation_ids', 'id',             NULL)
        ) AS v (n, name, column_name, key)
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(v.name))
        ORDER BY n
    LOOP
        IF t.key IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (%s)',
                           t.name, t.name || '_pkey', t.name || '_pkey', t.key);
        END IF;
        IF t.name = 'wallets' THEN
            PERFORM create_distributed_table(t.name, t.column_name);
        ELSE
            PERFORM create_distributed_table(t.name, t.column_name, colocate_with => 'wallets');
        END IF;
        -- The rows were copied to the shards; the coordinator's own copy goes.
        PERFORM truncate_local_data_after_distributing_table(t.name);
    END LOOP;
END
$$;
