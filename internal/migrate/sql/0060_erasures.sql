-- The audit trail of user erasures (POST /v1/admin/users/{id}/erase,
-- package lifecycle): one row per call, repeats included. It keeps the id of
-- the erased user, who asked, when, and what was erased; nothing else of the
-- user. ALTER ... DELETE mutations on the user's rows were submitted before
-- the row was written; system.mutations shows when they are done.
CREATE TABLE IF NOT EXISTS {db}.erasures (
    user_id      UInt64,
    requested_by UInt64,
    at           DateTime,
    tables       Array(String),
    rooms        Array(UInt64)
) ENGINE = MergeTree
ORDER BY (user_id, at);
