-- Average total score of live scorecards, grouped by agent (group = 1),
-- template (2) or day (3), process and conversation scorecards apart.
-- Parameters: group (twice), customer_id, start (inclusive), end (exclusive).
-- check-params: 1, 1, 1, 0, 4294967295
SELECT
    multiIf(? = 1, agent_id, ? = 2, toString(template_id), toString(toDate(created_at))) AS key,
    is_process_scorecard,
    count() AS scorecards,
    avg(total_score) AS average_total_score
FROM scorecards FINAL
WHERE customer_id = ? AND is_deleted = 0
  AND created_at >= toDateTime(?) AND created_at < toDateTime(?)
GROUP BY key, is_process_scorecard
ORDER BY key, is_process_scorecard
