package store

import (
	"context"
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
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if d.d.vector && hasVector(t) {
			// COPY is binary: pgx must know pgvector's type to encode an embedding.
			if err := pgxvec.RegisterTypes(ctx, pc); err != nil {
				return fmt.Errorf("register the vector type: %w", err)
			}
		}
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
		n, loaded, err = copyIntoEmpty(ctx, tx, src, d, t, batch, progress)
		if err != nil || !loaded {
			return err
		}
		return tx.Commit(ctx)
	})
	return n, loaded, err
}

func copyIntoEmpty(ctx context.Context, tx pgx.Tx, src, d *sqlStore, t tableSpec, batch int, progress func(int)) (int64, bool, error) {
	// The lock makes "empty" hold until commit: nothing writes the table meanwhile.
	if _, err := tx.Exec(ctx, `LOCK TABLE `+t.name+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return 0, false, err
	}
	var hasRows bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.name+`)`).Scan(&hasRows); err != nil {
		return 0, false, err
	}
	if hasRows {
		return 0, false, nil
	}
	indexes, err := dropSecondaryIndexes(ctx, tx, t.name)
	if err != nil {
		return 0, false, err
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	var n int64
	err = src.readRows(ctx, t, "", nil, batch, func(rows []row) error {
		values := make([][]any, len(rows))
		for i, r := range rows {
			values[i] = make([]any, len(t.cols))
			for j, c := range t.cols {
				values[i][j] = d.encode(c, r[j])
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, names, pgx.CopyFromRows(values)); err != nil {
			return fmt.Errorf("write %s: %w", t.name, err)
		}
		n += int64(len(rows))
		progress(len(rows))
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	for _, def := range indexes {
		if _, err := tx.Exec(ctx, def); err != nil {
			return 0, false, fmt.Errorf("rebuild an index of %s: %w", t.name, err)
		}
	}
	return n, true, nil
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

func hasVector(t tableSpec) bool {
	return slices.ContainsFunc(t.cols, func(c column) bool { return c.kind == kVector })
}
