package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/apiclient"
)

// DNSKey is the setting of the host's resolver: name-servers, search-list.
const DNSKey = "settings.dns"

// DefaultResolvConf is the resolver configuration of the host, which
// kubelet also gives to pods.
const DefaultResolvConf = "/etc/resolv.conf"

// DefaultNetworkLinks is where systemd-networkd keeps the state of each
// link, with the name servers and domains DHCP gave it (DNS=, DOMAINS=).
const DefaultNetworkLinks = "/run/systemd/netif/links"

// Resolver is what /etc/resolv.conf says.
type Resolver struct {
	NameServers []string
	Search      []string
}

// ResolverFor chooses the resolver: settings.dns (the value of DNSKey)
// where it is set, else what DHCP gave the links in linksDir, in the
// order of their index; as upstream, settings win over DHCP. A missing
// links directory means no DHCP data.
func ResolverFor(dns map[string]any, linksDir string) (Resolver, error) {
	r := Resolver{NameServers: stringList(dns["name-servers"]), Search: stringList(dns["search-list"])}
	if len(r.NameServers) > 0 && len(r.Search) > 0 {
		return r, nil
	}
	entries, err := os.ReadDir(linksDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("read network links: %w", err)
	}
	// Link files are named by index: numeric order, not name order.
	slices.SortFunc(entries, func(a, b os.DirEntry) int {
		if d := len(a.Name()) - len(b.Name()); d != 0 {
			return d
		}
		return strings.Compare(a.Name(), b.Name())
	})
	var servers, domains []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(linksDir, e.Name()))
		if err != nil {
			return r, fmt.Errorf("read network link state: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			switch {
			case !ok:
			case k == "DNS":
				servers = appendNew(servers, strings.Fields(v)...)
			case k == "DOMAINS":
				domains = appendNew(domains, strings.Fields(v)...)
			}
		}
	}
	if len(r.NameServers) == 0 {
		r.NameServers = servers
	}
	if len(r.Search) == 0 {
		r.Search = domains
	}
	return r, nil
}

// Render returns the resolv.conf text.
func (r Resolver) Render() []byte {
	var b bytes.Buffer
	b.WriteString("# The host's resolver, from settings.dns or else DHCP (settings-applier write-resolv-conf).\n")
	for _, s := range r.NameServers {
		// networkd writes a server with a port or interface as
		// "ADDR:PORT#NAME"; resolv.conf takes the address only.
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(r.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(r.Search, " "))
	}
	return b.Bytes()
}

// WriteResolvConf writes file for r when its content changes, and prints
// "petrel: resolv.conf nameservers A B" to out.
func WriteResolvConf(file string, r Resolver, out io.Writer, log *slog.Logger) error {
	data := r.Render()
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, data) {
		log.Debug("resolv.conf unchanged", "file", file)
		return nil
	}
	if err := writeAtomic(file, data, 0o644); err != nil {
		return fmt.Errorf("write resolver configuration: %w", err)
	}
	fmt.Fprintf(out, "petrel: resolv.conf nameservers %s\n", strings.Join(r.NameServers, " "))
	return nil
}

// resolvConfFromAPI reads DNSKey and writes file. With wait > 0 and no
// name server yet (none set, no DHCP lease), it polls the links each
// second for up to wait first: a state change of networkd starts it
// before the lease may have come, and a change while it runs would not
// start it again.
func resolvConfFromAPI(ctx context.Context, client *apiclient.Client, file, linksDir string, wait time.Duration, out io.Writer, log *slog.Logger) error {
	got, err := client.Get(ctx, DNSKey)
	if err != nil {
		return fmt.Errorf("read %s: %w", DNSKey, err)
	}
	dns, _ := lookup(map[string]any{"settings": got}, DNSKey).(map[string]any)
	deadline := time.Now().Add(wait)
	for {
		r, err := ResolverFor(dns, linksDir)
		if err != nil {
			return err
		}
		if len(r.NameServers) > 0 || !time.Now().Before(deadline) {
			return WriteResolvConf(file, r, out, log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func stringList(v any) []string {
	var out []string
	for _, e := range listOf(v) {
		if s, ok := e.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func appendNew(l []string, items ...string) []string {
	for _, s := range items {
		if !slices.Contains(l, s) {
			l = append(l, s)
		}
	}
	return l
}
