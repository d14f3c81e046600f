package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pgvector/pgvector-go"
)

// sqlStore implements Store over database/sql for both engines; a dialect covers the
// few differences (placeholders, time and vector encodings).
type sqlStore struct {
	db *sql.DB
	d  dialect
}

type dialect struct {
	engine string // sqlite | postgres
	vector bool   // postgres: the embedding column is vector(256), not real[]
	// iterative: pgvector ≥ 0.8, whose HNSW scans can go on past ef_search until
	// enough rows pass a filter (hnsw.iterative_scan).
	iterative bool
}

// sqliteTime is the fixed-width UTC layout SQLite stores, so text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// rebind turns ? placeholders into $n for PostgreSQL.
func (d dialect) rebind(q string) string {
	if d.engine != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ts encodes a time at microsecond precision, which both engines keep exactly.
func (d dialect) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.engine == "sqlite" {
		return t.Format(sqliteTime)
	}
	return t
}

func (d dialect) tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.ts(*t)
}

func (d dialect) vec(v []float32) any {
	switch {
	case v == nil:
		return nil
	case d.engine == "sqlite":
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	case d.vector:
		return pgvector.NewVector(v)
	default:
		return v
	}
}

// scanTime scans a NOT NULL time written by either engine.
type scanTime struct{ dst *time.Time }

func (s scanTime) Scan(src any) (err error) {
	*s.dst, err = toTime(src)
	return err
}

// scanNullTime scans a nullable time.
type scanNullTime struct{ dst **time.Time }

func (s scanNullTime) Scan(src any) error {
	if src == nil {
		*s.dst = nil
		return nil
	}
	t, err := toTime(src)
	*s.dst = &t
	return err
}

func toTime(src any) (time.Time, error) {
	switch v := src.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		return time.Parse(time.RFC3339Nano, v)
	case []byte:
		return time.Parse(time.RFC3339Nano, string(v))
	}
	return time.Time{}, fmt.Errorf("cannot scan %T into a time", src)
}

func validID(id string) error {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return invalid("an id is not a canonical lowercase UUID")
	}
	return nil
}

func (s *sqlStore) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.db.ExecContext(ctx, s.d.rebind(q), args...)
	return err
}

func (s *sqlStore) Engine() string                 { return s.d.engine }
func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
func (s *sqlStore) Close() error                   { return s.db.Close() }
