package peers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/httpx"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// audited is the requesting side's audit stage around a peer: each call gets a fresh
// request id (sent as X-Request-Id, so the serving side's row joins ours on it) and
// one outbound row, queued without holding up the answer. Never a row's content,
// never the peer's message text.
type audited struct {
	fedclient.Peer
	row     fedstore.Peer
	log     interface{ Enqueue(audit.Entry) }
	metrics *telemetry.Metrics
}

func (a audited) List(ctx context.Context, resource string, req api.FedListRequest) (fedclient.ListResult, error) {
	ctx, done := a.call(ctx, "list", resource)
	res, err := a.Peer.List(ctx, resource, req)
	done(len(res.Items), err)
	return res, err
}

func (a audited) Get(ctx context.Context, resource, id string) (api.Item, error) {
	ctx, done := a.call(ctx, "get", resource)
	item, err := a.Peer.Get(ctx, resource, id)
	rows := 0
	if err == nil {
		rows = 1
	}
	done(rows, err)
	return item, err
}

// call starts one peer call: its context carries the new request id; done records it.
func (a audited) call(ctx context.Context, verb, resource string) (context.Context, func(rows int, err error)) {
	id, start := httpx.NewID(), time.Now()
	ctx = fedclient.WithRequestID(ctx, id)
	return ctx, func(rows int, err error) {
		a.metrics.PeerCall(a.row.Name, verb, fedCode(err), time.Since(start))
		if a.log == nil {
			return
		}
		e := audit.Entry{Direction: audit.Outbound, RequestID: id, Traceparent: httpx.Traceparent(ctx),
			Actor: "user:" + a.row.OwnerUserID, Action: verb + " " + resource, Peer: a.row.Name, GrantID: a.row.GrantID,
			PeerID: a.row.ID, LocalUserID: a.row.OwnerUserID, Verb: verb, Resource: resource, Outcome: api.OutcomeAllowed,
			Reason: api.ReasonOK, Status: http.StatusOK, Rows: rows, Duration: time.Since(start)}
		var pe *fedclient.PeerError
		switch {
		case errors.As(err, &pe):
			e.Reason, e.Status, e.Rows = pe.Code, pe.Status, 0
			e.Outcome = api.OutcomeFailed
			if pe.Status >= 400 && pe.Status < 500 {
				e.Outcome = api.OutcomeDenied
			}
		case err != nil:
			e.Outcome, e.Reason, e.Status, e.Rows = api.OutcomeFailed, fedclient.Code(err), 0, 0
		}
		a.log.Enqueue(e)
	}
}

func (a audited) Search(ctx context.Context, resource string, req api.SearchRequest) (fedclient.SearchResult, error) {
	ctx, done := a.call(ctx, "search", resource)
	res, err := a.Peer.Search(ctx, resource, req)
	done(len(res.Items), err)
	return res, err
}

// fedCode is a peer call's reason code for its metrics ("" when it succeeded).
func fedCode(err error) string {
	if err == nil {
		return ""
	}
	return fedclient.Code(err)
}
