// Package render renders Petrel's configuration files from templates and
// restarts the services they belong to (upstream's thar-be-settings and
// schnauzer). An Applier looks up the services affected by changed
// settings, renders their configuration files with Go text/template and a
// small set of helpers (see docs/templates.md), writes each file
// atomically, then restarts only those services: restart commands of the
// form "systemctl try-restart UNIT" go to systemd over D-Bus, anything else
// is run without a shell.
package render
