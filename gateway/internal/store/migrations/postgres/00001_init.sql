-- +goose Up
-- Native data of a site (SPEC §5). Embeddings start as real[]; migration 00002 turns
-- the column into vector(256) wherever the pgvector extension is installed.
CREATE TABLE users (
	id             uuid PRIMARY KEY,
	email          text NOT NULL UNIQUE,
	display_name   text NOT NULL,
	role           text NOT NULL CHECK (role IN ('admin', 'member')),
	api_token_hash bytea UNIQUE,
	created_at     timestamptz NOT NULL
);
CREATE TABLE teams (
	id         uuid PRIMARY KEY,
	name       text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL
);
CREATE TABLE team_members (
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id, team_id);
CREATE TABLE tasks (
	id            uuid PRIMARY KEY,
	owner_user_id uuid NOT NULL REFERENCES users (id),
	team_id       uuid REFERENCES teams (id),
	title         text NOT NULL,
	status        text NOT NULL CHECK (status IN ('open', 'in_progress', 'done')),
	due_at        timestamptz,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);
CREATE INDEX tasks_owner_time ON tasks (owner_user_id, created_at DESC, id DESC);
CREATE INDEX tasks_team_time ON tasks (team_id, created_at DESC, id DESC);
CREATE TABLE notes (
	id            uuid PRIMARY KEY,
	owner_user_id uuid NOT NULL REFERENCES users (id),
	team_id       uuid REFERENCES teams (id),
	title         text NOT NULL,
	body          text NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);
CREATE INDEX notes_owner_time ON notes (owner_user_id, created_at DESC, id DESC);
CREATE INDEX notes_team_time ON notes (team_id, created_at DESC, id DESC);
CREATE TABLE memories (
	id            uuid PRIMARY KEY,
	owner_user_id uuid NOT NULL REFERENCES users (id),
	team_id       uuid REFERENCES teams (id),
	content       text NOT NULL,
	embedding     real[],
	created_at    timestamptz NOT NULL
);
CREATE INDEX memories_owner_time ON memories (owner_user_id, created_at DESC, id DESC);
CREATE INDEX memories_team_time ON memories (team_id, created_at DESC, id DESC);
CREATE TABLE credentials (
	id            uuid PRIMARY KEY,
	owner_user_id uuid NOT NULL REFERENCES users (id),
	provider      text NOT NULL,
	secret_sealed bytea NOT NULL
);

-- +goose Down
DROP TABLE credentials;
DROP TABLE memories;
DROP TABLE notes;
DROP TABLE tasks;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE users;
