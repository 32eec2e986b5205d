package pluto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
	"github.com/petrel-os/petrel/sources/userdata"
)

// fakeIMDS is an IMDSv2 server: a GET needs a token from PUT
// /latest/api/token with a TTL header, else 401.
type fakeIMDS struct {
	mu         sync.Mutex
	items      map[string]string // below /latest/meta-data/; missing answers 404
	tokenCode  int               // answer token requests with this status when set
	rejectOnce bool              // refuse the first valid token once (an expired session)
	tokens     map[string]bool
	log        []string // "PUT /latest/api/token", "GET instance-id token-1", ...
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		f.log = append(f.log, "PUT /latest/api/token")
		if f.tokenCode != 0 {
			http.Error(w, "no", f.tokenCode)
			return
		}
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		tok := "token-" + string(rune('0'+len(f.tokens)+1))
		f.tokens[tok] = true
		w.Write([]byte(tok))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/latest/meta-data/"):
		item := strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")
		tok := r.Header.Get("X-aws-ec2-metadata-token")
		f.log = append(f.log, "GET "+item+" "+tok)
		if !f.tokens[tok] || f.rejectOnce {
			f.rejectOnce = false
			delete(f.tokens, tok)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		v, ok := f.items[item]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(v + "\n"))
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
	}
}

func (f *fakeIMDS) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// ec2Items is the metadata of an m5.large in a 10.0.0.0/8 VPC.
func ec2Items() map[string]string {
	return map[string]string{
		"local-ipv4":                  "10.1.2.3",
		"instance-id":                 "i-0123456789abcdef0",
		"placement/availability-zone": "us-west-2b",
		"local-hostname":              "ip-10-1-2-3.us-west-2.compute.internal ip-10-1-2-3.corp.example",
		"instance-type":               "m5.large",
	}
}

