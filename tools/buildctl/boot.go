package buildctl

import "github.com/spf13/cobra"

// bootCmd is a placeholder until its implementation lands.
func (a *app) bootCmd() *cobra.Command {
	return &cobra.Command{Use: "boot", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}
