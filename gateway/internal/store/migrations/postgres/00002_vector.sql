-- +goose Up
-- +goose StatementBegin
-- Where pgvector is installed in this database (always on the federated tier, which
-- creates it first), embeddings become vector(256); elsewhere they stay real[] and
-- vector search is an exact scan.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
		ALTER TABLE memories ALTER COLUMN embedding TYPE vector(256) USING embedding::vector(256);
	END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
		ALTER TABLE memories ALTER COLUMN embedding TYPE real[] USING embedding::real[];
	END IF;
END
$$;
-- +goose StatementEnd
