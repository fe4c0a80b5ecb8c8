-- The outbox: events of committed changes waiting for the broker. A batch writes its events
-- in its own transaction (only while events are on), so an event exists exactly when its
-- change was committed; the relay publishes them in `seq` order and deletes each once the
-- broker has confirmed it. Rows of one wallet take their `seq` under that wallet's lock, so
-- they are numbered in the wallet's commit order.
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL,
    wallet_id   uuid NOT NULL,
    type        text NOT NULL,
    body        text NOT NULL,
    occurred_at timestamptz NOT NULL
) WITH (
    -- A queue: every row is deleted soon after it is written. Vacuum it after a fixed number
    -- of deleted rows rather than a share of a table that stays small.
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);
