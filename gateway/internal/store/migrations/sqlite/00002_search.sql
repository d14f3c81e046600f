-- +goose Up
-- Search (SPEC §6b): an FTS5 index per searchable table (unicode61, diacritics kept,
-- so a word matches as PostgreSQL's 'simple' configuration matches it), ranked by
-- bm25. Each FTS row's rowid is a docid from search_docs, whose INTEGER PRIMARY KEY
-- VACUUM never renumbers (the base tables' implicit rowids it may). Triggers keep the
-- indexes in step with every insert, update and delete; existing rows are indexed
-- below. Nothing here is copied by a tier migration: it is derived.
CREATE TABLE IF NOT EXISTS search_docs (
	docid    INTEGER PRIMARY KEY,
	resource TEXT NOT NULL,
	id       TEXT NOT NULL,
	UNIQUE (resource, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts USING fts5(title, tokenize = 'unicode61 remove_diacritics 0');
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS tasks_search_insert AFTER INSERT ON tasks BEGIN
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('tasks', new.id);
	INSERT INTO tasks_fts (rowid, title) SELECT docid, new.title FROM search_docs WHERE resource = 'tasks' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS tasks_search_update AFTER UPDATE OF id, title ON tasks BEGIN
	DELETE FROM tasks_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'tasks' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'tasks' AND id = old.id;
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('tasks', new.id);
	INSERT INTO tasks_fts (rowid, title) SELECT docid, new.title FROM search_docs WHERE resource = 'tasks' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS tasks_search_delete AFTER DELETE ON tasks BEGIN
	DELETE FROM tasks_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'tasks' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'tasks' AND id = old.id;
END;
-- +goose StatementEnd
INSERT OR IGNORE INTO search_docs (resource, id) SELECT 'tasks', id FROM tasks;
INSERT INTO tasks_fts (rowid, title)
	SELECT d.docid, t.title FROM tasks t JOIN search_docs d ON d.resource = 'tasks' AND d.id = t.id
	WHERE d.docid NOT IN (SELECT rowid FROM tasks_fts);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 0');
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS notes_search_insert AFTER INSERT ON notes BEGIN
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('notes', new.id);
	INSERT INTO notes_fts (rowid, title, body) SELECT docid, new.title, new.body FROM search_docs WHERE resource = 'notes' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS notes_search_update AFTER UPDATE OF id, title, body ON notes BEGIN
	DELETE FROM notes_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'notes' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'notes' AND id = old.id;
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('notes', new.id);
	INSERT INTO notes_fts (rowid, title, body) SELECT docid, new.title, new.body FROM search_docs WHERE resource = 'notes' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS notes_search_delete AFTER DELETE ON notes BEGIN
	DELETE FROM notes_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'notes' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'notes' AND id = old.id;
END;
-- +goose StatementEnd
INSERT OR IGNORE INTO search_docs (resource, id) SELECT 'notes', id FROM notes;
INSERT INTO notes_fts (rowid, title, body)
	SELECT d.docid, t.title, t.body FROM notes t JOIN search_docs d ON d.resource = 'notes' AND d.id = t.id
	WHERE d.docid NOT IN (SELECT rowid FROM notes_fts);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(content, tokenize = 'unicode61 remove_diacritics 0');
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS memories_search_insert AFTER INSERT ON memories BEGIN
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('memories', new.id);
	INSERT INTO memories_fts (rowid, content) SELECT docid, new.content FROM search_docs WHERE resource = 'memories' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS memories_search_update AFTER UPDATE OF id, content ON memories BEGIN
	DELETE FROM memories_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'memories' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'memories' AND id = old.id;
	INSERT OR IGNORE INTO search_docs (resource, id) VALUES ('memories', new.id);
	INSERT INTO memories_fts (rowid, content) SELECT docid, new.content FROM search_docs WHERE resource = 'memories' AND id = new.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER IF NOT EXISTS memories_search_delete AFTER DELETE ON memories BEGIN
	DELETE FROM memories_fts WHERE rowid = (SELECT docid FROM search_docs WHERE resource = 'memories' AND id = old.id);
	DELETE FROM search_docs WHERE resource = 'memories' AND id = old.id;
END;
-- +goose StatementEnd
INSERT OR IGNORE INTO search_docs (resource, id) SELECT 'memories', id FROM memories;
INSERT INTO memories_fts (rowid, content)
	SELECT d.docid, t.content FROM memories t JOIN search_docs d ON d.resource = 'memories' AND d.id = t.id
	WHERE d.docid NOT IN (SELECT rowid FROM memories_fts);

-- +goose Down
DROP TRIGGER IF EXISTS tasks_search_delete;
DROP TRIGGER IF EXISTS tasks_search_update;
DROP TRIGGER IF EXISTS tasks_search_insert;
DROP TABLE IF EXISTS tasks_fts;
DROP TRIGGER IF EXISTS notes_search_delete;
DROP TRIGGER IF EXISTS notes_search_update;
DROP TRIGGER IF EXISTS notes_search_insert;
DROP TABLE IF EXISTS notes_fts;
DROP TRIGGER IF EXISTS memories_search_delete;
DROP TRIGGER IF EXISTS memories_search_update;
DROP TRIGGER IF EXISTS memories_search_insert;
DROP TABLE IF EXISTS memories_fts;
DROP TABLE IF EXISTS search_docs;
