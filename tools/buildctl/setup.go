package buildctl

import "github.com/spf13/cobra"

// setupCmd is a placeholder until its implementation lands.
func (a *app) setupCmd() *cobra.Command {
	return &cobra.Command{Use: "setup", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}

// taskCmd is a placeholder until its implementation lands.
func (a *app) taskCmd() *cobra.Command {
	return &cobra.Command{Use: "task", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}
