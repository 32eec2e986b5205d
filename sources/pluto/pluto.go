// Package pluto generates the Kubernetes settings of an EC2 instance that
// the user left unset, as upstream's agent of the same name does: a node's
// IP address, provider ID, name, pod capacity and cluster DNS address
// depend on the instance, so user data written before launch cannot hold
// them, yet kubelet needs them to join an EKS-style cluster (the AWS cloud
// integrations find a node by its provider ID and name). pluto reads them
// from the instance metadata service (IMDSv2, the client of package
// userdata) once per boot, after sundog and before settings-applier, and
// PATCHes them into the launch transaction, so the first rendering of
// kubelet's configuration has them. A setting with a value, live or in the
// transaction, is never changed. See docs/kubernetes.md.
package pluto

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/petrel-os/petrel/sources/generator"
	"github.com/petrel-os/petrel/sources/settings"
)

// Metadata reads one IMDS item below /latest/meta-data/;
// *userdata.IMDSProvider satisfies it.
type Metadata interface {
	Metadata(ctx context.Context, item string) (string, error)
}

// Config configures Run.
type Config struct {
	API         generator.API
	IMDS        Metadata
	Transaction string
	// OnEC2 reports whether this machine is an EC2 instance; off EC2
	// nothing is generated and IMDS is not asked. Nil means it is.
	OnEC2 func() bool
}

// Setting is one generated value and where it came from.
type Setting struct {
	Key   string // below settings.kubernetes, e.g. "node-ip"
	Value any
	From  string // e.g. "IMDS local-ipv4"
}

// Result says what Run did.
type Result struct {
	Generated []Setting
	Kept      []string  // keys that already had a value
	Skipped   []Setting // keys left unset; From says why
	NotEC2    bool      // not an EC2 instance: nothing generated
}

// Keys are the settings below settings.kubernetes that pluto generates,
// in the order it generates them.
var Keys = []string{"node-ip", "provider-id", "hostname-override", "max-pods", "cluster-dns-ip"}

// Hostname sources (settings.kubernetes.hostname-override-source).
const (
	SourcePrivateDNSName = "private-dns-name"
	SourceInstanceID     = "instance-id"
	// DefaultHostnameSource is used when the setting is unset.
	DefaultHostnameSource = SourcePrivateDNSName
)

// Cluster DNS addresses, as EKS's own node bootstrap chooses them: the
// tenth address of the default service range, 172.20.0.0/16 when the
// VPC uses 10.0.0.0/8 (so the ranges do not overlap), else 10.100.0.0/16.
const (
	ClusterDNSDefault = "10.100.0.10"
	ClusterDNSInTen   = "172.20.0.10"
)

// ErrIMDS is matched by the errors of a failed IMDS read.
var ErrIMDS = errors.New("instance metadata unavailable")

// Run generates every setting of Keys that has no value and stores the
// generated ones in cfg.Transaction with one PATCH.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	live, pending, populated, err := generator.Current(ctx, cfg.API, cfg.Transaction)
	if err != nil {
		return res, err
	}
	var missing []string
	for _, k := range Keys {
		if generator.IsPopulated(populated, "settings.kubernetes."+k) {
			res.Kept = append(res.Kept, k)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return res, nil
	}
	if cfg.OnEC2 != nil && !cfg.OnEC2() {
		res.NotEC2 = true
		return res, nil
	}
	g := &gen{ctx: ctx, imds: cfg.IMDS, cache: map[string]string{}}
	setting := func(k string) string { // a string setting's value, staged or live
		for _, m := range []map[string]any{pending, live} {
			if k8s, ok := m["kubernetes"].(map[string]any); ok {
				if s, ok := k8s[k].(string); ok {
					return s
				}
			}
		}
		return ""
	}
	out := map[string]any{}
	for _, k := range missing {
		var s Setting
		var err error
		switch k {
		case "node-ip":
			s, err = g.nodeIP()
		case "provider-id":
			s, err = g.providerID()
		case "hostname-override":
			s, err = g.hostname(setting("hostname-override-source"))
		case "max-pods":
			s, err = g.maxPods()
		case "cluster-dns-ip":
			s, err = g.clusterDNS(setting("node-ip"))
		}
		if err != nil {
			return res, fmt.Errorf("generate settings.kubernetes.%s: %w", k, err)
		}
		s.Key = k
		if s.Value == nil {
			res.Skipped = append(res.Skipped, s)
			continue
		}
		out[k] = s.Value
		res.Generated = append(res.Generated, s)
	}
	if len(out) == 0 {
		return res, nil
	}
	patch := map[string]any{"kubernetes": out}
	if err := settings.Validate(patch); err != nil {
		return res, fmt.Errorf("check generated settings: %w", err)
	}
	if err := cfg.API.Set(ctx, cfg.Transaction, patch); err != nil {
		return res, fmt.Errorf("store generated settings in transaction %q: %w", cfg.Transaction, err)
	}
	return res, nil
}

