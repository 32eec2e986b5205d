package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/petrel-os/petrel/sources/updater"
)

// rpmDBPath is where rpm keeps its database inside the staging root while
// the image is assembled; it is removed before the root is packed.
const rpmDBPath = "/var/lib/rpm"

// InstallRPMs installs rpms into the empty directory root as an image
// build does (tools/ociimage makes container images with it); the rpm
// database is left at RPMDBPath inside root.
func InstallRPMs(ctx context.Context, root string, rpms []string) error {
	return installRPMs(ctx, root, rpms)
}

// RPMDBPath is where rpm keeps its database inside the staging root.
const RPMDBPath = rpmDBPath

// installRPMs installs rpms into the empty directory root with the host's
// rpm. Scriptlets are not run: Petrel packages have none, and the host's
// tools must not run inside the target tree.
func installRPMs(ctx context.Context, root string, rpms []string) error {
	if len(rpms) == 0 {
		return errors.New("install packages: no RPMs in the closure")
	}
	args := []string{"--root", root, "--dbpath", rpmDBPath, "-i", "--ignorearch", "--noscripts", "--notriggers", "--nosignature"}
	args = append(args, rpms...)
	cmd := exec.CommandContext(ctx, "rpm", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install %d RPMs into %s with rpm: %w\n%s", len(rpms), root, err, tail(out, 30))
	}
	return nil
}

// InventoryEntry is one installed package in the application inventory.
type InventoryEntry struct {
	Name         string `json:"Name"`
	Publisher    string `json:"Publisher"`
	Version      string `json:"Version"`
	Release      string `json:"Release"`
	Epoch        string `json:"Epoch"`
	License      string `json:"License"`
	Architecture string `json:"Architecture"`
	URL          string `json:"Url"`
	Summary      string `json:"Summary"`
}

// Inventory is the application inventory: every installed package.
type Inventory struct {
	Content []InventoryEntry `json:"Content"`
}

// readInventory lists the packages installed in root. Names lose the OS
// prefix ("petrel-kernel" → "kernel"), as upstream's inventory does.
func readInventory(ctx context.Context, root, rpmPrefix, publisher string) (*Inventory, error) {
	const qf = `%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{LICENSE}\t%{ARCH}\t%{URL}\t%{SUMMARY}\n`
	cmd := exec.CommandContext(ctx, "rpm", "--root", root, "--dbpath", rpmDBPath, "-qa", "--queryformat", qf)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("query installed packages in %s: %w", root, err)
	}
	inv := &Inventory{Content: []InventoryEntry{}}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			return nil, fmt.Errorf("parse rpm query line %q: want 8 fields, got %d", line, len(f))
		}
		url := f[6]
		if url == "(none)" {
			url = ""
		}
		inv.Content = append(inv.Content, InventoryEntry{
			Name: strings.TrimPrefix(f[0], rpmPrefix), Publisher: publisher, Epoch: f[1], Version: f[2], Release: f[3],
			License: f[4], Architecture: f[5], URL: url, Summary: f[7],
		})
	}
	sort.Slice(inv.Content, func(i, j int) bool { return inv.Content[i].Name < inv.Content[j].Name })
	return inv, nil
}

// MarshalInventory returns the inventory as indented JSON with a newline.
func MarshalInventory(inv *Inventory) ([]byte, error) {
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode application inventory: %w", err)
	}
	return append(b, '\n'), nil
}

// OSRelease holds the fields of /usr/lib/os-release.
type OSRelease struct {
	Name, ID, PrettyName, Version, VariantID, BuildID string
	HomeURL, SupportURL, BugReportURL                 string
}

// Bytes renders the os-release file.
func (r OSRelease) Bytes() []byte {
	var b bytes.Buffer
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s=%q\n", k, v)
		}
	}
	kv("NAME", r.Name)
	kv("ID", r.ID)
	kv("VERSION", r.Version+" ("+r.VariantID+")")
	kv("VERSION_ID", r.Version)
	kv("PRETTY_NAME", fmt.Sprintf("%s %s (%s)", r.PrettyName, r.Version, r.VariantID))
	kv("VARIANT_ID", r.VariantID)
	kv("BUILD_ID", r.BuildID)
	kv("HOME_URL", r.HomeURL)
	kv("SUPPORT_URL", r.SupportURL)
	kv("BUG_REPORT_URL", r.BugReportURL)
	return b.Bytes()
}

// finishRoot writes os-release, the inventory and the trusted root of
// updates into the staging root and removes what must not ship: the RPM
// database and everything under /var (DATA is mounted there at boot).
func finishRoot(root string, rel OSRelease, inventory, trustedRoot []byte) error {
	files := map[string][]byte{
		"usr/lib/os-release":                             rel.Bytes(),
		"usr/share/petrel/application-inventory.json":    inventory,
		strings.TrimPrefix(updater.DefaultRootPath, "/"): trustedRoot,
	}
	for rel, data := range files {
		if err := writeTreeFile(filepath.Join(root, rel), data); err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "var"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read /var of staging root: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(root, "var", e.Name())); err != nil {
			return fmt.Errorf("remove /var/%s from staging root: %w", e.Name(), err)
		}
	}
	return nil
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
