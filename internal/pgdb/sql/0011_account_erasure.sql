-- An erased account (POST /v1/admin/users/{id}/erase) keeps its id, so
-- the ledger's entries still name an account, but loses its phone (NULL:
-- no sign-in finds it again; UNIQUE admits any number of NULLs), its
-- nickname and avatar, and every session.
ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;
ALTER TABLE users ADD COLUMN erased_at timestamptz;
