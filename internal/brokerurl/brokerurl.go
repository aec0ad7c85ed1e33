// Package brokerurl is the one home of what an MQTT broker URL may be: its
// schemes (tcp, ssl, ws and their aliases mqtt, mqtts, tls, wss) and a
// host. spec checks the broker block with it, mqtt connects by it, so that
// plugs validate accepts exactly what plugs run can connect to. Its errors
// never hold a password.
package brokerurl

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/plugs-dev/plugs/internal/redact"
)

// Schemes are the broker URL schemes, plain and TLS, TCP and websocket.
var Schemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// Parse checks a broker URL.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input: report only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("broker url: %w", err)
	}
	if !slices.Contains(Schemes, u.Scheme) {
		return nil, fmt.Errorf("broker url %s: scheme must be tcp, ssl or ws (or mqtt, mqtts, tls, wss)", redact.URL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("broker url %s: no host", redact.URL(u))
	}
	return u, nil
}
