// Command baseline is the physical limit the side-by-side benchmark measures
// supervisors against: a minimal Go program that fork/execs one `sleep`
// child per line of a desired-state file, restarts a child the moment it
// exits, converges to the file again on SIGHUP (stopping removed or changed
// children, starting new ones), and kills every child on SIGTERM.
//
// It has no config language, no state files, no logs and no backoff: every
// real supervisor does more work than this, so its figures are the floor.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

type child struct {
	marker string
	cmd    *exec.Cmd
	done   chan struct{}
	stop   bool
}

type supervisor struct {
	mu       sync.Mutex
	children map[string]*child // by name
}

func (s *supervisor) start(name, marker string) {
	c := &child{marker: marker, done: make(chan struct{})}
	s.children[name] = c
	s.spawn(name, c)
}

// spawn starts c and restarts it on exit until it is stopped. Callers hold s.mu.
func (s *supervisor) spawn(name string, c *child) {
	cmd := exec.Command("sleep", c.marker)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		close(c.done)
		return
	}
	c.cmd = cmd
	go func() {
		_ = cmd.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.stop {
			close(c.done)
			return
		}
		s.spawn(name, c)
	}()
}

func (s *supervisor) stopChild(c *child) {
	s.mu.Lock()
	c.stop = true
	p := c.cmd
	s.mu.Unlock()
	if p != nil {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	<-c.done
}

func readDesired(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, marker, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if ok {
			out[name] = marker
		}
	}
	return out, sc.Err()
}

func (s *supervisor) converge(desired map[string]string) {
	var stops []*child
	s.mu.Lock()
	for name, c := range s.children {
		if m, ok := desired[name]; !ok || m != c.marker {
			stops = append(stops, c)
			delete(s.children, name)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range stops {
		wg.Add(1)
		go func() { defer wg.Done(); s.stopChild(c) }()
	}
	wg.Wait()
	s.mu.Lock()
	for name, marker := range desired {
		if _, ok := s.children[name]; !ok {
			s.start(name, marker)
		}
	}
	s.mu.Unlock()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: baseline DESIRED-FILE")
		os.Exit(2)
	}
	s := &supervisor{children: map[string]*child{}}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	desired, err := readDesired(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s.converge(desired)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if d, err := readDesired(os.Args[1]); err == nil {
				s.converge(d)
			}
			continue
		}
		s.converge(map[string]string{})
		return
	}
}
