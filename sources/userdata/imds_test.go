package userdata

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIMDS speaks IMDSv2 on 127.0.0.1.
type fakeIMDS struct {
	mu        sync.Mutex
	userData  string // "" answers 404
	tokens    map[string]time.Time
	issued    int
	gets      int
	failFirst int // answer this many requests with 503 first
	ttls      []string
	n         int
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFirst > 0 {
		f.failFirst--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		secs, err := strconv.Atoi(ttl)
		if err != nil || secs < 1 || secs > 21600 {
			http.Error(w, "bad ttl", http.StatusBadRequest)
			return
		}
		f.ttls = append(f.ttls, ttl)
		f.n++
		tok := "tok-" + strconv.Itoa(f.n)
		f.tokens[tok] = time.Now().Add(time.Duration(secs) * time.Second)
		f.issued++
		w.Write([]byte(tok))
	case r.Method == http.MethodGet && r.URL.Path == "/latest/user-data":
		exp, ok := f.tokens[r.Header.Get("X-aws-ec2-metadata-token")]
		if !ok || time.Now().After(exp) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.gets++
		if f.userData == "" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(f.userData))
	default:
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}
}

func startIMDS(t *testing.T, f *fakeIMDS) string {
	t.Helper()
	f.tokens = map[string]time.Time{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestIMDSUserData(t *testing.T) {
	f := &fakeIMDS{userData: "[settings]\nmotd = \"from imds\"\n"}
	p := &IMDSProvider{BaseURL: startIMDS(t, f), Backoff: time.Millisecond}
	data, err := p.UserData(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(p.Name(), data)
	if err != nil || s["motd"] != "from imds" {
		t.Fatalf("parse: %v %v", s, err)
	}
	if f.issued != 1 || f.ttls[0] != "60" {
		t.Fatalf("issued %d tokens with ttls %v", f.issued, f.ttls)
	}
	// A second fetch reuses the valid token.
	if _, err := p.UserData(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.issued != 1 {
		t.Fatalf("token not reused: issued %d", f.issued)
	}
}

func TestIMDSWithoutTokenIs401(t *testing.T) {
	url := startIMDS(t, &fakeIMDS{userData: "x"})
	resp, err := http.Get(url + "/latest/user-data")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestIMDSTokenExpiryRefreshes(t *testing.T) {
	f := &fakeIMDS{userData: "[settings]\nmotd = \"x\"\n"}
	p := &IMDSProvider{BaseURL: startIMDS(t, f), Backoff: time.Millisecond}
	if _, err := p.UserData(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The service forgets the token (expired on its side) while the client
	// still thinks it valid: the 401 must trigger a new PUT.
	f.mu.Lock()
	for k := range f.tokens {
		f.tokens[k] = time.Now().Add(-time.Second)
	}
	f.mu.Unlock()
	if _, err := p.UserData(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.issued != 2 || f.gets != 2 {
		t.Fatalf("issued %d tokens, %d successful gets; want 2 and 2", f.issued, f.gets)
	}
}

func TestIMDSRetries(t *testing.T) {
	f := &fakeIMDS{userData: "[settings]\nmotd = \"x\"\n", failFirst: 3}
	p := &IMDSProvider{BaseURL: startIMDS(t, f), Backoff: time.Millisecond, Attempts: 5}
	if _, err := p.UserData(context.Background()); err != nil {
		t.Fatalf("retries did not recover: %v", err)
	}
	f2 := &fakeIMDS{userData: "x", failFirst: 100}
	p2 := &IMDSProvider{BaseURL: startIMDS(t, f2), Backoff: time.Millisecond, Attempts: 3}
	_, err := p2.UserData(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("err = %v", err)
	}
	// Nothing listening: connection errors are retried, then reported.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p3 := &IMDSProvider{BaseURL: "http://" + addr, Backoff: time.Millisecond, Attempts: 2}
	if _, err := p3.UserData(context.Background()); err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
}

func TestIMDSNoUserData(t *testing.T) {
	p := &IMDSProvider{BaseURL: startIMDS(t, &fakeIMDS{}), Backoff: time.Millisecond}
	data, err := p.UserData(context.Background())
	if err != nil || data != nil {
		t.Fatalf("got %q, %v; want nil, nil", data, err)
	}
}

// TestIMDSOffEC2 checks that the provider sends nothing off EC2.
func TestIMDSOffEC2(t *testing.T) {
	f := &fakeIMDS{userData: "[settings]\nmotd = \"from imds\"\n"}
	p := &IMDSProvider{BaseURL: startIMDS(t, f), Backoff: time.Millisecond, OnEC2: func() bool { return false }}
	data, err := p.UserData(context.Background())
	if err != nil || data != nil {
		t.Fatalf("UserData off EC2 = %q, %v; want no data", data, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.issued != 0 || f.gets != 0 {
		t.Fatalf("IMDS got %d token and %d user-data requests off EC2", f.issued, f.gets)
	}
}

func TestOnEC2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"nitro", map[string]string{"class/dmi/id/sys_vendor": "Amazon EC2\n"}, true},
		{"nitro bios vendor", map[string]string{"class/dmi/id/bios_vendor": "Amazon EC2\n"}, true},
		{"xen", map[string]string{"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n"}, true},
		{"xen upper case", map[string]string{"hypervisor/uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF\n"}, true},
		{"qemu", map[string]string{"class/dmi/id/sys_vendor": "QEMU\n", "class/dmi/id/bios_vendor": "EFI Development Kit II / OVMF\n"}, false},
		{"vmware", map[string]string{"class/dmi/id/sys_vendor": "VMware, Inc.\n"}, false},
		{"nothing", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := OnEC2(root); got != tc.want {
				t.Errorf("OnEC2 = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIMDSRefusesRedirects answers the token request or the user-data
// request with a redirect to another server: the provider must fail
// without retrying, and the other server must see no request (and so no
// token).
func TestIMDSRefusesRedirects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Method+" "+r.URL.Path+" token="+r.Header.Get("X-aws-ec2-metadata-token"))
		mu.Unlock()
		w.Write([]byte("[settings]\nmotd = \"from elsewhere\"\n"))
	}))
	t.Cleanup(other.Close)
	for _, tt := range []struct {
		name     string
		redirect string // the path answered with a redirect
		code     int
	}{
		{"user data", "/latest/user-data", http.StatusTemporaryRedirect},
		{"user data, moved", "/latest/user-data", http.StatusMovedPermanently},
		{"token", "/latest/api/token", http.StatusPermanentRedirect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIMDS{userData: "[settings]\nmotd = \"ec2\"\n"}
			f.tokens = map[string]time.Time{}
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests++
				if r.URL.Path == tt.redirect {
					http.Redirect(w, r, other.URL+r.URL.Path, tt.code)
					return
				}
				f.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			p := &IMDSProvider{BaseURL: srv.URL, Attempts: 3, Backoff: time.Millisecond}
			data, err := p.UserData(context.Background())
			if !errors.Is(err, ErrRedirect) || data != nil {
				t.Errorf("UserData = %q, %v; want ErrRedirect", data, err)
			}
			if err != nil && !strings.Contains(err.Error(), other.URL) {
				t.Errorf("error %q does not name where the redirect led", err)
			}
			want := 1
			if tt.redirect == "/latest/user-data" {
				want = 2 // token, then the redirected GET
			}
			if requests != want {
				t.Errorf("IMDS saw %d requests, want %d (a redirect is not retried)", requests, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(elsewhere) > 0 {
				t.Errorf("the redirect was followed: the other server saw %q", elsewhere)
			}
		})
	}
}
