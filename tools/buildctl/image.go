package buildctl

import "github.com/spf13/cobra"

// makeCmd is a placeholder until its implementation lands.
func (a *app) makeCmd() *cobra.Command {
	return &cobra.Command{Use: "make", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}

// ovaCmd is a placeholder until its implementation lands.
func (a *app) ovaCmd() *cobra.Command {
	return &cobra.Command{Use: "ova", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}
