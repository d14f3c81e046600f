package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits bound what clients can hold of a listener (SPEC §7 M7-4). Both listeners use
// them: the local API and the federation listener.
type Limits struct {
	// MaxConns caps the open connections; at the cap the oldest idle one is closed to
	// admit a new one (ConnCap).
	MaxConns int
	// ReadHeaderTimeout cuts a client that sends its headers slowly (slow loris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection nobody uses.
	IdleTimeout time.Duration
}

// Fixed bounds. Go reads up to MaxHeaderBytes plus 4 KiB before answering 431, so
// 64 KiB refuses 80 KiB of headers and takes 60 KiB.
const (
	MaxHeaderBytes  = 64 << 10
	readTimeout     = 30 * time.Second
	writeTimeout    = 60 * time.Second
	shutdownTimeout = 10 * time.Second
)

// Server is an http.Server with Limits applied, and the cap its listener goes through.
type Server struct {
	HTTP *http.Server
	Cap  *ConnCap // nil without a cap
	log  *slog.Logger
}

// NewServer serves h within lim; setting HTTP.TLSConfig makes it a TLS listener.
func NewServer(h http.Handler, lim Limits, log *slog.Logger) *Server {
	s := &Server{
		HTTP: &http.Server{
			Handler:           http.MaxBytesHandler(h, MaxBody),
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		log: log,
	}
	if lim.MaxConns > 0 {
		s.Cap = NewConnCap(lim.MaxConns)
		s.HTTP.ConnState = s.Cap.ConnState
	}
	return s
}

// Serve serves on ln (TLS when HTTP.TLSConfig is set) until ctx ends, then shuts down
// with a fresh deadline (the cancelled ctx would abort in-flight requests at once).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Cap != nil {
		ln = s.Cap.Listener(ln)
	}
	errc := make(chan error, 1)
	go func() {
		if s.HTTP.TLSConfig != nil {
			errc <- s.HTTP.ServeTLS(ln, "", "")
			return
		}
		errc <- s.HTTP.Serve(ln)
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "listener", ln.Addr().String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return s.HTTP.Shutdown(sctx)
}
