package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/spec"
)

// fiftyGitPlugs serves 50 one-plugin repositories with git daemon.
func fiftyGitPlugs(b *testing.B) *spec.Deployment {
	root := b.TempDir()
	base := ""
	var plugs []*spec.Plug
	for i := range 50 {
		name := fmt.Sprintf("p%02d", i)
		r := gittest.NewRepoIn(b, root, name)
		r.Commit(map[string]string{"plugin.hcl": manifestHCL(name, ""), "run.sh*": "echo " + name + "\n"})
		r.Tag("v1.0.0")
		plugs = append(plugs, plugOf(name, "", "~> 1.0"))
	}
	base = gittest.Daemon(b, root)
	for _, p := range plugs {
		p.Source = "git::" + base + "/" + p.Name
	}
	return deployment(b, plugs...)
}

// BenchmarkLockFetchCold locks and fetches 50 git plugs into an empty state dir.
func BenchmarkLockFetchCold(b *testing.B) {
	d := fiftyGitPlugs(b)
	b.ResetTimer()
	for range b.N {
		s := Open(filepath.Join(b.TempDir(), ".plugs"), Options{})
		l := mustLock(b, s, d, nil)
		mustFetch(b, s, d, l, true)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*50)/1000, "ms/plug")
}

// BenchmarkFetchWarm fetches 50 unchanged git plugs again (no network).
func BenchmarkFetchWarm(b *testing.B) {
	d := fiftyGitPlugs(b)
	s := newStore(b)
	l := mustLock(b, s, d, nil)
	mustFetch(b, s, d, l, true)
	b.ResetTimer()
	for range b.N {
		mustFetch(b, s, d, l, false)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*50)/1000, "ms/plug")
}

// BenchmarkBundle50 bundles 50 fetched plugins.
func BenchmarkBundle50(b *testing.B) {
	var plugs []*spec.Plug
	d := deployment(b)
	for i := range 50 {
		name := fmt.Sprintf("p%02d", i)
		localPlugin(b, d.BaseDir, name, "")
		plugs = append(plugs, plugOf(name, "./"+name, ""))
	}
	d.Plugs = plugs
	s := newStore(b)
	l := mustLock(b, s, d, nil)
	out := filepath.Join(b.TempDir(), "b.tar.gz")
	b.ResetTimer()
	for range b.N {
		if err := s.WriteBundle(context.Background(), out, d, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReload1000 is the fetch side of a daemon's reload of 1,000
// local-folder plugs, each with a 64 KiB file: Fetch (checking each source
// against the lock) and Runnable (verifying each tree). "first" is a fresh
// Store, which hashes every source and tree (a daemon's first reconcile);
// "again" a Store that verified them before, which hashes nothing unless a
// fingerprint changed.
func BenchmarkReload1000(b *testing.B) {
	d := deployment(b)
	blob := string(make([]byte, 64<<10))
	for i := range 1000 {
		name := fmt.Sprintf("p%04d", i)
		localPlugin(b, d.BaseDir, name, "")
		if err := os.WriteFile(filepath.Join(d.BaseDir, name, "data.bin"), []byte(blob), 0o644); err != nil {
			b.Fatal(err)
		}
		d.Plugs = append(d.Plugs, plugOf(name, "./"+name, ""))
	}
	dir := filepath.Join(b.TempDir(), ".plugs")
	l := mustLock(b, Open(dir, Options{}), d, nil)
	reload := func(s *Store) {
		mustFetch(b, s, d, l, false)
		if _, err := s.Runnable(d, l); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			reload(Open(dir, Options{}))
		}
	})
	b.Run("again", func(b *testing.B) {
		s := Open(dir, Options{})
		s.cache.trees.racy = -time.Hour // the trees were just written: remember them anyway
		reload(s)
		for b.Loop() {
			reload(s)
		}
	})
}
