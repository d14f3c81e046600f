-- +goose Up
-- Native data of a site (SPEC §5). Ids are canonical lowercase UUID strings; times are
-- UTC text of fixed width ("2006-01-02T15:04:05.000000Z") so text order is time order;
-- embeddings are little-endian float32 blobs.
CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	email          TEXT NOT NULL UNIQUE,
	display_name   TEXT NOT NULL,
	role           TEXT NOT NULL CHECK (role IN ('admin', 'member')),
	api_token_hash BLOB UNIQUE,
	created_at     TEXT NOT NULL
);
CREATE TABLE teams (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);
CREATE TABLE team_members (
	team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id, team_id);
CREATE TABLE tasks (
	id            TEXT PRIMARY KEY,
	owner_user_id TEXT NOT NULL REFERENCES users (id),
	team_id       TEXT REFERENCES teams (id),
	title         TEXT NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done')),
	due_at        TEXT,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
);
CREATE INDEX tasks_owner_time ON tasks (owner_user_id, created_at DESC, id DESC);
CREATE INDEX tasks_team_time ON tasks (team_id, created_at DESC, id DESC);
CREATE TABLE notes (
	id            TEXT PRIMARY KEY,
	owner_user_id TEXT NOT NULL REFERENCES users (id),
	team_id       TEXT REFERENCES teams (id),
	title         TEXT NOT NULL,
	body          TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
);
CREATE INDEX notes_owner_time ON notes (owner_user_id, created_at DESC, id DESC);
CREATE INDEX notes_team_time ON notes (team_id, created_at DESC, id DESC);
CREATE TABLE memories (
	id            TEXT PRIMARY KEY,
	owner_user_id TEXT NOT NULL REFERENCES users (id),
	team_id       TEXT REFERENCES teams (id),
	content       TEXT NOT NULL,
	embedding     BLOB,
	created_at    TEXT NOT NULL
);
CREATE INDEX memories_owner_time ON memories (owner_user_id, created_at DESC, id DESC);
CREATE INDEX memories_team_time ON memories (team_id, created_at DESC, id DESC);
CREATE TABLE credentials (
	id            TEXT PRIMARY KEY,
	owner_user_id TEXT NOT NULL REFERENCES users (id),
	provider      TEXT NOT NULL,
	secret_sealed BLOB NOT NULL
);

-- +goose Down
DROP TABLE credentials;
DROP TABLE memories;
DROP TABLE notes;
DROP TABLE tasks;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE users;
