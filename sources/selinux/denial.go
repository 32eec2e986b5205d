package selinux

import "strings"

// DenialMarker is in every AVC denial line: the kernel's (through audit or
// the kernel log) and those of userspace object managers such as systemd,
// which libselinux formats the same way.
const DenialMarker = "avc:  denied"

// Denials returns the lines of log that report an AVC denial, in order.
func Denials(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, DenialMarker) {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}

// UndefinedMarker is in the kernel's lines about classes and permissions
// that it knows and the loaded policy does not define; with handleunknown
// deny they are denied to everyone.
const UndefinedMarker = "not defined in policy"

// Undefined returns the lines of log that name classes or permissions the
// policy does not define.
func Undefined(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "SELinux:") && strings.Contains(l, UndefinedMarker) {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}
