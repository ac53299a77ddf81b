-- Anchors, rooms and PKs (package rooms, registry.go). PostgreSQL is their
-- system of record; Redis holds the hot copy of each room and the live PK
-- bar, rebuilt from these tables after a Redis loss. Times are Unix ms.

-- One row per user who ever applied to be an anchor. Only an approved
-- anchor creates, opens or closes a room; a revoked anchor may apply again
-- (the row goes back to pending).
CREATE TABLE anchors (
    user_id    bigint PRIMARY KEY CHECK (user_id > 0),
    status     text NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
    reason     text NOT NULL,
    applied_ms bigint NOT NULL,
    decided_ms bigint NOT NULL DEFAULT 0,
    decided_by bigint NOT NULL DEFAULT 0
);
CREATE INDEX anchors_by_status ON anchors (status, user_id);

-- One room per anchor (UNIQUE anchor_id: concurrent creates make one room),
-- its anchor fixed at creation. ver counts status changes: the hot copy in
-- Redis keeps it, and a write older than what Redis holds is ignored.
CREATE TABLE rooms (
    room_id    bigint PRIMARY KEY CHECK (room_id > 0),
    anchor_id  bigint NOT NULL UNIQUE REFERENCES anchors (user_id),
    title      text NOT NULL,
    category   text NOT NULL,
    cover_url  text NOT NULL,
    status     text NOT NULL DEFAULT 'closed' CHECK (status IN ('open', 'closed')),
    opened_ms  bigint NOT NULL DEFAULT 0,
    ver        bigint NOT NULL DEFAULT 0,
    created_ms bigint NOT NULL
);
CREATE INDEX rooms_open ON rooms (room_id) WHERE status = 'open';

-- A PK from invitation to end. pk_id is "<room_a>-<room_b>-<invited ms>",
-- the form the live bar in Redis is keyed by. winner is a room id, 0 for
-- none or a draw.
CREATE TABLE pks (
    pk_id      text PRIMARY KEY,
    room_a     bigint NOT NULL REFERENCES rooms (room_id),
    room_b     bigint NOT NULL REFERENCES rooms (room_id),
    invited_by bigint NOT NULL,
    status     text NOT NULL CHECK (status IN ('invited', 'running', 'declined', 'expired', 'ended')),
    invited_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    started_ms bigint NOT NULL DEFAULT 0,
    ends_ms    bigint NOT NULL DEFAULT 0,
    winner     bigint NOT NULL DEFAULT 0,
    CHECK (room_a <> room_b)
);
CREATE INDEX pks_running ON pks (started_ms DESC, pk_id) WHERE status = 'running';
