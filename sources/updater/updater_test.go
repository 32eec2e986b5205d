package updater

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/tufrepo"
)

func download(t *testing.T, r *Repo, name string) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Download(ctx, name, &b)
	return b.Bytes(), err
}

func TestRefreshAndDownload(t *testing.T) {
	f := newFixture(t)
	r, err := f.refresh(f.client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := download(t, r, "image.zst")
	if err != nil || !bytes.Equal(got, f.image) {
		t.Fatalf("Download = %d bytes, %v; want the %d bytes of the image", len(got), err, len(f.image))
	}
	m, err := r.Manifest(context.Background())
	if err != nil || len(m.Updates) != 0 {
		t.Fatalf("Manifest = %+v, %v", m, err)
	}
	if names := r.Targets(); len(names) != 2 || names[0].Name != "image.zst" || names[0].Length != int64(len(f.image)) {
		t.Fatalf("Targets = %+v", names)
	}
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		if _, err := os.Stat(filepath.Join(f.cacheDir, role+".json")); err != nil {
			t.Errorf("cache lacks %s: %v", role, err)
		}
	}
	if _, err := r.Target("nope"); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("Target(nope) = %v", err)
	}
	// A second refresh with nothing new uses the cached snapshot and
	// targets: only the root probe and the timestamp are fetched.
	before := len(f.requests)
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, rq := range f.requests[before:] {
		paths = append(paths, rq.path)
	}
	if want := "/metadata/2.root.json /metadata/timestamp.json"; strings.Join(paths, " ") != want {
		t.Errorf("second refresh fetched %v, want %s", paths, want)
	}
}

// TestTargetHashMismatch: the served bytes have the signed length but not
// the signed hash.
func TestTargetHashMismatch(t *testing.T) {
	f := newFixture(t)
	evil := bytes.Clone(f.image)
	evil[len(evil)/2] ^= 0xff
	f.serve(f.targetPath("image.zst", f.image), evil)
	r, err := f.refresh(f.client())
	if err != nil {
		t.Fatal(err)
	}
	_, err = download(t, r, "image.zst")
	var he *HashError
	if !errors.As(err, &he) || !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Download of altered bytes = %v, want a HashError", err)
	}
	want, got := sha256.Sum256(f.image), sha256.Sum256(evil)
	if he.Algorithm != "sha256" || he.Want != hex.EncodeToString(want[:]) || he.Got != hex.EncodeToString(got[:]) {
		t.Fatalf("HashError = %+v, want signed %x got %x", he, want, got)
	}
}

