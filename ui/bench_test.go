package ui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkInstancesPage1000 measures the instances page with 1,000
// instances over a real HTTP connection: time to first byte, time to the
// last byte, and the page's weight as sent (gzip) and as parsed.
func BenchmarkInstancesPage1000(b *testing.B) {
	for _, page := range []struct{ name, path string }{
		{"instances", "/instances"},
		{"instances-sorted-cpu", "/instances?sort=cpu&desc=1"},
		{"instances-filtered", "/instances?q=plug-03"},
		{"host", "/"},
	} {
		b.Run(page.name, func(b *testing.B) {
			f := newFake(1000)
			s, err := New(Options{Backend: f, ProcRoot: "-", Hostname: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			var ttfb, total time.Duration
			var wire, raw int64
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+page.path, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				start := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				first := time.Since(start) // headers and the first bytes are in
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp.StatusCode, err)
				}
				ttfb += first
				total += time.Since(start)
				wire = n
				if raw == 0 {
					raw = rawSize(b, c, srv.URL+page.path)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(ttfb.Microseconds())/n/1000, "ms-ttfb")
			b.ReportMetric(float64(total.Microseconds())/n/1000, "ms-total")
			b.ReportMetric(float64(wire)/1024, "KiB-gzip")
			b.ReportMetric(float64(raw)/1024, "KiB-html")
		})
	}
}

func rawSize(b *testing.B, c *http.Client, url string) int64 {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		r = zr
	}
	n, _ := io.Copy(io.Discard, r)
	return n
}

// BenchmarkPatch1000 measures the event feed's work when every one of
// 1,000 instances changed: one read of the backend, the rows rendered.
func BenchmarkPatch1000(b *testing.B) {
	f := newFake(1000)
	s, err := New(Options{Backend: f, ProcRoot: "-"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := s.hub.subscribe(nil) // rendering happens only for open streams
	defer s.hub.unsubscribe(c)
	var size int
	for b.Loop() {
		b.StopTimer()
		f.mu.Lock()
		for i := range f.instances {
			f.instances[i].Restarts++
		}
		f.mu.Unlock()
		b.StartTimer()
		msg, _ := s.hub.diff()
		size = len(msg)
	}
	b.ReportMetric(float64(size)/1024, "KiB-event")
}
