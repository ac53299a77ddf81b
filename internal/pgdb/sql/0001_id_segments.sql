-- Segments of server-allocated ids (internal/idseg): each sequence hands
-- out blocks [next_id, next_id + step) to the processes that ask, so ids
-- are unique across processes and restarts without a round trip per id.
CREATE TABLE id_segments (
    name    text PRIMARY KEY,
    next_id bigint NOT NULL CHECK (next_id > 0),
    step    integer NOT NULL CHECK (step > 0)
);
