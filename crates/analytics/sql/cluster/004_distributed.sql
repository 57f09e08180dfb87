-- The tables readers and writers name, on a cluster: Distributed tables over
-- the local ones. The sharding key hashes the ORDER BY key, so every version
-- of a row lands on one shard and FINAL through them stays exact. Writes are
-- synchronous (analytics::cluster): an insert is acknowledged only once the
-- shard holding its rows has them.
CREATE TABLE IF NOT EXISTS {database}.conversations ON CLUSTER {cluster} AS {database}.conversations_local
ENGINE = Distributed({cluster}, {database}, conversations_local, sipHash64(customer_id, id));

CREATE TABLE IF NOT EXISTS {database}.scorecards ON CLUSTER {cluster} AS {database}.scorecards_local
ENGINE = Distributed({cluster}, {database}, scorecards_local, sipHash64(customer_id, id));

CREATE TABLE IF NOT EXISTS {database}.scores ON CLUSTER {cluster} AS {database}.scores_local
ENGINE = Distributed({cluster}, {database}, scores_local, sipHash64(customer_id, id))
