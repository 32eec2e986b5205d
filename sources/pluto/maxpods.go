package pluto

// DefaultMaxPods is the max-pods of an instance type not in the table:
// kubelet's own default, which upstream's variants also use off EC2.
const DefaultMaxPods = 110

// eni is what limits the pods of an instance type with the VPC CNI: the
// network interfaces it can attach and the IPv4 addresses of each.
type eni struct{ interfaces, addrs int }

// eniLimits holds the ENI limits of common x86_64 instance types (the
// only architecture of aws-k8s-1.37), as EC2 documents them. Upstream
// ships a generated file of every type; a short table keeps this one
// checkable by hand, and an instance type missing from it gets
// DefaultMaxPods.
var eniLimits = func() map[string]eni {
	m := map[string]eni{
		"t3.nano": {2, 2}, "t3.micro": {2, 2}, "t3.small": {3, 4}, "t3.medium": {3, 6},
		"t3.large": {3, 12}, "t3.xlarge": {4, 15}, "t3.2xlarge": {4, 15},
		"t3a.nano": {2, 2}, "t3a.micro": {2, 2}, "t3a.small": {2, 4}, "t3a.medium": {3, 6},
		"t3a.large": {3, 12}, "t3a.xlarge": {4, 15}, "t3a.2xlarge": {4, 15},
	}
	// The general purpose, compute and memory families of the fifth to
	// seventh generations share their limits size by size.
	sizes := map[string]eni{
		"large": {3, 10}, "xlarge": {4, 15}, "2xlarge": {4, 15}, "4xlarge": {8, 30},
		"8xlarge": {8, 30}, "12xlarge": {8, 30}, "16xlarge": {15, 50}, "24xlarge": {15, 50},
	}
	for _, family := range []string{"m5", "m5a", "c5", "r5", "r5a", "m6i", "c6i", "r6i", "m6a", "m7i", "c7i", "r7i"} {
		for size, l := range sizes {
			m[family+"."+size] = l
		}
	}
	// c5 has 9xlarge and 18xlarge instead of 8xlarge and 16xlarge.
	for _, s := range []string{"8xlarge", "16xlarge"} {
		delete(m, "c5."+s)
	}
	m["c5.9xlarge"], m["c5.18xlarge"] = eni{8, 30}, eni{15, 50}
	return m
}()

// MaxPods returns the pods an instance type can run with the VPC CNI,
// upstream's formula: interfaces × (addresses per interface − 1) + 2 (each
// interface's primary address is the node's own; host-network pods such
// as the CNI's and kube-proxy's need none). ok is false for a type not in
// the table; n is then DefaultMaxPods.
func MaxPods(instanceType string) (n int, ok bool) {
	l, ok := eniLimits[instanceType]
	if !ok {
		return DefaultMaxPods, false
	}
	return l.interfaces*(l.addrs-1) + 2, true
}
