package localapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// A merged list (source=all, SPEC §6c "Merged lists") is one list in a local list's
// order (newest first, id as tie-break) across this site and the caller's peers. Its
// cursor holds each source's place as a keyset, so each resumes exactly after the
// last row it contributed: the federation list's "after" field for a peer, the same
// keyset for this site's store.

// maxMergedCursor bounds a merged cursor: about fifty sources' keysets.
const maxMergedCursor = 8 << 10

// position is one source's place in a merged list: from its first row (zero value),
// after a keyset, done (every row contributed), or failed on an earlier page (with
// the code it failed with) and left out of the remaining pages.
type position struct {
	After  *api.Keyset `json:"after,omitempty"`
	Done   bool        `json:"done,omitempty"`
	Failed string      `json:"failed,omitempty"`
}

// mergedCursor is what a merged list's next_cursor encodes: base64url of its JSON.
type mergedCursor struct {
	V       int                 `json:"v"`
	Sources map[string]position `json:"sources"`
}

const mergedCursorVersion = 1

func badCursor() error {
	return errs.New(errs.Invalid, api.CodeInvalidCursor, "the cursor is not one this list gave: start the list again without a cursor")
}

// decodeMerged reads a merged cursor; anything but one this API could have written
// is invalid_cursor. A cursor the caller forged can only narrow what each source
// returns: positions apply inside each source's own rows, and sources the caller
// does not own are never asked.
func decodeMerged(s string) (map[string]position, error) {
	if len(s) > maxMergedCursor {
		return nil, badCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, badCursor()
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c mergedCursor
	if dec.Decode(&c) != nil || dec.More() || c.V != mergedCursorVersion || c.Sources == nil {
		return nil, badCursor()
	}
	for name, p := range c.Sources {
		if !validPosition(name, p) {
			return nil, badCursor()
		}
	}
	return c.Sources, nil
}

// validPosition checks a decoded position: a source's name, at most one state, a
// well-formed keyset, a failure code of reason-code shape.
func validPosition(name string, p position) bool {
	if name != SourceLocal && !strings.HasPrefix(name, "federated:") {
		return false
	}
	states := 0
	for _, set := range []bool{p.After != nil, p.Done, p.Failed != ""} {
		if set {
			states++
		}
	}
	switch {
	case states > 1:
		return false
	case p.After != nil:
		return p.After.Validate() == nil
	case p.Failed != "":
		return reasonCode(p.Failed)
	}
	return true
}

// reasonCode reports whether s has the shape of a reason code (snake_case, short).
func reasonCode(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return s != ""
}

func encodeMerged(sources map[string]position) (string, error) {
	b, err := json.Marshal(mergedCursor{V: mergedCursorVersion, Sources: sources})
	if err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	if len(s) > maxMergedCursor {
		return "", errs.New(errs.Invalid, api.CodeInvalidSource,
			"too many sources to page through as one list: page each with source=local or source=federated:<peer name>")
	}
	return s, nil
}

// sourcePage is what one source answered for a page of a merged list.
type sourcePage struct {
	name   string
	status api.SourceStatus
	items  []any // each an api.Item with its _source
	more   bool  // the source has rows after its last one here
}

// listMerged answers one page of source=all.
func (a *API) listMerged(r *http.Request, resource string, peers []fedclient.Peer, opts store.ListOptions) (api.ListResponse, error) {
	names := []string{SourceLocal}
	for _, p := range peers {
		names = append(names, fedclient.SourceOf(p.Name()))
	}
	pos := map[string]position{}
	if opts.Cursor == "" {
		for _, n := range names {
			pos[n] = position{}
		}
	} else {
		all, err := decodeMerged(opts.Cursor)
		if err != nil {
			return api.ListResponse{}, err
		}
		for _, n := range names { // a source the list did not start with stays out
			if p, ok := all[n]; ok {
				pos[n] = p
			}
		}
	}
	pages, err := a.fetchSources(r, resource, peers, opts, pos)
	if err != nil {
		return api.ListResponse{}, err
	}
	resp := api.ListResponse{Items: []any{}, Sources: []api.SourceStatus{}}
	for _, n := range names {
		if p, ok := pos[n]; ok && p.Failed != "" {
			resp.Sources = append(resp.Sources, api.SourceStatus{Name: n, Status: "error", Error: p.Failed})
			resp.Partial = true
		} else if pg, ok := pages[n]; ok {
			resp.Sources = append(resp.Sources, pg.status)
			resp.Partial = resp.Partial || pg.status.Status == "error"
		}
	}
	resp.Items = merge(pages, pos, opts.Limit)
	if slices.ContainsFunc(names, func(n string) bool { p, ok := pos[n]; return ok && !p.Done && p.Failed == "" }) {
		if resp.NextCursor, err = encodeMerged(pos); err != nil {
			return api.ListResponse{}, err
		}
	}
	return resp, nil
}

// fetchSources asks every source still in the list for up to limit rows after its
// place: this site's store, and the peers in parallel. A peer that fails is marked
// failed in pos; a done source is not asked and answers ok.
func (a *API) fetchSources(r *http.Request, resource string, peers []fedclient.Peer, opts store.ListOptions,
	pos map[string]position) (map[string]sourcePage, error) {
	pages := map[string]sourcePage{}
	for n, p := range pos {
		if p.Done {
			pages[n] = sourcePage{name: n, status: api.SourceStatus{Name: n, Status: "ok"}}
		}
	}
	if p, ok := pos[SourceLocal]; ok && !p.Done && p.Failed == "" {
		page, err := a.cfg.Store.List(r.Context(), store.Viewer{UserID: caller(r).ID}, resource,
			store.ListOptions{Limit: opts.Limit, After: p.After, Filter: opts.Filter})
		if err != nil {
			return nil, err
		}
		items := make([]any, len(page.Items))
		for i, it := range page.Items {
			items[i] = api.WithSource(it, SourceLocal)
		}
		pages[SourceLocal] = sourcePage{name: SourceLocal, status: api.SourceStatus{Name: SourceLocal, Status: "ok"},
			items: items, more: page.NextCursor != ""}
	}
	var asked []fedclient.Peer
	for _, p := range peers {
		if q, ok := pos[fedclient.SourceOf(p.Name())]; ok && !q.Done && q.Failed == "" {
			asked = append(asked, p)
		}
	}
	list := func(ctx context.Context, p fedclient.Peer) (fedclient.ListResult, error) {
		after := pos[fedclient.SourceOf(p.Name())].After
		return p.List(ctx, resource, api.FedListRequest{Limit: opts.Limit, After: after, Filter: opts.Filter})
	}
	for _, res := range a.fanOut(peerContext(r), asked, "list", resource, list) {
		n := res.status.Name
		if res.status.Status == "error" {
			if !reasonCode(res.status.Error) {
				res.status.Error = api.CodeUnknown
			}
			pos[n] = position{Failed: res.status.Error}
			pages[n] = sourcePage{name: n, status: res.status}
			continue
		}
		pages[n] = sourcePage{name: n, status: res.status, items: res.items, more: res.next != ""}
	}
	return pages, nil
}

// candidate is one source's row in a page being merged.
type candidate struct {
	key    api.Keyset
	source string
	item   any
}

// merge takes up to limit rows in the list's order from the sources' pages and moves
// each source's position past the rows it contributed. A row may only be taken if no
// source that has more rows could still have a newer one: so nothing is taken after
// the newest "last row" of a source with more (its next page starts there), which
// keeps the order global even when a peer's cap gave fewer rows than asked.
func merge(pages map[string]sourcePage, pos map[string]position, limit int) []any {
	var all []candidate
	var horizon *api.Keyset
	for _, pg := range pages {
		var oldest *api.Keyset // a peer's rows are sorted below, not trusted to be
		for _, it := range pg.items {
			k := api.KeyOf(it.(api.Item))
			all = append(all, candidate{key: k, source: pg.name, item: it})
			if oldest == nil || oldest.Before(k) {
				oldest = &k
			}
		}
		if pg.more && oldest != nil && (horizon == nil || oldest.Before(*horizon)) {
			horizon = oldest
		}
	}
	slices.SortStableFunc(all, func(x, y candidate) int {
		switch {
		case x.key.Before(y.key):
			return -1
		case y.key.Before(x.key):
			return 1
		}
		return strings.Compare(x.source, y.source)
	})
	out := []any{}
	taken := map[string]int{}
	for i, c := range all {
		if len(out) == limit || (horizon != nil && horizon.Before(c.key)) {
			break
		}
		if i > 0 && all[i-1].source == c.source && all[i-1].key == c.key {
			taken[c.source]++ // a row a peer sent twice is listed once
			continue
		}
		out = append(out, c.item)
		k := c.key
		pos[c.source] = position{After: &k}
		taken[c.source]++
	}
	for n, pg := range pages {
		if p := pos[n]; p.Failed == "" && !p.Done && taken[n] == len(pg.items) && (!pg.more || len(pg.items) == 0) {
			pos[n] = position{Done: true} // every row it has was listed
		}
	}
	return out
}
