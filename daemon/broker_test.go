package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/mqtt"
)

// TestBrokerErrorInStatus: a broker that refuses the deployment's
// credentials is shown in status with its reason, not as a bare
// "disconnected".
func TestBrokerErrorInStatus(t *testing.T) {
	auth, err := mqtt.NewAuth([]byte("daemon-test-broker-key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtt.StartEmbedded("127.0.0.1:0", auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	file := filepath.Join(dir, "plugs.hcl")
	secret := "wrong-password-planted"
	writeFile(t, file, fmt.Sprintf("broker {\n  url = %q\n  username = \"plugs\"\n  password = %q\n}\n", b.URL(), secret)+
		sleeperDeployment(map[string]string{"a": "1s"}))
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	st := waitStatus(t, c, "a broker error", func(s *api.Status) bool { return s.Daemon.BrokerError != "" })
	if st.Daemon.BrokerConnected || !strings.Contains(strings.ToLower(st.Daemon.BrokerError), "not authorized") &&
		!strings.Contains(strings.ToLower(st.Daemon.BrokerError), "bad user name or password") {
		t.Errorf("status: connected %v, broker error %q; want the refusal", st.Daemon.BrokerConnected, st.Daemon.BrokerError)
	}
	if strings.Contains(st.Daemon.BrokerError, secret) {
		t.Error("the broker password is in status")
	}
	if st.Daemon.Run == "" {
		t.Error("status has no run id")
	}
	if _, err := os.Stat(BrokerDir(filepath.Join(dir, ".plugs"))); err == nil {
		t.Error("broker credentials were made for an external broker")
	}
}
