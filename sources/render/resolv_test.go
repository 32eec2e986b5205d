package render

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestResolverFor: settings.dns wins over DHCP, field by field; DHCP's
// servers and domains come from networkd's link state files, in link
// index order, without repeats.
func TestResolverFor(t *testing.T) {
	links := t.TempDir()
	testkit.WriteFiles(t, links, map[string]string{
		"1": "# This is private data. Do not parse.\nADMIN_STATE=unmanaged\n",
		"2": "ADMIN_STATE=configured\nOPER_STATE=routable\nDNS=10.0.2.3 10.0.2.4\nNTP=\nDOMAINS=example.internal\n",
		// As systemd 252's networkd wrote it in a QEMU guest whose network
		// gives no name server.
		"3": "# This is private data. Do not parse.\nADMIN_STATE=configured\nOPER_STATE=routable\nONLINE_STATE=online\n" +
			"NETWORK_FILE=/usr/lib/systemd/network/80-petrel.network\nDNS=\nNTP=\nSIP=\nDOMAINS=\nROUTE_DOMAINS=\nLLMNR=yes\n" +
			"DHCP_LEASE=/run/systemd/netif/leases/3\n",
		"10": "DNS=10.0.2.4 192.0.2.53#dns.example\nDOMAINS=\n",
	})
	for _, tc := range []struct {
		name  string
		dns   map[string]any
		links string
		want  Resolver
	}{
		{"DHCP", nil, links, Resolver{NameServers: []string{"10.0.2.3", "10.0.2.4", "192.0.2.53#dns.example"}, Search: []string{"example.internal"}}},
		{"settings", map[string]any{"name-servers": []any{"192.0.2.1"}, "search-list": []any{"a.example"}}, links,
			Resolver{NameServers: []string{"192.0.2.1"}, Search: []string{"a.example"}}},
		{"servers from settings, search from DHCP", map[string]any{"name-servers": []any{"192.0.2.1"}}, links,
			Resolver{NameServers: []string{"192.0.2.1"}, Search: []string{"example.internal"}}},
		{"no networkd", nil, filepath.Join(links, "none"), Resolver{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolverFor(tc.dns, tc.links)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ResolverFor = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWriteResolvConf(t *testing.T) {
	file := filepath.Join(t.TempDir(), "etc", "resolv.conf")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := Resolver{NameServers: []string{"10.0.2.3", "192.0.2.53#dns.example"}, Search: []string{"example.internal"}}
	for i, wantOut := range []string{"petrel: resolv.conf nameservers 10.0.2.3 192.0.2.53#dns.example\n", ""} {
		var out bytes.Buffer
		if err := WriteResolvConf(file, r, &out, log); err != nil {
			t.Fatal(err)
		}
		if out.String() != wantOut {
			t.Errorf("write %d printed %q, want %q", i, out.String(), wantOut)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "# The host's resolver, from settings.dns or else DHCP (settings-applier write-resolv-conf).\nnameserver 10.0.2.3\nnameserver 192.0.2.53\nsearch example.internal\n"
	if string(data) != want {
		t.Errorf("resolv.conf = %q, want %q", data, want)
	}
}
