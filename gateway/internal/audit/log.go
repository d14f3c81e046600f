package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"reflect"
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

// dbRow is one audit row as jsonb_populate_recordset reads it: the json names are the
// table's columns (seq is the database's). A struct, not a map: encoding/json caches
// a struct's encoder, and the batch's encoding is half of the writer's own CPU.
type dbRow struct {
	Version       int16      `json:"version"`
	At            time.Time  `json:"at"`
	Direction     string     `json:"direction"`
	RequestID     string     `json:"request_id"`
	PeerRequestID string     `json:"peer_request_id"`
	Traceparent   string     `json:"traceparent"`
	Actor         string     `json:"actor"`
	Action        string     `json:"action"`
	Peer          string     `json:"peer"`
	GrantID       *string    `json:"grant_id"`
	PeerID        *string    `json:"peer_id"`
	SubjectUserID *string    `json:"subject_user_id"`
	LocalUserID   *string    `json:"local_user_id"`
	Verb          string     `json:"verb"`
	Resource      string     `json:"resource"`
	Outcome       string     `json:"outcome"`
	Reason        string     `json:"reason"`
	Status        int        `json:"status"`
	RowCount      int        `json:"row_count"`
	DurationUS    int64      `json:"duration_us"`
	ClientAddr    string     `json:"client_addr"`
	Detail        string     `json:"detail"`
	Count         int        `json:"count"`
	WindowStart   *time.Time `json:"window_start"`
	WindowEnd     *time.Time `json:"window_end"`
	PrevHash      string     `json:"prev_hash"` // bytea's hex input form, \x…
	Hash          string     `json:"hash"`
}

// auditColumns are the columns a batch writes: dbRow's json names.
var auditColumns = func() []string {
	t := reflect.TypeFor[dbRow]()
	cols := make([]string, t.NumField())
	for i := range cols {
		cols[i] = t.Field(i).Tag.Get("json")
	}
	return cols
}()

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
	// Nothing was sent that could commit when a pooled connection the server closed
	// meanwhile (PostgreSQL restarted) fails: the write goes on with the next one. A
	// restart leaves every idle connection of the pool dead, each failing at once, so
	// the writer tries as many as the pool holds, and then one more, a fresh one.
	var open *openError
	for range l.pool.Config().MaxConns + 1 {
		err := l.writeOnce(ctx, batch)
		if !errors.As(err, &open) {
			return err
		}
	}
	return open.err
}

// openError is a failure before the batch's COMMIT was sent: retrying cannot
// write the batch twice.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

func (l *Log) writeOnce(ctx context.Context, batch []*pending) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return &openError{err}
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
		return &openError{err}
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

// chain links a batch's rows after prev, each row's MAC over the one before.
func (l *Log) chain(batch []*pending, prev []byte) ([]dbRow, error) {
	rows := make([]dbRow, len(batch))
	for i, p := range batch {
		at := p.at.UTC().Truncate(time.Microsecond)
		e := p.e
		e.WindowStart, e.WindowEnd = e.WindowStart.UTC().Truncate(time.Microsecond), e.WindowEnd.UTC().Truncate(time.Microsecond)
		mac, err := l.key.mac(version2, prev, at, e)
		if err != nil {
			return nil, err
		}
		rows[i] = dbRow{Version: version2, At: at, Direction: e.Direction, RequestID: e.RequestID, PeerRequestID: e.PeerRequestID,
			Traceparent: e.Traceparent, Actor: e.Actor, Action: e.Action, Peer: e.Peer, GrantID: uuidOrNil(e.GrantID),
			PeerID: uuidOrNil(e.PeerID), SubjectUserID: uuidOrNil(e.SubjectUserID), LocalUserID: uuidOrNil(e.LocalUserID),
			Verb: e.Verb, Resource: e.Resource, Outcome: e.Outcome, Reason: e.Reason, Status: e.Status, RowCount: e.Rows,
			DurationUS: e.Duration.Microseconds(), ClientAddr: e.ClientAddr, Detail: e.Detail, Count: e.Count,
			WindowStart: timeOrNil(e.WindowStart), WindowEnd: timeOrNil(e.WindowEnd), PrevHash: byteaText(prev), Hash: byteaText(mac)}
		prev = mac
	}
	return rows, nil
}

// byteaText is bytea's hex input form, which jsonb_populate_recordset hands to bytea.
func byteaText(b []byte) string { return `\x` + hex.EncodeToString(b) }

func uuidOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
