// Package generator is sundog: it fills settings that are still unset by
// running the commands named in their "setting-generator" metadata. A
// command line is split like a POSIX shell would (quotes and backslashes,
// no expansion) and run without a shell under a timeout. Exit 0: stdout is
// the setting's JSON value. Exit 2: skip the setting. Anything else fails
// the run. Results are validated and PATCHed into the launch transaction.
package generator
