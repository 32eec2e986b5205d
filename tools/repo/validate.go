package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
)

// ExpiryWarning is how close to its expiry a role makes Validate warn
// (upstream's check-repo-expirations: 3 days).
const ExpiryWarning = 3 * 24 * time.Hour

// Report is what Validate found.
type Report struct {
	Roles   []updater.RoleInfo
	Targets []updater.Target
	// Warnings are roles that expire within ExpiryWarning.
	Warnings []string
}

// Locations returns the metadata and targets URLs of a repository given
// as a directory or as the URL of its directory (…/<variant>/<arch>).
func Locations(source string) (metadataURL, targetsURL string, err error) {
	if u, perr := url.Parse(source); perr == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file") {
		base := strings.TrimSuffix(source, "/")
		return base + "/" + tufrepo.MetadataDir, base + "/" + tufrepo.TargetsDir, nil
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(abs, tufrepo.MetadataDir)); err != nil {
		return "", "", fmt.Errorf("%w: %s: %w", ErrInput, source, tufrepo.ErrNotRepository)
	}
	u := url.URL{Scheme: "file", Path: abs}
	return u.String() + "/" + tufrepo.MetadataDir, u.String() + "/" + tufrepo.TargetsDir, nil
}

// Validate reads the repository at source as a host would: it refreshes
// from root (the trusted root.json) with sources/updater into a fresh
// cache, downloads every target checking its signed length and hashes,
// and checks that manifest.json parses and names only signed targets. It
// returns every problem it finds, each naming the role or target.
func Validate(ctx context.Context, source string, root []byte, now time.Time, logger *slog.Logger) (*Report, error) {
	mdURL, tURL, err := Locations(source)
	if err != nil {
		return nil, err
	}
	cache, err := os.MkdirTemp("", "petrel-validate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cache)
	c, err := updater.New(updater.Config{MetadataURL: mdURL, TargetsURL: tURL, TrustedRoot: root,
		CacheDir: filepath.Join(cache, "metadata"), Now: func() time.Time { return now }, Logger: logger})
	if err != nil {
		return nil, err
	}
	r, err := c.Refresh(ctx)
	if err != nil {
		return nil, fmt.Errorf("validate %s: %w", source, err)
	}
	rep := &Report{Roles: r.Roles(), Targets: r.Targets()}
	for _, ri := range rep.Roles {
		if left := ri.Expires.Sub(now); left < ExpiryWarning {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s metadata (version %d) expires in %s, at %s",
				ri.Role, ri.Version, left.Round(time.Minute), ri.Expires.Format(time.RFC3339)))
		}
	}
	var errs []error
	for _, t := range rep.Targets {
		if err := r.Download(ctx, t.Name, io.Discard); err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
		}
	}
	m, err := r.Manifest(ctx)
	if err != nil {
		errs = append(errs, err)
	} else {
		for i, u := range m.Updates {
			for _, name := range u.Images.Names() {
				if _, err := r.Target(name); err != nil {
					errs = append(errs, fmt.Errorf("manifest.json: updates[%d] (%s %s %s): image %w", i, u.Variant, u.Arch, u.Version, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("validate %s: %w", source, err)
	}
	return rep, nil
}
