package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
	"github.com/petrel-os/petrel/sources/verity"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// build makes an image directory as buildctl make leaves it, with small
// real zstd update images whose content depends on build.
func build(t *testing.T, root, version, buildID string) string {
	t.Helper()
	dir := filepath.Join(root, "images", "x86_64-metal-dev", version+"-"+buildID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := "petrel-metal-dev-x86_64-" + version + "-" + buildID
	rootFS, hash, _ := rootImages(t, prefix, buildID)
	for suffix, raw := range map[string][]byte{"-boot.ext4": bytes.Repeat([]byte(prefix+"-boot"), 5000), "-root.erofs": rootFS, "-root.verity": hash} {
		var b bytes.Buffer
		if err := imagecodec.Compress(context.Background(), &b, bytes.NewReader(raw), imagecodec.LevelFastest); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, prefix+suffix+imagecodec.Ext), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, prefix+".img"), []byte("disk"), 0o644)
	return dir
}

// rootImages returns the root image of a build, its dm-verity hash image
// and its root hash.
func rootImages(t *testing.T, prefix, buildID string) (root, hash, rootHash []byte) {
	t.Helper()
	root = bytes.Repeat([]byte(prefix), 5000)
	root = append(root, make([]byte, 4096-len(root)%4096)...)
	var h testkit.MemFile
	tree, err := verity.Format(context.Background(), bytes.NewReader(root), int64(len(root)), &h,
		verity.Params{Salt: []byte(buildID), UUID: verity.DeriveUUID([]byte(buildID))})
	if err != nil {
		t.Fatal(err)
	}
	return root, h.Bytes(), tree.RootHash
}

type env struct {
	t    *testing.T
	tmp  string
	keys Keys
	opts Options
	// migrations are the release chain's steps given to every Publish.
	migrations map[manifest.Span][]Migration
}

func newEnv(t *testing.T) *env {
	tmp := t.TempDir()
	e := &env{t: t, tmp: tmp, keys: Keys{Dir: filepath.Join(tmp, ".keys")}}
	if err := CreateKeys(e.keys.Dir, t0); err != nil {
		t.Fatal(err)
	}
	e.opts = Options{Dir: Dir(filepath.Join(tmp, "build"), "metal-dev", "x86_64"), Keys: e.keys, Now: t0}
	e.migrations = map[manifest.Span][]Migration{{From: manifest.MustParseVersion("0.1.0"), To: manifest.MustParseVersion("0.2.0")}: nil}
	return e
}

func (e *env) publish(version, buildID string) (Result, error) {
	dir := build(e.t, e.tmp, version, buildID)
	return Publish(Release{Variant: "metal-dev", Arch: "x86_64", Version: manifest.MustParseVersion(version), ImageDir: dir,
		Migrations: e.migrations}, e.opts)
}

func (e *env) validate(now time.Time) (*Report, error) {
	root, _, err := e.keys.Root()
	if err != nil {
		e.t.Fatal(err)
	}
	return Validate(context.Background(), e.opts.Dir, root, now, nil)
}

