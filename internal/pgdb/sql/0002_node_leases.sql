-- Leases of node ids (internal/nodeid): a process serving the api role
-- holds one id in [0, 1024) for its server-assigned event ids; no two live
-- processes hold the same one.
CREATE TABLE node_leases (
    node_id    integer PRIMARY KEY CHECK (node_id >= 0 AND node_id < 1024),
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
