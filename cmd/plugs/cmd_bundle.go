package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newBundleCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "bundle -o FILE",
		Short: "Fetch, build and write one offline bundle",
		Long: "bundle fetches and builds every enabled plug, then writes one .tar.gz holding plugs.hcl,\n" +
			"plugs.lock.hcl, every built plugin tree and a MANIFEST of hashes. Unpack it on a host\n" +
			"with plugs fetch --bundle FILE, or run it with plugs run --bundle FILE.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return inputError(errors.New("bundle: -o FILE is required"))
			}
			s, err := openFetchSession(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			l := s.lockOrEmpty()
			if err := s.store.WriteBundle(ctx, out, s.d, l); err != nil {
				return s.failure(err)
			}
			if _, err := s.saveLock(l); err != nil {
				return err
			}
			if !g.quiet() {
				fmt.Fprintf(g.stdout, "Wrote %s: %d plugs.\n", out, len(l.Plugs))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the bundle file to write (.tar.gz)")
	return cmd
}
