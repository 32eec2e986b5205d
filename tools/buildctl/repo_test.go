package buildctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/verity"
	"github.com/petrel-os/petrel/tools/buildctl"
)

// fakeBuild leaves an image directory as buildctl make does, with small
// zstd update images (a root and its dm-verity hash tree), and points
// latest at it.
func fakeBuild(t *testing.T, root, version, buildID string) {
	t.Helper()
	vdir := filepath.Join(root, "build", "images", "x86_64-metal-dev")
	dir := filepath.Join(vdir, version+"-"+buildID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := "petrel-metal-dev-x86_64-" + version + "-" + buildID
	rootFS := []byte(strings.Repeat(prefix, 4096))
	var hash testkit.MemFile
	if _, err := verity.Format(context.Background(), bytes.NewReader(rootFS), int64(len(rootFS)), &hash,
		verity.Params{Salt: []byte(buildID), UUID: verity.DeriveUUID([]byte(buildID))}); err != nil {
		t.Fatal(err)
	}
	for s, raw := range map[string][]byte{"-boot.ext4": []byte(strings.Repeat(prefix+"-boot", 1000)), "-root.erofs": rootFS, "-root.verity": hash.Bytes()} {
		name := prefix + s
		var b bytes.Buffer
		if err := imagecodec.Compress(context.Background(), &b, bytes.NewReader(raw), imagecodec.LevelFastest); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+imagecodec.Ext), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(vdir, "latest"))
	if err := os.Symlink(version+"-"+buildID, filepath.Join(vdir, "latest")); err != nil {
		t.Fatal(err)
	}
}

// runner returns a function that runs buildctl on the project root for
// metal-dev x86_64, checks its exit code and returns its output.
func runner(t *testing.T, root string) func(wantCode int, args ...string) string {
	return func(wantCode int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := buildctl.Main(context.Background(), append([]string{"-C", root, "--variant", "metal-dev", "--arch", "x86_64"}, args...), &out, &errb)
		if code != wantCode {
			t.Fatalf("buildctl %v = %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
}

func TestRepoCommands(t *testing.T) {
	root := testkit.Copy(t, fixtureRoot, nil)
	run := runner(t, root)
	// No keys yet: a clear error and exit 2.
	if out := run(2, "repo"); !strings.Contains(out, "run buildctl make first") {
		t.Fatalf("repo without a build: %s", out)
	}
	fakeBuild(t, root, "0.1.0", "aaaa1111")
	if out := run(2, "repo"); !strings.Contains(out, "no root metadata at "+filepath.Join(root, ".keys", "root.json")+" (create development keys with `buildctl repo keys`)") {
		t.Fatalf("repo without keys: %s", out)
	}
	run(0, "repo", "keys")
	if out := run(2, "repo", "keys"); !strings.Contains(out, "exists; remove the directory") {
		t.Fatalf("second repo keys: %s", out)
	}
	out := run(0, "repo")
	if !strings.Contains(out, "published metal-dev x86_64 0.1.0 (max_version 0.1.0) in "+filepath.Join(root, "build", "repos", "metal-dev", "x86_64")) ||
		!strings.Contains(out, "petrel-metal-dev-x86_64-0.1.0-aaaa1111-root.erofs.zst") {
		t.Fatalf("repo: %s", out)
	}
	if out := run(0, "repo"); !strings.Contains(out, "already published: metal-dev x86_64 0.1.0") {
		t.Fatalf("repo again: %s", out)
	}
	fakeBuild(t, root, "0.1.0", "bbbb2222")
	if out := run(2, "repo"); !strings.Contains(out, "version already published with other content") {
		t.Fatalf("repo of another 0.1.0 build: %s", out)
	}
	if out := run(0, "repo", "validate"); !strings.Contains(out, "4 targets") || !strings.Contains(out, "is valid") {
		t.Fatalf("validate: %s", out)
	}
	run(0, "repo", "refresh", "--targets")
	if out := run(2, "repo", "max-version", "0.0.9"); !strings.Contains(out, "not a published version (published: 0.1.0)") {
		t.Fatalf("max-version 0.0.9: %s", out)
	}
	if out := run(0, "repo", "max-version", "0.1.0"); !strings.Contains(out, "max_version of metal-dev x86_64 is 0.1.0") {
		t.Fatalf("max-version: %s", out)
	}
	policy := filepath.Join(root, "policy.toml")
	os.WriteFile(policy, []byte("snapshot_expiration = '1 day'\n"), 0o644)
	if out := run(2, "repo", "refresh", "--expiration-policy", policy); !strings.Contains(out, "targets_expiration: missing") {
		t.Fatalf("refresh with a bad policy: %s", out)
	}
	if out := run(2, "repo", "validate", t.TempDir()); !strings.Contains(out, ": not a TUF repository") {
		t.Fatalf("validate of an empty directory: %s", out)
	}
}

// TestRepoMigrations: buildctl migrations lists the checked steps, and
// buildctl repo publishes the release's migrations with it; a release
// that hosts of the published version could not reach is refused.
func TestRepoMigrations(t *testing.T) {
	root := testkit.Copy(t, fixtureRoot, nil)
	run := runner(t, root)
	if out := run(0, "migrations"); out != "no migrations: hosts can move only between builds of 0.1.0\n" {
		t.Fatalf("migrations: %q", out)
	}
	run(0, "repo", "keys")
	fakeBuild(t, root, "0.1.0", "aaaa1111")
	run(0, "repo")

	manifest, err := os.ReadFile(filepath.Join(root, "Twoliter.toml"))
	if err != nil {
		t.Fatal(err)
	}
	release := strings.Replace(string(manifest), `release-version = "0.1.0"`, `release-version = "0.2.0"`, 1)
	if err := os.WriteFile(filepath.Join(root, "Twoliter.toml"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	fakeBuild(t, root, "0.2.0", "cccc3333")
	if out := run(2, "repo"); !strings.Contains(out, "hosts on 0.1.0 could not move their settings to 0.2.0: missing migration") {
		t.Fatalf("repo without a step: %s", out)
	}
	dir := filepath.Join(root, "sources", "migration", "migrations", "v0.2.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mig := "description = \"greeting becomes motd\"\n[[operation]]\nkind = \"move\"\nfrom = \"settings.greeting\"\nto = \"settings.motd\"\n"
	if err := os.WriteFile(filepath.Join(dir, "greeting.toml"), []byte(mig), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(2, "migrations"); !strings.Contains(out, "sources/migration/migrations/v0.2.0/greeting.toml: not listed in Twoliter.toml [migrations]") {
		t.Fatalf("migrations with an unlisted file: %s", out)
	}
	release += "\n[migrations]\n\"(0.1.0, 0.2.0)\" = [\"greeting\"]\n"
	if err := os.WriteFile(filepath.Join(root, "Twoliter.toml"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(0, "migrations"); !strings.Contains(out, "(0.1.0, 0.2.0)  migrate_v0.2.0_greeting.toml  1           greeting becomes motd") {
		t.Fatalf("migrations: %q", out)
	}
	if out := run(0, "repo"); !strings.Contains(out, "published metal-dev x86_64 0.2.0") || !strings.Contains(out, "(0.1.0, 0.2.0) migrate_v0.2.0_greeting.toml") {
		t.Fatalf("repo: %s", out)
	}
	if out := run(0, "repo", "validate"); !strings.Contains(out, "8 targets") {
		t.Fatalf("validate: %s", out)
	}
}
