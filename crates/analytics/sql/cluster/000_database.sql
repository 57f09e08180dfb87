-- The database on every node of the cluster (CLICKHOUSE_CLUSTER). {database}
-- and {cluster} are filled in by analytics::cluster; ON CLUSTER DDL is queued
-- in ZooKeeper, so a node that is down gets it when it returns.
CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}
