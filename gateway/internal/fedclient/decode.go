package fedclient

import (
	"bytes"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// A peer's answer is untrusted input (SPEC §6c): it is decoded once, straight from
// the bytes read, into the typed values of its resource — canonical UUID ids, RFC
// 3339 times, known statuses — and whatever else the peer put in its rows is
// dropped. _source is ours to say. The decoder is encoding/json/v2's (jsontext, as in
// strictjson): a duplicate member name, invalid UTF-8 or trailing data is refused,
// and so is a member whose name is a case variant of a field's (encoding/json would
// have matched "ID" to id, last one winning). A row's strings share one allocation
// per page.

// SourceOf is the _source of a peer's rows on the requesting side.
func SourceOf(peer string) string { return "federated:" + peer }

// answer is what decoding an answer needs besides its bytes.
type answer struct {
	resource string
	source   string
	limit    int  // most rows accepted (0: any)
	scored   bool // a search answer: each row carries a finite _score, else it is dropped
}

// decodeList decodes and checks a list answer: at most the limit asked for, a cursor
// of at most api.MaxCursor bytes, every row after the keyset asked for.
func decodeList(resource string, body []byte, req api.FedListRequest, source string) (ListResult, bool) {
	var res ListResult
	items, kept, ok := decodeAnswer(body, answer{resource: resource, source: source, limit: req.Limit}, "items",
		func(name string, d *jsontext.Decoder) bool {
			switch name {
			case "next_cursor":
				s, ok := readString(d, api.MaxCursor)
				res.NextCursor = s
				return ok
			case "truncated":
				return readBool(d)
			}
			return skipUnknown(d, name, "items", "next_cursor", "truncated")
		})
	if !ok || !allAfter(items, req.After) {
		return ListResult{}, false
	}
	res.Items, res.Size = items, kept
	return res, true
}

// decodeSearch decodes and checks a search answer: at most the limit asked for, every
// row with a finite score.
func decodeSearch(resource string, body []byte, req api.SearchRequest, source string) (SearchResult, bool) {
	items, kept, ok := decodeAnswer(body, answer{resource: resource, source: source, limit: req.Limit, scored: true}, "items",
		func(name string, d *jsontext.Decoder) bool {
			if name == "truncated" {
				return readBool(d)
			}
			return skipUnknown(d, name, "items", "truncated")
		})
	if !ok {
		return SearchResult{}, false
	}
	return SearchResult{Items: items, Size: kept}, true
}

// decodeGet decodes and checks a get answer: exactly one row, the one asked for.
func decodeGet(resource string, body []byte, id, source string) (api.Item, bool) {
	items, _, ok := decodeAnswer(body, answer{resource: resource, source: source, limit: 1}, "item",
		func(name string, d *jsontext.Decoder) bool { return skipUnknown(d, name, "item") })
	if !ok || len(items) != 1 || idOf(items[0]) != id {
		return nil, false
	}
	return items[0], true
}

// decoder is one answer's decoding state, pooled: the JSON decoder, the names and
// strings read so far, and the page's rows before their strings are made.
type decoder struct {
	d     jsontext.Decoder
	buf   bytes.Buffer // the body, read by d without a copy
	name  []byte
	arena []byte // every row string's bytes, unquoted
	rows  []rawRow
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// span is a string's place in the arena.
type span struct{ off, end int32 }

// rawRow is one row as decoded, its strings still spans.
type rawRow struct {
	id, owner, team, text, status, body span
	hasTeam, hasDue, hasScore           bool
	due, created, updated               time.Time
	score                               float64
}

// decodeAnswer reads one JSON object whose rows member (an array of rows, or one row
// for "item") is decoded into items; every other member goes to member, which
// reads it or refuses it. kept is about the bytes the items hold: their strings and
// a row's fixed part, not the whitespace or unknown members a peer may pad an answer
// with (what a cache entry of it weighs).
func decodeAnswer(body []byte, a answer, rows string, member func(string, *jsontext.Decoder) bool) (items []api.Item, kept int, ok bool) {
	dec := decoders.Get().(*decoder)
	defer func() {
		dec.buf.Reset()
		dec.d.Reset(&dec.buf)
		// An unusually big answer's buffers do not stay pinned in the pool.
		if cap(dec.arena) <= maxPooledBody && dec.buf.Cap() <= maxPooledBody && cap(dec.name) <= maxPooledBody {
			dec.name, dec.arena, dec.rows = dec.name[:0], dec.arena[:0], dec.rows[:0]
			decoders.Put(dec)
		}
	}()
	dec.buf.Reset()
	dec.buf.Write(body)
	dec.d.Reset(&dec.buf)
	dec.arena, dec.rows = dec.arena[:0], dec.rows[:0]
	if !dec.answer(a, rows, member) {
		return nil, 0, false
	}
	if _, err := dec.d.ReadToken(); err != io.EOF { // one value, nothing after it
		return nil, 0, false
	}
	kept = len(dec.arena) + rowBytes*len(dec.rows)
	items, ok = dec.items(a)
	return items, kept, ok
}

// rowBytes is about what a decoded row holds besides its strings: the item, its
// times, the string headers.
const rowBytes = 256

func (dec *decoder) answer(a answer, rows string, member func(string, *jsontext.Decoder) bool) bool {
	if t, err := dec.d.ReadToken(); err != nil || t.Kind() != '{' {
		return false
	}
	seen := false
	for dec.d.PeekKind() != '}' {
		if !dec.readName() {
			return false
		}
		switch {
		case string(dec.name) == rows && rows == "item":
			seen = true
			if !dec.row(a) {
				return false
			}
		case string(dec.name) == rows:
			seen = true
			if !dec.rowArray(a) {
				return false
			}
		case !member(string(dec.name), &dec.d):
			return false
		}
	}
	_, err := dec.d.ReadToken()
	return err == nil && (seen || rows != "item")
}

// rowArray reads an array of rows (null: none), refusing one row past the limit.
func (dec *decoder) rowArray(a answer) bool {
	if dec.d.PeekKind() == 'n' {
		return dec.d.SkipValue() == nil
	}
	if t, err := dec.d.ReadToken(); err != nil || t.Kind() != '[' {
		return false
	}
	for dec.d.PeekKind() != ']' {
		if a.limit > 0 && len(dec.rows) >= a.limit {
			return false
		}
		if !dec.row(a) {
			return false
		}
	}
	_, err := dec.d.ReadToken()
	return err == nil
}

// Fields of a row, as a bit each; a resource has some of them.
const (
	fID = 1 << iota
	fOwner
	fTeam
	fTitle
	fStatus
	fDue
	fCreated
	fUpdated
	fBody
	fContent
	fSource
	fScore
)

var fieldOf = map[string]int{"id": fID, "owner_user_id": fOwner, "team_id": fTeam, "title": fTitle,
	"status": fStatus, "due_at": fDue, "created_at": fCreated, "updated_at": fUpdated, "body": fBody,
	"content": fContent, "_source": fSource, "_score": fScore}

const common = fID | fOwner | fTeam | fCreated | fSource | fScore

// fieldsOf are each resource's fields.
var fieldsOf = map[string]int{
	api.ResourceTasks:    common | fTitle | fStatus | fDue | fUpdated,
	api.ResourceNotes:    common | fTitle | fBody | fUpdated,
	api.ResourceMemories: common | fContent,
}

// row reads one row object of a.resource.
func (dec *decoder) row(a answer) bool {
	fields, ok := fieldsOf[a.resource]
	if !ok {
		return false
	}
	if t, err := dec.d.ReadToken(); err != nil || t.Kind() != '{' {
		return false
	}
	var r rawRow
	for dec.d.PeekKind() != '}' {
		if !dec.readName() {
			return false
		}
		f := fieldOf[string(dec.name)] & fields // no copy for a map index
		if f == 0 {
			if !dec.skipUnknownField(string(dec.name), fields) {
				return false
			}
			continue
		}
		if !dec.field(f, &r) {
			return false
		}
	}
	if _, err := dec.d.ReadToken(); err != nil {
		return false
	}
	dec.rows = append(dec.rows, r)
	return true
}

// field reads one known field's value into r.
func (dec *decoder) field(f int, r *rawRow) bool {
	switch f {
	case fID:
		return dec.str(&r.id)
	case fOwner:
		return dec.str(&r.owner)
	case fTitle, fContent:
		return dec.str(&r.text)
	case fBody:
		return dec.str(&r.body)
	case fStatus:
		return dec.str(&r.status)
	case fTeam:
		if dec.d.PeekKind() == 'n' {
			return dec.d.SkipValue() == nil
		}
		r.hasTeam = true
		return dec.str(&r.team)
	case fDue:
		if dec.d.PeekKind() == 'n' {
			return dec.d.SkipValue() == nil
		}
		r.hasDue = true
		return dec.time(&r.due)
	case fCreated:
		return dec.time(&r.created)
	case fUpdated:
		return dec.time(&r.updated)
	case fSource: // ours to say: read to check it is a string, then dropped
		if k := dec.d.PeekKind(); k != 'n' && k != '"' {
			return false
		}
		return dec.d.SkipValue() == nil
	case fScore:
		if dec.d.PeekKind() == 'n' {
			return dec.d.SkipValue() == nil
		}
		t, err := dec.d.ReadToken()
		if err != nil || t.Kind() != '0' {
			return false
		}
		r.score, err = t.Float()
		r.hasScore = true
		return err == nil
	}
	return false
}

// readName reads an object member's name into dec.name.
func (dec *decoder) readName() bool {
	v, err := dec.d.ReadValue()
	if err != nil || v.Kind() != '"' {
		return false
	}
	dec.name, err = jsontext.AppendUnquote(dec.name[:0], v)
	return err == nil
}

// skipUnknownField drops a member of a row that is no field of its resource, unless
// its name is a field's in another case.
func (dec *decoder) skipUnknownField(name string, fields int) bool {
	for n, f := range fieldOf {
		if f&fields != 0 && strings.EqualFold(n, name) {
			return false
		}
	}
	return dec.d.SkipValue() == nil
}

// skipUnknown drops an answer's member that is none of known, unless its name is one
// of them in another case.
func skipUnknown(d *jsontext.Decoder, name string, known ...string) bool {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return false
		}
	}
	return d.SkipValue() == nil
}