// TestTargetLongerThanSigned: reading stops at the signed length.
func TestTargetLongerThanSigned(t *testing.T) {
	for _, tc := range []struct {
		name          string
		contentLength bool
		wantWritten   int // bytes the destination received
	}{
		{"announced by Content-Length", true, 0},
		{"streamed without Content-Length", false, -1}, // -1: exactly the signed length
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			long := append(bytes.Clone(f.image), bytes.Repeat([]byte("more"), 1<<18)...)
			f.handle(f.targetPath("image.zst", f.image), func(w http.ResponseWriter, r *http.Request) {
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(long)))
				}
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				w.Write(long)
			})
			r, err := f.refresh(f.client())
			if err != nil {
				t.Fatal(err)
			}
			got, err := download(t, r, "image.zst")
			var le *LengthError
			if !errors.As(err, &le) || !errors.Is(err, ErrLengthExceeded) || le.Want != int64(len(f.image)) {
				t.Fatalf("Download of a longer target = %v, want a LengthError at %d bytes", err, len(f.image))
			}
			want := tc.wantWritten
			if want < 0 {
				want = len(f.image)
			}
			if len(got) != want {
				t.Fatalf("the destination got %d bytes, want %d (reading must stop at the signed length)", len(got), want)
			}
			if n := len(f.requestsTo(f.targetPath("image.zst", f.image))); n != 1 {
				t.Errorf("%d requests for the target, want 1 (no retry of a length violation)", n)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS, metadata.ROOT} {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t)
			advance := 2 * time.Hour
			if role == metadata.ROOT {
				advance = 400 * 24 * time.Hour
				f.commit(true, map[string]time.Duration{metadata.TARGETS: 500 * 24 * time.Hour,
					metadata.SNAPSHOT: 500 * 24 * time.Hour, metadata.TIMESTAMP: 500 * 24 * time.Hour})
			} else {
				f.commit(true, map[string]time.Duration{role: time.Hour})
			}
			f.now = start.Add(advance)
			_, err := f.refresh(f.client())
			var ee *ExpiredError
			if !errors.As(err, &ee) || !errors.Is(err, ErrExpired) || ee.Role != role {
				t.Fatalf("Refresh = %v, want %s expired", err, role)
			}
			if ee.Expires.IsZero() || !ee.Expires.Before(f.now) {
				t.Errorf("ExpiredError = %+v", ee)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	t.Run("timestamp", func(t *testing.T) {
		f := newFixture(t)
		old := f.file("timestamp.json")
		f.commit(false, nil)
		if _, err := f.refresh(f.client()); err != nil {
			t.Fatal(err)
		}
		f.serve("/metadata/timestamp.json", old)
		_, err := f.refresh(f.client())
		var re *RollbackError
		if !errors.As(err, &re) || !errors.Is(err, ErrRollback) || re.Role != "timestamp" ||
			re.Trusted != f.repo.Timestamp.Signed.Version || re.Got != re.Trusted-1 {
			t.Fatalf("Refresh with an older timestamp = %v, want a timestamp rollback", err)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		f := newFixture(t)
		oldSnap := f.repo.Timestamp.Signed.Meta["snapshot.json"]
		f.commit(false, nil)
		trusted := f.repo.Snapshot.Signed.Version
		if _, err := f.refresh(f.client()); err != nil {
			t.Fatal(err)
		}
		// A new timestamp, correctly signed, that names the old snapshot.
		f.repo.Timestamp.Signed.Version++
		f.repo.Timestamp.Signed.Meta["snapshot.json"] = oldSnap
		if err := f.repo.Sign(metadata.TIMESTAMP, f.keys[metadata.TIMESTAMP]...); err != nil {
			t.Fatal(err)
		}
		if err := f.repo.WriteRole(metadata.TIMESTAMP); err != nil {
			t.Fatal(err)
		}
		_, err := f.refresh(f.client())
		var re *RollbackError
		if !errors.As(err, &re) || re.Role != "snapshot" || re.Trusted != trusted || re.Got != oldSnap.Version || errors.Is(err, ErrFreeze) {
			t.Fatalf("Refresh with a timestamp naming an older snapshot = %v, want a snapshot rollback %d → %d", err, trusted, oldSnap.Version)
		}
	})
}

// TestFreezeAcrossRestart: an old but unexpired timestamp is refused after
// a newer one was seen, by a new client on the same cache (a restarted
// host); a host without the cache would have taken it.
func TestFreezeAcrossRestart(t *testing.T) {
	f := newFixture(t)
	old := f.file("timestamp.json")
	f.now = start.Add(time.Hour)
	f.commit(false, nil)
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatal(err)
	}
	f.serve("/metadata/timestamp.json", old)
	f.now = start.Add(2 * time.Hour) // the old timestamp is still valid
	_, err := f.refresh(f.client())
	var re *RollbackError
	if !errors.Is(err, ErrFreeze) || !errors.As(err, &re) || re.Role != "timestamp" {
		t.Fatalf("restarted client offered an old timestamp: %v, want ErrFreeze", err)
	}
	if !strings.Contains(err.Error(), "timestamp version "+strconv.FormatInt(re.Got, 10)+" is lower than the trusted version") {
		t.Errorf("error %q", err)
	}
	// Control: without the cache the old timestamp passes, so the cache
	// is what caught it.
	if _, err := f.refresh(f.client(func(c *Config) { c.CacheDir = filepath.Join(t.TempDir(), "fresh") })); err != nil {
		t.Fatalf("fresh client: %v", err)
	}
}

