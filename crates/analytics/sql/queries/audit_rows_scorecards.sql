-- Drift audit (sync::audit): every scorecards row of one customer in a slice
-- (bucket time `created_at` in [start, end) seconds, id in [id_low, id_high]),
-- tombstones too, at its latest version.
-- Parameters: customer_id, start, end, id_low, id_high.
-- check-params: 1, 0, 4294967295, 0, 9223372036854775807
SELECT id, version, is_deleted
FROM scorecards FINAL
WHERE customer_id = ? AND created_at >= toDateTime(?) AND created_at < toDateTime(?) AND id >= ? AND id <= ?
