package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLockCmd(g *globals) *cobra.Command {
	var update []string
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Resolve plug versions and write plugs.lock.hcl",
		Long: "lock resolves every plug's version (a semver constraint over tags, a tag, a branch or a commit)\n" +
			"and writes plugs.lock.hcl. Entries whose source and version are unchanged are kept, unless named with -update.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openFetchSession(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			l, err := s.store.Lock(ctx, s.d, s.lock, update)
			if err != nil {
				return s.failure(err)
			}
			changed, err := s.saveLock(l)
			if err != nil {
				return err
			}
			if !g.quiet() {
				if changed {
					fmt.Fprintf(g.stdout, "Wrote %s: %d plugs.\n", s.lockFile, len(l.Plugs))
				} else {
					fmt.Fprintf(g.stdout, "%s is up to date: %d plugs.\n", s.lockFile, len(l.Plugs))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&update, "update", nil, "re-resolve this plug even if its entry is current (repeatable)")
	return cmd
}
