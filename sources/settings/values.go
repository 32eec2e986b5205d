package settings

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Value checks. Each returns "" when the value is fine, else what was
// expected.

func nonEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "expected a non-empty string"
	}
	return ""
}

// controlProblem refuses control characters (C0, DEL and C1), line
// breaks and tabs included: every string setting may end up in a
// configuration file, where a line break would start a new line, key or
// section.
func controlProblem(s string) string {
	for i, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			what := "a control character"
			switch r {
			case '\n', '\r':
				what = "a line break"
			case '\t':
				what = "a tab"
			}
			return fmt.Sprintf("expected text without control characters, got %s (U+%04X) at byte %d", what, r, i)
		}
	}
	return ""
}

// hostnameProblem checks an RFC 1123 host name.
func hostnameProblem(s string) string {
	if s == "" {
		return "expected an RFC 1123 host name, got an empty string"
	}
	if len(s) > 253 {
		return fmt.Sprintf("expected an RFC 1123 host name of at most 253 characters, got %d", len(s))
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if msg := labelProblem(label); msg != "" {
			return fmt.Sprintf("expected an RFC 1123 host name, got %q: %s", s, msg)
		}
	}
	return ""
}

func labelProblem(l string) string {
	switch {
	case l == "":
		return "empty label"
	case len(l) > 63:
		return fmt.Sprintf("label %q is longer than 63 characters", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Sprintf("label %q starts or ends with '-'", l)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("label %q has the character %q (allowed: letters, digits, '-')", l, c)
		}
	}
	return ""
}

// urlProblem checks an absolute http or https URL.
func urlProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Sprintf("expected an http or https URL, got %q", s)
	}
	return ""
}

// proxyProblem accepts a URL or a bare host[:port].
func proxyProblem(s string) string {
	if strings.Contains(s, "://") {
		return urlProblem(s)
	}
	return hostPortProblem(s)
}

func hostPortProblem(s string) string {
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	if hostnameProblem(host) != "" {
		return fmt.Sprintf("expected a URL, host name or IP address, got %q", s)
	}
	return ""
}

// noProxyProblem accepts a host, a domain suffix (".example.com"), an IP,
// a CIDR or "*".
func noProxyProblem(s string) string {
	if s == "*" {
		return ""
	}
	if _, _, err := net.ParseCIDR(s); err == nil {
		return ""
	}
	return hostPortProblem(strings.TrimPrefix(s, "."))
}

// timeServerProblem accepts a URL (ntp://, https://...) or a host name or IP.
func timeServerProblem(s string) string {
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return fmt.Sprintf("expected a URL or host name, got %q", s)
		}
		return ""
	}
	return hostPortProblem(s)
}

func base64Problem(s string) string {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return fmt.Sprintf("expected base64 (standard alphabet, padded): %v", err)
	}
	return ""
}

func ipProblem(s string) string {
	if net.ParseIP(s) == nil {
		return fmt.Sprintf("expected an IPv4 or IPv6 address, got %q", s)
	}
	return ""
}

var imageRefRE = regexp.MustCompile(`^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)

func imageRefProblem(s string) string {
	if !imageRefRE.MatchString(s) {
		return fmt.Sprintf("expected a container image reference like registry/name:tag, got %q", s)
	}
	return ""
}

// OCIArchivePrefix starts a container source that is an OCI archive (a tar
// of an OCI image layout) on the host instead of a registry reference.
const OCIArchivePrefix = "oci-archive:"

// containerSourceProblem checks a host or bootstrap container's source: an
// image reference, or oci-archive: and an absolute path.
func containerSourceProblem(s string) string {
	if path, ok := strings.CutPrefix(s, OCIArchivePrefix); ok {
		if !strings.HasPrefix(path, "/") || strings.Contains("/"+path+"/", "/../") {
			return fmt.Sprintf("expected oci-archive: followed by an absolute path without '..', got %q", s)
		}
		return ""
	}
	if !imageRefRE.MatchString(s) {
		return fmt.Sprintf("expected a container image reference like registry/name:tag or oci-archive:/path, got %q", s)
	}
	return ""
}

// registryHostProblem checks a registry host with an optional port, as
// image references name it ("docker.io", "10.0.2.100:5000").
func registryHostProblem(s string) string {
	if msg := hostPortProblem(s); msg != "" || strings.Contains(s, "/") {
		return fmt.Sprintf("expected a registry host like registry.example.com or 10.0.2.100:5000, got %q", s)
	}
	return ""
}

var versionLockRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

func versionLockProblem(s string) string {
	if s == "latest" || versionLockRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf(`expected "latest", "vX.Y.Z" or "X.Y.Z", got %q`, s)
}

func oneOf(choices ...string) func(string) string {
	return func(s string) string {
		for _, c := range choices {
			if s == c {
				return ""
			}
		}
		return fmt.Sprintf("expected one of %s, got %q", strings.Join(choices, ", "), s)
	}
}

var sysctlKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_*-]+([./][a-zA-Z0-9_*-]+)*$`)

func sysctlKeyProblem(s string) string {
	if !sysctlKeyRE.MatchString(s) {
		return fmt.Sprintf("expected a sysctl key like net.ipv4.ip_forward, got %q", s)
	}
	return ""
}

var paramNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

func paramNameProblem(s string) string {
	if !paramNameRE.MatchString(s) {
		return fmt.Sprintf("expected a parameter name of letters, digits, '_', '.', '-', got %q", s)
	}
	return ""
}

var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// containerNameProblem checks a host or bootstrap container name.
func containerNameProblem(s string) string {
	if !containerNameRE.MatchString(s) {
		return fmt.Sprintf("expected a name of letters, digits, '_' and '-' starting with a letter or digit, got %q", s)
	}
	return ""
}

var labelKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)

func labelKeyProblem(s string) string {
	if len(s) > 316 || !labelKeyRE.MatchString(s) {
		return fmt.Sprintf("expected a Kubernetes label key like example.com/name, got %q", s)
	}
	return ""
}

var labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)

func labelValueProblem(s string) string {
	if !labelValueRE.MatchString(s) {
		return fmt.Sprintf("expected a Kubernetes label value (at most 63 letters, digits, '-', '_', '.'), got %q", s)
	}
	return ""
}

var taintRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?:(NoSchedule|PreferNoSchedule|NoExecute)$`)

func taintProblem(s string) string {
	if !taintRE.MatchString(s) {
		return fmt.Sprintf("expected a taint value:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute, got %q", s)
	}
	return ""
}

var durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

func durationProblem(s string) string {
	if !durationRE.MatchString(s) {
		return fmt.Sprintf("expected a duration like 30s or 3h, got %q", s)
	}
	return ""
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func regionProblem(s string) string {
	if !regionRE.MatchString(s) {
		return fmt.Sprintf("expected an AWS region like us-west-2, got %q", s)
	}
	return ""
}
