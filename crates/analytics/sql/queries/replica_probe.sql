-- Whether the node this service talks to reaches one node of its cluster
-- (`host:port`, its native port): an error is "down". analytics::topology
-- asks it of every replica. The check runs it against the local stack's
-- server (scripts/stack: native port 19000); chdb only parses it, since a
-- current client cannot query an 18.16 server.
-- check-params: 'localhost:19000'
SELECT count() AS answered
FROM remote(?, system.one)
