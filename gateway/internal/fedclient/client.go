// Package fedclient is the requesting side's transport to a peer's federation
// listener: the federation verbs over a kept-alive mTLS connection (Peer), and the
// enrollment calls of `peer add`. A peer's refusal or a transport failure is a
// *PeerError carrying a reason code, never the peer's message text.
package fedclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// Peer is what the requesting side asks of one peer. Stages (a cache, a breaker)
// wrap it and are Peers too. Items come back decoded and checked (decode.go), each
// with its _source set to SourceOf(Name()).
type Peer interface {
	Name() string
	List(ctx context.Context, resource string, req api.FedListRequest) (ListResult, error)
	Get(ctx context.Context, resource, id string) (api.Item, error)
	// Search asks the peer to rank its rows for a query; the peer embeds the query
	// itself.
	Search(ctx context.Context, resource string, req api.SearchRequest) (SearchResult, error)
}

// Served says how a stage answered when it did not ask the peer: from a fresh cache
// entry (Cached) or, the peer failing, from a stale one (Stale); Age is the entry's.
type Served struct {
	Cached, Stale bool
	Age           time.Duration
}

// SearchResult is a peer's ranking, best first, each item with a finite _score of
// the peer's own.
type SearchResult struct {
	Items []api.Item
	// Size is about the bytes the rows keep (their strings and a fixed part a row, not
	// the answer's padding): what a cache entry of it weighs.
	Size int
	Served
}

// ListResult is a peer's page.
type ListResult struct {
	Items      []api.Item
	NextCursor string
	// Size is about the bytes the rows keep (their strings and a fixed part a row, not
	// the answer's padding): what a cache entry of it weighs.
	Size int
	Served
}

// Client is a Peer over mTLS: TLS 1.3, the peer's pinned root, our client
// certificate from getCert (so a renewed one applies to the next connection).
type Client struct {
	name, url string
	http      *http.Client
}

// Pings on an idle HTTP/2 connection: one after readIdle without a frame, and the
// connection is dropped if no answer comes within pingTimeout — so a kept-alive
// connection stays warm through NATs and a dead one is found before a request waits
// on it.
const (
	readIdle    = 15 * time.Second
	pingTimeout = 5 * time.Second
)

// NewClient makes a peer's client. roots holds only the peer's root.
func NewClient(name, url string, tlsConfig *tls.Config) *Client {
	// net/http's own HTTP/2 (what x/net/http2.ConfigureTransports set up before Go
	// 1.24 and is now deprecated for) with its pings.
	t := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second,
		ForceAttemptHTTP2: true, HTTP2: &http.HTTP2Config{SendPingTimeout: readIdle, PingTimeout: pingTimeout}}
	// Each call in a client span whose context goes on as traceparent (§6b).
	return &Client{name: name, url: url, http: &http.Client{CheckRedirect: noRedirects, Transport: telemetry.PeerTransport(name, t)}}
}

// Name is our name for the peer.
func (c *Client) Name() string { return c.name }

// List calls POST /list/{resource} at the peer. More rows than the limit asked for,
// a cursor over api.MaxCursor, a row that does not check or one not after the keyset
// asked for is invalid_response (decodeList).
func (c *Client) List(ctx context.Context, resource string, req api.FedListRequest) (ListResult, error) {
	var res ListResult
	err := c.call(ctx, "/list/"+resource, req, func(body []byte) (ok bool) {
		res, ok = decodeList(resource, body, req, SourceOf(c.name))
		return ok
	})
	return res, err
}

// allAfter reports whether every row lies strictly after the keyset asked for (nil:
// any row): a merged list resumes a peer from its rows, so a peer that answered rows
// from before its place could make the list repeat or never end.
func allAfter(items []api.Item, after *api.Keyset) bool {
	if after == nil {
		return true
	}
	for _, it := range items {
		if !after.Before(api.KeyOf(it)) {
			return false
		}
	}
	return true
}

// Get calls POST /get/{resource}/{id} at the peer; the row must be the one asked for.
func (c *Client) Get(ctx context.Context, resource, id string) (api.Item, error) {
	var item api.Item
	err := c.call(ctx, "/get/"+resource+"/"+id, nil, func(body []byte) (ok bool) {
		item, ok = decodeGet(resource, body, id, SourceOf(c.name))
		return ok
	})
	return item, err
}

