package buildctl

import "github.com/spf13/cobra"

// buildPackageCmd is a placeholder until its implementation lands.
func (a *app) buildPackageCmd() *cobra.Command {
	return &cobra.Command{Use: "buildPackage", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}

// buildKitCmd is a placeholder until its implementation lands.
func (a *app) buildKitCmd() *cobra.Command {
	return &cobra.Command{Use: "buildKit", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}

// cleanCmd is a placeholder until its implementation lands.
func (a *app) cleanCmd() *cobra.Command {
	return &cobra.Command{Use: "clean", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotImplemented }}
}
