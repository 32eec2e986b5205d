// Package project loads and validates a Petrel project tree: Twoliter.toml,
// Makefile.toml, packages/*/package.toml with their specs, kits/*/kit.toml and
// variants/*/variant.toml. Every problem found while loading is reported at
// once, each with its file and field or line.
package project
