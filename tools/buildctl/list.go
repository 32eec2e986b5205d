package buildctl

import "github.com/spf13/cobra"

// listCmd is a placeholder until its implementation lands.
func (a *app) listCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}

// graphCmd is a placeholder until its implementation lands.
func (a *app) graphCmd() *cobra.Command {
	return &cobra.Command{Use: "graph", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}