// harness runs a real API server with the settings model and an IMDSv2
// server; set is staged in transaction "setup" and committed (the live
// settings), staged in the launch transaction "launch" (user data).
func harness(t *testing.T, f *fakeIMDS, live, staged map[string]any) (*apiclient.Client, Config) {
	t.Helper()
	sock := apitest.Serve(t, "1.0.0", func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Validator: settings.Validator{}, SocketGID: -1}
	})
	c := apiclient.New(sock)
	t.Cleanup(c.Close)
	ctx := context.Background()
	if live != nil {
		if err := c.Set(ctx, "setup", live); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Commit(ctx, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	if staged != nil {
		if err := c.Set(ctx, "launch", staged); err != nil {
			t.Fatal(err)
		}
	}
	if f.tokens == nil {
		f.tokens = map[string]bool{}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return c, Config{API: c, Transaction: "launch",
		IMDS: &userdata.IMDSProvider{BaseURL: srv.URL, Attempts: 2, Backoff: time.Millisecond}}
}

// staged returns settings.kubernetes of the launch transaction.
func staged(t *testing.T, c *apiclient.Client) map[string]any {
	t.Helper()
	data, err := c.Do(context.Background(), http.MethodGet, "/tx?tx=launch", nil)
	if err != nil {
		t.Fatal(err)
	}
	var tx map[string]any
	if err := json.Unmarshal(data, &tx); err != nil {
		t.Fatal(err)
	}
	k8s, _ := tx["kubernetes"].(map[string]any)
	return k8s
}

func TestRunGenerates(t *testing.T) {
	for _, tc := range []struct {
		name          string
		items         map[string]string // over ec2Items
		live, staged  map[string]any    // settings.kubernetes
		want          map[string]any    // settings.kubernetes of the launch transaction afterwards
		kept          []string
		skipped       []string
		notRequested  []string // IMDS items pluto must not read
		wantRequested []string
	}{
		{
			name: "all generated",
			want: map[string]any{"node-ip": "10.1.2.3", "provider-id": "aws:///us-west-2b/i-0123456789abcdef0",
				"hostname-override": "ip-10-1-2-3.us-west-2.compute.internal", "max-pods": float64(29), "cluster-dns-ip": "172.20.0.10"},
			wantRequested: []string{"local-ipv4", "placement/availability-zone", "instance-id", "local-hostname", "instance-type"},
		},
		{
			name:  "outside 10/8, unknown type, instance-id names the node",
			items: map[string]string{"local-ipv4": "192.168.7.9", "instance-type": "x9.huge"},
			live:  map[string]any{"hostname-override-source": "instance-id"},
			want: map[string]any{"node-ip": "192.168.7.9", "provider-id": "aws:///us-west-2b/i-0123456789abcdef0",
				"hostname-override": "i-0123456789abcdef0", "max-pods": float64(110), "cluster-dns-ip": "10.100.0.10"},
			notRequested: []string{"local-hostname"},
		},
		{
			name:   "user's values kept, live and staged",
			live:   map[string]any{"node-ip": "172.31.5.6", "provider-id": "aws:///mine/i-1"},
			staged: map[string]any{"max-pods": 17, "hostname-override": "node-a"},
			// cluster DNS from the user's node IP, not IMDS's.
			want:         map[string]any{"max-pods": float64(17), "hostname-override": "node-a", "cluster-dns-ip": "10.100.0.10"},
			kept:         []string{"node-ip", "provider-id", "hostname-override", "max-pods"},
			notRequested: []string{"local-ipv4", "instance-id", "local-hostname", "instance-type", "placement/availability-zone"},
		},
		{
			name:   "user's IPv6 node address: no cluster DNS",
			staged: map[string]any{"node-ip": "fd00::5"},
			want: map[string]any{"node-ip": "fd00::5", "provider-id": "aws:///us-west-2b/i-0123456789abcdef0",
				"hostname-override": "ip-10-1-2-3.us-west-2.compute.internal", "max-pods": float64(29)},
			kept:         []string{"node-ip"},
			skipped:      []string{"cluster-dns-ip"},
			notRequested: []string{"local-ipv4"},
		},
		{
			name:         "user's node address in 10/8 (live: not in the transaction)",
			live:         map[string]any{"node-ip": "10.9.8.7"},
			want:         map[string]any{"provider-id": "aws:///us-west-2b/i-0123456789abcdef0", "hostname-override": "ip-10-1-2-3.us-west-2.compute.internal", "max-pods": float64(29), "cluster-dns-ip": "172.20.0.10"},
			kept:         []string{"node-ip"},
			notRequested: []string{"local-ipv4"},
		},
		{
			name:         "everything set: IMDS not asked",
			staged:       map[string]any{"node-ip": "10.0.0.1", "provider-id": "p", "hostname-override": "h", "max-pods": 5, "cluster-dns-ip": []any{"10.0.0.2"}},
			want:         map[string]any{"node-ip": "10.0.0.1", "provider-id": "p", "hostname-override": "h", "max-pods": float64(5), "cluster-dns-ip": []any{"10.0.0.2"}},
			kept:         Keys,
			notRequested: []string{"PUT"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIMDS{items: ec2Items()}
			for k, v := range tc.items {
				f.items[k] = v
			}
			wrap := func(m map[string]any) map[string]any {
				if m == nil {
					return nil
				}
				return map[string]any{"kubernetes": m}
			}
			c, cfg := harness(t, f, wrap(tc.live), wrap(tc.staged))
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v\nIMDS saw %q", err, f.requests())
			}
			got := staged(t, c)
			for _, k := range Keys {
				if v := tc.want[k]; !reflect.DeepEqual(got[k], v) {
					t.Errorf("launch transaction kubernetes.%s = %#v, want %#v", k, got[k], v)
				}
			}
			if !reflect.DeepEqual(res.Kept, tc.kept) {
				t.Errorf("Kept = %q, want %q", res.Kept, tc.kept)
			}
			if len(res.Generated)+len(res.Kept)+len(res.Skipped) != len(Keys) {
				t.Errorf("generated %+v, kept %q, skipped %+v: not all of %q", res.Generated, res.Kept, res.Skipped, Keys)
			}
			var skipped []string
			for _, s := range res.Skipped {
				skipped = append(skipped, s.Key)
			}
			if !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("Skipped = %+v, want keys %q", res.Skipped, tc.skipped)
			}
			reqs := strings.Join(f.requests(), "\n")
			for _, item := range tc.notRequested {
				if strings.Contains(reqs, item) {
					t.Errorf("IMDS was asked for %s:\n%s", item, reqs)
				}
			}
			for _, item := range tc.wantRequested {
				if !strings.Contains(reqs, "GET "+item+" token-1") {
					t.Errorf("IMDS was not asked for %s with the session token:\n%s", item, reqs)
				}
			}
		})
	}
}

// The token flow: one session token serves every read; a token the
// service refuses (expired) is replaced once.
func TestRunTokenFlow(t *testing.T) {
	f := &fakeIMDS{items: ec2Items(), rejectOnce: true}
	_, cfg := harness(t, f, nil, nil)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	want := []string{"PUT /latest/api/token", "GET local-ipv4 token-1", "PUT /latest/api/token", "GET local-ipv4 token-1"}
	if len(reqs) < 5 || !reflect.DeepEqual(reqs[:4], want) {
		t.Fatalf("IMDS requests = %q, want them to start %q", reqs, want)
	}
	for _, r := range reqs[4:] {
		if r == "PUT /latest/api/token" || !strings.HasSuffix(r, " token-1") {
			t.Errorf("after the refresh IMDS saw %q; want every read with the one session token (all: %q)", r, reqs)
		}
	}
}

func TestRunFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeIMDS)
		down  bool // IMDS unreachable
		want  []string
		is    []error
	}{
		{"unreachable", nil, true,
			[]string{"generate settings.kubernetes.node-ip: instance metadata unavailable: read IMDS /latest/meta-data/local-ipv4: gave up after 2 attempts: PUT /latest/api/token:", "connection refused"},
			[]error{ErrIMDS}},
		{"token refused", func(f *fakeIMDS) { f.tokenCode = http.StatusForbidden }, false,
			[]string{"generate settings.kubernetes.node-ip: instance metadata unavailable: PUT /latest/api/token: status 403"}, []error{ErrIMDS}},
		{"item missing", func(f *fakeIMDS) { delete(f.items, "placement/availability-zone") }, false,
			[]string{"generate settings.kubernetes.provider-id: instance metadata unavailable: read IMDS /latest/meta-data/placement/availability-zone: IMDS has no such item"},
			[]error{ErrIMDS, userdata.ErrNoMetadata}},
		{"empty answer", func(f *fakeIMDS) { f.items["instance-id"] = " " }, false,
			[]string{"generate settings.kubernetes.provider-id: instance metadata unavailable: IMDS answered an empty instance-id"}, []error{ErrIMDS}},
		{"address that is not one", func(f *fakeIMDS) { f.items["local-ipv4"] = "not-an-ip" }, false,
			[]string{`generate settings.kubernetes.cluster-dns-ip: parse node IP "not-an-ip" from IMDS local-ipv4`}, nil},
		{"answer the model refuses", func(f *fakeIMDS) { f.items["local-hostname"] = "-bad-" }, false,
			[]string{"check generated settings:", "settings.kubernetes.hostname-override: expected an RFC 1123 host name"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIMDS{items: ec2Items()}
			if tc.setup != nil {
				tc.setup(f)
			}
			c, cfg := harness(t, f, nil, nil)
			if tc.down {
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				cfg.IMDS = &userdata.IMDSProvider{BaseURL: srv.URL, Attempts: 2, Backoff: time.Millisecond}
			}
			_, err := Run(context.Background(), cfg)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %v", err, target)
				}
			}
			if got := staged(t, c); len(got) != 0 {
				t.Errorf("a failed run staged %v", got)
			}
		})
	}
}

func TestRunOffEC2(t *testing.T) {
	f := &fakeIMDS{items: ec2Items()}
	c, cfg := harness(t, f, nil, nil)
	cfg.OnEC2 = func() bool { return false }
	res, err := Run(context.Background(), cfg)
	if err != nil || !res.NotEC2 || len(res.Generated) != 0 {
		t.Fatalf("Run off EC2 = %+v, %v; want NotEC2 and nothing generated", res, err)
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("IMDS was asked off EC2: %q", reqs)
	}
	if got := staged(t, c); len(got) != 0 {
		t.Errorf("staged %v off EC2", got)
	}
	var out bytes.Buffer
	if err := report(&out, res); err != nil || !strings.Contains(out.String(), "not an EC2 instance") {
		t.Errorf("report = %q, %v", out.String(), err)
	}
}

func TestMaxPods(t *testing.T) {
	for typ, want := range map[string]int{
		// EKS's eni-max-pods table.
		"t3.micro": 4, "t3.small": 11, "t3a.small": 8, "t3.medium": 17, "t3.large": 35, "t3.xlarge": 58,
		"m5.large": 29, "m5.4xlarge": 234, "m5.24xlarge": 737, "c5.9xlarge": 234, "c5.18xlarge": 737, "r5a.16xlarge": 737,
	} {
		if got, ok := MaxPods(typ); got != want || !ok {
			t.Errorf("MaxPods(%q) = %d, %v; want %d, true", typ, got, ok, want)
		}
	}
	for _, typ := range []string{"c5.8xlarge", "m5.metal", "", "nope"} {
		if got, ok := MaxPods(typ); got != DefaultMaxPods || ok {
			t.Errorf("MaxPods(%q) = %d, %v; want %d, false", typ, got, ok, DefaultMaxPods)
		}
	}
}

func TestReport(t *testing.T) {
	var out bytes.Buffer
	res := Result{Generated: []Setting{{Key: "max-pods", Value: 29, From: "ENI table: instance type m5.large"}},
		Skipped: []Setting{{Key: "cluster-dns-ip", From: "node IP fd00::1 from settings.kubernetes.node-ip is not IPv4; set it yourself"}},
		Kept:    []string{"node-ip"}}
	if err := report(&out, res); err != nil {
		t.Fatal(err)
	}
	want := "settings.kubernetes.max-pods = 29 (ENI table: instance type m5.large)\n" +
		"settings.kubernetes.cluster-dns-ip left unset: node IP fd00::1 from settings.kubernetes.node-ip is not IPv4; set it yourself\n" +
		"generated 1 Kubernetes settings, 1 already set\n"
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	testkit.CheckMain(t, testkit.NoStdin(Main), []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--imds-url"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "pluto: unknown flag: --bogus"},
		{Name: "argument", Args: []string{"extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "no API", Args: []string{"--socket-path", missing}, Code: 1, Err: "none.sock"},
	})
}
