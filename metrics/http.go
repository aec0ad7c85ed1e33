package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/plugs-dev/plugs/internal/webserve"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// DefaultAddr is where plugs run serves metrics unless told otherwise.
const DefaultAddr = "127.0.0.1:9469"

// Handler serves /metrics from g, /healthz (200 while the process serves
// at all) and /readyz (200 when ready returns nil, else 503 with the error,
// URL credentials removed). A nil ready is always ready.
func Handler(g prometheus.Gatherer, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, "not ready: "+redactText(err.Error()))
				return
			}
		}
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>plugs</title></head><body><h1>plugs</h1>`+
			`<p><a href="metrics">metrics</a> <a href="healthz">healthz</a> <a href="readyz">readyz</a></p></body></html>`)
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, text)
}

// Serve listens on addr and serves h until ctx ends, then shuts down
// gracefully. webConfigFile, when not empty, is a Prometheus web config file
// (https://prometheus.io/docs/prometheus/latest/configuration/https/) that
// enables TLS and basic auth; it is checked before listening.
func Serve(ctx context.Context, addr, webConfigFile string, h http.Handler, logger *slog.Logger) error {
	if webConfigFile != "" {
		if err := web.Validate(webConfigFile); err != nil {
			return fmt.Errorf("web config %s: %w", webConfigFile, err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	return ServeListener(ctx, l, webConfigFile, h, logger)
}

// ServeListener is Serve on a listener the caller opened (for example on
// 127.0.0.1:0 in tests). It closes l.
func ServeListener(ctx context.Context, l net.Listener, webConfigFile string, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return webserve.Serve(ctx, l, srv, webConfigFile, logger, "metrics")
}
