// Package gitrev reads what a build takes from the project's git history:
// the build ID (the short commit id, "-dirty" for a changed work tree) and
// commit times, which become SOURCE_DATE_EPOCH.
//
// A project outside a git work tree (an exported source tree) is a
// supported case with fixed fallbacks, so it is reported as the sentinel
// ErrNotRepository, and only that: any other failure of git (a repository
// without commits, one git refuses to read because of its owner, a missing
// git) is an error carrying git's own message, so that a build never
// quietly takes a fallback ID for a broken checkout.
package gitrev