// str reads a string value into the arena.
func (dec *decoder) str(s *span) bool {
	v, err := dec.d.ReadValue()
	if err != nil || v.Kind() != '"' || len(dec.arena)+len(v) > math.MaxInt32 {
		return false
	}
	s.off = int32(len(dec.arena))
	dec.arena, err = jsontext.AppendUnquote(dec.arena, v)
	s.end = int32(len(dec.arena))
	return err == nil
}

// time reads an RFC 3339 time (a string; time.Time's own strict parser).
func (dec *decoder) time(t *time.Time) bool {
	v, err := dec.d.ReadValue()
	if err != nil || v.Kind() != '"' {
		return false
	}
	dec.name, err = jsontext.AppendUnquote(dec.name[:0], v)
	return err == nil && t.UnmarshalText(dec.name) == nil
}

// readString reads a string (or null: "") of at most max bytes.
func readString(d *jsontext.Decoder, max int) (string, bool) {
	if d.PeekKind() == 'n' {
		return "", d.SkipValue() == nil
	}
	t, err := d.ReadToken()
	if err != nil || t.Kind() != '"' {
		return "", false
	}
	s := t.String()
	return s, len(s) <= max
}

// readBool reads true, false or null.
func readBool(d *jsontext.Decoder) bool {
	t, err := d.ReadToken()
	k := t.Kind()
	return err == nil && (k == 't' || k == 'f' || k == 'n')
}

