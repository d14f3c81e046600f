-- +goose Up
-- Every certificate issued for a grant (SPEC §6d), so revocation can reach each one at
-- the CA: a revoked grant's serials become 'revoked' in the same transaction, and the
-- serving gateway revokes them at step-ca (ca_revoked_at records that it did), driven
-- by this table so a revocation the CA missed (down, restarting) is retried.
-- 'previous' and valid_until belong to renewal.
CREATE TABLE federation_cert_serials (
	serial        text PRIMARY KEY,
	grant_id      uuid NOT NULL REFERENCES federation_grants (id),
	not_after     timestamptz NOT NULL,
	state         text NOT NULL CHECK (state IN ('current', 'previous', 'revoked')),
	valid_until   timestamptz,
	ca_revoked_at timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX federation_cert_serials_grant ON federation_cert_serials (grant_id);
CREATE INDEX federation_cert_serials_to_revoke ON federation_cert_serials (created_at)
	WHERE state = 'revoked' AND ca_revoked_at IS NULL;

-- Certificates issued before this migration: the grants' own serials.
INSERT INTO federation_cert_serials (serial, grant_id, not_after, state)
	SELECT cert_serial, id, coalesce(cert_not_after, expires_at), CASE WHEN status = 'revoked' THEN 'revoked' ELSE 'current' END
	FROM federation_grants WHERE cert_serial IS NOT NULL;

-- +goose Down
DROP TABLE federation_cert_serials;
