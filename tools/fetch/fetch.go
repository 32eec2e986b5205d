package fetch

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/tools/project"
)

// ErrNotFound marks a file that a source (the lookaside server or the
// upstream URL) does not have.
var ErrNotFound = errors.New("not found")

// DigestMismatchError reports a downloaded file whose SHA-512 differs from
// the pinned one. The file is deleted before this error is returned.
type DigestMismatchError struct {
	// Name is the file name in the cache and in SOURCES.
	Name string
	// Source says where the file came from (a URL or "debian:name=version").
	Source string
	// Expected is the pinned digest, Actual the digest of what arrived.
	Expected, Actual string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("SHA-512 mismatch for %q from %s: expected %s, got %s (file deleted)",
		e.Name, e.Source, e.Expected, e.Actual)
}

// Fetcher fetches external files into a lookaside cache directory. It is
// safe for concurrent use: concurrent fetches of one file both succeed and
// leave one copy.
type Fetcher struct {
	// Dir is the cache directory, normally <BuildDir>/cache/lookaside.
	Dir string
	// LookasideURL is the base URL of a lookaside server ("" = none).
	LookasideURL string
	// UpstreamFallback allows the upstream URL when the lookaside server
	// does not have a file.
	UpstreamFallback bool
	// Client does the HTTP requests; nil means a client with a 10-minute
	// timeout.
	Client *http.Client
	// UserAgent is sent with HTTP requests.
	UserAgent string
}

// New returns a Fetcher for the cache of cfg: <BuildDir>/cache/lookaside,
// with cfg's lookaside URL and fallback setting.
func New(cfg project.Config) *Fetcher {
	return &Fetcher{
		Dir:              filepath.Join(cfg.BuildDir, "cache", "lookaside"),
		LookasideURL:     cfg.LookasideURL,
		UpstreamFallback: cfg.UpstreamFallback,
		UserAgent:        "Petrel buildctl (https://github.com/petrel-os/petrel)",
	}
}

// Name returns the file name of f in the cache and in SOURCES: its Path,
// else the last element of its URL. It returns "" for a Debian package
// without Path, whose name (the .deb file name) is known only after the
// download.
func Name(f project.ExternalFile) (string, error) {
	name := f.Path
	if name == "" && f.URL != "" {
		u, err := url.Parse(f.URL)
		if err != nil {
			return "", fmt.Errorf("%w: parse URL %q: %w", project.ErrInvalidInput, f.URL, err)
		}
		name = path.Base(u.Path)
	}
	if name == "" {
		if f.Debian != "" {
			return "", nil
		}
		return "", fmt.Errorf("%w: external file has neither path, url nor debian", project.ErrInvalidInput)
	}
	if name == "." || name == ".." || name == "/" || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("%w: external file name %q is not a plain file name", project.ErrInvalidInput, name)
	}
	return name, nil
}

// Fetch returns the path of f in the cache, downloading it first if the
// cache does not hold it. A cached file is verified again before it is
// returned; a corrupt one is deleted and downloaded again.
func (fe *Fetcher) Fetch(ctx context.Context, f project.ExternalFile) (string, error) {
	want := strings.ToLower(f.SHA512)
	if len(want) != sha512.Size*2 || !isHex(want) {
		return "", fmt.Errorf("%w: external file %q: sha512 %q is not 128 hex digits",
			project.ErrInvalidInput, f.Path+f.URL+f.Debian, f.SHA512)
	}
	name, err := Name(f)
	if err != nil {
		return "", err
	}
	if p, ok := fe.cached(f, name, want); ok {
		return p, nil
	}
	if f.Debian != "" {
		return fe.fetchDebian(ctx, f, name, want)
	}
	var errs []error
	if fe.LookasideURL != "" && !f.ForceUpstream {
		u := strings.TrimRight(fe.LookasideURL, "/") + "/" + url.PathEscape(name) + "/" + want + "/" + url.PathEscape(name)
		p, err := fe.download(ctx, u, name, want)
		if err == nil {
			return p, nil
		}
		var dm *DigestMismatchError
		if errors.As(err, &dm) {
			return "", err
		}
		errs = append(errs, fmt.Errorf("lookaside cache: %w", err))
	}
	if !f.ForceUpstream && !fe.UpstreamFallback {
		if fe.LookasideURL == "" {
			errs = append(errs, errors.New("no lookaside cache is configured (BUILDSYS_LOOKASIDE_CACHE)"))
		}
		errs = append(errs, errors.New("upstream fallback is disabled (set BUILDSYS_UPSTREAM_SOURCE_FALLBACK=true or force-upstream)"))
		return "", fmt.Errorf("fetch %q: %w", name, errors.Join(errs...))
	}
	p, err := fe.download(ctx, f.URL, name, want)
	if err != nil {
		var dm *DigestMismatchError
		if errors.As(err, &dm) {
			return "", err
		}
		errs = append(errs, fmt.Errorf("upstream: %w", err))
		return "", fmt.Errorf("fetch %q: %w", name, errors.Join(errs...))
	}
	return p, nil
}

// cachePath is where a file named name with digest sum lives.
func (fe *Fetcher) cachePath(name, sum string) string {
	return filepath.Join(fe.Dir, name, sum, name)
}

// cached returns the cache path of f if the cache holds a verified copy.
func (fe *Fetcher) cached(f project.ExternalFile, name, sum string) (string, bool) {
	p := fe.cachePath(name, sum)
	if name == "" {
		// A Debian package without Path: look for its .deb by pattern.
		pkg, ver, _ := strings.Cut(f.Debian, "=")
		matches, _ := filepath.Glob(filepath.Join(fe.Dir, debPrefix(pkg, ver)+"*.deb", sum, "*.deb"))
		if len(matches) != 1 {
			return "", false
		}
		p = matches[0]
	}
	got, err := fileDigest(p)
	if err != nil {
		return "", false
	}
	if got != sum {
		os.Remove(p)
		return "", false
	}
	return p, true
}

func (fe *Fetcher) client() *http.Client {
	if fe.Client != nil {
		return fe.Client
	}
	return &http.Client{Timeout: 10 * time.Minute}
}

// download fetches u into the cache as name, verifying its digest.
func (fe *Fetcher) download(ctx context.Context, u, name, want string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("build request for %q: %w", u, err)
	}
	if fe.UserAgent != "" {
		req.Header.Set("User-Agent", fe.UserAgent)
	}
	resp, err := fe.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("get %q: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", fmt.Errorf("get %q: %w (HTTP 404)", u, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("get %q: HTTP %s", u, resp.Status)
	}
	return fe.place(resp.Body, name, want, u)
}

// place copies r into the cache as name after checking its digest: it
// writes a temporary file next to the final path, syncs it and renames it.
func (fe *Fetcher) place(r io.Reader, name, want, source string) (string, error) {
	final := fe.cachePath(name, want)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	tmp, err := outfile.Create(final)
	if err != nil {
		return "", fmt.Errorf("place %q in cache: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Discard()
			os.Remove(dir) // only if empty: leave no trace of a bad file
			os.Remove(filepath.Dir(dir))
		}
	}()
	h := sha512.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return "", fmt.Errorf("download %q from %s: %w", name, source, err)
	}
	if got := sum(h); got != want {
		return "", &DigestMismatchError{Name: name, Source: source, Expected: want, Actual: got}
	}
	if err := tmp.Commit(); err != nil {
		return "", fmt.Errorf("place %q in cache: %w", name, err)
	}
	ok = true
	return final, nil
}

// fileDigest returns the hex SHA-512 of the file at p.
func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %q: %w", p, err)
	}
	return sum(h), nil
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
