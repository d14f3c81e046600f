// Package changes tells the other processes of a site — the admin CLI, every replica —
// that federation data changed (a grant created or revoked, a peer created, a token
// made) or a user did (its API token), with PostgreSQL LISTEN/NOTIFY, so whatever a
// process keeps from the database is dropped at once. The guard's grant check is never cached, so a revocation has no
// window either way; what is cached elsewhere also expires within 5 s (MaxAge).
package changes

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the NOTIFY channel of a site's database.
const Channel = "mosaic_changes"

// MaxAge is the most anything cached from the database may be trusted without a
// notification: the backstop when one was missed.
const MaxAge = 5 * time.Second

// Kinds of change.
const (
	Grant = "grant"
	Peer  = "peer"
	Token = "token"
	// User: a row of users changed or went (its API token with it); announced by
	// the database itself (a trigger, migration 00009), whoever wrote it.
	User = "user"
	// CRL: certificates were revoked at the CA; listeners refetch its CRL.
	CRL = "crl"
	// All means notifications may have been missed (the listener reconnected): drop
	// everything.
	All = "all"
)

// Change is what changed: a kind and the row's id.
type Change struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Announce notifies every listener of the site's database. It is sent when the
// caller's transaction (or statement) commits.
func Announce(ctx context.Context, pool *pgxpool.Pool, c Change) error {
	b, _ := json.Marshal(c)
	_, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, string(b))
	return err
}

// Listen calls handle for every change until ctx ends, on a connection of its own,
// reconnecting with backoff. Each time LISTEN is in place (the first time too) it
// reports All: whatever changed before, while no one listened, has been missed, and
// only from that moment on is every change heard.
func Listen(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, handle func(Change)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, handle, func() {
			backoff = 100 * time.Millisecond
			handle(Change{Kind: All})
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("listening for changes failed: retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// idleCheck is how long the listener waits for a notification before it asks the
// connection whether it is still there: a half-open connection (a NAT or firewall
// that dropped it) would otherwise lose every notification without an error until
// the kernel's keep-alive gives up, minutes later.
var idleCheck = 30 * time.Second

func listenOnce(ctx context.Context, pool *pgxpool.Pool, handle func(Change), connected func()) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return err
	}
	connected()
	for {
		wctx, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && wctx.Err() != nil {
			err = ping(ctx, conn.Conn())
			if err == nil {
				continue
			}
		}
		if err != nil {
			conn.Conn().Close(context.Background()) // not back to the pool still listening
			return err
		}
		var c Change
		if json.Unmarshal([]byte(n.Payload), &c) == nil && c.Kind != "" {
			handle(c)
		}
	}
}

// ping asks an idle listening connection to answer within a few seconds.
func ping(ctx context.Context, c *pgx.Conn) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Ping(pctx)
}
