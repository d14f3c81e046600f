package store

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

const fuzzID = "7b0c5a1e-1111-4222-8333-444455556666"

// FuzzCursor decodes random cursors: never a panic, and a cursor it accepts names a
// canonical id and encodes back to one that decodes to the same place.
func FuzzCursor(f *testing.F) {
	at := time.Date(2026, 12, 2, 7, 0, 0, 123456789, time.UTC)
	f.Add(encodeCursor(at, fuzzID))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("2026-12-02T07:00:00+01:00|" + fuzzID)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("2026-12-02T07:00:00Z|not-an-id")))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("yesterday|" + fuzzID)))
	f.Add(base64.StdEncoding.EncodeToString([]byte("2026-12-02T07:00:00Z|" + fuzzID)))
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := decodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refused with %v, not ErrInvalid", err)
			}
			return
		}
		if validID(id) != nil {
			t.Fatalf("accepted id %q", id)
		}
		at2, id2, err := decodeCursor(encodeCursor(at, id))
		if err != nil || !at2.Equal(at) || id2 != id {
			t.Fatalf("%q: round trip gave %v %q %v, want %v %q", c, at2, id2, err, at, id)
		}
	})
}

// FuzzListFilters lists with random filters, cursors and limits against a real
// SQLite store: every answer is a page of at most limit rows or ErrInvalid, never a
// database error (which would be a 500).
func FuzzListFilters(f *testing.F) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	if err := st.UpsertUser(ctx, User{ID: fuzzID, Email: "f@example.test", DisplayName: "F", Role: "member", CreatedAt: now}); err != nil {
		f.Fatal(err)
	}
	if err := st.PutTask(ctx, api.Task{ID: "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff", OwnerUserID: fuzzID, Title: "t", Status: api.StatusOpen, CreatedAt: now, UpdatedAt: now}); err != nil {
		f.Fatal(err)
	}
	resources := []string{"tasks", "notes", "memories", "credentials"}
	f.Add(uint8(0), "open", "", int64(0), false, "", 10)
	f.Add(uint8(0), "done", fuzzID, now.Unix(), true, encodeCursor(now, fuzzID), 1)
	f.Add(uint8(1), "open", "", int64(0), false, "", 5)
	f.Add(uint8(2), "", "", int64(-62135596800), true, "", 100)
	f.Add(uint8(3), "", "not-a-team", int64(0), false, "%%%", 0)
	f.Fuzz(func(t *testing.T, res uint8, status, team string, since int64, hasSince bool, cursor string, limit int) {
		opts := ListOptions{Limit: limit, Cursor: cursor, Filter: api.Filter{Status: status, TeamID: team}}
		if hasSince {
			at := time.Unix(since, 0).UTC()
			opts.Filter.UpdatedSince = &at
		}
		page, err := st.List(ctx, Viewer{UserID: fuzzID}, resources[int(res)%len(resources)], opts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%+v: %v, not ErrInvalid", opts, err)
			}
			return
		}
		if len(page.Items) > limit {
			t.Fatalf("%d items for limit %d", len(page.Items), limit)
		}
	})
}
