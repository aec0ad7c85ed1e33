package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Query is one PromQL expression of a Grafana dashboard, variables
// substituted.
type Query struct {
	Panel string // the panel's title, or "variable NAME" for a template variable
	RefID string
	Expr  string
}

// GrafanaDefaults are the values DashboardQueries gives Grafana's built-in
// variables unless vars overrides them.
var GrafanaDefaults = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
	"__range_s":       "3600",
}

type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
		Hide  bool   `json:"hide"`
	} `json:"targets"`
}

type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// labelValuesRE matches Grafana's label_values(selector, label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// DashboardQueries returns every PromQL expression of the Grafana dashboard
// at path, in panel order: each panel target's expr (rows' panels included,
// hidden targets skipped), and the selector of every query variable written
// as label_values(selector, label). Variables ($name, ${name}, ${name:fmt},
// [[name]]) are replaced from vars, then from GrafanaDefaults; an unknown
// variable is an error, so a dashboard cannot silently use one the test
// did not think of.
func DashboardQueries(path string, vars map[string]string) ([]Query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard %s: %w", path, err)
	}
	values := make(map[string]string, len(GrafanaDefaults)+len(vars))
	for k, v := range GrafanaDefaults {
		values[k] = v
	}
	for k, v := range vars {
		values[k] = v
	}

	var out []Query
	add := func(title, refID, expr string) error {
		s, err := substitute(expr, values)
		if err != nil {
			return fmt.Errorf("%s: panel %q %s: %w", path, title, refID, err)
		}
		out = append(out, Query{Panel: title, RefID: refID, Expr: s})
		return nil
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := queryText(v.Query)
		if m := labelValuesRE.FindStringSubmatch(q); m != nil {
			if err := add("variable "+v.Name, "", m[1]); err != nil {
				return nil, err
			}
		}
	}
	var walk func(ps []panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Hide || strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				if err := add(p.Title, tg.RefID, tg.Expr); err != nil {
					return err
				}
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

// queryText reads a variable's query, a string or {"query": "..."}.
func queryText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Query
	}
	return ""
}

var variableRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)`)

func substitute(expr string, values map[string]string) (string, error) {
	var missing []string
	s := variableRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := values[name]
		if !ok {
			missing = append(missing, "$"+name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %s in %q", strings.Join(missing, ", "), expr)
	}
	return s, nil
}

// CheckDashboard fails t unless every query of the Grafana dashboard at
// path returns data from s, with $host set to host (the scraped target) and
// $plug to every plug. It waits for each query until ctx ends.
func (s *Server) CheckDashboard(ctx context.Context, t testing.TB, path, host string) {
	t.Helper()
	queries, err := DashboardQueries(path, map[string]string{"host": host, "plug": ".*"})
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 15 {
		t.Fatalf("found %d dashboard queries, want every panel's (>= 15)", len(queries))
	}
	for _, q := range queries {
		if _, err := s.WaitForData(ctx, q.Expr); err != nil {
			t.Errorf("panel %q %s: %v", q.Panel, q.RefID, err)
		}
	}
}
