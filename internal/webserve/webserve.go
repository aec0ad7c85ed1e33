// Package webserve serves an HTTP server on a listener with the TLS and
// basic auth of an exporter-toolkit web-config file until a context ends:
// the one home of what the metrics endpoint, the dashboard and the task API
// do alike. It does not decide who may listen where (each caller's policy
// refuses an open non-loopback address) nor what is served.
package webserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// shutdownGrace bounds how long Serve waits for requests in flight once ctx
// is done.
const shutdownGrace = 5 * time.Second

// Serve serves srv on l, with TLS and basic auth from webConfigFile ("":
// plain HTTP), until ctx is done; then it shuts srv down (requests in
// flight get shutdownGrace) and returns nil. A serve error returns at once,
// named after component. Serve owns l: it is closed when Serve returns.
func Serve(ctx context.Context, l net.Listener, srv *http.Server, webConfigFile string, logger *slog.Logger, component string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	flags := &web.FlagConfig{
		WebListenAddresses: &[]string{l.Addr().String()},
		WebSystemdSocket:   new(bool),
		WebConfigFile:      &webConfigFile,
	}
	errc := make(chan error, 1)
	go func() { errc <- web.Serve(l, srv, flags, logger.With("component", component)) }()
	select {
	case err := <-errc:
		l.Close()
		return fmt.Errorf("%s serve: %w", component, err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s serve: %w", component, err)
	}
	return nil
}
