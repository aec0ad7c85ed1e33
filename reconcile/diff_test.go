package reconcile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
)

func TestConfigDiffShowsSecretChangeRedacted(t *testing.T) {
	spec := func(token, interval string) *instance.Spec {
		cfg := "{\n  \"params\": {\n    \"interval\": \"" + interval + "\",\n    \"token\": \"" + token + "\"\n  }\n}\n"
		red := strings.Replace(cfg, `"`+token+`"`, `"`+render.Sensitive+`"`, 1)
		return &instance.Spec{ID: instance.ID{Plug: "p", Instance: "i"}, Config: []byte(cfg), Redacted: []byte(red), ConfigHash: token + interval}
	}
	tests := []struct {
		name          string
		before, after *instance.Spec
		want          []DiffLine
	}{
		{
			name:   "secret only",
			before: spec("old-secret-1", "5s"),
			after:  spec("new-secret-2", "5s"),
			want: []DiffLine{
				{Kind: DiffRemoved, Text: `    "token": "(sensitive)"`},
				{Kind: DiffAdded, Text: `    "token": "(sensitive)"`},
			},
		},
		{
			name:   "plain param",
			before: spec("same-secret", "5s"),
			after:  spec("same-secret", "10s"),
			want: []DiffLine{
				{Kind: DiffRemoved, Text: `    "interval": "5s",`},
				{Kind: DiffAdded, Text: `    "interval": "10s",`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := configDiff(tt.before, tt.after)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("configDiff (-want +got):\n%s", diff)
			}
			for _, l := range got {
				if strings.Contains(l.Text, "secret") {
					t.Errorf("diff line leaks a secret: %q", l.Text)
				}
			}
			c := compare(tt.before, tt.after)
			if c.Action != Replace || len(c.ConfigDiff) == 0 {
				t.Errorf("compare: action %v with %d diff lines, want a replace with lines", c.Action, len(c.ConfigDiff))
			}
		})
	}
}
