package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(issue): replaced by the owner of this command.
func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "status",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return envError(errors.New("status: not implemented yet"))
		},
	}
}
