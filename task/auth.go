package task

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/internal/webserve"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
)

// LoadTokens reads a bearer-token file: one token per line; blank lines and
// lines starting with # are ignored. Only the tokens' hashes are kept.
func LoadTokens(path string) ([][32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	var out [][32]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, sha256.Sum256([]byte(line)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return out, nil
}

// RequireBearer wraps h: a request without "Authorization: Bearer T" for
// one of tokens gets 401. Tokens are compared in constant time.
func RequireBearer(tokens [][32]byte, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		given, ok := strings.CutPrefix(auth, "Bearer ")
		if ok {
			sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
			match := 0
			for _, t := range tokens {
				match |= subtle.ConstantTimeCompare(sum[:], t[:])
			}
			if match == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="plugs"`)
		writeJSON(w, http.StatusUnauthorized, &APIError{Kind: "input", Message: "unauthorized: give Authorization: Bearer TOKEN"})
	})
}

// ServerOptions say how the remote task API is served.
type ServerOptions struct {
	// TokenFile is a bearer-token file (LoadTokens); empty: none.
	TokenFile string
	// WebConfigFile is a Prometheus web config file (TLS, basic_auth_users),
	// the one the metrics endpoint reads; empty: plain HTTP.
	WebConfigFile string
	Logger        *slog.Logger
}

// CheckServe validates opts for serving on addr: a web config that parses,
// a token file with tokens, and some authentication unless addr is loopback.
//
// Tokens and basic_auth_users together are refused: the web config's basic
// auth is checked first, and a request carries one Authorization header,
// so no bearer token could ever get through.
func CheckServe(addr string, opts ServerOptions) error {
	tokens, users, clientCerts := false, false, false
	if opts.TokenFile != "" {
		if _, err := LoadTokens(opts.TokenFile); err != nil {
			return err
		}
		tokens = true
	}
	if opts.WebConfigFile != "" {
		if err := web.Validate(opts.WebConfigFile); err != nil {
			return fmt.Errorf("web config %s: %w", opts.WebConfigFile, err)
		}
		var err error
		if users, clientCerts, err = webConfigAuth(opts.WebConfigFile); err != nil {
			return err
		}
	}
	if tokens && users {
		return fmt.Errorf("the task API cannot take both --api-token-file and the basic_auth_users of %s: "+
			"a request carries one Authorization header, and basic auth is checked first, so no token would get through; "+
			"use one of them", opts.WebConfigFile)
	}
	auth := tokens || users || clientCerts
	if !auth && !isLoopback(addr) {
		return fmt.Errorf("refusing to serve the task API on %s without authentication: "+
			"give --api-token-file, or basic_auth_users or client_auth_type: RequireAndVerifyClientCert in --web-config-file, or listen on a loopback address", addr)
	}
	return nil
}

// webConfigAuth reports whether a web config authenticates its clients:
// basic_auth_users, or client certificates it requires and verifies (as
// the dashboard accepts).
func webConfigAuth(path string) (users, clientCerts bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, false, fmt.Errorf("read web config: %w", err)
	}
	var c struct {
		Users map[string]string `yaml:"basic_auth_users"`
		TLS   struct {
			ClientAuth string `yaml:"client_auth_type"`
		} `yaml:"tls_server_config"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, false, fmt.Errorf("web config %s: %w", path, err)
	}
	return len(c.Users) > 0, c.TLS.ClientAuth == "RequireAndVerifyClientCert", nil
}

// isLoopback reports whether addr (host:port) listens on loopback only. An
// empty host (all interfaces) is not loopback; "localhost" is.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves h, wrapped with the bearer check when opts has a token file,
// on l with the TLS and basic auth of opts' web config, until ctx ends. It
// closes l. Call CheckServe first.
func Serve(ctx context.Context, l net.Listener, opts ServerOptions, h http.Handler) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.TokenFile != "" {
		tokens, err := LoadTokens(opts.TokenFile)
		if err != nil {
			l.Close()
			return err
		}
		h = RequireBearer(tokens, h)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return webserve.Serve(ctx, l, srv, opts.WebConfigFile, logger, "task api")
}
