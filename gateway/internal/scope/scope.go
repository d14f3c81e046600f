// Package scope is a grant's scope (SPEC §6): which resources a peer may read for the
// grant's subject, which of the subject's rows count (personal, and teams), and the row
// cap. Parsing is strict and every error names its field; credentials are never
// federatable.
package scope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
)

// The cap's bounds.
const (
	MinRows = 1
	MaxRows = 10000
)

// Federatable resources. Credentials, and anything else, never are.
var Federatable = []string{"tasks", "notes", "memories"}

// Scope is a grant's scope document (the wire shape api.Scope) with its rules.
type Scope api.Scope

// Error is a scope error naming its field.
type Error struct {
	Field, Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("scope: field %q: %s", e.Field, e.Reason) }

// Parse decodes and validates a scope document.
func Parse(b []byte) (Scope, error) {
	var s Scope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Scope{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Scope{}, &Error{Field: "(document)", Reason: "more than one JSON value"}
	}
	return s, s.Validate()
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return &Error{Field: typeErr.Field, Reason: "must be a " + typeErr.Type.String()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Field: name, Reason: "unknown field (known: resources, excluded_resources, include_teams, include_personal, max_rows_per_query)"}
	}
	return &Error{Field: "(document)", Reason: "not a JSON object: " + err.Error()}
}

// Validate checks every field and normalises nothing: a valid scope is stored as given.
func (s Scope) Validate() error {
	if len(s.Resources) == 0 {
		return &Error{"resources", "must name at least one of tasks, notes, memories"}
	}
	if err := resourceList("resources", s.Resources); err != nil {
		return err
	}
	if err := resourceList("excluded_resources", s.ExcludedResources); err != nil {
		return err
	}
	for i, t := range s.IncludeTeams {
		if u, err := uuid.Parse(t); err != nil || u.String() != t {
			return &Error{fmt.Sprintf("include_teams[%d]", i), "must be a canonical lowercase team UUID"}
		}
		if slices.Index(s.IncludeTeams, t) != i {
			return &Error{fmt.Sprintf("include_teams[%d]", i), "names a team twice"}
		}
	}
	if s.MaxRowsPerQuery < MinRows || s.MaxRowsPerQuery > MaxRows {
		return &Error{"max_rows_per_query", fmt.Sprintf("must be from %d to %d", MinRows, MaxRows)}
	}
	return nil
}

func resourceList(field string, list []string) error {
	for i, r := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case r == "credentials":
			return &Error{f, "credentials are never federatable"}
		case !slices.Contains(Federatable, r):
			return &Error{f, fmt.Sprintf("unknown resource %q (use tasks, notes or memories)", r)}
		case slices.Index(list, r) != i:
			return &Error{f, fmt.Sprintf("names %q twice", r)}
		}
	}
	return nil
}

// Allows reports whether a resource may be read: listed, and not excluded (excluded
// wins).
func (s Scope) Allows(resource string) bool {
	return slices.Contains(s.Resources, resource) && !slices.Contains(s.ExcludedResources, resource)
}

// Effective lists the resources a peer may read, in a fixed order.
func (s Scope) Effective() []string {
	var out []string
	for _, r := range Federatable {
		if s.Allows(r) {
			out = append(out, r)
		}
	}
	return out
}

// Cap lowers a requested limit to the scope's cap (0 or less means "the cap").
func (s Scope) Cap(limit int) int {
	if limit <= 0 || limit > s.MaxRowsPerQuery {
		return s.MaxRowsPerQuery
	}
	return limit
}

// Rows is a grant's effective rows of one resource (SPEC §6): the subject's native
// RBAC narrowed to their personal rows (owned, no team) if the scope includes them, and
// to rows of the included teams the subject belongs to. Only Authorize makes one, and
// the store's granted reads take nothing else; the zero value names no subject and
// reads nothing.
type Rows struct {
	subject  string
	resource string
	personal bool
	teams    []string
}

// Authorize is the scope stage of the serving pipeline: a resource the scope does not
// allow (credentials never are) is 403; otherwise the subject's effective rows of it.
func (s Scope) Authorize(subjectUserID, resource string) (Rows, error) {
	if !s.Allows(resource) || !slices.Contains(Federatable, resource) {
		return Rows{}, errs.New(errs.Forbidden, api.CodeResourceNotInScope, "the grant does not cover %q", resource)
	}
	return Rows{subject: subjectUserID, resource: resource, personal: s.IncludePersonal, teams: slices.Clone(s.IncludeTeams)}, nil
}

// Subject is whose native RBAC applies.
func (r Rows) Subject() string { return r.subject }

// Resource is the one resource these rows are of.
func (r Rows) Resource() string { return r.resource }

// Personal says whether the subject's personal rows count.
func (r Rows) Personal() bool { return r.personal }

// Teams are the included teams; only those the subject belongs to count.
func (r Rows) Teams() []string { return slices.Clone(r.teams) }
