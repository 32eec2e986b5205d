package render

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
)

// Template helpers of the Kubernetes templates (upstream's kubernetes
// extension helpers and the shapes its settings take).

// listOf returns v as a list: a list as it is, a single value as a list
// of one, nil as an empty list (settings.kubernetes.cluster-dns-ip takes
// either form).
func listOf(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// nodeTaints turns settings.kubernetes.node-taints (key → "value:Effect"
// or a list of them) into kubelet's registerWithTaints entries, sorted by
// key, each with "key", "value" and "effect".
func nodeTaints(v any) ([]map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("node_taints: expected a table, got %T", v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []map[string]string
	for _, k := range keys {
		for _, t := range listOf(m[k]) {
			s, ok := t.(string)
			value, effect, found := strings.Cut(s, ":")
			if !ok || !found || effect == "" {
				return nil, fmt.Errorf("node_taints: taint %q: expected value:Effect, got %v", k, t)
			}
			out = append(out, map[string]string{"key": k, "value": value, "effect": effect})
		}
	}
	return out, nil
}

// kubeReserveMemory is upstream's kube_reserve_memory: the memory kubelet
// keeps for the node's own daemons given max-pods, 11 MiB per pod plus
// 255 MiB, as "NMi".
func kubeReserveMemory(maxPods any) (string, error) {
	n, ok := maxPods.(float64)
	if i, isInt := maxPods.(int); isInt {
		n, ok = float64(i), true
	}
	if !ok || n < 0 || n != math.Trunc(n) {
		return "", fmt.Errorf("kube_reserve_memory: expected a whole number of pods, got %v", maxPods)
	}
	return fmt.Sprintf("%dMi", int64(11*n+255)), nil
}

// kubeReserveCPU is upstream's kube_reserve_cpu for this host's CPUs.
func kubeReserveCPU() string { return reserveCPU(runtime.NumCPU()) }

// reserveCPU is the CPU kubelet keeps for the node's daemons given the
// number of cores (the GKE and EKS table upstream uses): 6% of the first
// core, 1% of the second, 0.5% of the third and fourth, 0.25% of each
// further one, in millicores.
func reserveCPU(cores int) string {
	milli := 0.0
	for c := 1; c <= cores; c++ {
		switch {
		case c == 1:
			milli += 60
		case c == 2:
			milli += 10
		case c <= 4:
			milli += 5
		default:
			milli += 2.5
		}
	}
	return fmt.Sprintf("%dm", int64(milli))
}

// registryMirrors turns settings.container-registry.mirrors, in either
// of upstream's forms (a list of {registry, endpoint} or a table of
// registry → endpoints), into registry → endpoints. Later entries for a
// registry add to earlier ones.
func registryMirrors(v any) (map[string][]any, error) {
	out := map[string][]any{}
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for reg, eps := range x {
			out[reg] = append(out[reg], listOf(eps)...)
		}
	case []any:
		for i, e := range x {
			m, ok := e.(map[string]any)
			reg, _ := m["registry"].(string)
			if !ok || reg == "" {
				return nil, fmt.Errorf("registry_mirrors: entry %d: expected a table with a registry, got %v", i, e)
			}
			out[reg] = append(out[reg], listOf(m["endpoint"])...)
		}
	default:
		return nil, fmt.Errorf("registry_mirrors: expected a table or a list, got %T", v)
	}
	return out, nil
}
