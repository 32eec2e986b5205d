// Package spec parses the subset of the RPM spec-file format that Petrel
// packages use: the preamble tags, %package subpackages, Source and Patch
// tags, dependency lists and a small macro language (%global, %define,
// %{name}, %{?x}, %{!?x:...}, %bcond). Section bodies such as %build or
// %files are not interpreted; the parser only finds where they start.
package spec
