package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// OpenSQLiteReadOnly opens a local store for reading only: no migration runs and the
// file is opened read-only, so a tier migration never writes its source.
func OpenSQLiteReadOnly(ctx context.Context, path string) (Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s read-only: %w", path, err)
	}
	return &sqlStore{db: db, d: dialect{engine: "sqlite"}}, nil
}

// OpenPostgresReadOnly opens a standalone store without migrating it; every session
// defaults to read-only transactions, so the source cannot be written by mistake.
func OpenPostgresReadOnly(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("storage: the source PostgreSQL URL must be postgres://user:password@host:port/db")
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on") // pgx passes it as a runtime parameter
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, errors.New("storage: the source PostgreSQL URL does not parse")
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: source PostgreSQL: %w", err)
	}
	return &sqlStore{db: db, d: dialect{engine: "postgres"}}, nil
}

// TableCount is one table's row count.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Counts counts every native table, in dependency order.
func Counts(ctx context.Context, s Store) ([]TableCount, error) {
	out := make([]TableCount, 0, len(tableSpecs))
	for _, t := range tableSpecs {
		n, err := s.Count(ctx, t.name)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", t.name, err)
		}
		out = append(out, TableCount{t.name, n})
	}
	return out, nil
}

func raw(s Store) (*sqlStore, error) {
	r, ok := s.(*sqlStore)
	if !ok {
		return nil, errors.New("migration needs the SQL stores")
	}
	return r, nil
}

// CopyTable copies every row of a table from src into dst (a PostgreSQL store), in
// batches of batch rows; progress gets the number of rows of each batch written. Into
// an empty table it bulk-loads (COPY, indexes built after, one transaction); into one
// that has rows (a re-run) it upserts, one transaction-free statement per batch.
func CopyTable(ctx context.Context, src, dst Store, table string, batch int, progress func(int)) (int64, error) {
	s, err := raw(src)
	if err != nil {
		return 0, err
	}
	d, err := raw(dst)
	if err != nil || d.d.engine != "postgres" {
		return 0, errors.New("the migration target must be PostgreSQL")
	}
	t, err := specOf(table)
	if err != nil {
		return 0, err
	}
	if n, loaded, err := d.bulkLoad(ctx, s, t, batch, progress); err != nil || loaded {
		return n, err
	}
	var n int64
	err = s.readRows(ctx, t, "", nil, batch, func(rows []row) error {
		if err := d.upsert(ctx, t, rows); err != nil {
			return fmt.Errorf("write %s: %w", table, err)
		}
		n += int64(len(rows))
		progress(len(rows))
		return nil
	})
	return n, err
}

func keyString(t tableSpec, r row) string {
	parts := make([]string, len(t.key))
	for i := range t.key {
		parts[i] = canonical(r[i]) // key columns come first in every spec
	}
	return strings.Join(parts, "\x00")
}

// ForeignRows counts rows of dst's table whose key src does not have: a target that
// holds data from another source.
func ForeignRows(ctx context.Context, src, dst Store, table string) (int64, error) {
	s, err := raw(src)
	if err != nil {
		return 0, err
	}
	d, err := raw(dst)
	if err != nil {
		return 0, err
	}
	t, err := specOf(table)
	if err != nil {
		return 0, err
	}
	keysOnly := tableSpec{name: t.name, key: t.key, cols: t.cols[:len(t.key)]}
	have := map[string]bool{}
	if err := s.readRows(ctx, keysOnly, "", nil, 5000, func(rows []row) error {
		for _, r := range rows {
			have[keyString(keysOnly, r)] = true
		}
		return nil
	}); err != nil {
		return 0, err
	}
	var foreign int64
	err = d.readRows(ctx, keysOnly, "", nil, 5000, func(rows []row) error {
		for _, r := range rows {
			if !have[keyString(keysOnly, r)] {
				foreign++
			}
		}
		return nil
	})
	return foreign, err
}

// VerifyTable checks that dst has as many rows as src and that a random sample of
// src's rows are equal in dst, field by field. Errors name the table, key and
// column, never a value (some are secrets).
func VerifyTable(ctx context.Context, src, dst Store, table string, sample int) error {
	s, err := raw(src)
	if err != nil {
		return err
	}
	d, err := raw(dst)
	if err != nil {
		return err
	}
	t, err := specOf(table)
	if err != nil {
		return err
	}
	sn, err := src.Count(ctx, table)
	if err != nil {
		return err
	}
	dn, err := dst.Count(ctx, table)
	if err != nil {
		return err
	}
	if sn != dn {
		return fmt.Errorf("%s: %d rows in the source, %d in the target", table, sn, dn)
	}
	keys, err := s.sampleKeys(ctx, t, sample)
	if err != nil {
		return err
	}
	for _, k := range keys {
		a, err := s.rowByKey(ctx, t, k)
		if err != nil {
			return err
		}
		b, err := d.rowByKey(ctx, t, k)
		if err != nil {
			return fmt.Errorf("%s: row %s: missing in the target (%v)", table, strings.Join(k, "/"), err)
		}
		for i, c := range t.cols {
			if canonical(a[i]) != canonical(b[i]) {
				return fmt.Errorf("%s: row %s: column %s differs between source and target", table, strings.Join(k, "/"), c.name)
			}
		}
	}
	return nil
}

func (s *sqlStore) sampleKeys(ctx context.Context, t tableSpec, n int) ([][]string, error) {
	exprs := make([]string, len(t.key))
	for i, k := range t.key {
		exprs[i] = s.selectExpr(column{name: k})
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+strings.Join(exprs, ", ")+` FROM `+t.name+` ORDER BY random() LIMIT ?`), n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys [][]string
	for rows.Next() {
		k := make([]string, len(t.key))
		ptrs := make([]any, len(k))
		for i := range k {
			ptrs[i] = &k[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (s *sqlStore) rowByKey(ctx context.Context, t tableSpec, key []string) (row, error) {
	conds := make([]string, len(t.key))
	args := make([]any, len(key))
	for i, k := range t.key {
		conds[i] = k + " = ?" // PostgreSQL types the parameter from the column: the index serves
		args[i] = key[i]
	}
	var found row
	err := s.readRows(ctx, t, " WHERE "+strings.Join(conds, " AND "), args, 1, func(rows []row) error {
		found = rows[0]
		return nil
	})
	if err == nil && found == nil {
		err = ErrNotFound
	}
	return found, err
}

// Lock takes a PostgreSQL advisory lock on dst for the whole migration, so a second
// run waits (up to wait) rather than interleaving; onWait is called once if it must
// wait. The returned function releases it.
func Lock(ctx context.Context, dst Store, wait time.Duration, onWait func()) (func(), error) {
	d, err := raw(dst)
	if err != nil {
		return nil, err
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	const key = 0x6d6f7361 // "mosa": the tier migration's lock
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		conn.Close()
		return nil, err
	}
	if !got {
		onWait()
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := conn.ExecContext(wctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			conn.Close()
			return nil, fmt.Errorf("another migration into this database still runs after %s: try again later", wait)
		}
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
		conn.Close()
	}, nil
}
