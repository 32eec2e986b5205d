// Package userdata is early-boot-config: it reads user data from providers
// tried in a fixed order (a local file, a CIDATA config drive, EC2 instance
// metadata with IMDSv2, VMware guestinfo), parses each as TOML or JSON with
// a top-level [settings] table (gzip detected by its magic bytes),
// validates it against the settings model and PATCHes it into the launch
// transaction, later providers overriding earlier ones. It runs once per
// instance: a marker file records that it has run.
package userdata