// items makes the decoded rows typed items, their strings cut from one string, and
// checks each.
func (dec *decoder) items(a answer) ([]api.Item, bool) {
	all := string(dec.arena)
	str := func(s span) string { return all[s.off:s.end] }
	var teams []string
	var dues []time.Time
	var scores []float64
	for _, r := range dec.rows {
		if r.hasTeam {
			teams = append(teams, "")
		}
		if r.hasDue {
			dues = append(dues, time.Time{})
		}
		if r.hasScore && a.scored {
			scores = append(scores, 0)
		}
	}
	items := make([]api.Item, 0, len(dec.rows))
	var team *string
	var due *time.Time
	var score *float64
	for _, r := range dec.rows {
		team, due, score = nil, nil, nil
		if r.hasTeam {
			teams[0] = str(r.team)
			team, teams = &teams[0], teams[1:]
		}
		if r.hasDue {
			dues[0] = r.due
			due, dues = &dues[0], dues[1:]
		}
		if a.scored {
			if !r.hasScore || math.IsNaN(r.score) || math.IsInf(r.score, 0) {
				return nil, false
			}
			scores[0] = r.score
			score, scores = &scores[0], scores[1:]
		}
		id, owner := str(r.id), str(r.owner)
		if !api.CanonicalUUID(id) || !api.CanonicalUUID(owner) || (team != nil && !api.CanonicalUUID(*team)) || r.created.IsZero() {
			return nil, false
		}
		switch a.resource {
		case api.ResourceTasks:
			t := api.Task{ID: id, OwnerUserID: owner, TeamID: team, Title: str(r.text), Status: str(r.status),
				DueAt: due, CreatedAt: r.created, UpdatedAt: r.updated, Source: a.source, Score: score}
			if !api.ValidStatus(t.Status) || t.UpdatedAt.IsZero() {
				return nil, false
			}
			items = append(items, t)
		case api.ResourceNotes:
			if r.updated.IsZero() {
				return nil, false
			}
			items = append(items, api.Note{ID: id, OwnerUserID: owner, TeamID: team, Title: str(r.text), Body: str(r.body),
				CreatedAt: r.created, UpdatedAt: r.updated, Source: a.source, Score: score})
		case api.ResourceMemories:
			items = append(items, api.Memory{ID: id, OwnerUserID: owner, TeamID: team, Content: str(r.text),
				CreatedAt: r.created, Source: a.source, Score: score})
		}
	}
	return items, true
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
