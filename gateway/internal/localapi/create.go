package localapi

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// Field limits of created rows.
const (
	maxTitle = 500
	maxText  = 64 << 10
)

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	item, err := a.createItem(r, mux.Vars(r)["resource"], caller(r))
	if err != nil {
		httpx.WriteError(w, r, a.cfg.Log, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, api.ItemResponse{Item: api.WithSource(item, SourceLocal)})
}

func (a *API) createItem(r *http.Request, resource string, u store.User) (api.Item, error) {
	ctx := r.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := uuid.NewString()
	var team *string
	var save func() (api.Item, error)
	switch resource {
	case api.ResourceTasks:
		var in api.CreateTask
		if err := httpx.Decode(r, &in); err != nil {
			return nil, err
		}
		if in.Status == "" {
			in.Status = api.StatusOpen
		}
		if err := firstErr(text("title", in.Title, maxTitle), status(in.Status), dueAt(&in.DueAt)); err != nil {
			return nil, err
		}
		team = in.TeamID
		save = func() (api.Item, error) {
			t := api.Task{ID: id, OwnerUserID: u.ID, TeamID: team, Title: in.Title, Status: in.Status, DueAt: in.DueAt, CreatedAt: now, UpdatedAt: now}
			return t, a.cfg.Store.PutTask(ctx, t)
		}
	case api.ResourceNotes:
		var in api.CreateNote
		if err := httpx.Decode(r, &in); err != nil {
			return nil, err
		}
		if err := firstErr(text("title", in.Title, maxTitle), text("body", in.Body, maxText)); err != nil {
			return nil, err
		}
		team = in.TeamID
		save = func() (api.Item, error) {
			n := api.Note{ID: id, OwnerUserID: u.ID, TeamID: team, Title: in.Title, Body: in.Body, CreatedAt: now, UpdatedAt: now}
			return n, a.cfg.Store.PutNote(ctx, n)
		}
	case api.ResourceMemories:
		var in api.CreateMemory
		if err := httpx.Decode(r, &in); err != nil {
			return nil, err
		}
		if err := text("content", in.Content, maxText); err != nil {
			return nil, err
		}
		team = in.TeamID
		save = func() (api.Item, error) {
			vec, err := a.cfg.Embedder.Embed(ctx, in.Content)
			if err != nil {
				return nil, err
			}
			m := api.Memory{ID: id, OwnerUserID: u.ID, TeamID: team, Content: in.Content, CreatedAt: now}
			return m, a.cfg.Store.PutMemory(ctx, m, vec)
		}
	}
	if team != nil {
		if !api.CanonicalUUID(*team) {
			return nil, errs.New(errs.Invalid, api.CodeInvalidTeamID, "team_id must be a canonical lowercase UUID")
		}
		if ok, err := a.cfg.Store.IsMember(ctx, *team, u.ID); err != nil {
			return nil, err
		} else if !ok {
			return nil, errs.New(errs.Forbidden, api.CodeNotATeamMember, "you are not a member of that team")
		}
	}
	return save()
}

// text refuses empty or oversized text, NUL bytes (PostgreSQL cannot store them) and
// invalid UTF-8, so both engines hold the same rows.
func text(field, v string, maxLen int) error {
	if strings.TrimSpace(v) == "" || len(v) > maxLen || strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
		return errs.New(errs.Invalid, "invalid_"+field, "%s must be non-empty UTF-8 text without NUL bytes, at most %d bytes", field, maxLen)
	}
	return nil
}

// dueAt normalises a due date to UTC microseconds within years 1-9999, which every
// engine and the JSON encoder can hold.
func dueAt(t **time.Time) error {
	if *t == nil {
		return nil
	}
	u := (*t).UTC().Truncate(time.Microsecond)
	if u.Year() < 1 || u.Year() > 9999 {
		return errs.New(errs.Invalid, api.CodeInvalidDueAt, "due_at must be a time between the years 1 and 9999")
	}
	*t = &u
	return nil
}

func status(s string) error {
	if !api.ValidStatus(s) {
		return errs.New(errs.Invalid, api.CodeInvalidStatus, "status must be open, in_progress or done")
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