// client is a host of version running reading the repository.
func (e *env) choose(running string, now time.Time) string {
	e.t.Helper()
	root, _, _ := e.keys.Root()
	md, tg, _ := Locations(e.opts.Dir)
	c, err := updater.New(updater.Config{MetadataURL: md, TargetsURL: tg, TrustedRoot: root,
		CacheDir: filepath.Join(e.tmp, "host-cache"), Now: func() time.Time { return now }})
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := c.Refresh(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := r.Manifest(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := updater.Choose(m, updater.Host{Variant: "metal-dev", Arch: "x86_64", Version: manifest.MustParseVersion(running)},
		updater.Policy{Now: now, IgnoreWaves: true})
	if err != nil || u == nil {
		return ""
	}
	return u.Version.String()
}

func TestPublishReleases(t *testing.T) {
	e := newEnv(t)
	res, err := e.publish("0.1.0", "aaaa1111")
	if err != nil {
		t.Fatal(err)
	}
	if res.Already || res.Update.Images.Root != "petrel-metal-dev-x86_64-0.1.0-aaaa1111-root.erofs.zst" || len(res.Update.Waves) != 7 ||
		!res.Update.Waves[0].Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Publish = %+v", res)
	}
	if _, _, want := rootImages(t, "petrel-metal-dev-x86_64-0.1.0-aaaa1111", "aaaa1111"); res.Update.Images.RootHash != hex.EncodeToString(want) {
		t.Fatalf("manifest root_hash = %q, want the hash image's root hash %x", res.Update.Images.RootHash, want)
	}
	rep, err := e.validate(t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 4 || len(rep.Warnings) != 0 {
		t.Fatalf("report = %+v", rep)
	}
	// Private keys never land in the repository.
	filepath.Walk(e.opts.Dir, func(p string, info os.FileInfo, err error) error {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key", p)
		}
		return nil
	})

	// The same build again changes nothing.
	ts := tufrepoTimestamp(t, e.opts.Dir)
	if res, err := e.publish("0.1.0", "aaaa1111"); err != nil || !res.Already || tufrepoTimestamp(t, e.opts.Dir) != ts {
		t.Fatalf("second Publish of the same build = %+v, %v", res, err)
	}
	// Another build of the same version is refused.
	if _, err := e.publish("0.1.0", "bbbb2222"); !errors.Is(err, ErrPublished) ||
		!strings.Contains(err.Error(), "metal-dev x86_64 0.1.0 is published with images petrel-metal-dev-x86_64-0.1.0-aaaa1111-root.erofs.zst") {
		t.Fatalf("Publish of another 0.1.0 = %v", err)
	}

	e.opts.Now = t0.Add(time.Hour)
	if _, err := e.publish("0.2.0", "cccc3333"); err != nil {
		t.Fatal(err)
	}
	if rep, err = e.validate(e.opts.Now); err != nil || len(rep.Targets) != 7 {
		t.Fatalf("validate two releases: %d targets, %v", len(rep.Targets), err)
	}
	if got := e.choose("0.1.0", e.opts.Now); got != "0.2.0" {
		t.Fatalf("host on 0.1.0 chooses %q, want 0.2.0", got)
	}
	// Lowering max_version pulls hosts on 0.2.0 back to 0.1.0.
	e.opts.Now = t0.Add(2 * time.Hour)
	if err := SetMaxVersion("metal-dev", "x86_64", manifest.MustParseVersion("0.1.0"), e.opts); err != nil {
		t.Fatal(err)
	}
	if got := e.choose("0.2.0", e.opts.Now); got != "0.1.0" {
		t.Fatalf("after max_version 0.1.0, a host on 0.2.0 chooses %q, want 0.1.0", got)
	}
	if err := SetMaxVersion("metal-dev", "x86_64", manifest.MustParseVersion("0.9.0"), e.opts); !errors.Is(err, ErrInput) ||
		!strings.Contains(err.Error(), "not a published version (published: 0.2.0, 0.1.0)") {
		t.Fatalf("SetMaxVersion(0.9.0) = %v", err)
	}
}

func tufrepoTimestamp(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, tufrepo.MetadataDir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPublishBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env, imageDir string) string // returns the version to publish
		is    error
		want  string
	}{
		{"missing image", func(e *env, dir string) string {
			os.Remove(filepath.Join(dir, "petrel-metal-dev-x86_64-0.1.0-aaaa1111-boot.ext4.zst"))
			return "0.1.0"
		}, ErrInput, "no *-boot.ext4.zst in "},
		{"hash image without a tree", func(e *env, dir string) string {
			var b bytes.Buffer
			imagecodec.Compress(context.Background(), &b, bytes.NewReader(bytes.Repeat([]byte("no superblock here"), 1000)), imagecodec.LevelFastest)
			os.WriteFile(filepath.Join(dir, "petrel-metal-dev-x86_64-0.1.0-aaaa1111-root.verity.zst"), b.Bytes(), 0o644)
			return "0.1.0"
		}, ErrInput, "petrel-metal-dev-x86_64-0.1.0-aaaa1111-root.verity.zst: verity superblock: magic"},
		{"build of another release", func(e *env, dir string) string { return "0.2.0" }, ErrInput,
			"is not of release 0.2.0 (run buildctl make)"},
		{"no keys", func(e *env, dir string) string { os.RemoveAll(e.keys.Dir); return "0.1.0" }, ErrKeys,
			"no root metadata at "},
		{"missing key", func(e *env, dir string) string {
			os.Remove(filepath.Join(e.keys.Dir, "targets.pem"))
			return "0.1.0"
		}, ErrKeys, "targets key: no key file "},
		{"key of another root", func(e *env, dir string) string {
			k, _ := tufrepo.NewKey()
			os.WriteFile(filepath.Join(e.keys.Dir, "snapshot.pem"), k.PEM(), 0o600)
			return "0.1.0"
		}, ErrKeys, "is not a key of role snapshot in "},
		{"expired root", func(e *env, dir string) string {
			e.opts.Now = t0.Add(RootLifetime + time.Hour)
			return "0.1.0"
		}, ErrKeys, "expired at 2026-02-28T12:00:00Z: its keys can no longer sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := build(t, e.tmp, "0.1.0", "aaaa1111")
			v := tc.setup(e, dir)
			_, err := Publish(Release{Variant: "metal-dev", Arch: "x86_64", Version: manifest.MustParseVersion(v), ImageDir: dir}, e.opts)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Publish = %v\nwant %v with %q", err, tc.is, tc.want)
			}
			if _, err := os.Stat(filepath.Join(e.opts.Dir, tufrepo.MetadataDir, "timestamp.json")); err == nil {
				t.Error("a refused publication left a timestamp")
			}
		})
	}
}

