-- +goose Up
-- The requesting side's renewal of an outbound peer's certificate (SPEC §6d): its last
-- failure, shown by `peer list` until a renewal succeeds (the certificate itself says
-- when it ends and when it renews).
ALTER TABLE federation_peers ADD COLUMN renewal_error text;
ALTER TABLE federation_peers ADD COLUMN renewal_failed_at timestamptz;

-- +goose Down
ALTER TABLE federation_peers DROP COLUMN renewal_failed_at;
ALTER TABLE federation_peers DROP COLUMN renewal_error;
