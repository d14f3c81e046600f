package fedclient

import (
	"encoding/json"
	"math"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// A peer's answer is untrusted input (SPEC §6c): its rows are decoded into the typed
// values of their resource — canonical UUID ids, RFC 3339 times, known statuses —
// and whatever else the peer put in them is dropped. _source is ours to say.

// SourceOf is the _source of a peer's rows on the requesting side.
func SourceOf(peer string) string { return "federated:" + peer }

// decodeItems decodes a page of rows of resource; scored says each must carry a
// finite _score (a search answer), otherwise any _score is dropped.
func decodeItems(resource string, raw []json.RawMessage, source string, scored bool) ([]api.Item, bool) {
	items := make([]api.Item, 0, len(raw))
	for _, r := range raw {
		it, ok := decodeItem(resource, r, source, scored)
		if !ok {
			return nil, false
		}
		items = append(items, it)
	}
	return items, true
}

// decodeItem decodes one row into its resource's type, checks its values and sets
// its _source.
func decodeItem(resource string, raw json.RawMessage, source string, scored bool) (api.Item, bool) {
	switch resource {
	case api.ResourceTasks:
		var t api.Task
		if json.Unmarshal(raw, &t) != nil || !api.ValidStatus(t.Status) || t.UpdatedAt.IsZero() ||
			!row(t.ID, t.OwnerUserID, t.TeamID, t.CreatedAt.IsZero()) || !scoreOK(&t.Score, scored) {
			return nil, false
		}
		t.Source = source
		return t, true
	case api.ResourceNotes:
		var n api.Note
		if json.Unmarshal(raw, &n) != nil || n.UpdatedAt.IsZero() ||
			!row(n.ID, n.OwnerUserID, n.TeamID, n.CreatedAt.IsZero()) || !scoreOK(&n.Score, scored) {
			return nil, false
		}
		n.Source = source
		return n, true
	case api.ResourceMemories:
		var m api.Memory
		if json.Unmarshal(raw, &m) != nil || !row(m.ID, m.OwnerUserID, m.TeamID, m.CreatedAt.IsZero()) ||
			!scoreOK(&m.Score, scored) {
			return nil, false
		}
		m.Source = source
		return m, true
	}
	return nil, false
}

// row checks the fields every resource has: canonical ids and a creation time (a
// time that decoded is RFC 3339; an absent one is zero).
func row(id, owner string, team *string, noCreatedAt bool) bool {
	return api.CanonicalUUID(id) && api.CanonicalUUID(owner) && (team == nil || api.CanonicalUUID(*team)) && !noCreatedAt
}

// scoreOK requires a finite score on a search answer's row and drops one elsewhere.
func scoreOK(score **float64, scored bool) bool {
	if !scored {
		*score = nil
		return true
	}
	return *score != nil && !math.IsNaN(**score) && !math.IsInf(**score, 0)
}

// idOf is a decoded row's id.
func idOf(it api.Item) string {
	switch v := it.(type) {
	case api.Task:
		return v.ID
	case api.Note:
		return v.ID
	case api.Memory:
		return v.ID
	}
	return ""
}
