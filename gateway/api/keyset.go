package api

import "time"

// Keyset is a row's place in a list's order (newest first, id as tie-break): the
// federation list's "after" field, and each source's position in a merged list.
type Keyset struct {
	CreatedAt time.Time `json:"created_at"`
	ID        string    `json:"id"`
}

// Validate checks a keyset: a creation time and a canonical id. A keyset names a
// place, not a row: it need not exist, and one that is forged only narrows a list.
func (k Keyset) Validate() error {
	// An offset can carry a four-digit year out of range in UTC (year 0 or 10000),
	// which databases store differently or not at all.
	if y := k.CreatedAt.UTC().Year(); k.CreatedAt.IsZero() || y < 1 || y > 9999 {
		return &FieldError{Field: "after.created_at", Code: CodeInvalidCursor, Message: "after.created_at must be an RFC 3339 time between the years 1 and 9999"}
	}
	if !CanonicalUUID(k.ID) {
		return &FieldError{Field: "after.id", Code: CodeInvalidCursor, Message: "after.id must be a canonical lowercase UUID"}
	}
	return nil
}

// Before reports whether k comes before o in a list's order: newer, or as new with a
// greater id (ids are canonical lowercase, so byte order is the databases' order).
func (k Keyset) Before(o Keyset) bool {
	if !k.CreatedAt.Equal(o.CreatedAt) {
		return k.CreatedAt.After(o.CreatedAt)
	}
	return k.ID > o.ID
}

// KeyOf is an item's keyset.
func KeyOf(it Item) Keyset {
	switch v := it.(type) {
	case Task:
		return Keyset{CreatedAt: v.CreatedAt, ID: v.ID}
	case Note:
		return Keyset{CreatedAt: v.CreatedAt, ID: v.ID}
	case Memory:
		return Keyset{CreatedAt: v.CreatedAt, ID: v.ID}
	}
	return Keyset{}
}
