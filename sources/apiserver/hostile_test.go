package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/settings"
)

// hostileBodies are the worst PATCH /settings bodies known, each under
// the 1 MiB body limit.
func hostileBodies() []struct {
	name string
	body []byte
} {
	nested := func(open, close string, depth int, inner string) []byte {
		return []byte(`{"motd":` + strings.Repeat(open, depth) + inner + strings.Repeat(close, depth) + `}`)
	}
	sysctl := func(n int, name string) []byte {
		var b bytes.Buffer
		b.WriteString(`{"kernel":{"sysctl":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"`+name+`":"1"`, i)
		}
		b.WriteString(`}}}`)
		return b.Bytes()
	}
	return []struct {
		name string
		body []byte
	}{
		{"nested-objects-9990", nested(`{"a":`, `}`, 9990, `1`)},
		{"nested-lists-9990", nested(`[`, `]`, 9990, `1`)},
		{"keys-40000", sysctl(40000, "k%05d")},
		{"key-1MB", []byte(`{"` + strings.Repeat("a", 1<<20-16) + `":1}`)},
		{"sysctl-10000", sysctl(10000, "net.k%05d")},
	}
}

// hostileServer starts a server with the shipped body limit and the
// settings model, and returns a client of it.
func hostileServer(tb testing.TB) *apiclient.Client {
	return startServerWith(tb, 0o600, func(c *Config) {
		c.Validator = settings.Validator{}
		c.MaxBodyBytes = 0 // api.MaxBodyBytes
	}).client
}

// TestHostileInput checks the answer to each hostile body: the limit it
// crosses is named, with 413 for too many settings and 400 otherwise.
func TestHostileInput(t *testing.T) {
	c := hostileServer(t)
	want := map[string]struct {
		code int
		msg  string
	}{
		"nested-objects-9990": {400, "Request body over a limit: nesting depth over the limit of 32 at byte "},
		"nested-lists-9990":   {400, "Request body over a limit: nesting depth over the limit of 32 at byte "},
		"keys-40000":          {413, "Request body holds too many settings: number of settings over the limit of 10000 at byte "},
		"key-1MB":             {400, "Request body over a limit: name length over the limit of 255 at byte "},
	}
	for _, hb := range hostileBodies() {
		if _, ok := want[hb.name]; !ok {
			continue // accepted; its cost is the datastore's (BenchmarkHostile)
		}
		t.Run(hb.name, func(t *testing.T) {
			code, body, err := c.Raw(context.Background(), http.MethodPatch, "/settings?tx=hostile", hb.body)
			if err != nil {
				t.Fatal(err)
			}
			w := want[hb.name]
			if code != w.code || !strings.HasPrefix(string(body), w.msg) {
				t.Errorf("PATCH %s = %d %.200q, want %d %q", hb.name, code, body, w.code, w.msg)
			}
		})
	}
	pairs := make([]string, settings.MaxKeys+1)
	for i := range pairs {
		pairs[i] = fmt.Sprintf("kernel.sysctl.k%d=1", i)
	}
	body, _ := json.Marshal(api.KeyPairRequest{RequestPayload: pairs})
	code, resp, err := c.Raw(context.Background(), http.MethodPatch, "/settings/keypair?tx=hostile", body)
	if err != nil || code != 413 || !strings.Contains(string(resp), "10001 key pairs over the limit of 10000") {
		t.Errorf("PATCH /settings/keypair with %d pairs = %d %q, %v; want 413 naming the limit", len(pairs), code, resp, err)
	}
}

// BenchmarkHostile sends each hostile body to a server wired like the
// shipped one and deletes the transaction afterwards. Run one body with
// -benchtime=1x under /usr/bin/time -v for its peak memory.
func BenchmarkHostile(b *testing.B) {
	for _, hb := range hostileBodies() {
		b.Run(hb.name, func(b *testing.B) {
			c := hostileServer(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(hb.body)))
			b.ResetTimer()
			for range b.N {
				code, resp, err := c.Raw(ctx, http.MethodPatch, "/settings?tx=hostile", hb.body)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if b.N == 1 {
					b.Logf("%s: %d %.200s", hb.name, code, resp)
				}
				c.Raw(ctx, http.MethodDelete, "/tx?tx=hostile", nil)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPatchPath measures what the server does with the largest PATCH
// body it accepts (10,000 sysctl settings) before the datastore: decode,
// check against the model, flatten to keys.
func BenchmarkPatchPath(b *testing.B) {
	var body []byte
	for _, hb := range hostileBodies() {
		if hb.name == "sysctl-10000" {
			body = hb.body
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := settings.DecodeJSON(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if err := (settings.Validator{}).Validate(doc); err != nil {
			b.Fatal(err)
		}
		if kvs, err := settings.Flatten([]string{settingsSection}, doc); err != nil || len(kvs) != settings.MaxKeys {
			b.Fatalf("Flatten: %d keys, %v", len(kvs), err)
		}
	}
}
