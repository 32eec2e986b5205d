package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/verity"
	"github.com/petrel-os/petrel/sources/waves"
)

var (
	// ErrInput marks bad input: a missing image, a mismatched build.
	ErrInput = errors.New("bad input")
	// ErrPublished marks a version already published with other content.
	ErrPublished = errors.New("version already published with other content")
)

// Dir returns the repository directory of variant and arch under the
// build directory: build/repos/<variant>/<arch>.
func Dir(buildDir, variant, arch string) string {
	return filepath.Join(buildDir, "repos", variant, arch)
}

// Release is one build to publish.
type Release struct {
	Variant, Arch string
	Version       manifest.Version
	// ImageDir is the build's output directory (image.Latest), holding
	// the update images *-boot.ext4.zst, *-root.<fs>.zst and
	// *-root.verity.zst.
	ImageDir string
	// Migrations are the steps of the release chain (Twoliter.toml
	// [migrations]): each step's migration files in the order they run.
	Migrations map[manifest.Span][]Migration
}

// Migration is one settings migration file to publish.
type Migration struct {
	// Target is its name in the repository and the manifest
	// (migrate_v<TO>_<name>.toml); Path the file.
	Target, Path string
}

// Options are the repository and how to sign it.
type Options struct {
	// Dir is the repository (Dir(buildDir, variant, arch)).
	Dir        string
	Keys       Keys
	Expiration Expiration
	// Plan spreads a new release over the fleet; Start is when the plan
	// starts (Now when zero).
	Plan  *waves.Plan
	Start time.Time
	Now   time.Time
	// Logger is told what happens (discarded when nil).
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Expiration == nil {
		o.Expiration = DefaultExpiration()
	}
	if o.Plan == nil {
		o.Plan = waves.DefaultPlan()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Start.IsZero() {
		o.Start = o.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result says what Publish did.
type Result struct {
	Update manifest.Update
	// Already is true when the same release was published before;
	// nothing was signed.
	Already bool
}

// FindImages returns the three update images of a build directory.
func FindImages(dir string) (manifest.Images, error) {
	find := func(pattern string, skip string) (string, error) {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return "", err
		}
		var found []string
		for _, p := range m {
			if skip == "" || !strings.HasSuffix(p, skip) {
				found = append(found, filepath.Base(p))
			}
		}
		switch len(found) {
		case 0:
			return "", fmt.Errorf("%w: no %s in %s (run buildctl make)", ErrInput, pattern, dir)
		case 1:
			return found[0], nil
		}
		return "", fmt.Errorf("%w: several %s in %s: %s", ErrInput, pattern, dir, strings.Join(found, ", "))
	}
	var imgs manifest.Images
	var errs []error
	var err error
	if imgs.Boot, err = find("*-boot.ext4"+imagecodec.Ext, ""); err != nil {
		errs = append(errs, err)
	}
	if imgs.Root, err = find("*-root.*"+imagecodec.Ext, "-root.verity"+imagecodec.Ext); err != nil {
		errs = append(errs, err)
	}
	if imgs.Hash, err = find("*-root.verity"+imagecodec.Ext, ""); err != nil {
		errs = append(errs, err)
	}
	return imgs, errors.Join(errs...)
}

// maxHashImage bounds the decompressed hash image RootHash reads: far
// above a HASH partition (20 MiB in the 4 GiB plan).
const maxHashImage = 64 << 20

// RootHash returns the dm-verity root hash (hex) of a compressed hash
// image, which the manifest signs with the update so that a host checks
// the root it wrote against it.
func RootHash(hashImage string) (string, error) {
	f, err := os.Open(hashImage)
	if err != nil {
		return "", fmt.Errorf("%w: read hash image: %w", ErrInput, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := imagecodec.Decompress(context.Background(), &b, f, maxHashImage); err != nil {
		return "", fmt.Errorf("%w: read hash image %s: %w", ErrInput, hashImage, err)
	}
	root, err := verity.RootHash(context.Background(), bytes.NewReader(b.Bytes()))
	if err != nil {
		return "", fmt.Errorf("%w: hash image %s: %w", ErrInput, hashImage, err)
	}
	return hex.EncodeToString(root), nil
}

// open opens the repository in o.Dir, or creates it from the keys' root.
// A newer root among the keys (a rotation) is published into it.
func open(o Options) (*tufrepo.Repo, error) {
	rootJSON, root, err := o.Keys.Root()
	if err != nil {
		return nil, err
	}
	r, err := tufrepo.Open(o.Dir)
	if errors.Is(err, tufrepo.ErrNotRepository) {
		return tufrepo.Create(o.Dir, rootJSON)
	}
	if err != nil {
		return nil, err
	}
	switch have := r.Root.Signed.Version; {
	case root.Signed.Version < have:
		return nil, fmt.Errorf("%w: %s is root version %d, the repository %s has version %d: sign with the newer root's keys",
			ErrKeys, o.Keys.Path(RootFile), root.Signed.Version, o.Dir, have)
	case root.Signed.Version > have:
		if err := r.WriteRoot(rootJSON); err != nil {
			return nil, err
		}
	case root.Signed.Version == have:
		cur, _ := os.ReadFile(filepath.Join(o.Dir, tufrepo.MetadataDir, RootFile))
		if !bytes.Equal(bytes.TrimSpace(cur), bytes.TrimSpace(rootJSON)) {
			return nil, fmt.Errorf("%w: %s is version %d of another root of trust than the repository %s",
				ErrKeys, o.Keys.Path(RootFile), have, o.Dir)
		}
	}
	return r, nil
}

// readManifest returns the repository's manifest, or an empty one.
func readManifest(r *tufrepo.Repo) (*manifest.Manifest, error) {
	t := r.Targets.Signed.Targets[manifest.TargetName]
	if t == nil {
		return &manifest.Manifest{Migrations: manifest.Migrations{}}, nil
	}
	data, err := os.ReadFile(r.TargetPath(t))
	if err != nil {
		return nil, fmt.Errorf("read the repository's manifest: %w", err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read the repository's manifest %s: %w", r.TargetPath(t), err)
	}
	return m, nil
}

// Publish adds rel to the repository: its images as targets, an update in
// manifest.json with waves from the plan, and max_version raised as
// upstream does; then it signs targets, snapshot and timestamp. The same
// release published again changes nothing; the same version with other
// images is refused with ErrPublished.
func Publish(rel Release, o Options) (Result, error) {
	o.defaults()
	if base := filepath.Base(rel.ImageDir); !strings.HasPrefix(base, rel.Version.String()+"-") {
		return Result{}, fmt.Errorf("%w: the latest build %s is not of release %s (run buildctl make)", ErrInput, rel.ImageDir, rel.Version)
	}
	imgs, err := FindImages(rel.ImageDir)
	if err != nil {
		return Result{}, err
	}
	if imgs.RootHash, err = RootHash(filepath.Join(rel.ImageDir, imgs.Hash)); err != nil {
		return Result{}, err
	}
	keys, err := o.Keys.Signers(o.Now, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP)
	if err != nil {
		return Result{}, err
	}
	r, err := open(o)
	if err != nil {
		return Result{}, err
	}
	m, err := readManifest(r)
	if err != nil {
		return Result{}, err
	}
	hashes := map[string]string{}
	for _, name := range imgs.Names() {
		_, sum, err := tufrepo.HashFile(filepath.Join(rel.ImageDir, name))
		if err != nil {
			return Result{}, err
		}
		hashes[name] = hex.EncodeToString(sum)
		if t := r.Targets.Signed.Targets[name]; t != nil && hex.EncodeToString(t.Hashes["sha256"]) != hashes[name] {
			return Result{}, fmt.Errorf("%w: target %s is already published with sha256 %s, the build has %s",
				ErrPublished, name, hex.EncodeToString(t.Hashes["sha256"]), hashes[name])
		}
	}
	plan, err := planMigrations(r, m, rel)
	if err != nil {
		return Result{}, err
	}
	if u := m.Find(rel.Variant, rel.Arch, rel.Version); u != nil {
		if u.Images != imgs {
			return Result{}, fmt.Errorf("%w: %s %s %s is published with images %s, %s, %s; the build has %s, %s, %s "+
				"(raise release-version in Twoliter.toml for a new release)", ErrPublished, rel.Variant, rel.Arch, rel.Version,
				u.Images.Root, u.Images.Boot, u.Images.Hash, imgs.Root, imgs.Boot, imgs.Hash)
		}
		if n := len(plan.files) + len(plan.steps); n > 0 {
			return Result{}, fmt.Errorf("%w: %s %s %s is published, but Twoliter.toml lists %d migrations or steps the repository lacks "+
				"(raise release-version in Twoliter.toml for a new release)", ErrPublished, rel.Variant, rel.Arch, rel.Version, n)
		}
		o.Logger.Info("release already published", "version", rel.Version, "dir", o.Dir)
		return Result{Update: *u, Already: true}, nil
	}
	sched, err := o.Plan.Schedule(o.Start)
	if err != nil {
		return Result{}, fmt.Errorf("schedule waves: %w", err)
	}
	u := manifest.Update{Variant: rel.Variant, Arch: rel.Arch, Version: rel.Version, Waves: sched, Images: imgs}
	if err := m.Add(u); err != nil {
		return Result{}, err
	}
	if m.Migrations == nil {
		m.Migrations = manifest.Migrations{}
	}
	for span, names := range plan.steps {
		m.Migrations[span] = names
	}
	if err := checkChains(m, rel.Variant, rel.Arch, rel.Version); err != nil {
		return Result{}, err
	}
	for _, name := range imgs.Names() {
		if _, err := r.AddTarget(name, filepath.Join(rel.ImageDir, name)); err != nil {
			return Result{}, err
		}
	}
	for _, f := range plan.files {
		if _, err := r.AddTarget(f.Target, f.Path); err != nil {
			return Result{}, err
		}
	}
	if err := commitManifest(r, m, keys, o); err != nil {
		return Result{}, err
	}
	o.Logger.Info("published release", "version", rel.Version, "dir", o.Dir, "max_version", m.Find(rel.Variant, rel.Arch, rel.Version).MaxVersion)
	return Result{Update: *m.Find(rel.Variant, rel.Arch, rel.Version)}, nil
}

func commitManifest(r *tufrepo.Repo, m *manifest.Manifest, keys map[string][]*tufrepo.Key, o Options) error {
	data, err := manifest.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := r.AddTargetBytes(manifest.TargetName, data); err != nil {
		return err
	}
	return r.Commit(tufrepo.Commit{Now: o.Now, Expires: o.Expiration, Keys: keys, Targets: true})
}

// SetMaxVersion sets max_version of variant and arch to v, one of their
// published versions, and re-signs: lowering it pulls hosts back to v.
func SetMaxVersion(variant, arch string, v manifest.Version, o Options) error {
	o.defaults()
	keys, err := o.Keys.Signers(o.Now, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	r, err := tufrepo.Open(o.Dir)
	if err != nil {
		return err
	}
	m, err := readManifest(r)
	if err != nil {
		return err
	}
	if err := m.SetMaxVersion(variant, arch, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return commitManifest(r, m, keys, o)
}

// Refresh re-signs snapshot and timestamp (and targets too with
// withTargets) with new versions and expiry, adding nothing.
func Refresh(withTargets bool, o Options) error {
	o.defaults()
	roles := []string{metadata.SNAPSHOT, metadata.TIMESTAMP}
	if withTargets {
		roles = append(roles, metadata.TARGETS)
	}
	keys, err := o.Keys.Signers(o.Now, roles...)
	if err != nil {
		return err
	}
	r, err := tufrepo.Open(o.Dir)
	if err != nil {
		return err
	}
	return r.Commit(tufrepo.Commit{Now: o.Now, Expires: o.Expiration, Keys: keys, Targets: withTargets})
}
