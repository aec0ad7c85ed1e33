package health

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/plugs-dev/plugs/internal/layout"
	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest path a unix socket address holds (108 with
// the terminating NUL on Linux).
const maxSocketPath = 107

// NotifySocketPath is the $NOTIFY_SOCKET of an instance:
// <state>/instances/<plug>/<instance>/notify.sock, or, when that path is
// too long for a socket address, an abstract socket ("@plugs-notify-<hash>")
// derived from it. It is stable, so it does not change an instance's
// environment between runs.
func NotifySocketPath(stateDir string, id ID) string {
	p := filepath.Join(layout.InstanceDir(stateDir, id.Plug, id.Instance), "notify.sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(p))
	return "@plugs-notify-" + hex.EncodeToString(sum[:12])
}

// notifySocket receives the datagrams of one instance's notify programs.
type notifySocket struct {
	conn *net.UnixConn
	path string
	done chan struct{}
}

// listenNotify binds path (mode 0600 through the directory's umask: the
// socket file is chmod'ed after bind) and delivers each datagram's fields
// and sender's process group to deliver until closed.
func listenNotify(path string, deliver func(pgid int, fields map[string]string)) (*notifySocket, error) {
	addr := path
	if strings.HasPrefix(path, "@") {
		addr = "\x00" + path[1:]
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	if !strings.HasPrefix(path, "@") {
		// The instance may run as another user (user = "..."): it must be
		// able to write; the directory (0700, owned by plugs) is what keeps
		// others out, as for systemd's own socket.
		_ = os.Chmod(path, 0o666)
	}
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
	}
	s := &notifySocket{conn: conn, path: path, done: make(chan struct{})}
	go s.read(deliver)
	return s, nil
}

func (s *notifySocket) read(deliver func(int, map[string]string)) {
	defer close(s.done)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pgid := 0
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if cred, err := unix.ParseUnixCredentials(&m); err == nil && cred.Pid > 0 {
					if g, err := syscall.Getpgid(int(cred.Pid)); err == nil {
						pgid = g
					}
				}
			}
		}
		deliver(pgid, ParseNotify(buf[:n]))
	}
}

func (s *notifySocket) close() {
	s.conn.Close()
	<-s.done
	if !strings.HasPrefix(s.path, "@") {
		_ = os.Remove(s.path)
	}
}

// ParseNotify splits an sd_notify datagram ("READY=1\nSTATUS=…") into
// its fields; the last of a repeated field wins.
func ParseNotify(msg []byte) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(string(msg), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			fields[k] = v
		}
	}
	return fields
}
