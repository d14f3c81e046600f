package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
)

// bulkLoad copies a table into an empty PostgreSQL target the way pg_restore does:
// the rows first (COPY, batch by batch), the table's secondary indexes after, all in
// one transaction. Building an index once over loaded rows is far cheaper than
// maintaining it row by row (the HNSW index of memories most of all), and because
// PostgreSQL's DDL is transactional a failure rolls back to an empty table with every
// index in place: a re-run starts over on the same path. Indexes behind constraints
// (the primary key, unique keys) stay: they are what a later upsert conflicts on.
//
// It reports loaded=false, touching nothing, when the target table already has rows
// (a re-run after a completed copy): the caller upserts instead.
func (d *sqlStore) bulkLoad(ctx context.Context, src *sqlStore, t tableSpec, batch int, progress func(int)) (n int64, loaded bool, err error) {
	err = d.pgTx(ctx, func(tx pgx.Tx) error {
		return indexesAfter(ctx, tx, t.name, 0, func(empty bool) error {
			if !empty {
				return nil
			}
			n, err = copyRows(ctx, tx, src, d, t, batch, progress)
			loaded = err == nil
			return err
		}, func(int, int) {})
	})
	if !loaded {
		n = 0
	}
	return n, loaded, err
}

// pgTx runs fn in one transaction on one of the pool's connections as pgx sees it
// (pgvector's type known, for COPY and for embeddings), committing when fn succeeds.
func (d *sqlStore) pgTx(ctx context.Context, fn func(pgx.Tx) error) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if d.d.vector {
			if err := pgxvec.RegisterTypes(ctx, pc); err != nil {
				return fmt.Errorf("register the vector type: %w", err)
			}
		}
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// indexesAfter locks the table against other writers for the transaction (so what it
// holds stays so until commit; readers go on) and runs load, told whether the table
// held at most few rows (few 0: was empty); then load runs with the secondary indexes
// dropped (DROP INDEX takes the table whole until commit), and they are rebuilt after
// it, rebuilt told after each.
func indexesAfter(ctx context.Context, tx pgx.Tx, table string, few int, load func(empty bool) error, rebuilt func(done, total int)) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE `+table+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return err
	}
	var hasRows bool // more than few
	if err := tx.QueryRow(ctx, `SELECT count(*) > $1 FROM (SELECT 1 FROM `+table+` LIMIT $1 + 1) AS t`, few).Scan(&hasRows); err != nil {
		return err
	}
	var indexes []string
	if !hasRows {
		var err error
		if indexes, err = dropSecondaryIndexes(ctx, tx, table); err != nil {
			return err
		}
	}
	if err := load(!hasRows); err != nil {
		return err
	}
	for i, def := range indexes {
		if _, err := tx.Exec(ctx, def); err != nil {
			return fmt.Errorf("rebuild an index of %s: %w", table, err)
		}
		rebuilt(i+1, len(indexes))
	}
	return nil
}

// copyRows streams a table's rows into one COPY: a goroutine reads the source batch
// by batch while the COPY sends the batch before, so reading SQLite (this process's
// CPU) and loading PostgreSQL (the server's) overlap instead of taking turns.
func copyRows(ctx context.Context, tx pgx.Tx, src, d *sqlStore, t tableSpec, batch int, progress func(int)) (int64, error) {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := &rowStream{batches: make(chan []row, 2), d: d, t: t, progress: progress}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rs.readErr = src.readRows(rctx, t, "", nil, batch, func(rows []row) error {
			select {
			case rs.batches <- slices.Clone(rows): // readRows reuses its buffer
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
		close(rs.batches) // after readErr: the COPY reads it once the channel is closed
	}()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, names, rs)
	cancel()
	<-done
	if rs.readErr != nil && !errors.Is(rs.readErr, context.Canceled) {
		return 0, fmt.Errorf("read %s: %w", t.name, rs.readErr)
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.name, err)
	}
	return n, nil
}

// rowStream is a pgx.CopyFromSource over batches of rows arriving on a channel; each
// batch is told to progress once its rows were all handed to the COPY.
type rowStream struct {
	batches  chan []row
	readErr  error // written before batches is closed
	d        *sqlStore
	t        tableSpec
	progress func(int)
	cur      []row
	i        int
}

func (r *rowStream) Next() bool {
	for r.i+1 >= len(r.cur) {
		if len(r.cur) > 0 {
			r.progress(len(r.cur))
		}
		b, ok := <-r.batches
		if !ok {
			r.cur = nil
			return false
		}
		r.cur, r.i = b, -1
	}
	r.i++
	return true
}

func (r *rowStream) Values() ([]any, error) {
	row := r.cur[r.i]
	values := make([]any, len(r.t.cols))
	for j, c := range r.t.cols {
		values[j] = r.d.encode(c, row[j])
	}
	return values, nil
}

// Err is the source's failure, once it has ended: a COPY that read every row of a
// source that failed half-way must fail too, not commit a part.
func (r *rowStream) Err() error {
	if r.cur == nil {
		return r.readErr
	}
	return nil
}

// dropSecondaryIndexes drops the table's indexes that back no constraint and returns
// the statements that recreate them.
func dropSecondaryIndexes(ctx context.Context, tx pgx.Tx, table string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		WHERE i.indrelid = $1::regclass
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		ORDER BY 1`, table)
	if err != nil {
		return nil, err
	}
	type index struct{ name, def string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var ix index
		return ix, r.Scan(&ix.name, &ix.def)
	})
	if err != nil {
		return nil, err
	}
	defs := make([]string, 0, len(found))
	for _, ix := range found {
		if _, err := tx.Exec(ctx, `DROP INDEX `+ix.name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", ix.name, err)
		}
		defs = append(defs, ix.def)
	}
	return defs, nil
}
