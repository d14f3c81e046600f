-- +goose Up
-- Lists at 10⁶ rows (issue 18): every list arm (the owner's rows, a grant's personal
-- rows, one team's rows) finds an index that walks it newest first under each filter,
-- instead of reading past rows the filter drops. Personal rows (team_id IS NULL) have
-- a partial index of their own; a status filter walks (scope, status, time); an
-- updated_since filter can take the few rows past it from (scope, updated_at) and sort
-- them, which the planner prefers when it expects few.
CREATE INDEX tasks_personal_time ON tasks (owner_user_id, created_at DESC, id DESC) WHERE team_id IS NULL;
CREATE INDEX tasks_owner_status_time ON tasks (owner_user_id, status, created_at DESC, id DESC);
CREATE INDEX tasks_team_status_time ON tasks (team_id, status, created_at DESC, id DESC);
CREATE INDEX tasks_owner_updated ON tasks (owner_user_id, updated_at);
CREATE INDEX tasks_team_updated ON tasks (team_id, updated_at);
CREATE INDEX notes_personal_time ON notes (owner_user_id, created_at DESC, id DESC) WHERE team_id IS NULL;
CREATE INDEX notes_owner_updated ON notes (owner_user_id, updated_at);
CREATE INDEX notes_team_updated ON notes (team_id, updated_at);
CREATE INDEX memories_personal_time ON memories (owner_user_id, created_at DESC, id DESC) WHERE team_id IS NULL;

-- +goose Down
DROP INDEX memories_personal_time;
DROP INDEX notes_team_updated;
DROP INDEX notes_owner_updated;
DROP INDEX notes_personal_time;
DROP INDEX tasks_team_updated;
DROP INDEX tasks_owner_updated;
DROP INDEX tasks_team_status_time;
DROP INDEX tasks_owner_status_time;
DROP INDEX tasks_personal_time;
