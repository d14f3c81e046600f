package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// insertRows inserts a batch from one JSON array of rows: one statement whatever the
// batch's size (so one prepared statement), and, unlike COPY, it can share a round
// trip with the COMMIT.
var insertRows = `INSERT INTO federation_audit_log (` + strings.Join(auditColumns, ", ") + `)
	SELECT ` + strings.Join(auditColumns, ", ") + ` FROM jsonb_populate_recordset(NULL::federation_audit_log, $1)`

// write appends one batch to the chain in one transaction and two round trips, since
// every request in the batch waits for it: the first opens the transaction, takes the
// chain's lock and reads the newest MAC (each statement of a pipeline reads what was
// committed when it started, so the read sees every batch committed before the lock
// was granted); the second inserts the rows and commits.
func (l *Log) write(ctx context.Context, batch []*pending) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Released inside a transaction (an error below), the connection is closed by the
	// pool, never reused: the transaction and its lock end with it.
	defer conn.Release()
	prev := make([]byte, sha256.Size)
	open := &pgx.Batch{}
	open.Queue(`BEGIN`)
	open.Queue(`SELECT pg_advisory_xact_lock($1)`, chainLock)
	open.Queue(`SELECT hash FROM federation_audit_log ORDER BY seq DESC LIMIT 1`).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	if err := conn.SendBatch(ctx, open).Close(); err != nil {
		return err
	}
	rows, err := l.chain(batch, prev)
	if err != nil {
		return err
	}
	var committed pgconn.CommandTag
	insert := &pgx.Batch{}
	insert.Queue(insertRows, rows)
	insert.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error { committed = ct; return nil })
	if err := conn.SendBatch(ctx, insert).Close(); err != nil {
		return err
	}
	if committed.String() != "COMMIT" {
		return errors.New("audit: the batch's transaction was rolled back")
	}
	return nil
}

// chain links a batch's rows after prev, each row's MAC over the one before, as rows
// of jsonb_populate_recordset.
func (l *Log) chain(batch []*pending, prev []byte) ([]map[string]any, error) {
	rows := make([]map[string]any, len(batch))
	for i, p := range batch {
		at := p.at.UTC().Truncate(time.Microsecond)
		e := p.e
		e.WindowStart, e.WindowEnd = e.WindowStart.UTC().Truncate(time.Microsecond), e.WindowEnd.UTC().Truncate(time.Microsecond)
		mac, err := l.key.mac(version2, prev, at, e)
		if err != nil {
			return nil, err
		}
		values := []any{version2, at, e.Direction, e.RequestID, e.PeerRequestID, e.Traceparent, e.Actor, e.Action,
			e.Peer, uuidOrNil(e.GrantID), uuidOrNil(e.PeerID), uuidOrNil(e.SubjectUserID), uuidOrNil(e.LocalUserID),
			e.Verb, e.Resource, e.Outcome, e.Reason, e.Status, e.Rows, e.Duration.Microseconds(), e.ClientAddr, e.Detail,
			e.Count, timeOrNil(e.WindowStart), timeOrNil(e.WindowEnd), byteaText(prev), byteaText(mac)}
		rows[i] = make(map[string]any, len(values))
		for j, v := range values {
			rows[i][auditColumns[j]] = v
		}
		prev = mac
	}
	return rows, nil
}

// byteaText is bytea's hex input form, which jsonb_populate_recordset hands to bytea.
func byteaText(b []byte) string { return `\x` + hex.EncodeToString(b) }

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
