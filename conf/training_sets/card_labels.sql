-- The labels table of conf/training_sets/card_fraud.yaml: one row per card payment, fraud or not.
--
-- On RDS (or any PostgreSQL), create it once:
--   psql "host=... dbname=... user=..." -f conf/training_sets/card_labels.sql
-- Another name (or schema.table):  psql ... -v labels_table=risk.card_labels -f conf/training_sets/card_labels.sql
-- On the local stack, `featurestream generate ... --labels conf/training_sets/card_fraud.yaml`
-- runs this file, then fills the table with one label per generated (or --replay'ed) event.
\if :{?labels_table}
\else
\set labels_table card_labels
\endif

CREATE TABLE IF NOT EXISTS :labels_table (
    label_id       bigint PRIMARY KEY,          -- from the payment's transaction_id
    transaction_id text,
    card_id        text NOT NULL,               -- joins card_activity's record identifier
    merchant_id    text,
    amount         double precision,
    label_time     timestamptz NOT NULL,        -- the payment's time: features as of then
    is_fraud       integer NOT NULL CHECK (is_fraud IN (0, 1)),
    updated_at     timestamptz NOT NULL DEFAULT now()  -- what --export-history follows
);
