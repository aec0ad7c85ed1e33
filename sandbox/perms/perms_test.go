package perms

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	g, problems := Parse([]string{"filesystem.read:/data", "filesystem.write:/tmp/", "network.tcp:8080",
		"network.http", "network.mqtt", "mqtt:publish", "serial", "filesystem.read:rel", "network.tcp:x", "camera"})
	want := Grants{Read: []string{"/data"}, Write: []string{"/tmp"}, Connect: []uint16{80, 443, 8080}, Bind: []uint16{8080},
		Devices: []string{"/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyS*", "/dev/ttyAMA*", "/dev/serial"}, Groups: []string{"dialout"}}
	if d := cmp.Diff(want, g); d != "" {
		t.Errorf("grants (-want +got):\n%s", d)
	}
	if len(problems) != 3 {
		t.Errorf("problems: %q", problems)
	}
	if g, _ := Parse([]string{"network"}); !g.AnyNetwork {
		t.Error("network: not any network")
	}
}
