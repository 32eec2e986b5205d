// Package apiclient is a Go client for the Petrel settings API over its
// Unix socket, and the apiclient command line (get, set, apply, raw,
// reboot) with Bottlerocket's subcommands, flags and output shapes.
package apiclient
