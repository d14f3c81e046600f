package fedclient

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// FuzzPeerAnswer feeds the decoder what a hostile peer could answer a list, a search
// or a get with. Whatever it is, decoding never panics, and an answer it accepts is
// one the rules of SPEC §6c accept: at most the limit asked for, a cursor of at most
// 1 KiB, canonical ids, a finite score on a search row, our _source on every row —
// and the same rows encoding/json decodes (the decoder before this one, kept here as
// the reference), which is laxer only where it should not be (duplicate and
// case-variant names, null strings).
func FuzzPeerAnswer(f *testing.F) {
	f.Add([]byte(`{"items": [`+task()+`], "next_cursor": "abc", "truncated": false}`), uint8(0), uint8(2))
	f.Add([]byte(`{"items": [`+task("_score", "0.5")+`]}`), uint8(1), uint8(3))
	f.Add([]byte(`{"item": `+task()+`}`), uint8(2), uint8(0))
	f.Add([]byte(`{"items": [{"id": "`+taskID+`", "owner_user_id": "`+ownerID+`", "team_id": null, "body": "b", "title": "t", "created_at": "2026-01-02T03:04:05+02:00", "updated_at": "2026-01-02T03:04:05Z"}]}`), uint8(3), uint8(1))
	f.Add([]byte(`{"items": [{"id": "`+taskID+`", "owner_user_id": "`+ownerID+`", "content": "c", "created_at": "2026-01-02T03:04:05Z", "_score": 1e308}]}`), uint8(4), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, which, limit uint8) {
		resource := api.Resources[int(which)%len(api.Resources)]
		const source = "federated:work"
		var items []api.Item
		switch which % 3 {
		case 0:
			res, ok := decodeList(resource, body, api.FedListRequest{Limit: int(limit)}, source)
			if !ok {
				return
			}
			if len(res.NextCursor) > api.MaxCursor || !weighs(res.Size, body, res.Items) {
				t.Fatalf("cursor of %d bytes, size %d", len(res.NextCursor), res.Size)
			}
			want, ok := referenceList(resource, body, int(limit), source)
			if !ok || !reflect.DeepEqual(res.Items, want.Items) || res.NextCursor != want.NextCursor {
				t.Fatalf("accepted what encoding/json reads otherwise (ok %v):\n%#v\n%#v", ok, res.Items, want.Items)
			}
			items = res.Items
		case 1:
			res, ok := decodeSearch(resource, body, api.SearchRequest{Limit: int(limit)}, source)
			if !ok {
				return
			}
			want, ok := referenceSearch(resource, body, int(limit), source)
			if !ok || !reflect.DeepEqual(res.Items, want) {
				t.Fatalf("accepted what encoding/json reads otherwise (ok %v)", ok)
			}
			for _, it := range res.Items {
				if s := scoreOf(it); s == nil || math.IsNaN(*s) || math.IsInf(*s, 0) {
					t.Fatalf("a search row without a finite score: %#v", it)
				}
			}
			items = res.Items
		case 2:
			it, ok := decodeGet(resource, body, taskID, source)
			if !ok {
				return
			}
			items = []api.Item{it}
		}
		if limit > 0 && len(items) > int(limit) {
			t.Fatalf("%d rows for a limit of %d", len(items), limit)
		}
		for _, it := range items {
			k := api.KeyOf(it)
			if !api.CanonicalUUID(k.ID) || k.CreatedAt.IsZero() || sourceOf(it) != source {
				t.Fatalf("a row that does not check: %#v", it)
			}
		}
	})
}

func scoreOf(it api.Item) *float64 {
	switch v := it.(type) {
	case api.Task:
		return v.Score
	case api.Note:
		return v.Score
	case api.Memory:
		return v.Score
	}
	return nil
}

func sourceOf(it api.Item) string {
	switch v := it.(type) {
	case api.Task:
		return v.Source
	case api.Note:
		return v.Source
	case api.Memory:
		return v.Source
	}
	return ""
}

// referenceList is the list decoding before decodeList: encoding/json into raw rows,
// each row into its type, the same checks.
func referenceList(resource string, body []byte, limit int, source string) (ListResult, bool) {
	var out api.FedListOf[json.RawMessage]
	if json.Unmarshal(body, &out) != nil || (limit > 0 && len(out.Items) > limit) || len(out.NextCursor) > api.MaxCursor {
		return ListResult{}, false
	}
	items, ok := referenceItems(resource, out.Items, source, false)
	return ListResult{Items: items, NextCursor: out.NextCursor}, ok
}

func referenceSearch(resource string, body []byte, limit int, source string) ([]api.Item, bool) {
	var out api.FedSearchOf[json.RawMessage]
	if json.Unmarshal(body, &out) != nil || (limit > 0 && len(out.Items) > limit) {
		return nil, false
	}
	return referenceItems(resource, out.Items, source, true)
}

func referenceItems(resource string, raw []json.RawMessage, source string, scored bool) ([]api.Item, bool) {
	items := make([]api.Item, 0, len(raw))
	for _, r := range raw {
		var it api.Item
		var created time.Time
		var owner, id string
		var team *string
		var score **float64
		ok := true
		switch resource {
		case api.ResourceTasks:
			var v api.Task
			ok = json.Unmarshal(r, &v) == nil && api.ValidStatus(v.Status) && !v.UpdatedAt.IsZero()
			v.Source, score = source, &v.Score
			id, owner, team, created = v.ID, v.OwnerUserID, v.TeamID, v.CreatedAt
			ok = ok && scoreCheck(score, scored)
			it = v
		case api.ResourceNotes:
			var v api.Note
			ok = json.Unmarshal(r, &v) == nil && !v.UpdatedAt.IsZero()
			v.Source, score = source, &v.Score
			id, owner, team, created = v.ID, v.OwnerUserID, v.TeamID, v.CreatedAt
			ok = ok && scoreCheck(score, scored)
			it = v
		case api.ResourceMemories:
			var v api.Memory
			ok = json.Unmarshal(r, &v) == nil
			v.Source, score = source, &v.Score
			id, owner, team, created = v.ID, v.OwnerUserID, v.TeamID, v.CreatedAt
			ok = ok && scoreCheck(score, scored)
			it = v
		}
		if !ok || !api.CanonicalUUID(id) || !api.CanonicalUUID(owner) || (team != nil && !api.CanonicalUUID(*team)) || created.IsZero() {
			return nil, false
		}
		items = append(items, it)
	}
	return items, true
}

func scoreCheck(score **float64, scored bool) bool {
	if !scored {
		*score = nil
		return true
	}
	return *score != nil && !math.IsNaN(**score) && !math.IsInf(**score, 0)
}

// weighs says a decoded answer's size is what its rows keep: a row's fixed part each
// and no more string bytes than the answer had.
func weighs(size int, body []byte, items []api.Item) bool {
	return size >= rowBytes*len(items) && size <= rowBytes*len(items)+len(body)
}
