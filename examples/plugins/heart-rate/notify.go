package main

import (
	"net"
	"os"
)

// sdNotify sends state (e.g. "READY=1") to $NOTIFY_SOCKET, as systemd's
// sd_notify does: plugs gives each instance with a notify check its own
// socket. Without the variable it does nothing.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}
