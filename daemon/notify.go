package daemon

import (
	"fmt"
	"net"
	"os"
)

// sdNotify sends state (e.g. "READY=1") to systemd's notification socket
// named by $NOTIFY_SOCKET. Without it, it does nothing and returns nil.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	// An abstract socket is written with a leading '@'.
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}
