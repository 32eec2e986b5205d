// Package testkit holds what the tests of sources/ and tools/ share, so
// that each of these is done one way:
//
//   - Tool finds a host tool a test needs as an oracle or a helper, and
//     fails the test (never skips it) when the tool is missing, naming the
//     Debian package from Twoliter.toml's [[sdk.tool]] list, the list
//     `buildctl setup` installs. A tool that is not on the list fails too,
//     so the list stays complete.
//   - Run and RunCmd run a command and fail the test with its output when
//     it fails.
//   - Tree, WriteFiles and Symlinks make fake roots, sysfs and /dev trees;
//     Copy, Repo and Git make writable fixture projects (a tree copied and
//     changed by an overlay, committed to git with fixed dates, since builds
//     read SOURCE_DATE_EPOCH from the last commit).
//   - CheckMain runs a command's Main with a table of arguments and checks
//     the exit code and what it printed.
//   - MemFile is an io.WriterAt in memory (a hash tree from
//     verity.Format, say).
//   - Helper runs the test binary as a helper process (an agent that a
//     crash test kills); RunKilled runs a command and tells whether SIGKILL
//     ended it.
//
// It lives under sources/ so that the tests of both halves of the module
// can import it (tools may import sources, never the other way round).
// Production code must not import it: a test of this package fails when a
// non-test file does.
package testkit
