-- Accounts (package accounts): people, their sign-in codes and sessions.
-- A user's id comes from internal/idseg's sequence "users", never from the
-- phone. The phone (E.164) is unique: two first sign-ins of one phone at
-- once make one user (the loser of the insert reads the winner's row).
CREATE TABLE users (
    id         bigint PRIMARY KEY CHECK (id > 0),
    phone      text NOT NULL UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    nickname   text NOT NULL CHECK (char_length(nickname) BETWEEN 1 AND 20),
    avatar_url text NOT NULL DEFAULT '' CHECK (char_length(avatar_url) <= 512),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One pending SMS code per phone. Neither the phone nor the code is kept
-- in clear: phone_hash and code_hash are HMAC-SHA256 under the auth secret
-- (a stolen table neither names people nor signs anyone in). tries counts
-- wrong codes; at 5 the code is void.
CREATE TABLE sms_codes (
    phone_hash bytea PRIMARY KEY,
    code_hash  bytea NOT NULL,
    sent_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    tries      integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    used       boolean NOT NULL DEFAULT false
);

-- Refresh tokens, stored as sha256 of the random token. A refresh spends
-- its token (spent_at) and adds the next of the same family (one sign-in's
-- chain); presenting a spent token again revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    family     bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