// TestMixAndMatch: the snapshot names targets version N; the server
// offers an older, validly signed targets file under that name.
func TestMixAndMatch(t *testing.T) {
	f := newFixture(t)
	oldTargets := f.file(f.repo.FileName(metadata.TARGETS))
	if _, err := f.repo.AddTargetBytes("other.zst", []byte("a second target")); err != nil {
		t.Fatal(err)
	}
	f.commit(true, nil)
	f.serve("/metadata/"+f.repo.FileName(metadata.TARGETS), oldTargets)
	_, err := f.refresh(f.client())
	var me *MixAndMatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrMixAndMatch) || me.Role != "targets" {
		t.Fatalf("Refresh with old targets under the new name = %v, want a targets mix-and-match", err)
	}
}

func TestUntrustedKey(t *testing.T) {
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t)
			f.keys[role] = []*tufrepo.Key{f.newKey()} // the attacker's
			f.commit(true, nil)
			_, err := f.refresh(f.client())
			var se *SignatureError
			if !errors.As(err, &se) || !errors.Is(err, ErrUntrustedSignature) || se.Role != role {
				t.Fatalf("Refresh with %s signed by an unknown key = %v", role, err)
			}
		})
	}
}

func TestRootRotation(t *testing.T) {
	// rotate publishes root version 2 with a new root and timestamp key,
	// signed by the keys sign returns.
	rotate := func(f *fixture, sign func(oldRoot, newRoot *tufrepo.Key) []*tufrepo.Key) {
		oldRoot, newRoot, newTS := f.keys[metadata.ROOT][0], f.newKey(), f.newKey()
		keys := map[string][]*tufrepo.Key{metadata.ROOT: {newRoot}, metadata.TIMESTAMP: {newTS},
			metadata.SNAPSHOT: f.keys[metadata.SNAPSHOT], metadata.TARGETS: f.keys[metadata.TARGETS]}
		root, err := tufrepo.NewRoot(keys, start.Add(365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		root.Signed.Version = 2
		for _, k := range sign(oldRoot, newRoot) {
			if _, err := root.Sign(k.Signer()); err != nil {
				t.Fatal(err)
			}
		}
		data, _ := root.ToBytes(true)
		if err := f.repo.WriteRoot(data); err != nil {
			t.Fatal(err)
		}
		f.keys = keys
		f.commit(false, nil)
	}
	t.Run("valid", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.refresh(f.client()); err != nil {
			t.Fatal(err)
		}
		rotate(f, func(o, n *tufrepo.Key) []*tufrepo.Key { return []*tufrepo.Key{o, n} })
		r, err := f.refresh(f.client())
		if err != nil {
			t.Fatalf("Refresh after a valid rotation: %v", err)
		}
		if v := r.Roles()[0]; v.Role != "root" || v.Version != 2 {
			t.Fatalf("trusted root = %+v, want version 2", v)
		}
		cached, _ := os.ReadFile(filepath.Join(f.cacheDir, "root.json"))
		if m, err := metadata.Root().FromBytes(cached); err != nil || m.Signed.Version != 2 {
			t.Fatalf("cached root: %v", err)
		}
	})
	t.Run("not signed by the old root", func(t *testing.T) {
		f := newFixture(t)
		rotate(f, func(o, n *tufrepo.Key) []*tufrepo.Key { return []*tufrepo.Key{n} })
		_, err := f.refresh(f.client())
		var rr *RootRotationError
		if !errors.As(err, &rr) || !errors.Is(err, ErrRootRotation) || rr.From != 1 || rr.To != 2 ||
			!strings.Contains(err.Error(), "not enough signatures") {
			t.Fatalf("Refresh with a root signed only by its new key = %v, want a refused rotation", err)
		}
		cached, _ := os.ReadFile(filepath.Join(f.cacheDir, "root.json"))
		if m, err := metadata.Root().FromBytes(cached); err != nil || m.Signed.Version != 1 {
			t.Fatalf("cached root after a refused rotation: version %d, %v", m.Signed.Version, err)
		}
	})
}

// TestStallThenResume: the server sends part of the target and stalls;
// the client times out, retries and resumes with Range.
func TestStallThenResume(t *testing.T) {
	f := newFixture(t)
	path := f.targetPath("image.zst", f.image)
	half := len(f.image) / 2
	f.handle(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(f.image)))
			w.Write(f.image[:half])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stall until the client gives up
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.image))
	})
	r, err := f.refresh(f.client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := download(t, r, "image.zst")
	if err != nil || !bytes.Equal(got, f.image) {
		t.Fatalf("Download after a stall = %d bytes, %v", len(got), err)
	}
	reqs := f.requestsTo(path)
	if len(reqs) != 2 || reqs[0].rng != "" || reqs[1].rng != "bytes="+strconv.Itoa(half)+"-" {
		t.Fatalf("requests = %+v, want a full GET then Range bytes=%d-", reqs, half)
	}
}

