package settings

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kubernetesModel is settings.kubernetes: upstream's Kubernetes settings
// (KubernetesSettingsV1), so that user data written for upstream's
// Kubernetes variants is accepted. docs/kubernetes.md says which keys the
// kubelet configuration uses.
func kubernetesModel() object {
	var (
		name       = str{valid: nonEmpty}
		b64        = str{valid: base64Problem}
		boolS      = boolean{}
		u32        = integer{min: 0, max: math.MaxUint32}
		i32        = integer{min: 0, max: math.MaxInt32}
		percent    = integer{min: 0, max: 100}
		duration   = str{valid: durationProblem}
		quantities = mapOf{key: paramNameProblem, elem: str{valid: quantityProblem}}
	)
	return object{
		// The cluster and how the node joins it.
		"api-server":                str{valid: urlProblem},
		"cluster-certificate":       b64,
		"cluster-name":              name,
		"cluster-dns-ip":            oneOrList{elem: str{valid: ipProblem}},
		"cluster-domain":            str{valid: hostnameProblem},
		"authentication-mode":       str{valid: oneOf("aws", "tls")},
		"bootstrap-token":           str{valid: bootstrapTokenProblem},
		"server-tls-bootstrap":      boolS,
		"server-certificate":        b64,
		"server-key":                b64,
		"cloud-provider":            str{valid: oneOf("aws", "external", "")},
		"credential-providers":      mapOf{key: containerNameProblem, elem: credentialProvider()},
		"standalone-mode":           boolS,
		"static-pods":               mapOf{key: staticPodNameProblem, elem: object{"enabled": boolS, "manifest": str{valid: podManifestProblem}}},
		"provider-id":               name,
		"hostname-override":         str{valid: hostnameProblem},
		"hostname-override-source":  str{valid: oneOf("private-dns-name", "instance-id")},
		"node-ip":                   str{valid: ipProblem},
		"node-labels":               mapOf{key: labelKeyProblem, elem: str{valid: labelValueProblem}},
		"node-taints":               mapOf{key: labelKeyProblem, elem: oneOrList{elem: str{valid: taintProblem}}},
		"pod-infra-container-image": str{valid: imageRefProblem},

		// kubelet's configuration.
		"max-pods":                                u32,
		"eviction-hard":                           quantities,
		"eviction-soft":                           quantities,
		"eviction-soft-grace-period":              mapOf{key: paramNameProblem, elem: duration},
		"eviction-max-pod-grace-period":           i32,
		"kube-reserved":                           quantities,
		"system-reserved":                         quantities,
		"allowed-unsafe-sysctls":                  list{elem: str{valid: sysctlKeyProblem}},
		"registry-qps":                            i32,
		"registry-burst":                          i32,
		"event-qps":                               i32,
		"event-burst":                             i32,
		"kube-api-qps":                            i32,
		"kube-api-burst":                          i32,
		"container-log-max-size":                  str{valid: quantityProblem},
		"container-log-max-files":                 integer{min: 2, max: math.MaxInt32},
		"container-log-max-workers":               integer{min: 1, max: math.MaxInt32},
		"container-log-monitor-interval":          duration,
		"cpu-cfs-quota-enforced":                  boolS,
		"cpu-manager-policy":                      str{valid: oneOf("none", "static")},
		"cpu-manager-policy-options":              list{elem: str{valid: oneOf("full-pcpus-only", "distribute-cpus-across-numa", "align-by-socket", "strict-cpu-reservation", "prefer-align-cpus-by-uncorecache")}},
		"cpu-manager-reconcile-period":            duration,
		"topology-manager-scope":                  str{valid: oneOf("container", "pod")},
		"topology-manager-policy":                 str{valid: oneOf("none", "restricted", "best-effort", "single-numa-node")},
		"memory-manager-policy":                   str{valid: oneOf("None", "Static")},
		"memory-manager-reserved-memory":          mapOf{key: numaNodeProblem, elem: object{"enabled": boolS, "memory": str{valid: quantityProblem}, "hugepages-1Gi": str{valid: quantityProblem}, "hugepages-2Mi": str{valid: quantityProblem}}},
		"reserved-cpus":                           str{valid: cpuSetProblem},
		"pod-pids-limit":                          integer{min: -1, max: 4194304}, // -1: unlimited; the kernel's largest pid_max
		"image-gc-high-threshold-percent":         percent,
		"image-gc-low-threshold-percent":          percent,
		"image-maximum-gc-age":                    duration,
		"max-parallel-image-pulls":                integer{min: 1, max: math.MaxInt32},
		"log-level":                               integer{min: 0, max: 10},
		"shutdown-grace-period":                   duration,
		"shutdown-grace-period-for-critical-pods": duration,
		"seccomp-default":                         boolS,
		"device-ownership-from-security-context":  boolS,
		"single-process-oom-kill":                 boolS,
	}
}

// credentialProvider is one settings.kubernetes.credential-providers
// entry (kubelet's image credential provider plugins).
func credentialProvider() object {
	return object{
		"enabled":        boolean{},
		"cache-duration": str{valid: durationProblem},
		"image-patterns": list{elem: str{valid: nonEmpty}},
		"environment":    mapOf{key: envNameProblem, elem: str{}},
	}
}

// dnsModel is settings.dns: the host's resolver, /etc/resolv.conf.
func dnsModel() object {
	return object{
		"name-servers": list{elem: str{valid: ipProblem}},
		"search-list":  list{elem: str{valid: hostnameProblem}},
	}
}

// containerRegistryModel is settings.container-registry: mirrors and
// credentials of registries for containerd's CRI. Mirrors take upstream's
// two forms: a list of {registry, endpoint} tables, or a table of registry
// → endpoints.
func containerRegistryModel() object {
	endpoints := list{elem: str{valid: urlProblem}}
	return object{
		"mirrors": either{
			table: mapOf{key: registryNameProblem, elem: endpoints},
			list:  list{elem: object{"registry": str{valid: registryNameProblem}, "endpoint": endpoints}},
		},
		"credentials": list{elem: object{
			"registry":      str{valid: registryNameProblem},
			"username":      str{},
			"password":      str{},
			"auth":          str{valid: base64Problem},
			"identitytoken": str{},
		}},
		// Petrel's: registries host-ctr pulls from over plain HTTP.
		"insecure-registries": list{elem: str{valid: registryHostProblem}},
	}
}

// containerRuntimeModel is settings.container-runtime: options of
// containerd's CRI plugin.
func containerRuntimeModel() object {
	return object{
		"max-container-log-line-size": integer{min: -1, max: math.MaxInt32},
		"max-concurrent-downloads":    integer{min: 1, max: math.MaxInt32},
		"enable-unprivileged-ports":   boolean{},
		"enable-unprivileged-icmp":    boolean{},
	}
}

// either accepts a table checked by table or a list checked by list.
type either struct{ table, list schema }

func (e either) check(ps *problems, path []string, v any) {
	switch v.(type) {
	case []any, []string, []map[string]any:
		e.list.check(ps, path, v)
	case map[string]any:
		e.table.check(ps, path, v)
	default:
		ps.add(path, "expected a table or a list, got %s", typeName(v))
	}
}

// hostEntry is one settings.network.hosts entry: ["IP", ["alias", ...]],
// a line of /etc/hosts.
type hostEntry struct{}

func (hostEntry) check(ps *problems, path []string, v any) {
	items, ok := v.([]any)
	if !ok || len(items) != 2 {
		ps.add(path, `expected ["IP address", ["host name", ...]], got %s`, typeName(v))
		return
	}
	str{valid: ipProblem}.check(ps, with(path, "0"), items[0])
	list{elem: str{valid: hostnameProblem}}.check(ps, with(path, "1"), items[1])
}

var quantityRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?%?$`)

// quantityProblem checks a Kubernetes resource quantity ("100Mi", "0.5",
// "10%" for eviction thresholds).
func quantityProblem(s string) string {
	if !quantityRE.MatchString(s) {
		return fmt.Sprintf("expected a quantity like 100Mi, 0.5 or 10%%, got %q", s)
	}
	return ""
}

var bootstrapTokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// bootstrapTokenProblem checks a bootstrap token, "abcdef.0123456789abcdef".
func bootstrapTokenProblem(s string) string {
	if !bootstrapTokenRE.MatchString(s) {
		return "expected a bootstrap token of 6 and 16 lower-case letters or digits joined by '.'"
	}
	return ""
}

var staticPodNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// staticPodNameProblem checks a static pod's name, which names its
// manifest file.
func staticPodNameProblem(s string) string {
	if !staticPodNameRE.MatchString(s) {
		return fmt.Sprintf("expected a name of lower-case letters, digits and '-' (an RFC 1123 label), got %q", s)
	}
	return ""
}

// podManifestProblem checks a static pod manifest: base64 of a YAML (or
// JSON) document of a v1 Pod with a name. kubelet reads the directory
// as it changes, so a manifest it cannot read would only show in its log;
// refusing it here names the setting instead.
func podManifestProblem(s string) string {
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Sprintf("expected base64 (standard alphabet, padded) of a pod manifest: %v", err)
	}
	var pod struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return fmt.Sprintf("expected a pod manifest (YAML or JSON) once base64-decoded: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	switch {
	case pod.APIVersion != "v1" || pod.Kind != "Pod":
		return fmt.Sprintf(`expected a pod manifest with apiVersion "v1" and kind "Pod", got apiVersion %q and kind %q`, pod.APIVersion, pod.Kind)
	case staticPodNameProblem(pod.Metadata.Name) != "":
		return fmt.Sprintf("expected a pod manifest with metadata.name an RFC 1123 label, got %q", pod.Metadata.Name)
	}
	return ""
}

var registryNameRE = regexp.MustCompile(`^(\*|[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?)$`)

// registryNameProblem checks a registry host[:port], or "*" for all.
func registryNameProblem(s string) string {
	if !registryNameRE.MatchString(s) {
		return fmt.Sprintf(`expected a registry host[:port] or "*", got %q`, s)
	}
	return ""
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func envNameProblem(s string) string {
	if !envNameRE.MatchString(s) {
		return fmt.Sprintf("expected an environment variable name, got %q", s)
	}
	return ""
}

var numaNodeRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,3})$`)

func numaNodeProblem(s string) string {
	if !numaNodeRE.MatchString(s) {
		return fmt.Sprintf("expected a NUMA node number, got %q", s)
	}
	return ""
}

var cpuSetRE = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

// cpuSetProblem checks a Linux CPU list such as "0-3,8".
func cpuSetProblem(s string) string {
	if !cpuSetRE.MatchString(s) {
		return fmt.Sprintf("expected a CPU list like 0-3,8, got %q", s)
	}
	return ""
}

var moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// IsModuleName reports whether s is a kernel module name as the settings
// model accepts it (settings.kernel.modules): 1 to 64 letters, digits,
// '_' and '-'.
func IsModuleName(s string) bool { return moduleNameRE.MatchString(s) }

// moduleNameProblem checks a kernel module name (settings.kernel.modules).
func moduleNameProblem(s string) string {
	if !IsModuleName(s) {
		return fmt.Sprintf("expected a kernel module name of letters, digits, '_' and '-', got %q", s)
	}
	return ""
}
