package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses: fields count from the last ')'.
	line := "4242 (a) (b c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 123456 1000 200 18446744073709551615\n"
	st, ok := parseStat([]byte(line))
	if !ok {
		t.Fatal("parseStat: not ok")
	}
	if st.state != 'S' || st.ppid != 17 || st.ticks != 12 || st.startTick != 123456 {
		t.Errorf("parseStat = %+v, want state S ppid 17 ticks 12 start 123456", st)
	}
	for _, bad := range []string{"", "4242 (sleep", "4242 (sleep) S 1 2", "4242 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) ok, want not", bad)
		}
	}
}

func TestCmdlineMarker(t *testing.T) {
	for _, c := range []struct {
		cmdline, prefix, want string
	}{
		{"sleep\x0099999.1234000010\x00", "99999.1234", "99999.1234000010"},
		{"/usr/bin/sleep\x0099999.1234000010\x00", "99999.1234", "99999.1234000010"},
		{"sleep\x0099999.1234000010\x00", "99999.9999", ""},                  // another run's
		{"sleep\x00600\x00", "99999.1234", ""},                               // someone else's sleep
		{"/bin/sh\x00./run\x00", "99999.1234", ""},                           // not exec'd yet
		{"sleep\x0099999.1234\x00extra\x00", "99999.1234", ""},               // not a child's command
		{"", "99999.1234", ""},                                               // a zombie
		{"python3\x00/usr/bin/supervisord\x00", "99999.1234", ""},            // a fork before its exec
		{"xsleep\x0099999.1234000010\x00", "99999.1234", "99999.1234000010"}, // suffix match, as before
	} {
		if got := cmdlineMarker([]byte(c.cmdline), c.prefix); got != c.want {
			t.Errorf("cmdlineMarker(%q, %q) = %q, want %q", c.cmdline, c.prefix, got, c.want)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	b := "55d0c0000000-7ffd00000000 ---p 00000000 00:00 0                          [rollup]\nRss:               28472 kB\nPss:               27001 kB\nPss_Anon:          20000 kB\nShared_Clean:       1000 kB\n"
	rss, pss := parseSmapsRollup([]byte(b))
	if rss != 28472 || pss != 27001 {
		t.Errorf("parseSmapsRollup = %d, %d; want 28472, 27001 (Pss_Anon is not Pss)", rss, pss)
	}
}

func TestRereadAfter(t *testing.T) {
	if d := rereadAfter(0); d != pollEvery {
		t.Errorf("rereadAfter(0) = %v, want every poll", d)
	}
	if d := rereadAfter(time.Second); d != time.Second/16 {
		t.Errorf("rereadAfter(1s) = %v, want 1/16 of the age", d)
	}
	// A fork that execs late is found however late: the reads never stop,
	// and the delay stays a fraction of the age.
	age, reads := 500*time.Millisecond, 0
	for age < 5*time.Minute {
		age += rereadAfter(age)
		reads++
	}
	if reads > 200 {
		t.Errorf("%d reads of one process from 0.5 s to 5 min of age, want few", reads)
	}
}

func TestMedianWorstSummarize(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if m := median(ds); m != 3 {
		t.Errorf("median = %v, want 3", m)
	}
	if ds[0] != 5 {
		t.Error("median sorted its argument in place")
	}
	if m := median(nil); m != 0 {
		t.Errorf("median(nil) = %v", m)
	}
	if w := worst(ds); w != 5 {
		t.Errorf("worst = %v, want 5", w)
	}
	if m := median([]time.Duration{4, 1, 2, 10}); m != 3 {
		t.Errorf("median of 4 = %v, want 3 (the mean of the middle two)", m)
	}
	st, ok := summarize([]float64{3, 1, 2, 10})
	if !ok || st.med != 2.5 || st.lo != 1 || st.hi != 10 {
		t.Errorf("summarize = %+v %v, want med 2.5 (the mean of the middle two) [1–10]", st, ok)
	}
	if st, _ := summarize([]float64{7}); st.med != 7 || st.lo != 7 || st.hi != 7 {
		t.Errorf("summarize of one = %+v", st)
	}
	if _, ok := summarize(nil); ok {
		t.Error("summarize(nil) ok")
	}
}

func TestPerCount(t *testing.T) {
	if got := perCount("2", 3); strings.Join(got, ",") != "2,2,2" {
		t.Errorf("perCount(2) = %v", got)
	}
	if got := perCount("1, 3", 2); strings.Join(got, ",") != "1,3" {
		t.Errorf("perCount(1, 3) = %v", got)
	}
	if got := perCount("1,3,5", 2); strings.Join(got, ",") != "1,3" {
		t.Errorf("perCount(1,3,5) over 2 = %v", got)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.123: "0.12", 5.333: "5.33", 14.34: "14.3", 1325.4: "1325"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestDiff(t *testing.T) {
	old := []child{{"a", "m1"}, {"b", "m2"}, {"c", "m3"}}
	cs := []child{{"b", "m2"}, {"c", "m3x"}, {"d", "m4"}}
	removed, added, changed := diff(old, cs)
	if len(removed) != 1 || removed[0].name != "a" || len(added) != 1 || added[0].name != "d" || len(changed) != 1 || changed[0].name != "c" {
		t.Errorf("diff = %v %v %v", removed, added, changed)
	}
}

func TestCostRows(t *testing.T) {
	readme := "# plugs\n\n## Performance\n\n| a | b |\n|---|---|\n| x | y |\n\n### Cost of the capabilities\n\nIntro text.\n\n" +
		"| capability | figure |\n| --- | --- |\n| sandbox | 2.4x |\n| tasks | 1.8x |\n\n### Side by side\n\n| n | m |\n"
	got := costRows(readme)
	want := "| capability | figure |\n| --- | --- |\n| sandbox | 2.4x |\n| tasks | 1.8x |\n"
	if got != want {
		t.Errorf("costRows = %q, want %q", got, want)
	}
	if got := costRows("# no such section\n"); got != "" {
		t.Errorf("costRows without the section = %q", got)
	}
	if got := costRows("### Cost of the capabilities\n\nno table\n\n### Next\n| a |\n|---|\n| b |\n"); got != "" {
		t.Errorf("costRows of a section without a table took the next one: %q", got)
	}
}

type fakePeer struct{ n string }

func (p fakePeer) name() string                                    { return p.n }
func (p fakePeer) version() string                                 { return p.n + " 1.0" }
func (p fakePeer) available() error                                { return nil }
func (p fakePeer) configure(string, []child) error                 { return nil }
func (p fakePeer) start(string) (int, error)                       { return 0, nil }
func (p fakePeer) apply(string, []child, []child, time.Time) error { return nil }
func (p fakePeer) stop(string, int) error                          { return nil }
func (p fakePeer) commands() string                                { return "`" + p.n + " apply`" }

func TestRender(t *testing.T) {
	ms := time.Millisecond
	full := func(cold time.Duration) sample {
		return sample{
			cold: cold, coldPresent: cold, converge: 100 * ms, stop: 50 * ms, exited: 60 * ms,
			firstRestart: 20 * ms, firstReaped: 15 * ms, haveFirst: true,
			restarts: []time.Duration{2 * ms, 3 * ms, 9 * ms}, reaped: []time.Duration{ms, ms, 2 * ms},
			rssKiB: 1024, pssKiB: 512, haveIdle: true, haveKill: true, orphans: 0, took: 30 * time.Second,
		}
	}
	base := &result{peer: fakePeer{"baseline"}, n: 1000, samples: []sample{full(1000 * ms), full(1200 * ms)}}
	plugs := &result{peer: fakePeer{"plugs"}, n: 1000, samples: []sample{full(2000 * ms), full(3000 * ms)}}
	capped := full(4000 * ms)
	capped.convergeCapped = true
	capped.converge = 30 * time.Second
	sup := &result{peer: fakePeer{"supervisord"}, n: 1000, samples: []sample{capped}}
	s6 := &result{peer: fakePeer{"s6"}, n: 1000, samples: []sample{{err: errors.New("cold start: after 3m0s: 994 children running, want 1000")}}}
	pm2 := &result{peer: fakePeer{"pm2"}, n: 1000, skipped: "not measured: the run's budget of 17m0s was spent before its turn"}
	info := runInfo{
		runs: "2 runs at N=1000", idle: "2s at N=1000", took: 95 * time.Second, args: []string{"-n", "1000"},
		load0: "1.00", load1: "2.00", nofile: "20000/20000", left: 0,
		costRows: "| capability | figure |\n| --- | --- |\n| sandbox | 2.4x |\n",
	}
	out := render([]*result{base, plugs, sup, s6, pm2}, info)
	for _, want := range []string{
		"`bin/sidebyside -n 1000` (built from ./bench/sidebyside)",
		"side by side 1m35s",
		"open files (soft/hard) of the driver, which every supervisor and child inherits: 20000/20000",
		"| figure | baseline | plugs | supervisord | s6 | pm2 | best of the others |",
		// the median of two runs, the spread, the ratio to the baseline's median, the best peer
		"| cold start, state dir empty (ms) | 1100 [1000–1200] | 2500 [2000–3000] **2.3x** | 4000 [4000–4000] **3.6x** | failed | skipped | supervisord 4000 (3.6x) |",
		// a capped converge is no best
		"(not converged within the limit) **300.0x** | failed | skipped | n/a |",
		"| restart after SIGKILL, the first after the idle window (ms) | 20.0 [20.0–20.0] |",
		"| restart after SIGKILL, median of the others (ms) | 3.00 [3.00–3.00] |",
		"| restart after SIGKILL, worst of the others (ms) | 9.00 [9.00–9.00] |",
		"- s6 run 1 failed: cold start: after 3m0s: 994 children running, want 1000",
		"- pm2 not measured: the run's budget of 17m0s was spent before its turn",
		"| one run took (s) | 30.0 [30.0–30.0] | 30.0 [30.0–30.0] |",
		"## Cost of the capabilities (quoted from README)",
		"| sandbox | 2.4x |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out, "30.0 [30.0–30.0] **") {
		t.Error("a run's duration got a ratio")
	}
	if t.Failed() {
		t.Log(out)
	}
}

func BenchmarkListPIDs(b *testing.B) {
	for b.Loop() {
		_ = listPIDs()
	}
}

func BenchmarkWatcherPoll(b *testing.B) {
	w := newWatcher("99999.none")
	defer w.close()
	want := map[string]bool{}
	for b.Loop() {
		_ = w.poll(want)
	}
}
