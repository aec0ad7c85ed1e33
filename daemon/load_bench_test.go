package daemon

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// lockedSideBySide is the side by side's N = PLUGS_BENCH_INSTANCES
// (default 1000) plugs, fetched and locked (untimed), with a constructor
// of new loaders of its state dir: what a daemon that has just started has.
func lockedSideBySide(b *testing.B) (*sideBySide, func() *loader) {
	s := newSideBySide(b, benchInstances(b, 1000))
	state := filepath.Join(filepath.Dir(s.file), ".plugs")
	newL := func() *loader {
		return newLoader(state, fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	}
	ld, err := newL().load(context.Background(), s.file, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
		b.Fatal(err)
	}
	return s, newL
}

// BenchmarkFirstLoadSideBySide measures the load of a daemon's first
// reconcile at the side by side's cold start: N = PLUGS_BENCH_INSTANCES
// (default 1000) plugs of one `sleep` each, all fetched already (`plugs
// fetch`, untimed), read by a new loader each time (no lock cache, no
// tree fingerprints: what a process that has just started knows).
func BenchmarkFirstLoadSideBySide(b *testing.B) {
	s, newL := lockedSideBySide(b)
	ctx := context.Background()
	profileFromHere(b)
	for b.Loop() {
		ld, err := newL().load(ctx, s.file, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(ld.desired) != len(s.plugs) || ld.lockChanged {
			b.Fatalf("%d instances desired (want %d), lock changed %v", len(ld.desired), len(s.plugs), ld.lockChanged)
		}
	}
}

// BenchmarkStartReadsSideBySide compares what the daemon's start reads
// before its first reconcile, at the side by side's N plugs (fetched,
// locked): the broker block read on its own and then the first load
// ("separate", as before readAhead), against readAhead and the first load
// that starts from it ("read-ahead"). The same run alternates both.
func BenchmarkStartReadsSideBySide(b *testing.B) {
	s, newL := lockedSideBySide(b)
	ctx := context.Background()
	for _, mode := range []string{"separate", "read-ahead"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				l := newL()
				if mode == "separate" {
					if _, diags := spec.NewParser().LoadDeployment(s.file, nil); diags.HasErrors() {
						b.Fatal(diags)
					}
				} else if l.readAhead(s.file, nil) == nil {
					b.Fatal("readAhead: no deployment")
				}
				if _, err := l.load(ctx, s.file, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHealthConfigsSideBySide measures healthConfigs, a step of every
// load, on the side by side's N plugs (no checks, no secret params; the
// broker has a password).
func BenchmarkHealthConfigsSideBySide(b *testing.B) {
	s, newL := lockedSideBySide(b)
	ld, err := newL().load(context.Background(), s.file, nil)
	if err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(filepath.Dir(s.file), ".plugs")
	for b.Loop() {
		if cfgs := healthConfigs(state, ld.dep, ld.manifests, ld.desired, "broker-password"); len(cfgs) != len(s.plugs) {
			b.Fatalf("%d configs, want %d", len(cfgs), len(s.plugs))
		}
	}
}
