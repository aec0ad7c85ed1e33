package ui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/prometheus/procfs"
)

// A dashboard without authentication is served on loopback only (Listen
// refuses anything else), but every local user can reach loopback. Reading
// its pages is open to them, as documented, but for what shows a plugin's
// output (privateRead); acting (every request that is not a GET or HEAD:
// stop, start, restart, kill, run setup, apply, run a task, and whatever
// comes next) is allowed, as on the local API socket, only to root and the
// daemon's own uid. The peer's uid comes from the TCP
// connection itself: the kernel's socket table owns the client's end.

// peerLookup returns the uid that owns the client's end of a TCP connection
// the server sees from local to remote.
type peerLookup func(local, remote netip.AddrPort) (uint32, error)

// localPeersAct wraps h so that a request that may change something is
// served only when the peer's uid is root or s.ownUID; any other peer, and
// one whose uid s.peerUID cannot read, gets a 403 page that says why and
// what to do instead.
func (s *Server) localPeersAct(h http.Handler) http.Handler {
	own := s.ownUID
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !privateRead(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		uid, err := requestPeerUID(r, s.peerUID)
		switch {
		case err != nil:
			s.log.Warn("dashboard action refused: peer unknown", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.refuseAction(w, r, fmt.Sprintf("The dashboard could not tell which user sent this request (%v), so it does nothing.", err), own)
		case uid != 0 && uid != own:
			s.log.Warn("dashboard action refused", "peer_uid", uid, "method", r.Method, "path", r.URL.Path)
			s.refuseAction(w, r, fmt.Sprintf("This request came from uid %d. Without authentication the dashboard acts only for %s, as the local API does: every local user can reach its loopback address.", uid, whoMayAct(own)), own)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// privateRead reports whether a page shows what plugs logs and plugs exec
// show only to root and the daemon's uid: an instance's output (its page
// holds the log tail, and its log stream) and a task's runs with their
// input and output. A plugin may print what it must not (a secret of its
// own): another local user reads the host's, the instances' and the
// plugins' pages, not that.
func privateRead(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "instances": // an instance's page
		return true
	case len(parts) == 4 && parts[0] == "instances" && parts[3] == "log":
		return true
	case len(parts) == 3 && parts[0] == "tasks": // a task's runs
		return true
	}
	return false
}

// refuseAction answers 403 with a page that says why and how to proceed.
func (s *Server) refuseAction(w http.ResponseWriter, r *http.Request, why string, own uint32) {
	how := "Use the CLI as " + whoMayAct(own) + " (plugs stop, start, restart, kill, setup, apply, exec), " +
		"or give the dashboard authentication: basic_auth_users (or client_auth_type: RequireAndVerifyClientCert) in the web config file of plugs run --web-config-file; " +
		"then whoever signs in may act."
	s.page(func(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
		v.Title, v.Nav = "Not allowed", ""
		v.Data = refusedData{Why: why, How: how}
		return "refused", http.StatusForbidden
	})(w, r)
}

// whoMayAct names the users who may act without authentication.
func whoMayAct(own uint32) string {
	if own == 0 {
		return "root (the daemon's uid)"
	}
	return fmt.Sprintf("root and the daemon's uid %d", own)
}

// refusedData is the page of a refused action's.
type refusedData struct {
	Why, How string
}

// requestPeerUID finds the uid of the client of r from its connection's
// addresses.
func requestPeerUID(r *http.Request, lookup peerLookup) (uint32, error) {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return 0, errors.New("no local address")
	}
	tcp, ok := la.(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("not a TCP connection (%s)", la.Network())
	}
	local := tcp.AddrPort()
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return 0, fmt.Errorf("remote address %q: %w", r.RemoteAddr, err)
	}
	return lookup(local, remote)
}

// procPeerLookup looks the client's end up in procRoot/net/tcp and tcp6
// (the tables of the reader's network namespace, which loopback does not
// leave): for a connection seen from local to remote it is the socket whose
// local address is remote and whose remote address is local.
func procPeerLookup(procRoot string) peerLookup {
	return func(local, remote netip.AddrPort) (uint32, error) {
		fs, err := procfs.NewFS(procRoot)
		if err != nil {
			return 0, err
		}
		return peerUIDIn(fs, local, remote)
	}
}

func peerUIDIn(fs procfs.FS, local, remote netip.AddrPort) (uint32, error) {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	var found []uint32
	tables := 0
	for _, read := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := read()
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return 0, fmt.Errorf("read the socket table: %w", err)
		}
		tables++
		for _, l := range lines {
			if addrPort(l.LocalAddr, l.LocalPort) != remote || addrPort(l.RemAddr, l.RemPort) != local {
				continue
			}
			// A socket no process holds any more (a time-wait or orphaned
			// one: inode 0) is listed with uid 0: never take it for root.
			if l.Inode == 0 {
				return 0, errors.New("the client's socket is closed")
			}
			found = append(found, uint32(l.UID))
		}
	}
	switch {
	case tables == 0:
		return 0, errors.New("no socket table in /proc/net")
	case len(found) == 0:
		return 0, fmt.Errorf("no local socket %s connected to %s (not a connection from this host's network namespace?)", remote, local)
	case len(found) > 1:
		return 0, fmt.Errorf("%d sockets at %s", len(found), remote)
	}
	return found[0], nil
}

func addrPort(ip net.IP, port uint64) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port > 0xffff {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
