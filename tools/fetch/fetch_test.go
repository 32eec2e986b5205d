package fetch

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

func digest(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

// server serves files by URL path and counts requests.
type server struct {
	*httptest.Server
	files    map[string][]byte
	requests atomic.Int32
}

func newServer(t *testing.T, files map[string][]byte) *server {
	t.Helper()
	s := &server{files: files}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestFetchHTTP(t *testing.T) {
	good := []byte("the real tarball\n")
	bad := []byte("a tampered tarball\n")
	goodSum := digest(good)
	lookaside := newServer(t, map[string][]byte{
		"/a.tar.gz/" + goodSum + "/a.tar.gz": good,
		"/c.tar.gz/" + goodSum + "/c.tar.gz": bad,
	})
	upstream := newServer(t, map[string][]byte{
		"/dl/a.tar.gz": good,
		"/dl/b.tar.gz": good,
		"/dl/d.tar.gz": bad,
	})
	for _, tt := range []struct {
		name      string
		file      project.ExternalFile
		lookaside bool
		fallback  bool
		wantErr   string // "" = success
		mismatch  bool
	}{
		{name: "lookaside hit", file: project.ExternalFile{URL: upstream.URL + "/dl/a.tar.gz"}, lookaside: true},
		{name: "lookaside miss, fallback", file: project.ExternalFile{URL: upstream.URL + "/dl/b.tar.gz"}, lookaside: true, fallback: true},
		{name: "lookaside miss, no fallback", file: project.ExternalFile{URL: upstream.URL + "/dl/b.tar.gz"}, lookaside: true,
			wantErr: "upstream fallback is disabled"},
		{name: "no lookaside, no fallback", file: project.ExternalFile{URL: upstream.URL + "/dl/b.tar.gz"},
			wantErr: "no lookaside cache is configured"},
		{name: "force upstream", file: project.ExternalFile{URL: upstream.URL + "/dl/b.tar.gz", ForceUpstream: true}, lookaside: true},
		{name: "explicit path", file: project.ExternalFile{URL: upstream.URL + "/dl/b.tar.gz", Path: "renamed.tar.gz"}, fallback: true},
		{name: "bad lookaside content", file: project.ExternalFile{URL: upstream.URL + "/dl/a.tar.gz", Path: "c.tar.gz"}, lookaside: true, fallback: true,
			wantErr: "expected " + goodSum + ", got " + digest(bad), mismatch: true},
		{name: "bad upstream content", file: project.ExternalFile{URL: upstream.URL + "/dl/d.tar.gz"}, fallback: true,
			wantErr: "expected " + goodSum + ", got " + digest(bad), mismatch: true},
		{name: "upstream 404", file: project.ExternalFile{URL: upstream.URL + "/dl/missing.tar.gz"}, fallback: true,
			wantErr: "HTTP 404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fe := &Fetcher{Dir: dir, UpstreamFallback: tt.fallback}
			if tt.lookaside {
				fe.LookasideURL = lookaside.URL + "/"
			}
			f := tt.file
			f.SHA512 = goodSum
			p, err := fe.Fetch(context.Background(), f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch() error = %v, want one containing %q", err, tt.wantErr)
				}
				var dm *DigestMismatchError
				if errors.As(err, &dm) != tt.mismatch {
					t.Errorf("Fetch() error %T: DigestMismatchError = %v, want %v", err, !tt.mismatch, tt.mismatch)
				}
				if tt.mismatch && !strings.Contains(err.Error(), dm.Name) {
					t.Errorf("error %q does not name the file", err)
				}
				// Nothing may be left in the cache.
				var left []string
				filepath.Walk(dir, func(p string, info os.FileInfo, _ error) error {
					if p != dir {
						left = append(left, p)
					}
					return nil
				})
				if len(left) > 0 {
					t.Errorf("cache holds %q after a failed fetch, want nothing", left)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch() error = %v", err)
			}
			name, _ := Name(f)
			if want := filepath.Join(dir, name, goodSum, name); p != want {
				t.Errorf("Fetch() = %q, want %q", p, want)
			}
			if b, _ := os.ReadFile(p); string(b) != string(good) {
				t.Errorf("cached file holds %q, want %q", b, good)
			}
		})
	}
}

func TestFetchCachedMakesNoRequest(t *testing.T) {
	good := []byte("cached content\n")
	up := newServer(t, map[string][]byte{"/x.bin": good})
	fe := &Fetcher{Dir: t.TempDir(), UpstreamFallback: true}
	f := project.ExternalFile{URL: up.URL + "/x.bin", SHA512: digest(good)}
	p1, err := fe.Fetch(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := fe.Fetch(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Errorf("second Fetch() = %q, want %q", p2, p1)
	}
	if n := up.requests.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1 (second fetch must come from the cache)", n)
	}
	// A corrupted cache entry is detected and fetched again.
	if err := os.WriteFile(p1, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fe.Fetch(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p1); string(b) != string(good) {
		t.Errorf("after re-fetch the cache holds %q, want %q", b, good)
	}
	if n := up.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestFetchBadInput(t *testing.T) {
	fe := &Fetcher{Dir: t.TempDir(), UpstreamFallback: true}
	for _, tt := range []struct {
		name string
		file project.ExternalFile
		want string
	}{
		{"short digest", project.ExternalFile{URL: "http://127.0.0.1:1/a", SHA512: "abc"}, "not 128 hex digits"},
		{"path with slash", project.ExternalFile{URL: "http://127.0.0.1:1/a", Path: "../a", SHA512: strings.Repeat("a", 128)}, "not a plain file name"},
		{"debian without version", project.ExternalFile{Debian: "hello", SHA512: strings.Repeat("a", 128)}, `want "name=version"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fe.Fetch(context.Background(), tt.file)
			if err == nil || !errors.Is(err, project.ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Fetch() error = %v, want ErrInvalidInput containing %q", err, tt.want)
			}
		})
	}
}

// helloSHA512 pins hello 2.10-3 (Debian 12) for amd64.
const helloSHA512 = "3f6bec758309608283a9d7f20019b3356b7a5f1c6b274bb847341e6940a752b52e47b07656ef26e6410f8d835f1c1c7aa7dcf4220ad9db10c335def73c9ba7b4"

func TestFetchDebian(t *testing.T) {
	testkit.Tool(t, "apt-get")
	dir := t.TempDir()
	fe := &Fetcher{Dir: dir}
	f := project.ExternalFile{Debian: "hello=2.10-3", SHA512: helloSHA512}
	p, err := fe.Fetch(context.Background(), f)
	if err != nil {
		t.Fatalf("Fetch(%q) error = %v", f.Debian, err)
	}
	if want := filepath.Join(dir, "hello_2.10-3_amd64.deb", helloSHA512, "hello_2.10-3_amd64.deb"); p != want {
		t.Errorf("Fetch() = %q, want %q", p, want)
	}
	// Cached: must not run apt-get (no PATH, so it cannot).
	t.Setenv("PATH", "")
	p2, err := fe.Fetch(context.Background(), f)
	if err != nil || p2 != p {
		t.Errorf("cached Fetch() = %q, %v; want %q, nil", p2, err, p)
	}

	t.Run("mismatch", func(t *testing.T) {
		t.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
		fe := &Fetcher{Dir: t.TempDir()}
		wrong := strings.Repeat("0", 128)
		_, err := fe.Fetch(context.Background(), project.ExternalFile{Debian: "hello=2.10-3", Path: "hello.deb", SHA512: wrong})
		var dm *DigestMismatchError
		if !errors.As(err, &dm) || dm.Actual != helloSHA512 || dm.Expected != wrong {
			t.Fatalf("Fetch() error = %v, want a DigestMismatchError with actual %s", err, helloSHA512)
		}
		if _, err := os.Stat(filepath.Join(fe.Dir, "hello.deb")); !os.IsNotExist(err) {
			t.Errorf("cache holds hello.deb after a mismatch (stat error %v)", err)
		}
	})
}
