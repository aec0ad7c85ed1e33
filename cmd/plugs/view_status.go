package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plugs-dev/plugs/daemon"
)

// writeStatusText prints the daemon's lines, then one row per instance.
func writeStatusText(w io.Writer, s *daemon.Status, now time.Time) {
	d := s.Daemon
	src := d.ConfigFile
	if d.Repo != "" {
		src = d.Repo + " (" + d.ConfigFile + ")"
	}
	fmt.Fprintf(w, "Daemon:          pid %d, up %s, %s %s\n", d.PID, since(now, d.Started), d.Mode, src)
	fmt.Fprintf(w, "Config revision: %s\n", orDash(d.ConfigRevision))
	switch r := d.LastReconcile; {
	case r == nil:
		fmt.Fprintln(w, "Last reconcile:  none yet")
	case r.Error == "":
		fmt.Fprintf(w, "Last reconcile:  ok, %s ago (took %s)\n", since(now, r.At), r.Duration.Round(time.Millisecond))
	default:
		rev := ""
		if r.Revision != "" && r.Revision != d.ConfigRevision {
			rev = " at revision " + r.Revision
		}
		fmt.Fprintf(w, "Last reconcile:  FAILED%s, %s ago; the last good configuration keeps running:\n", rev, since(now, r.At))
		for _, line := range strings.Split(r.Error, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	conn := "disconnected"
	if d.BrokerConnected {
		conn = "connected"
	}
	if d.BrokerError != "" {
		conn += ": " + d.BrokerError
	}
	fmt.Fprintf(w, "Broker:          %s %s\n", orDash(d.BrokerURL), conn)
	if d.MetricsAddr != "" {
		fmt.Fprintf(w, "Metrics:         http://%s/metrics\n", d.MetricsAddr)
	}
	if d.UIAddr != "" {
		fmt.Fprintf(w, "Dashboard:       http://%s/\n", d.UIAddr)
	}
	for i, l := range d.Sandbox {
		fmt.Fprintf(w, "%-17s%s\n", map[bool]string{true: "Sandbox:", false: ""}[i == 0], l)
	}
	fmt.Fprintln(w)
	if len(s.Instances) == 0 {
		fmt.Fprintln(w, "No instances.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUG\tINSTANCE\tSTATE\tHEALTH\tPID\tUPTIME\tRESTARTS\tVERSION\tREVISION\tLAST EXIT")
	for _, i := range s.Instances {
		pid, uptime := "-", "-"
		if i.PID > 0 {
			pid = fmt.Sprint(i.PID)
		}
		if !i.StartedAt.IsZero() {
			uptime = since(now, i.StartedAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", i.Plug, i.Instance, i.State, healthCell(i.Health), pid, uptime,
			i.Restarts, orDash(i.Version), orDash(shortRev(i.Revision)), lastExit(i.LastExit, now))
	}
	tw.Flush()
	writeHealthNotes(w, s.Instances)
}

// healthCell is the HEALTH column: pending, healthy, unhealthy, or "-"
// for an instance that does not run or declares no checks.
func healthCell(h *daemon.InstanceHealth) string {
	if h == nil {
		return "-"
	}
	return orDash(h.Status)
}

// writeHealthNotes prints, under the table, why each instance that is not
// healthy is not: its last failing check's output, or what it told us.
func writeHealthNotes(w io.Writer, insts []daemon.InstanceStatus) {
	first := true
	for _, i := range insts {
		h := i.Health
		if h == nil || h.Status == "" || h.Status == "healthy" {
			continue
		}
		note := h.LastFailure
		if note == "" {
			note = "waiting for its first check results"
		}
		if h.NotifyStatus != "" {
			note += " (STATUS=" + h.NotifyStatus + ")"
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		fmt.Fprintf(w, "%s/%s is %s: %s\n", i.Plug, i.Instance, h.Status, note)
	}
}

func lastExit(e *daemon.Exit, now time.Time) string {
	if e == nil {
		return "-"
	}
	what := fmt.Sprintf("code %d", e.Code)
	if e.Signal != "" {
		what = e.Signal
	}
	if e.OOMKilled {
		what = "oom-killed"
	}
	return what + ", " + since(now, e.At) + " ago"
}

// since is a short rounded duration: 45s, 3m12s, 5h3m, 2d4h.
func since(now, t time.Time) string {
	d := max(now.Sub(t), 0).Round(time.Second)
	switch {
	case d < time.Hour:
		return d.String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%dh", days, int((d%(24*time.Hour))/time.Hour))
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
