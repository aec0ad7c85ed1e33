package main

import (
	"fmt"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/spec"
	"github.com/spf13/cobra"
)

func newFetchCmd(g *globals) *cobra.Command {
	var frozen bool
	var bundle string
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Bring every locked revision into the state directory",
		Long: "fetch brings each plug's locked revision into .plugs/plugins/<plug>/<revision>/, verifying its hash.\n" +
			"Without --frozen, missing or stale lock entries are resolved and plugs.lock.hcl is updated.\n" +
			"With --bundle FILE, a bundle is verified and unpacked instead, without any network.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			if bundle != "" {
				file, err := fetch.Unbundle(ctx, bundle, g.stateDir())
				if err != nil {
					return fetchError(err)
				}
				if !g.quiet() {
					fmt.Fprintf(g.stdout, "Unpacked %s into %s.\nIts deployment: %s\n", bundle, g.stateDir(), file)
				}
				return nil
			}
			s, err := openFetchSession(g)
			if err != nil {
				return err
			}
			if frozen && s.lock == nil {
				return inputError(fmt.Errorf("%s is missing; run plugs lock", s.lockFile))
			}
			l := s.lockOrEmpty()
			trees, err := s.store.Fetch(ctx, s.d, l, fetch.FetchOptions{Frozen: frozen})
			if err != nil {
				return s.failure(err)
			}
			return s.finish("Fetched", trees, l)
		},
	}
	cmd.Flags().BoolVar(&frozen, "frozen", false, "fail when the lock is missing or stale, instead of updating it")
	cmd.Flags().StringVar(&bundle, "bundle", "", "unpack this bundle (offline) instead of fetching")
	return cmd
}

// finish writes the updated lock and prints one line per tree.
func (s *fetchSession) finish(verb string, trees []*fetch.Tree, l *spec.Lock) error {
	changed, err := s.saveLock(l)
	if err != nil {
		return err
	}
	if s.g.quiet() {
		return nil
	}
	for _, t := range trees {
		v := t.Version
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(s.g.stdout, "%s %s %s\n", t.Plug, v, t.Revision)
	}
	fmt.Fprintf(s.g.stdout, "%s %d plugs.\n", verb, len(trees))
	if changed {
		fmt.Fprintf(s.g.stdout, "Updated %s.\n", s.lockFile)
	}
	return nil
}
