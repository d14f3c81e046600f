package api

import "time"

// Resources a site serves. Credentials are native data but never a resource.
const (
	ResourceTasks    = "tasks"
	ResourceNotes    = "notes"
	ResourceMemories = "memories"
)

// Resources lists every resource name, in a fixed order.
var Resources = []string{ResourceTasks, ResourceNotes, ResourceMemories}

// Task statuses.
const (
	StatusOpen       = "open"
	StatusInProgress = "in_progress"
	StatusDone       = "done"
)

// Item is one row of any resource as it travels: the resource's fields plus _source.
type Item interface{ isItem() }

// Task is a to-do owned by a user, optionally shared with a team.
type Task struct {
	ID          string     `json:"id"`
	OwnerUserID string     `json:"owner_user_id"`
	TeamID      *string    `json:"team_id"`
	Title       string     `json:"title"`
	Status      string     `json:"status"`
	DueAt       *time.Time `json:"due_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Source      string     `json:"_source"`
	Score       *float64   `json:"_score,omitempty"` // search answers only
}

// Note is a titled text.
type Note struct {
	ID          string    `json:"id"`
	OwnerUserID string    `json:"owner_user_id"`
	TeamID      *string   `json:"team_id"`
	Title       string    `json:"title"`
	Body        string    `json:"body"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Source      string    `json:"_source"`
	Score       *float64  `json:"_score,omitempty"` // search answers only
}

// Memory is a remembered fact; its embedding stays in the store.
type Memory struct {
	ID          string    `json:"id"`
	OwnerUserID string    `json:"owner_user_id"`
	TeamID      *string   `json:"team_id"`
	Content     string    `json:"content"`
	CreatedAt   time.Time `json:"created_at"`
	Source      string    `json:"_source"`
	Score       *float64  `json:"_score,omitempty"` // search answers only
}

func (Task) isItem()   {}
func (Note) isItem()   {}
func (Memory) isItem() {}

// Filter narrows a list.
type Filter struct {
	Status       string     `json:"status,omitempty"`
	TeamID       string     `json:"team_id,omitempty"`
	UpdatedSince *time.Time `json:"updated_since,omitempty"`
}

// SourceStatus says how one source of a list answered.
type SourceStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok | error | stale
	Error  string `json:"error,omitempty"`
	// Cached says a fresh cache entry answered without a call to the peer.
	Cached bool `json:"cached,omitempty"`
	// AgeS is the age in seconds of the cache entry that answered (cached or stale).
	AgeS *float64 `json:"age_s,omitempty"`
}

// ListOf is the local API's list body with items of type T: the gateway encodes
// ListResponse; a client that does not know the resource decodes
// ListOf[map[string]any].
type ListOf[T any] struct {
	// Items are this site's rows and peers' rows, each with _source.
	Items      []T            `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
	Partial    bool           `json:"_partial"`
	Sources    []SourceStatus `json:"sources"`
}

// ListResponse is the local API's list body as the gateway writes it.
type ListResponse = ListOf[any]

// ItemResponse wraps one item.
type ItemResponse struct {
	Item any `json:"item"`
}

// CreateTask, CreateNote and CreateMemory are the local API's create bodies.
type CreateTask struct {
	Title  string     `json:"title"`
	Status string     `json:"status,omitempty"`
	TeamID *string    `json:"team_id,omitempty"`
	DueAt  *time.Time `json:"due_at,omitempty"`
}

type CreateNote struct {
	Title  string  `json:"title"`
	Body   string  `json:"body"`
	TeamID *string `json:"team_id,omitempty"`
}

type CreateMemory struct {
	Content string  `json:"content"`
	TeamID  *string `json:"team_id,omitempty"`
}

// WithSource returns an item with its _source set.
func WithSource(it Item, source string) Item {
	switch v := it.(type) {
	case Task:
		v.Source = source
		return v
	case Note:
		v.Source = source
		return v
	case Memory:
		v.Source = source
		return v
	}
	return it
}

// WithScore returns an item with its _score set (a search answer's items).
func WithScore(it Item, score float64) Item {
	switch v := it.(type) {
	case Task:
		v.Score = &score
		return v
	case Note:
		v.Score = &score
		return v
	case Memory:
		v.Score = &score
		return v
	}
	return it
}
