package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the one-way tier migration's data path (SPEC §4 "Migration"): raw,
// typed copies of every native table from a local or standalone store into a
// federated PostgreSQL, ids preserved, and a field-by-field verification.

// colKind says how a column is read from either engine and written to PostgreSQL.
type colKind int

const (
	kText   colKind = iota // text, or a uuid read as text
	kTime                  // NOT NULL time
	kNTime                 // nullable time
	kBytes                 // bytea / blob
	kVector                // embedding: blob (SQLite), vector or real[] (PostgreSQL)
)

type column struct {
	name string
	kind colKind
}

type tableSpec struct {
	name string
	key  []string // conflict target
	cols []column
}

func cols(spec string) []column {
	var out []column
	for _, f := range strings.Fields(spec) {
		name, kind, _ := strings.Cut(f, ":")
		k := map[string]colKind{"": kText, "t": kTime, "nt": kNTime, "b": kBytes, "v": kVector}[kind]
		out = append(out, column{name, k})
	}
	return out
}

// tableSpecs are the native tables in dependency order (parents first).
var tableSpecs = []tableSpec{
	{"users", []string{"id"}, cols("id email display_name role api_token_hash:b created_at:t")},
	{"teams", []string{"id"}, cols("id name created_at:t")},
	{"team_members", []string{"team_id", "user_id"}, cols("team_id user_id")},
	{"tasks", []string{"id"}, cols("id owner_user_id team_id title status due_at:nt created_at:t updated_at:t")},
	{"notes", []string{"id"}, cols("id owner_user_id team_id title body created_at:t updated_at:t")},
	{"memories", []string{"id"}, cols("id owner_user_id team_id content embedding:v created_at:t")},
	{"credentials", []string{"id"}, cols("id owner_user_id provider secret_sealed:b")},
}

func specOf(table string) (tableSpec, error) {
	for _, t := range tableSpecs {
		if t.name == table {
			return t, nil
		}
	}
	return tableSpec{}, invalid("no table %q", table)
}

// selectExpr reads a column so that both engines scan into the same Go types.
func (s *sqlStore) selectExpr(c column) string {
	if s.d.engine == "postgres" && (c.kind == kText || c.kind == kVector) {
		return c.name + "::text" // uuid -> text; vector '[..]' or real[] '{..}' -> text
	}
	return c.name
}

// row is one raw row: strings, times, bytes or []float32 (nil for NULL).
type row []any

func (s *sqlStore) scanRow(rows *sql.Rows, t tableSpec) (row, error) {
	dst := make([]any, len(t.cols))
	var texts = make([]sql.NullString, len(t.cols))
	var times = make([]*time.Time, len(t.cols))
	var blobs = make([][]byte, len(t.cols))
	for i, c := range t.cols {
		switch {
		case c.kind == kText || (c.kind == kVector && s.d.engine == "postgres"):
			dst[i] = &texts[i]
		case c.kind == kTime || c.kind == kNTime:
			dst[i] = scanNullTime{&times[i]}
		default:
			dst[i] = &blobs[i]
		}
	}
	if err := rows.Scan(dst...); err != nil {
		return nil, err
	}
	out := make(row, len(t.cols))
	for i, c := range t.cols {
		switch c.kind {
		case kText:
			if texts[i].Valid {
				out[i] = texts[i].String
			}
		case kTime, kNTime:
			if times[i] != nil {
				out[i] = times[i].UTC().Truncate(time.Microsecond)
			}
		case kBytes:
			if blobs[i] != nil {
				out[i] = blobs[i]
			}
		case kVector:
			v, err := s.decodeVector(texts[i], blobs[i])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.name, c.name, err)
			}
			if v != nil {
				out[i] = v
			}
		}
	}
	return out, nil
}

func (s *sqlStore) decodeVector(text sql.NullString, blob []byte) ([]float32, error) {
	if s.d.engine == "sqlite" {
		if blob == nil {
			return nil, nil
		}
		if len(blob)%4 != 0 {
			return nil, fmt.Errorf("embedding blob of %d bytes is not float32s", len(blob))
		}
		v := make([]float32, len(blob)/4)
		for i := range v {
			v[i] = math.Float32frombits(uint32(blob[4*i]) | uint32(blob[4*i+1])<<8 | uint32(blob[4*i+2])<<16 | uint32(blob[4*i+3])<<24)
		}
		return v, nil
	}
	if !text.Valid {
		return nil, nil
	}
	body := strings.Trim(text.String, "[]{}")
	if body == "" {
		return []float32{}, nil
	}
	parts := strings.Split(body, ",")
	v := make([]float32, len(parts))
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("embedding element %d does not parse", i)
		}
		v[i] = float32(f)
	}
	return v, nil
}

// readRows streams a table in key order, in batches.
func (s *sqlStore) readRows(ctx context.Context, t tableSpec, where string, args []any, batch int, fn func([]row) error) error {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = s.selectExpr(c)
	}
	q := `SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + t.name + where + ` ORDER BY ` + strings.Join(t.key, ", ")
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	buf := make([]row, 0, batch)
	for rows.Next() {
		r, err := s.scanRow(rows, t)
		if err != nil {
			return err
		}
		if buf = append(buf, r); len(buf) == batch {
			if err := fn(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// upsert writes rows into a PostgreSQL target in one statement.
func (s *sqlStore) upsert(ctx context.Context, t tableSpec, rows []row) error {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	var b strings.Builder
	args := make([]any, 0, len(rows)*len(t.cols))
	b.WriteString(`INSERT INTO ` + t.name + ` (` + strings.Join(names, ", ") + `) VALUES `)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, c := range t.cols {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(len(args)+1))
			args = append(args, s.encode(c, r[j]))
		}
		b.WriteString(")")
	}
	b.WriteString(` ON CONFLICT (` + strings.Join(t.key, ", ") + `) `)
	var sets []string
	for _, c := range t.cols {
		if !slices.Contains(t.key, c.name) {
			sets = append(sets, c.name+" = excluded."+c.name)
		}
	}
	if len(sets) == 0 {
		b.WriteString("DO NOTHING")
	} else {
		b.WriteString("DO UPDATE SET " + strings.Join(sets, ", "))
	}
	_, err := s.db.ExecContext(ctx, b.String(), args...)
	return err
}

func (s *sqlStore) encode(c column, v any) any {
	if v == nil {
		return nil
	}
	if c.kind == kVector {
		return s.d.vec(v.([]float32))
	}
	return v
}

// canonical renders a raw value for comparison across engines.
func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return "s:" + x
	case time.Time:
		return "t:" + x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return "b:" + base64.StdEncoding.EncodeToString(x)
	case []float32:
		parts := make([]string, len(x))
		for i, f := range x {
			parts[i] = strconv.FormatFloat(float64(f), 'g', 6, 32)
		}
		return "v:" + strings.Join(parts, ",")
	}
	return fmt.Sprintf("?:%v", v)
}
