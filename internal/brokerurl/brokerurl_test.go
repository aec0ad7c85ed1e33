package brokerurl_test

import (
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/brokerurl"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"tcp://h:1883", "mqtt://h", "ssl://h:8883", "tls://h", "mqtts://u:p@h", "ws://h:80/mqtt", "wss://h/mqtt"} {
		if _, err := brokerurl.Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://u:hunter2@h", "tcp://", "h:1883", "tcp://u:hunter2@h:bad port", ""} {
		_, err := brokerurl.Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): error shows the password: %v", bad, err)
		}
	}
}