// TestPublishRootVersions: a rotated root among the keys is published
// into the repository; keys older than the repository's root are refused.
func TestPublishRootVersions(t *testing.T) {
	e := newEnv(t)
	if _, err := e.publish("0.1.0", "aaaa1111"); err != nil {
		t.Fatal(err)
	}
	_, root, err := e.keys.Root()
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := tufrepo.LoadKey(e.keys.Path(metadata.ROOT))
	if err != nil {
		t.Fatal(err)
	}
	root.Signed.Version = 2
	root.ClearSignatures()
	root.Sign(rootKey.Signer())
	v2, _ := root.ToBytes(true)
	v1, _ := os.ReadFile(e.keys.Path(RootFile))
	os.WriteFile(e.keys.Path(RootFile), v2, 0o644)
	e.opts.Now = t0.Add(time.Hour)
	if _, err := e.publish("0.2.0", "cccc3333"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.opts.Dir, tufrepo.MetadataDir, "2.root.json")); err != nil {
		t.Fatalf("rotated root not published: %v", err)
	}
	if _, err := e.validate(e.opts.Now); err != nil {
		t.Fatalf("validate after the rotation: %v", err)
	}
	os.WriteFile(e.keys.Path(RootFile), v1, 0o644)
	if _, err := e.publish("0.3.0", "dddd4444"); !errors.Is(err, ErrKeys) || !strings.Contains(err.Error(), "is root version 1, the repository") {
		t.Fatalf("Publish with the old root = %v", err)
	}
}

func TestRefreshAndExpiry(t *testing.T) {
	e := newEnv(t)
	if _, err := e.publish("0.1.0", "aaaa1111"); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(8 * 24 * time.Hour)
	_, err := e.validate(later)
	var ee *updater.ExpiredError
	if !errors.As(err, &ee) || ee.Role != metadata.TIMESTAMP {
		t.Fatalf("validate after 8 days = %v, want the timestamp expired", err)
	}
	e.opts.Now = later
	if err := Refresh(false, e.opts); err != nil {
		t.Fatal(err)
	}
	rep, err := e.validate(later)
	if err != nil {
		t.Fatalf("validate after refresh: %v", err)
	}
	// Targets were signed for 2 weeks at t0: 6 days left, no warning;
	// at 12 days, a warning names it.
	if len(rep.Warnings) != 0 {
		t.Fatalf("warnings = %q", rep.Warnings)
	}
	if rep, err = e.validate(t0.Add(12 * 24 * time.Hour)); err != nil || len(rep.Warnings) != 1 ||
		!strings.HasPrefix(rep.Warnings[0], "targets metadata (version ") {
		t.Fatalf("validate at 12 days = %q, %v", rep.Warnings, err)
	}
	if err := Refresh(true, Options{Dir: e.opts.Dir, Keys: e.keys, Now: t0.Add(12 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if rep, err = e.validate(t0.Add(12 * 24 * time.Hour)); err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("validate after refresh --targets = %q, %v", rep.Warnings, err)
	}
}

func TestValidateNamesBadTarget(t *testing.T) {
	e := newEnv(t)
	res, err := e.publish("0.1.0", "aaaa1111")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tufrepo.Open(e.opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	p := r.TargetPath(r.Targets.Signed.Targets[res.Update.Images.Boot])
	data, _ := os.ReadFile(p)
	data[len(data)-1] ^= 1
	os.Remove(p) // a hard link to the build's file: replace, do not edit
	os.WriteFile(p, data, 0o644)
	_, err = e.validate(t0)
	if !errors.Is(err, updater.ErrHashMismatch) || !strings.Contains(err.Error(), "target "+res.Update.Images.Boot+": download ") {
		t.Fatalf("validate with a changed target = %v", err)
	}
	if _, err := Validate(context.Background(), t.TempDir(), nil, t0, nil); !errors.Is(err, tufrepo.ErrNotRepository) {
		t.Fatalf("Validate(empty dir) = %v", err)
	}
}

func TestCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := CreateKeys(dir, t0); err != nil {
		t.Fatal(err)
	}
	for _, role := range tufrepo.Roles {
		st, err := os.Stat(filepath.Join(dir, KeyFile(role)))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s key: %v, %v", role, st.Mode(), err)
		}
	}
	if err := CreateKeys(dir, t0); !errors.Is(err, ErrKeys) || !strings.Contains(err.Error(), "exists; remove the directory") {
		t.Fatalf("second CreateKeys = %v", err)
	}
	k := Keys{Dir: dir}
	if _, err := k.Signers(t0, tufrepo.Roles...); err != nil {
		t.Fatal(err)
	}
}

func TestLoadExpiration(t *testing.T) {
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "policy.toml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	e, err := LoadExpiration(write("snapshot_expiration = '2 weeks'\ntargets_expiration = '2 weeks'\ntimestamp_expiration = '1 week'\n"))
	if err != nil || len(e) != 3 || e[metadata.TIMESTAMP] != DefaultExpiration()[metadata.TIMESTAMP] || e[metadata.TARGETS] != DefaultExpiration()[metadata.TARGETS] {
		t.Fatalf("upstream's 2w-2w-1w = %v, %v", e, err)
	}
	_, err = LoadExpiration(write("snapshot_expiration = 'soon'\ntargets_expiration = 3\ncolour = 'red'\n"))
	for _, w := range []string{`snapshot_expiration: duration "soon"`, "targets_expiration: expected a string",
		"timestamp_expiration: missing", "colour: unknown key"} {
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}
