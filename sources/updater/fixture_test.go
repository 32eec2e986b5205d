package updater

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/tufrepo"
)

// fixture is a real signed repository on disk, served over HTTP on
// 127.0.0.1, whose responses a test can replace to play the attacker.
type fixture struct {
	t        *testing.T
	dir      string
	keys     map[string][]*tufrepo.Key
	repo     *tufrepo.Repo
	rootJSON []byte // the root shipped in the image: version 1
	srv      *httptest.Server
	cacheDir string
	now      time.Time // the client's clock
	image    []byte    // the content of target "image.zst"

	mu       sync.Mutex
	override map[string]http.HandlerFunc // by URL path
	requests []request
}

type request struct{ path, rng string }

var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// lifetimes are the default expiries of a fixture commit.
var lifetimes = map[string]time.Duration{
	metadata.TARGETS: 14 * 24 * time.Hour, metadata.SNAPSHOT: 14 * 24 * time.Hour, metadata.TIMESTAMP: 7 * 24 * time.Hour,
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), cacheDir: filepath.Join(t.TempDir(), "cache"), now: start,
		override: map[string]http.HandlerFunc{}}
	var err error
	if f.keys, err = tufrepo.NewKeys(); err != nil {
		t.Fatal(err)
	}
	if f.rootJSON, err = tufrepo.NewSignedRoot(f.keys, start.Add(365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if f.repo, err = tufrepo.Create(f.dir, f.rootJSON); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	f.image = make([]byte, 3<<20+12345)
	for i := range f.image {
		f.image[i] = byte(rng.Uint32())
	}
	if _, err := f.repo.AddTargetBytes("image.zst", f.image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.AddTargetBytes("manifest.json", []byte(`{"updates":[],"migrations":{}}`)); err != nil {
		t.Fatal(err)
	}
	f.commit(true, nil)
	files := http.FileServer(http.Dir(f.dir))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, request{r.URL.Path, r.Header.Get("Range")})
		h := f.override[r.URL.Path]
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) newKey() *tufrepo.Key {
	k, err := tufrepo.NewKey()
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// commit re-signs the repository at the fixture's clock, with lifetimes
// changed by life.
func (f *fixture) commit(targets bool, life map[string]time.Duration) {
	f.t.Helper()
	exp := map[string]time.Duration{}
	for k, v := range lifetimes {
		exp[k] = v
	}
	for k, v := range life {
		exp[k] = v
	}
	if err := f.repo.Commit(tufrepo.Commit{Now: f.now, Expires: exp, Keys: f.keys, Targets: targets}); err != nil {
		f.t.Fatal(err)
	}
}

// file returns the bytes of a metadata file as the repository has it now.
func (f *fixture) file(name string) []byte {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, tufrepo.MetadataDir, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// serve makes the server answer path with data.
func (f *fixture) serve(path string, data []byte) {
	f.handle(path, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
}

func (f *fixture) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[path] = h
}

func (f *fixture) requestsTo(path string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []request
	for _, r := range f.requests {
		if r.path == path {
			rs = append(rs, r)
		}
	}
	return rs
}

// targetPath is the URL path of a target.
func (f *fixture) targetPath(name string, data []byte) string {
	sum := sha256.Sum256(data)
	return "/" + tufrepo.TargetsDir + "/" + hex.EncodeToString(sum[:]) + "." + name
}

// client returns a client of the repository with the fixture's cache; a
// second client on the same cache is a restarted host.
func (f *fixture) client(opts ...func(*Config)) *Client {
	f.t.Helper()
	cfg := Config{
		MetadataURL: f.srv.URL + "/metadata",
		TargetsURL:  f.srv.URL + "/targets/",
		TrustedRoot: f.rootJSON,
		CacheDir:    f.cacheDir,
		Now:         func() time.Time { return f.now },
		Fetch:       FetchOptions{StallTimeout: time.Second, Backoff: 10 * time.Millisecond, Tries: 3},
		Logger:      slog.New(slog.NewTextHandler(testWriter{f.t}, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) refresh(c *Client) (*Repo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Refresh(ctx)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(b)))
	return len(b), nil
}
