// Package seed loads a seed set (SPEC §5) into a store, idempotently: rows are upserted
// by id, memberships added once, credentials sealed, and each user without an API
// token gets one, returned once and stored only as its hash.
package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/apitoken"
	"github.com/mosaic-federation/mosaic/gateway/internal/embed"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// File is a seed set. Rows name users by email and teams by name.
type File struct {
	Users       []User       `json:"users"`
	Teams       []Team       `json:"teams"`
	Tasks       []Task       `json:"tasks"`
	Notes       []Note       `json:"notes"`
	Memories    []Memory     `json:"memories"`
	Credentials []Credential `json:"credentials"`
}

type User struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
}

type Team struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

type Task struct {
	ID        string     `json:"id"`
	Owner     string     `json:"owner"`
	Team      string     `json:"team,omitempty"`
	Title     string     `json:"title"`
	Status    string     `json:"status"`
	DueAt     *time.Time `json:"due_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

type Note struct {
	ID        string     `json:"id"`
	Owner     string     `json:"owner"`
	Team      string     `json:"team,omitempty"`
	Title     string     `json:"title"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

type Memory struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Team      string    `json:"team,omitempty"`
	Content   string    `json:"content"`
	CreatedAt time.Time `json:"created_at"`
}

type Credential struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Provider string `json:"provider"`
	Secret   string `json:"secret"`
}

// Parse decodes a seed set strictly: an unknown field is an error.
func Parse(r io.Reader) (File, error) {
	var f File
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("seed file: %w", err)
	}
	return f, nil
}

// Result says what a load did. Token is set only for users who got a new token.
type Result = api.SeedResult

// UserToken is one seeded user and its new token, if any.
type UserToken = api.SeedUser

// Deps are what a load writes with.
type Deps struct {
	Store    store.Store
	Keyring  *sealing.Keyring // nil: a file with credentials is refused
	Embedder embed.Embedder
}

// Load writes f into the store.
func Load(ctx context.Context, d Deps, f File) (Result, error) {
	users := map[string]string{} // email -> id
	teams := map[string]string{} // name -> id
	res := Result{Counts: map[string]int{}}
	now := time.Now().UTC()
	for i, u := range f.Users {
		if err := d.Store.UpsertUser(ctx, store.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role, CreatedAt: now}); err != nil {
			return res, fmt.Errorf("users[%d] (%s): %w", i, u.Email, err)
		}
		users[u.Email] = u.ID
	}
	for i, t := range f.Teams {
		if err := d.Store.UpsertTeam(ctx, store.Team{ID: t.ID, Name: t.Name, CreatedAt: now}); err != nil {
			return res, fmt.Errorf("teams[%d] (%s): %w", i, t.Name, err)
		}
		teams[t.Name] = t.ID
		for _, m := range t.Members {
			uid, ok := users[m]
			if !ok {
				return res, fmt.Errorf("teams[%d] (%s): member %q is not a user of this file", i, t.Name, m)
			}
			if err := d.Store.AddMember(ctx, t.ID, uid); err != nil {
				return res, fmt.Errorf("teams[%d]: %w", i, err)
			}
			res.Counts["team_members"]++
		}
	}
	ref := func(kind string, i int, owner, team string) (string, *string, error) {
		uid, ok := users[owner]
		if !ok {
			return "", nil, fmt.Errorf("%s[%d]: owner %q is not a user of this file", kind, i, owner)
		}
		if team == "" {
			return uid, nil, nil
		}
		tid, ok := teams[team]
		if !ok {
			return "", nil, fmt.Errorf("%s[%d]: team %q is not a team of this file", kind, i, team)
		}
		return uid, &tid, nil
	}
	for i, t := range f.Tasks {
		owner, team, err := ref("tasks", i, t.Owner, t.Team)
		if err == nil {
			err = d.Store.PutTask(ctx, api.Task{ID: t.ID, OwnerUserID: owner, TeamID: team, Title: t.Title,
				Status: t.Status, DueAt: t.DueAt, CreatedAt: t.CreatedAt, UpdatedAt: orTime(t.UpdatedAt, t.CreatedAt)})
		}
		if err != nil {
			return res, fmt.Errorf("tasks[%d]: %w", i, err)
		}
	}
	for i, n := range f.Notes {
		owner, team, err := ref("notes", i, n.Owner, n.Team)
		if err == nil {
			err = d.Store.PutNote(ctx, api.Note{ID: n.ID, OwnerUserID: owner, TeamID: team, Title: n.Title,
				Body: n.Body, CreatedAt: n.CreatedAt, UpdatedAt: orTime(n.UpdatedAt, n.CreatedAt)})
		}
		if err != nil {
			return res, fmt.Errorf("notes[%d]: %w", i, err)
		}
	}
	for i, m := range f.Memories {
		owner, team, err := ref("memories", i, m.Owner, m.Team)
		var vec []float32
		if err == nil {
			vec, err = d.Embedder.Embed(ctx, m.Content)
		}
		if err == nil {
			err = d.Store.PutMemory(ctx, api.Memory{ID: m.ID, OwnerUserID: owner, TeamID: team, Content: m.Content, CreatedAt: m.CreatedAt}, vec)
		}
		if err != nil {
			return res, fmt.Errorf("memories[%d]: %w", i, err)
		}
	}
	if len(f.Credentials) > 0 && d.Keyring == nil {
		return res, errors.New("credentials need a sealing key: set sealing_key_file in the config")
	}
	for i, c := range f.Credentials {
		owner, _, err := ref("credentials", i, c.Owner, "")
		var sealed []byte
		if err == nil {
			sealed, err = d.Keyring.Seal([]byte(c.Secret), sealing.Place{Table: "credentials", RowID: c.ID, Owner: owner})
		}
		if err == nil {
			err = d.Store.PutCredential(ctx, store.Credential{ID: c.ID, OwnerUserID: owner, Provider: c.Provider, SecretSealed: sealed})
		}
		if err != nil {
			return res, fmt.Errorf("credentials[%d]: %w", i, err)
		}
	}
	res.Counts["users"], res.Counts["teams"] = len(f.Users), len(f.Teams)
	res.Counts["tasks"], res.Counts["notes"] = len(f.Tasks), len(f.Notes)
	res.Counts["memories"], res.Counts["credentials"] = len(f.Memories), len(f.Credentials)
	return res, issueTokens(ctx, d.Store, f.Users, &res)
}

// issueTokens gives every user without a token a new one, in file order.
func issueTokens(ctx context.Context, st store.Store, users []User, res *Result) error {
	for _, u := range users {
		got, err := st.UserByEmail(ctx, u.Email)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Email, err)
		}
		ut := UserToken{ID: got.ID, Email: got.Email}
		if !got.HasToken {
			token, err := apitoken.New()
			if err != nil {
				return err
			}
			if err := st.SetTokenHash(ctx, got.ID, apitoken.Hash(token)); err != nil {
				return fmt.Errorf("user %s: %w", u.Email, err)
			}
			ut.Token = token
		}
		res.Users = append(res.Users, ut)
	}
	return nil
}

func orTime(t *time.Time, def time.Time) time.Time {
	if t != nil {
		return *t
	}
	return def
}

// ParseBytes is Parse over a byte slice.
func ParseBytes(b []byte) (File, error) { return Parse(bytes.NewReader(b)) }