// Search calls POST /search/{resource} at the peer: at most the limit asked for,
// every row with a finite score.
func (c *Client) Search(ctx context.Context, resource string, req api.SearchRequest) (SearchResult, error) {
	var res SearchResult
	err := c.call(ctx, "/search/"+resource, req, func(body []byte) (ok bool) {
		res, ok = decodeSearch(resource, body, req, SourceOf(c.name))
		return ok
	})
	return res, err
}

func (c *Client) invalid() error { return &PeerError{Peer: c.name, Code: api.CodeInvalidResponse} }

// bodies are the buffers answers are read into: a 100-row page read by io.ReadAll
// allocated more than twice its size per call, half the client's allocation.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Limits of an answer: the most read, and the biggest buffer kept for the next.
const (
	maxAnswer     = 32 << 20
	maxPooledBody = 1 << 20
)

// call posts body and hands the answer's bytes to decode (false: invalid_response),
// or returns the peer's refusal. The bytes are only valid during decode: their
// buffer goes back to the pool (the decoders copy what they keep).
func (c *Client) call(ctx context.Context, path string, body any, decode func([]byte) bool) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/api/federation/v1"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if id := requestIDOf(ctx); id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	httpx.InjectTrace(ctx, req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		return &PeerError{Peer: c.name, Code: transportReason(err)}
	}
	defer resp.Body.Close()
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodies.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxAnswer)); err != nil {
		return &PeerError{Peer: c.name, Code: api.CodeReadFailed}
	}
	if resp.StatusCode != http.StatusOK {
		return refusal(c.name, resp.StatusCode, buf.Bytes())
	}
	if !decode(buf.Bytes()) {
		return c.invalid()
	}
	return nil
}

type requestIDKey struct{}

// WithRequestID makes id the X-Request-Id of the peer calls made with ctx: the
// requesting side mints one per call, and the serving side records it beside its own.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// PeerError is a peer's refusal (its status and reason code, never its message text)
// or a transport failure (Status 0 and a local reason).
type PeerError struct {
	Peer   string // our name for the peer, when known
	Status int
	Code   string
}

func (e *PeerError) Error() string {
	who := "the peer"
	if e.Peer != "" {
		who = "peer " + e.Peer
	}
	if e.Status == 0 {
		return who + " could not be reached: " + e.Code
	}
	return fmt.Sprintf("%s answered %d %s", who, e.Status, e.Code)
}

// Code is the reason code of a peer call's failure ("peer_error" when it is not one).
func Code(err error) string {
	var pe *PeerError
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code
	}
	return api.CodePeerError
}

// refusal reads a peer's error envelope for its code alone.
func refusal(peer string, status int, body []byte) *PeerError {
	var e api.ErrorBody
	_ = json.Unmarshal(body, &e)
	return &PeerError{Peer: peer, Status: status, Code: safeCode(e.Error.Code)}
}

// transportReason names a transport failure in a few words, never quoting it.
func transportReason(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return api.CodeTimeout
	case errors.Is(err, context.Canceled):
		return api.CodeCanceled
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return api.CodeTLSVerificationFailed
	}
	return api.CodeUnreachable
}

// noRedirects: a redirect would resend a request (and an enrollment token) elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// safeCode keeps a peer's reason code to [a-z_], at most 64 characters.
func safeCode(c string) string {
	if len(c) > 64 {
		return api.CodeUnknown
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' {
			return api.CodeUnknown
		}
	}
	return c
}

// transportCodes are the reasons of a call that got no answer from the peer at all.
var transportCodes = map[string]bool{api.CodeTimeout: true, api.CodeUnreachable: true,
	api.CodeReadFailed: true, api.CodeTLSVerificationFailed: true}

// Failure reports whether err is what a circuit breaker counts (SPEC §6c): a
// transport error, a timeout or a 5xx — not a 4xx, not a 429, not a cancelled call.
func Failure(err error) bool {
	var pe *PeerError
	if !errors.As(err, &pe) {
		return false
	}
	if pe.Status == 0 {
		return transportCodes[pe.Code]
	}
	return pe.Status >= 500
}

// Unavailable reports whether err leaves the peer's last answer the best there is:
// a Failure, a 429, or a breaker that is open (peer_unavailable). A stale cache
// entry may answer for these, never for a refusal.
func Unavailable(err error) bool {
	var pe *PeerError
	return Failure(err) || (errors.As(err, &pe) &&
		(pe.Status == http.StatusTooManyRequests || (pe.Status == 0 && pe.Code == api.CodePeerUnavailable)))
}

// Denied reports whether the peer refused our certificate or grant (401 or 403).
func Denied(err error) bool {
	var pe *PeerError
	return errors.As(err, &pe) && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden)
}
