-- +goose Up
-- The local API keeps which user an API token resolved to for a few seconds (issue
-- 18); a user row changed or deleted — a new token, a role, the user gone — is
-- announced on the site's change channel by the database itself, whoever wrote it
-- (the CLI, a migration, a replica), so every gateway drops what it kept at once.
-- NOTIFY is sent when the writing transaction commits, never for one rolled back.
-- +goose StatementBegin
CREATE FUNCTION mosaic_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		PERFORM pg_notify('mosaic_changes', json_build_object('kind', 'user', 'id', '')::text);
		RETURN NULL;
	END IF;
	PERFORM pg_notify('mosaic_changes', json_build_object('kind', 'user', 'id', OLD.id::text)::text);
	RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION mosaic_user_changed();
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION mosaic_user_changed();

-- +goose Down
DROP TRIGGER users_truncated ON users;
DROP TRIGGER users_changed ON users;
DROP FUNCTION mosaic_user_changed();
