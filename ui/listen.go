package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/internal/webserve"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// DefaultAddr is where plugs run serves the dashboard unless told otherwise.
const DefaultAddr = "127.0.0.1:9470"

// ErrNoAuth is wrapped by Listen's error for a non-loopback address
// without authentication.
var ErrNoAuth = errors.New("not loopback-only and has no authentication")

// Listen opens the dashboard's listener on addr after checking webConfigFile
// (a Prometheus web config file: TLS and basic auth, as for the metrics). An
// address that is not loopback-only is refused unless the file requires a
// password (basic_auth_users) or a verified client certificate: the
// dashboard restarts and kills processes.
func Listen(addr, webConfigFile string) (net.Listener, error) {
	auth := false
	if webConfigFile != "" {
		if err := web.Validate(webConfigFile); err != nil {
			return nil, fmt.Errorf("web config %s: %w", webConfigFile, err)
		}
		var err error
		if auth, err = requiresAuth(webConfigFile); err != nil {
			return nil, err
		}
	}
	if !auth && !loopbackOnly(addr) {
		return nil, fmt.Errorf("ui address %s is %w: "+
			"set basic_auth_users (or client_auth_type: RequireAndVerifyClientCert) in a web config file (--web-config-file), or listen on 127.0.0.1", addr, ErrNoAuth)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ui listen: %w", err)
	}
	return ln, nil
}

// requiresAuth reports whether a valid web config file makes every request
// authenticate.
func requiresAuth(file string) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, fmt.Errorf("web config: %w", err)
	}
	var c web.Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return false, fmt.Errorf("web config %s: %w", file, err)
	}
	return len(c.Users) > 0 || c.TLSConfig.ClientAuth == "RequireAndVerifyClientCert", nil
}

// loopbackOnly reports whether addr can be reached from this machine only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves the dashboard on l (with TLS and basic auth from
// webConfigFile, when set) until ctx ends; then it ends the event streams
// and shuts down. It closes l.
//
// Without authentication in webConfigFile, anyone who reaches l may read
// the pages, but only root and the daemon's own uid may act (every request
// but GET and HEAD), as on the local API socket: the peer's uid is read
// from the kernel's socket table, and a peer whose uid cannot be read is
// refused.
func (s *Server) Serve(ctx context.Context, l net.Listener, webConfigFile string) error {
	h := s.Handler()
	auth := false
	if webConfigFile != "" {
		var err error
		if auth, err = requiresAuth(webConfigFile); err != nil {
			l.Close()
			return err
		}
	}
	if !auth {
		h = s.localPeersAct(h)
	}
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Streams end when the server does.
		BaseContext: func(net.Listener) context.Context { return base },
	}
	// Live event streams end before Shutdown waits for requests in flight.
	srv.RegisterOnShutdown(cancelBase)
	return webserve.Serve(ctx, l, srv, webConfigFile, s.log, "ui")
}
