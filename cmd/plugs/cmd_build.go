package main

import (
	"github.com/spf13/cobra"
)

func newBuildCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Fetch, then run each plugin's build command",
		Long: "build fetches like plugs fetch, then runs the build command of every plugin that has one,\n" +
			"in a copy of its tree; a built tree is read-only and never built again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openFetchSession(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			l := s.lockOrEmpty()
			trees, err := s.store.Build(ctx, s.d, l)
			if err != nil {
				return s.failure(err)
			}
			return s.finish("Built", trees, l)
		},
	}
}
