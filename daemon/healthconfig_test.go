package daemon

import (
	"context"
	"slices"
	"testing"

	"github.com/plugs-dev/plugs/instance"
)

// TestHealthConfigsSecretsOfCheckedInstances: an instance with a check
// gets the values of its secret params and the broker password, which
// redact its checks' output; one without checks gets its config and no
// secrets (it has no output to redact).
func TestHealthConfigsSecretsOfCheckedInstances(t *testing.T) {
	l, file := readAheadFixture(t, `plug "checked" {
  source = "./empty"
  params = { token = "s3cret-token", n = 2 }
  plugin {
    kind    = "script"
    command = ["sleep", "9"]
    param "token" {
      type   = string
      secret = true
    }
    param "n" {
      type = number
    }
  }
  check "probe" {
    type     = "exec"
    command  = ["true"]
    interval = "1s"
    timeout  = "1s"
  }
}

plug "plain" {
  source = "./empty"
  params = { token = "other-secret" }
  plugin {
    kind    = "script"
    command = ["sleep", "9"]
    param "token" {
      type   = string
      secret = true
    }
  }
}
`)
	ld, err := l.load(context.Background(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := ld.health[instance.ID{Plug: "checked", Instance: "default"}]
	if len(checked.Checks) != 1 || checked.Dir == "" {
		t.Fatalf("checked: %+v, want its check and its dir", checked)
	}
	if !slices.Contains(checked.Secrets, "s3cret-token") || slices.Contains(checked.Secrets, "2") {
		t.Errorf("checked: secrets %q, want the secret param's value and not the plain one's", checked.Secrets)
	}
	plain, ok := ld.health[instance.ID{Plug: "plain", Instance: "default"}]
	if !ok || len(plain.Checks) != 0 || plain.Dir == "" || len(plain.Secrets) != 0 {
		t.Errorf("plain: %+v (known %v), want a config without checks or secrets", plain, ok)
	}
}
