-- +goose Up
-- Search (SPEC §6b). Full text uses the 'simple' configuration (no stemming, no
-- stop words, so PostgreSQL and SQLite agree): a generated tsvector column per
-- searchable table, which PostgreSQL fills for existing rows when the column is added
-- and keeps in step with every write (nothing to copy in a tier migration), under a
-- GIN index. Note titles weigh more than bodies. Where embeddings are vector(256)
-- (pgvector installed, see 00002), an HNSW index orders by cosine distance; real[]
-- embeddings are searched by an exact scan.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS search_tsv tsvector
	GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, title)) STORED;
ALTER TABLE notes ADD COLUMN IF NOT EXISTS search_tsv tsvector
	GENERATED ALWAYS AS (setweight(to_tsvector('simple'::regconfig, title), 'A') ||
		setweight(to_tsvector('simple'::regconfig, body), 'B')) STORED;
ALTER TABLE memories ADD COLUMN IF NOT EXISTS search_tsv tsvector
	GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED;
CREATE INDEX IF NOT EXISTS tasks_search ON tasks USING gin (search_tsv);
CREATE INDEX IF NOT EXISTS notes_search ON notes USING gin (search_tsv);
CREATE INDEX IF NOT EXISTS memories_search ON memories USING gin (search_tsv);
-- +goose StatementBegin
DO $$
BEGIN
	IF (SELECT udt_name FROM information_schema.columns WHERE table_schema = current_schema()
			AND table_name = 'memories' AND column_name = 'embedding') = 'vector' THEN
		CREATE INDEX IF NOT EXISTS memories_embedding_hnsw ON memories USING hnsw (embedding vector_cosine_ops)
			WITH (m = 16, ef_construction = 128);
	END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS memories_embedding_hnsw;
DROP INDEX IF EXISTS memories_search;
DROP INDEX IF EXISTS notes_search;
DROP INDEX IF EXISTS tasks_search;
ALTER TABLE memories DROP COLUMN IF EXISTS search_tsv;
ALTER TABLE notes DROP COLUMN IF EXISTS search_tsv;
ALTER TABLE tasks DROP COLUMN IF EXISTS search_tsv;
