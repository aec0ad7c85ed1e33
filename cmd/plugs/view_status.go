package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// writeStatusText prints the daemon's lines, then one row per instance.
func writeStatusText(w io.Writer, s *api.Status, now time.Time) {
	d := s.Daemon
	src := d.ConfigFile
	if d.Repo != "" {
		src = d.Repo + " (" + d.ConfigFile + ")"
	}
	fmt.Fprintf(w, "Daemon:          pid %d, up %s, %s %s\n", d.PID, since(now, d.Started), d.Mode, src)
	fmt.Fprintf(w, "Config revision: %s\n", orDash(d.ConfigRevision))
	if p := d.Reconciling; p != nil {
		fmt.Fprintf(w, "Reconciling:     %s, since %s ago (%s)\n", p.Step, since(now, p.Since), p.Reason)
	}
	if d.LastGood != "" {
		fmt.Fprintf(w, "Last good:       %s\n", d.LastGood)
	}
	switch r := d.LastReconcile; {
	case r == nil:
		fmt.Fprintln(w, "Last reconcile:  none yet")
	case r.Error == "":
		fmt.Fprintf(w, "Last reconcile:  ok, %s ago (took %s)\n", since(now, r.At), r.Duration.Round(time.Millisecond))
	default:
		rev := ""
		if r.Revision != "" && r.Revision != d.ConfigRevision {
			rev = " at revision " + shortRev(r.Revision)
		}
		// Never claim that something runs when nothing does.
		keeps := "nothing runs: no configuration has been applied since the daemon started"
		if d.ConfigRevision != "" {
			keeps = "the configuration at revision " + shortRev(d.ConfigRevision) + " keeps running"
		}
		retry := "retried at the next change, interval or plugs apply"
		if r.Kind.Stalled() {
			retry = "fix the input: retried at its next change or plugs apply"
		}
		fmt.Fprintf(w, "Last reconcile:  FAILED%s, %s ago; %s (%s):\n", rev, since(now, r.At), keeps, retry)
		var b strings.Builder
		if len(r.Diagnostics) > 0 {
			_ = api.WriteDiagnostics(&b, r.Diagnostics, 76)
		} else {
			b.WriteString(r.Error)
		}
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
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
	if d.APIAddr != "" {
		fmt.Fprintf(w, "Task API:        %s\n", d.APIAddr)
	}
	if d.TaskCallsMQTT != "" {
		fmt.Fprintf(w, "Task calls:      MQTT %s\n", d.TaskCallsMQTT)
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
	writeReasonNotes(w, s.Instances)
	writeHealthNotes(w, s.Instances)
	writeRolloutNotes(w, s.Rollouts, now) // view_rollout.go
}

// writeReasonNotes prints, under the table, why each instance that does not
// run is in its state (backoff with its next restart and a hint, failed,
// needs-setup), and each task's schedule and last run.
func writeReasonNotes(w io.Writer, insts []api.InstanceStatus) {
	first := true
	for _, i := range insts {
		if i.Reason == "" || i.State == "running" {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		fmt.Fprintf(w, "%s/%s (%s): %s\n", i.Plug, i.Instance, i.State, i.Reason)
	}
}

// healthCell is the HEALTH column: pending, healthy, unhealthy, or "-"
// for an instance that does not run or declares no checks.
func healthCell(h *api.InstanceHealth) string {
	if h == nil {
		return "-"
	}
	return orDash(h.Status)
}

// writeHealthNotes prints, under the table, why each instance that is not
// healthy is not: its last failing check's output, or what it told us.
func writeHealthNotes(w io.Writer, insts []api.InstanceStatus) {
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

func lastExit(e *api.Exit, now time.Time) string {
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
