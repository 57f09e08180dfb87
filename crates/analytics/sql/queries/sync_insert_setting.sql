-- The setting that makes an insert into a Distributed table synchronous
-- (acknowledged once every shard has its rows), under the names servers know:
-- `insert_distributed_sync` (18.16 and later) and `distributed_foreground_insert`
-- (its name since 23.x). analytics::cluster sends only a name found here:
-- a server rejects a setting it does not know (code 115).
SELECT name
FROM system.settings
WHERE name IN ('distributed_foreground_insert', 'insert_distributed_sync')
ORDER BY name
