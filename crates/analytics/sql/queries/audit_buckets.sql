-- Drift audit (sync::audit): count and checksum of the live rows of one table
-- ({table}: conversations, scorecards or scores) of one customer (or all: a
-- customer range) in a slice (bucket time {time}: a conversation's
-- `started_at`, a scorecard's `created_at`, a score's `scorecard_created_at`,
-- in [start, end) seconds, id in [id_low, id_high]), cut into
-- buckets by intDiv(seconds - time_base, time_step) and intDiv(id - id_base, id_step)
-- (domain::audit::Cut; an uncut dimension has base 0 and a step wider than any key).
-- {table} and {time} are names, filled in before the query is sent
-- (`analytics::audit::buckets_query`): one text for the three tables, so the
-- checksum formula below is written once.
-- The checksum is the sum of
-- domain::audit::row_hash(id, version) = x * y mod p with p = 2^31 - 1,
-- x = (a * 48271 + b) mod p, y = (a * 69621 + b * 39373 + 12345) mod p,
-- a = id mod p, b = version mod p: every product stays below 2^62, so Int64
-- never wraps, and Postgres computes the same sum in bigint. Tombstones are
-- left out with countIf/sumIf rather than WHERE, so no version of
-- ClickHouse can filter them before FINAL picks the latest row.
-- Grouped by customer too: the audit sums a whole table once for all
-- customers by hour, and a drifted slice of one customer by hour or id range.
-- Parameters: time_base, time_step, id_base, id_step, customer_low, customer_high, start, end,
-- id_low, id_high.
-- check-params: 0, 3600, 0, 4611686018427387904, 0, 9223372036854775807, 0, 4294967295, 0, 9223372036854775807
-- check-names: table=conversations time=started_at | table=scorecards time=created_at | table=scores time=scorecard_created_at
WITH
    toInt64(id % 2147483647) AS hash_a,
    toInt64(version % 2147483647) AS hash_b,
    toInt64((hash_a * 48271 + hash_b) % 2147483647) AS hash_x,
    toInt64((hash_a * 69621 + hash_b * 39373 + 12345) % 2147483647) AS hash_y
SELECT
    customer_id,
    toInt64(intDiv(toInt64(toUInt32({time})) - toInt64(?), toInt64(?))) AS time_bucket,
    toInt64(intDiv(id - toInt64(?), toInt64(?))) AS id_bucket,
    toUInt64(countIf(is_deleted = 0)) AS live_rows,
    toInt64(sumIf(toInt64((hash_x * hash_y) % 2147483647), is_deleted = 0)) AS checksum,
    toInt64(minIf(id, is_deleted = 0)) AS min_id,
    toInt64(maxIf(id, is_deleted = 0)) AS max_id
FROM {table} FINAL
WHERE customer_id >= ? AND customer_id <= ? AND {time} >= toDateTime(?) AND {time} < toDateTime(?) AND id >= ? AND id <= ?
GROUP BY customer_id, time_bucket, id_bucket
HAVING live_rows > 0
