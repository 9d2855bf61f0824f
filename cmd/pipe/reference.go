package main

import (
	"github.com/spf13/cobra"

	"github.com/pipe-run/pipe/pipeline"
)

func newReference() *cobra.Command {
	return &cobra.Command{
		Use:   "config-reference",
		Short: "Print the config reference (Markdown), generated from the code",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte(pipeline.Reference()))
			return err
		},
	}
}