func TestStallTimeout(t *testing.T) {
	for _, tc := range []struct{ name, phase string }{{"no headers", "response"}, {"no body", "body"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			path := f.targetPath("image.zst", f.image)
			f.handle(path, func(w http.ResponseWriter, r *http.Request) {
				if tc.phase == "body" {
					w.Header().Set("Content-Length", strconv.Itoa(len(f.image)))
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done()
			})
			r, err := f.refresh(f.client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = download(t, r, "image.zst")
			var te *TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || te.Phase != tc.phase || !strings.Contains(err.Error(), "after 3 tries") {
				t.Fatalf("Download from a stalled server = %v, want a %s timeout after 3 tries", err, tc.phase)
			}
			if n := len(f.requestsTo(path)); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
		})
	}
}

// TestMetadataRetry: metadata fetches go through the same fetcher.
func TestMetadataRetry(t *testing.T) {
	f := newFixture(t)
	data := f.file("timestamp.json")
	fails := 1
	f.handle("/metadata/timestamp.json", func(w http.ResponseWriter, r *http.Request) {
		if fails > 0 {
			fails--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(data)
	})
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatalf("Refresh after one 503: %v", err)
	}
	if n := len(f.requestsTo("/metadata/timestamp.json")); n != 2 {
		t.Fatalf("%d timestamp requests, want 2", n)
	}
	f.handle("/metadata/timestamp.json", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	_, err := f.refresh(f.client())
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 404 || len(f.requestsTo("/metadata/timestamp.json")) != 3 {
		t.Fatalf("Refresh with no timestamp = %v, want one 404 without retries", err)
	}
}

func TestCorruptCacheIgnored(t *testing.T) {
	f := newFixture(t)
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		os.WriteFile(filepath.Join(f.cacheDir, role+".json"), []byte("{half a fi"), 0o600)
	}
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatalf("Refresh over a corrupt cache: %v", err)
	}
}

func TestFileURL(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(c *Config) {
		c.MetadataURL = "file://" + filepath.Join(f.dir, tufrepo.MetadataDir)
		c.TargetsURL = "file://" + filepath.Join(f.dir, tufrepo.TargetsDir)
	})
	r, err := f.refresh(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := download(t, r, "image.zst"); err != nil || !bytes.Equal(got, f.image) {
		t.Fatalf("Download over file:// = %d bytes, %v", len(got), err)
	}
}

// TestDownloadBoundedMemory: a 48 MiB target streams through a small
// buffer; the allocations of the whole download (client and test server)
// stay far below its size.
func TestDownloadBoundedMemory(t *testing.T) {
	f := newFixture(t)
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("petrel root image "), 48<<20/18), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := f.repo.AddTarget("big.zst", big)
	if err != nil {
		t.Fatal(err)
	}
	f.commit(true, nil)
	r, err := f.refresh(f.client())
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := &countWriter{}
	if err := r.Download(context.Background(), "big.zst", n); err != nil || n.n != tf.Length {
		t.Fatalf("Download = %d bytes, %v", n.n, err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("downloading %d bytes allocated %d bytes", tf.Length, alloc)
	if alloc > uint64(tf.Length)/8 {
		t.Fatalf("downloading %d bytes allocated %d bytes: the target is buffered", tf.Length, alloc)
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }
