-- The nodes of the cluster this service writes to (CLICKHOUSE_CLUSTER), by
-- shard and replica, as the node it talks to knows them: the console's
-- topology page (analytics::topology).
-- check-params: 'sqlcheck_cluster'
SELECT shard_num, replica_num, host_name, port
FROM system.clusters
WHERE cluster = ?
ORDER BY shard_num, replica_num
