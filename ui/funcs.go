package ui

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string { return s.assets[name] },
		"since": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return humanDuration(s.now().Sub(t))
		},
		"rfc3339": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"dur":     func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"short":   shortRev,
		"bytes":   humanBytes,
		"cpu":     func(sec float64) string { return fmt.Sprintf("%.2f s", sec) },
		"join":    strings.Join,
		"indent":  func(n int) string { return strings.Repeat("  ", n) },
		"diffcls": diffClass,
		"exit":    exitText,
	}
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

func diffClass(line string) string {
	switch {
	case strings.HasPrefix(line, "+"):
		return "add"
	case strings.HasPrefix(line, "-"):
		return "del"
	}
	return ""
}
