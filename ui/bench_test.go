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
// last byte, and the page's weight as sent (gzip) and as parsed. Each
// iteration also fetches the same page from a dashboard of 10 instances,
// the baseline measured in the same run: "x-10" is the 1,000-instance
// page's time to the last byte over the 10-instance page's.
func BenchmarkInstancesPage1000(b *testing.B) {
	for _, page := range []struct{ name, path string }{
		{"instances", "/instances"},
		{"instances-sorted-cpu", "/instances?sort=cpu&desc=1"},
		{"instances-filtered", "/instances?q=plug-03"},
		{"host", "/"},
	} {
		b.Run(page.name, func(b *testing.B) {
			big, small := newPageServer(b, 1000), newPageServer(b, 10)
			var ttfb, total, baseline time.Duration
			var wire, raw int64
			b.ResetTimer()
			for b.Loop() {
				first, all, n := big.get(b, page.path)
				ttfb += first
				total += all
				wire = n
				_, all, _ = small.get(b, page.path)
				baseline += all
				if raw == 0 {
					raw = rawSize(b, big.c, big.url+page.path)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(ttfb.Microseconds())/n/1000, "ms-ttfb")
			b.ReportMetric(float64(total.Microseconds())/n/1000, "ms-total")
			b.ReportMetric(float64(baseline.Microseconds())/n/1000, "ms-total-at-10")
			b.ReportMetric(float64(total)/float64(baseline), "x-10")
			b.ReportMetric(float64(wire)/1024, "KiB-gzip")
			b.ReportMetric(float64(raw)/1024, "KiB-html")
		})
	}
}

// pageServer is a dashboard of a fake backend with n instances, served over
// a real HTTP connection.
type pageServer struct {
	c   *http.Client
	url string
}

func newPageServer(b *testing.B, n int) *pageServer {
	s, err := New(Options{Backend: newFake(n), ProcRoot: "-", Hostname: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	tr := &http.Transport{DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &pageServer{c: &http.Client{Transport: tr}, url: srv.URL}
}

// get fetches path (gzip accepted) and returns the time to the first byte,
// to the last, and the bytes sent.
func (p *pageServer) get(b *testing.B, path string) (first, total time.Duration, wire int64) {
	req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	start := time.Now()
	resp, err := p.c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	first = time.Since(start) // headers and the first bytes are in
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		b.Fatal(resp.StatusCode, err)
	}
	return first, time.Since(start), n
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
