-- Drift audit (sync::audit): scorecards rows of one customer by id, whatever
-- their time, at their latest version (tombstones too): to classify a row
-- found on one side only, and to build its tombstone. The ids come as an
-- array; arrayJoin in a subquery keeps IN on the primary key (18.16 has no
-- IN with an array), and toInt64 makes the types match.
-- Parameters: customer_id, ids.
-- check-params: 1, [1, 2, 3]
SELECT ?fields
FROM scorecards FINAL
WHERE customer_id = ? AND id IN (SELECT toInt64(arrayJoin(?)))