// gen reads IMDS items once each.
type gen struct {
	ctx   context.Context
	imds  Metadata
	cache map[string]string
}

func (g *gen) md(item string) (string, error) {
	if v, ok := g.cache[item]; ok {
		return v, nil
	}
	v, err := g.imds.Metadata(g.ctx, item)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrIMDS, err)
	}
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("%w: IMDS answered an empty %s", ErrIMDS, item)
	}
	g.cache[item] = v
	return v, nil
}

func (g *gen) nodeIP() (Setting, error) {
	ip, err := g.md("local-ipv4")
	return Setting{Value: ip, From: "IMDS local-ipv4"}, err
}

func (g *gen) providerID() (Setting, error) {
	zone, err := g.md("placement/availability-zone")
	if err != nil {
		return Setting{}, err
	}
	id, err := g.md("instance-id")
	return Setting{Value: "aws:///" + zone + "/" + id, From: "IMDS placement/availability-zone and instance-id"}, err
}

func (g *gen) hostname(source string) (Setting, error) {
	if source == "" {
		source = DefaultHostnameSource
	}
	switch source {
	case SourceInstanceID:
		id, err := g.md("instance-id")
		return Setting{Value: id, From: "IMDS instance-id; hostname-override-source instance-id"}, err
	case SourcePrivateDNSName:
		// With a DHCP option set of several domain names IMDS lists one
		// name per domain, separated by spaces; the first is the
		// instance's own.
		names, err := g.md("local-hostname")
		if err != nil {
			return Setting{}, err
		}
		return Setting{Value: strings.Fields(names)[0], From: "IMDS local-hostname; hostname-override-source private-dns-name"}, nil
	}
	return Setting{}, fmt.Errorf("unknown hostname-override-source %q (expected %s or %s)", source, SourcePrivateDNSName, SourceInstanceID)
}

func (g *gen) maxPods() (Setting, error) {
	typ, err := g.md("instance-type")
	if err != nil {
		return Setting{}, err
	}
	n, ok := MaxPods(typ)
	if !ok {
		return Setting{Value: n, From: fmt.Sprintf("default: instance type %s is not in the ENI table", typ)}, nil
	}
	return Setting{Value: n, From: fmt.Sprintf("ENI table: instance type %s", typ)}, nil
}

// clusterDNS derives the cluster DNS address from nodeIP (the user's
// setting) or else IMDS local-ipv4. An IPv6 node address gives none: the
// service range of an IPv6 cluster is not known without the EKS API.
func (g *gen) clusterDNS(nodeIP string) (Setting, error) {
	from := "settings.kubernetes.node-ip"
	if nodeIP == "" {
		var err error
		if nodeIP, err = g.md("local-ipv4"); err != nil {
			return Setting{}, err
		}
		from = "IMDS local-ipv4"
	}
	ip, err := netip.ParseAddr(nodeIP)
	if err != nil {
		return Setting{}, fmt.Errorf("parse node IP %q from %s: %w", nodeIP, from, err)
	}
	if !ip.Is4() {
		return Setting{From: fmt.Sprintf("node IP %s from %s is not IPv4; set it yourself", nodeIP, from)}, nil
	}
	if netip.MustParsePrefix("10.0.0.0/8").Contains(ip) {
		return Setting{Value: ClusterDNSInTen, From: fmt.Sprintf("node IP %s from %s is in 10.0.0.0/8", nodeIP, from)}, nil
	}
	return Setting{Value: ClusterDNSDefault, From: fmt.Sprintf("node IP %s from %s is outside 10.0.0.0/8", nodeIP, from)}, nil
}
