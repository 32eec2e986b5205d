// Package builder builds Petrel packages into RPMs with the real rpmbuild.
//
// Each package builds in a bubblewrap sandbox with no network, a read-only
// view of the host, a clean environment and a private /tmp. The spec, the
// package's local files and its verified external files are copied into a
// fresh rpmbuild tree; the RPMs of its build dependencies are unpacked into a
// sysroot (%{_cross_sysroot}). SOURCE_DATE_EPOCH is the commit time of the
// package's inputs, so the same inputs give byte-identical RPMs.
//
// A package is rebuilt only when its cache key changes: a SHA-256 over its
// spec, files, external digests, source groups, the RPM macros, the SDK tool
// list, the architecture and the keys of its dependencies. Independent
// packages build in parallel, in dependency order.
package builder
