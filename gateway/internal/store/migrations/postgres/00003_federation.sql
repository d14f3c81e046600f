-- +goose Up
-- Federation data (SPEC §5), federated tier. Peers are both directions: inbound on the
-- serving side (a registered peer), outbound on the requesting side (a remote site, its
-- pinned root, our certificate and our sealed private key, owned by one local user).
CREATE TABLE federation_peers (
	id            uuid PRIMARY KEY,
	direction     text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
	name          text NOT NULL,
	state         text NOT NULL CHECK (state IN ('pending', 'active', 'suspended', 'revoked')),
	owner_user_id uuid REFERENCES users (id),
	url           text,
	ca_root_pem   text,
	cert_pem      text,
	chain_pem     text,
	key_sealed    bytea,
	grant_id      uuid,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	CHECK (direction = 'inbound' OR owner_user_id IS NOT NULL)
);
CREATE UNIQUE INDEX federation_peers_inbound_name ON federation_peers (name) WHERE direction = 'inbound';
CREATE UNIQUE INDEX federation_peers_outbound_name ON federation_peers (owner_user_id, name) WHERE direction = 'outbound';
CREATE INDEX federation_peers_time ON federation_peers (created_at DESC);

CREATE TABLE federation_grants (
	id              uuid PRIMARY KEY,
	peer_id         uuid NOT NULL REFERENCES federation_peers (id),
	subject_user_id uuid NOT NULL REFERENCES users (id),
	scope           jsonb NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'expired')),
	cert_serial     text,
	cert_not_after  timestamptz,
	expires_at      timestamptz NOT NULL,
	revoked_reason  text,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX federation_grants_peer_time ON federation_grants (peer_id, created_at DESC);
CREATE INDEX federation_grants_time ON federation_grants (created_at DESC);

-- Tokens are stored only as their SHA-256.
CREATE TABLE federation_enrollment_tokens (
	token_hash bytea PRIMARY KEY,
	grant_id   uuid NOT NULL REFERENCES federation_grants (id),
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	created_at timestamptz NOT NULL
);
CREATE INDEX federation_enrollment_tokens_grant ON federation_enrollment_tokens (grant_id, created_at DESC);

-- Append-only and hash-chained: each row's hash covers its fields and the previous hash.
CREATE TABLE federation_audit_log (
	seq        bigserial PRIMARY KEY,
	at         timestamptz NOT NULL,
	request_id text NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	outcome    text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
	reason     text NOT NULL,
	grant_id   uuid,
	peer_id    uuid,
	detail     text NOT NULL,
	prev_hash  bytea NOT NULL,
	hash       bytea NOT NULL
);
CREATE INDEX federation_audit_log_time ON federation_audit_log (at DESC, seq DESC);

-- +goose Down
DROP TABLE federation_audit_log;
DROP TABLE federation_enrollment_tokens;
DROP TABLE federation_grants;
DROP TABLE federation_peers;
