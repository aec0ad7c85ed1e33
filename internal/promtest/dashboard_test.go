package promtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDashboardQueries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.json")
	const d = `{
  "templating": {"list": [
    {"name": "datasource", "type": "datasource", "query": "prometheus"},
    {"name": "host", "type": "query", "query": {"query": "label_values(plugs_plug_info{job=\"plugs\"}, instance)", "refId": "x"}},
    {"name": "plug", "type": "query", "query": "label_values(plugs_plug_info{instance=~\"$host\"}, plug)"}
  ]},
  "panels": [
    {"title": "Up", "targets": [
      {"refId": "A", "expr": "sum(plugs_instance_up{instance=~\"${host}\"})"},
      {"refId": "B", "expr": "rate(x[$__rate_interval])", "hide": true}
    ]},
    {"title": "Row", "type": "row", "panels": [
      {"title": "Restarts", "targets": [{"refId": "A", "expr": "rate(plugs_instance_restarts_total{plug=~\"[[plug]]\"}[$__rate_interval])"}]}
    ]}
  ]
}`
	if err := os.WriteFile(path, []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := DashboardQueries(path, map[string]string{"host": "h:1", "plug": ".*", "__rate_interval": "30s"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{
		{Panel: "variable host", Expr: `plugs_plug_info{job="plugs"}`},
		{Panel: "variable plug", Expr: `plugs_plug_info{instance=~"h:1"}`},
		{Panel: "Up", RefID: "A", Expr: `sum(plugs_instance_up{instance=~"h:1"})`},
		{Panel: "Restarts", RefID: "A", Expr: `rate(plugs_instance_restarts_total{plug=~".*"}[30s])`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DashboardQueries (-want +got):\n%s", diff)
	}

	_, err = DashboardQueries(path, map[string]string{"host": "h:1"})
	if err == nil || !strings.Contains(err.Error(), "$plug") {
		t.Errorf("missing variable: err = %v, want one naming $plug", err)
	}
	if _, err := DashboardQueries(filepath.Join(t.TempDir(), "none.json"), nil); err == nil {
		t.Error("missing file: no error")
	}
}
