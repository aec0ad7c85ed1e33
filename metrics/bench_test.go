package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkScrape1000 measures one /metrics scrape (gather, /proc scan and
// text encoding) of a daemon running 1,000 instances of 100 plugs.
func BenchmarkScrape1000(b *testing.B) {
	src := &fakeSource{}
	pid := os.Getpid() // a real process, so the /proc scan is real
	for i := range 1000 {
		src.instances = append(src.instances, instance.Status{
			ID:    instance.ID{Plug: fmt.Sprintf("plug-%03d", i/10), Instance: fmt.Sprintf("patient-%04d", i)},
			State: instance.StateRunning, PID: pid, StartedAt: time.Now(), Restarts: i % 7,
		})
	}
	for i := range 100 {
		src.plugins = append(src.plugins, PluginInfo{Plug: fmt.Sprintf("plug-%03d", i), Version: "1.2.0",
			Revision: "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d", Source: "git::https://git.example.org/acme/x.git"})
	}
	reg := prometheus.NewRegistry()
	New(reg, src)
	h := Handler(reg, nil)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
