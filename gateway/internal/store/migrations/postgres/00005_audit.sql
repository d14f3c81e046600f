-- +goose Up
-- The audit log of SPEC §6b: rows of both directions with the fields that let the two
-- sites' rows be joined (request ids, traceparent), summary rows of aggregated floods
-- (count, window), and a MAC formula versioned per row: version 1 is the SHA-256 chain
-- rows written before this migration keep; version 2 is HMAC-SHA-256 with a key kept
-- outside the database.
ALTER TABLE federation_audit_log
	ADD COLUMN version         smallint NOT NULL DEFAULT 1,
	ADD COLUMN direction       text NOT NULL DEFAULT 'admin' CHECK (direction IN ('inbound', 'outbound', 'admin')),
	ADD COLUMN peer_request_id text NOT NULL DEFAULT '',
	ADD COLUMN traceparent     text NOT NULL DEFAULT '',
	ADD COLUMN peer            text NOT NULL DEFAULT '',
	ADD COLUMN subject_user_id uuid,
	ADD COLUMN local_user_id   uuid,
	ADD COLUMN verb            text NOT NULL DEFAULT '',
	ADD COLUMN resource        text NOT NULL DEFAULT '',
	ADD COLUMN status          integer NOT NULL DEFAULT 0,
	ADD COLUMN row_count       integer NOT NULL DEFAULT 0,
	ADD COLUMN duration_us     bigint NOT NULL DEFAULT 0,
	ADD COLUMN client_addr     text NOT NULL DEFAULT '',
	ADD COLUMN count           integer NOT NULL DEFAULT 1,
	ADD COLUMN window_start    timestamptz,
	ADD COLUMN window_end      timestamptz;
-- New rows say their version; old ones are version 1 by the default above.
ALTER TABLE federation_audit_log ALTER COLUMN version SET DEFAULT 2;
CREATE INDEX federation_audit_log_peer_request ON federation_audit_log (peer, peer_request_id) WHERE peer_request_id <> '';
CREATE INDEX federation_audit_log_request ON federation_audit_log (request_id);
CREATE INDEX federation_audit_log_grant_time ON federation_audit_log (grant_id, at DESC, seq DESC) WHERE grant_id IS NOT NULL;

-- A grant may have a rate limit of its own (grant create --rate); NULL: the site's.
ALTER TABLE federation_grants ADD COLUMN rate_limit text;

-- +goose Down
ALTER TABLE federation_grants DROP COLUMN rate_limit;
DROP INDEX federation_audit_log_grant_time;
DROP INDEX federation_audit_log_request;
DROP INDEX federation_audit_log_peer_request;
ALTER TABLE federation_audit_log
	DROP COLUMN version, DROP COLUMN direction, DROP COLUMN peer_request_id, DROP COLUMN traceparent,
	DROP COLUMN peer, DROP COLUMN subject_user_id, DROP COLUMN local_user_id, DROP COLUMN verb,
	DROP COLUMN resource, DROP COLUMN status, DROP COLUMN row_count, DROP COLUMN duration_us,
	DROP COLUMN client_addr, DROP COLUMN count, DROP COLUMN window_start, DROP COLUMN window_end;
