// Package cli runs a cobra command tree as the Main of a Petrel program.
//
// Every host program builds its command tree inside its own Main call (no
// package globals) and hands it to Run, which feeds it the arguments and
// streams and turns the outcome into the exit codes all Petrel programs
// share: 0 on success and for --help, 1 when the work failed, 2 on a usage
// error (an unknown flag or subcommand, a bad argument count, or an error
// that matches ErrUsage). A program with more outcomes marks an error with
// WithExitCode (3 and above). Errors are printed once, as
// "program: message".
package cli
