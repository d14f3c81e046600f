// Package store is a site's native data (SPEC §5) behind one interface with two
// engines: pure-Go SQLite for the local tier and PostgreSQL for standalone and
// federated. Every read takes a Viewer and applies native RBAC in SQL: a user sees a
// row they own or whose team they belong to.
package store

import (
	"context"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
)

// Errors the layers above map to statuses (errs.From). invalid says which input was
// wrong (errors.Is(err, ErrInvalid) holds for it); ErrNotFound always reads the same,
// so a row's existence never leaks.
var (
	ErrNotFound = errs.New(errs.NotFound, api.CodeNotFound, "no such item")
	ErrInvalid  = errs.New(errs.Invalid, api.CodeInvalidRequest, "invalid input")
)

// invalid is an ErrInvalid whose message says what was wrong, in our words only.
func invalid(format string, args ...any) error {
	return errs.New(errs.Invalid, api.CodeInvalidRequest, "invalid input: "+format, args...)
}

// Viewer is whose native RBAC a read applies.
type Viewer struct{ UserID string }

// User is a person of this site.
type User struct {
	ID          string
	Email       string
	DisplayName string
	Role        string // admin | member
	CreatedAt   time.Time
	HasToken    bool
}

// Team groups users; rows with its id are visible to its members.
type Team struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Credential is a sealed secret of a user. It is never served by any API.
type Credential struct {
	ID           string
	OwnerUserID  string
	Provider     string
	SecretSealed []byte
}

// ListOptions page and filter a list. Limit is clamped by the caller. After is the
// keyset alternative to Cursor (rows strictly after it); at most one of them is set.
type ListOptions struct {
	Limit  int
	Cursor string
	After  *api.Keyset
	Filter api.Filter
}

// Page is one page of a list, newest first.
type Page struct {
	Items      []api.Item
	NextCursor string
}

// Store is what the gateway needs of its database.
type Store interface {
	Engine() string // "sqlite" or "postgres"
	Ping(ctx context.Context) error
	Close() error

	UpsertUser(ctx context.Context, u User) error
	// SetTokenHash stores the SHA-256 of a user's API token (never the token).
	SetTokenHash(ctx context.Context, userID string, hash []byte) error
	UserByTokenHash(ctx context.Context, hash []byte) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	UpsertTeam(ctx context.Context, t Team) error
	AddMember(ctx context.Context, teamID, userID string) error
	IsMember(ctx context.Context, teamID, userID string) (bool, error)

	// Put* insert or update by id (seed loads and migrations re-run idempotently).
	PutTask(ctx context.Context, t api.Task) error
	PutNote(ctx context.Context, n api.Note) error
	PutMemory(ctx context.Context, m api.Memory, embedding []float32) error
	PutCredential(ctx context.Context, c Credential) error

	// List and Get read under native RBAC: what the viewer may see on this site.
	List(ctx context.Context, v Viewer, resource string, opts ListOptions) (Page, error)
	// Get returns ErrNotFound for a row that does not exist and for one the viewer
	// may not see alike.
	Get(ctx context.Context, v Viewer, resource, id string) (api.Item, error)
	// ListGranted and GetGranted read a grant's effective rows (native RBAC of the
	// subject ∩ the scope), which only the scope package can make: a federation read
	// cannot forget its scope.
	ListGranted(ctx context.Context, rows scope.Rows, opts ListOptions) (Page, error)
	GetGranted(ctx context.Context, rows scope.Rows, id string) (api.Item, error)
	// Search ranks the rows native RBAC lets the viewer see; SearchGranted ranks only a
	// grant's effective rows, the condition inside the ranking query itself, so a row
	// outside them is never a candidate. Best first, at most Limit hits.
	Search(ctx context.Context, v Viewer, resource string, o SearchOptions) ([]Hit, error)
	SearchGranted(ctx context.Context, rows scope.Rows, o SearchOptions) ([]Hit, error)
	// Count counts the rows of one native table (for doctor, seeds and migration).
	Count(ctx context.Context, table string) (int64, error)
}

// Tables lists the native tables in dependency order.
var Tables = []string{"users", "teams", "team_members", "tasks", "notes", "memories", "credentials"}
