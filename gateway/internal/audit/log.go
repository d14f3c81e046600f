package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// chainLock is the advisory lock every writer of the site (each replica, each CLI
// process) holds while it appends a batch, so the site has one chain ordered by the
// database: a batch reads the newest MAC and links its rows after it.
const chainLock = 0x61756474 // "audt"

// maxBatch is the most rows one commit carries.
const maxBatch = 256

// Log writes and reads the audit log of one site.
type Log struct {
	pool *pgxpool.Pool
	key  Key
	log  *slog.Logger

	queue   chan *pending
	stop    chan struct{}
	stopped sync.WaitGroup
	closing sync.Once
}

type pending struct {
	e    Entry
	at   time.Time
	done chan error // nil: nobody waits (an outbound row)
}

// New starts the log's writer over the site's pool.
func New(pool *pgxpool.Pool, key Key, log *slog.Logger) *Log {
	l := &Log{pool: pool, key: key, log: log, queue: make(chan *pending, 4*maxBatch), stop: make(chan struct{})}
	l.stopped.Add(1)
	go l.run()
	return l
}

// Close writes what is queued and stops the writer.
func (l *Log) Close() {
	l.closing.Do(func() { close(l.stop) })
	l.stopped.Wait()
}

// Append queues an entry and returns once the batch holding it is committed: an
// allowed answer is sent only after its row is durable. Concurrent appends share a
// commit.
func (l *Log) Append(ctx context.Context, e Entry) error {
	p := &pending{e: e.bounded(), at: time.Now(), done: make(chan error, 1)}
	select {
	case l.queue <- p:
	case <-l.stop:
		return errors.New("audit: the log is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues an entry without waiting for its commit (the requesting side's rows:
// the serving side's row is the authoritative record, and an answer must not wait).
// When the queue is full it waits a moment, then drops the row and says so in the log.
func (l *Log) Enqueue(e Entry) {
	p := &pending{e: e.bounded(), at: time.Now()}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case l.queue <- p:
	case <-t.C:
		l.log.Error("audit queue full: an outbound row was not written", "request_id", e.RequestID)
	case <-l.stop:
	}
}

// run commits batches: it takes what is queued (at least one row) and commits it
// while newer rows queue for the next batch, so throughput follows load at a latency
// of one commit.
func (l *Log) run() {
	defer l.stopped.Done()
	for {
		var batch []*pending
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-l.stop:
			l.drain()
			return
		}
		batch = l.fill(batch)
		l.commit(batch)
	}
}

// fill adds whatever is queued, up to maxBatch, without waiting.
func (l *Log) fill(batch []*pending) []*pending {
	for len(batch) < maxBatch {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is left when the log closes.
func (l *Log) drain() {
	for {
		batch := l.fill(nil)
		if len(batch) == 0 {
			return
		}
		l.commit(batch)
	}
}

func (l *Log) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := l.write(ctx, batch)
	if err != nil {
		l.log.Error("audit batch not written", "rows", len(batch), "err", err)
	}
	for _, p := range batch {
		if p.done != nil {
			p.done <- err
		}
	}
}

var auditColumns = []string{"version", "at", "direction", "request_id", "peer_request_id", "traceparent", "actor", "action",
	"peer", "grant_id", "peer_id", "subject_user_id", "local_user_id", "verb", "resource", "outcome", "reason", "status",
	"row_count", "duration_us", "client_addr", "detail", "count", "window_start", "window_end", "prev_hash", "hash"}

// write appends one batch to the chain in one transaction.
func (l *Log) write(ctx context.Context, batch []*pending) error {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, chainLock); err != nil {
		return err
	}
	prev := make([]byte, sha256.Size)
	err = tx.QueryRow(ctx, `SELECT hash FROM federation_audit_log ORDER BY seq DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	rows := make([][]any, len(batch))
	for i, p := range batch {
		at := p.at.UTC().Truncate(time.Microsecond)
		e := p.e
		e.WindowStart, e.WindowEnd = e.WindowStart.UTC().Truncate(time.Microsecond), e.WindowEnd.UTC().Truncate(time.Microsecond)
		mac, err := l.key.mac(version2, prev, at, e)
		if err != nil {
			return err
		}
		rows[i] = []any{version2, at, e.Direction, e.RequestID, e.PeerRequestID, e.Traceparent, e.Actor, e.Action,
			e.Peer, uuidOrNil(e.GrantID), uuidOrNil(e.PeerID), uuidOrNil(e.SubjectUserID), uuidOrNil(e.LocalUserID),
			e.Verb, e.Resource, e.Outcome, e.Reason, e.Status, e.Rows, e.Duration.Microseconds(), e.ClientAddr, e.Detail,
			e.Count, timeOrNil(e.WindowStart), timeOrNil(e.WindowEnd), prev, mac}
		prev = mac
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"federation_audit_log"}, auditColumns, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func uuidOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
