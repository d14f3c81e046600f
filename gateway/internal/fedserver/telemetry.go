package fedserver

import (
	"context"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/telemetry"
)

// stage starts the span of one pipeline stage (guard, rate_limit, scope, query,
// audit) as a child of the request's span; end records the stage's reason code.
func (s *Server) stage(ctx context.Context, name string) (context.Context, func(error)) {
	tracer := s.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	ctx, end := telemetry.Stage(ctx, tracer, name)
	return ctx, func(err error) {
		code := ""
		if err != nil {
			code = errs.From(err).Code
		}
		end(code)
	}
}

// observe counts a request under the grant the guard found for it (none before:
// a certificate's claimed grant id is not a label).
func (s *Server) observe(d done) {
	outcome, code, rows := api.OutcomeAllowed, api.ReasonOK, d.rows
	if d.err != nil {
		f := errs.From(d.err)
		outcome, code, rows = f.Kind.Outcome(), f.Code, 0
	}
	s.Metrics.GrantRequest(d.caller.Grant.ID, outcome, code, rows)
}
