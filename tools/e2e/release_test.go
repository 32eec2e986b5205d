package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/awstest"
	"github.com/petrel-os/petrel/tools/buildctl"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/sbom/sbomtest"
)

// linkTree hard-links the files under src into dst.
func linkTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if e.Type().IsRegular() {
			return os.Link(p, filepath.Join(dst, rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRelease runs `buildctl release --ami` on the project, as the release
// workflow does, with the package builds of the default image (every
// variant installs the same packages, so none is built again), its own
// build directory, development keys and the AWS endpoint of awstest. It
// checks the release directory, SHA256SUMS with sha256sum -c, the SBOMs,
// the update repositories and the AMI against the aws-dev image byte for
// byte, then runs the release again: nothing is redone.
func TestRelease(t *testing.T) {
	builtImage(t) // the packages, built and cached in the project's build/
	root := projectRoot(t)
	build := t.TempDir()
	for _, d := range []string{"rpms", "state/x86_64"} {
		linkTree(t, filepath.Join(root, "build", d), filepath.Join(build, d))
	}
	srv := awstest.NewServer(t)
	srv.PendingPolls = 0
	for _, kv := range append(srv.Env("us-west-2"), "BUILDSYS_BUILD_DIR="+build, "PUBLISH_KEYS_DIR="+filepath.Join(build, "keys"), "AWS_PROFILE=") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		start := time.Now()
		code := buildctl.Main(context.Background(), append([]string{"-C", root}, args...), &out, &errb)
		if code != 0 {
			t.Fatalf("buildctl %s = %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		t.Logf("buildctl %s took %.1fs:\n%s", strings.Join(args, " "), time.Since(start).Seconds(), out.String())
		return out.String(), errb.String()
	}
	run("repo", "keys")
	out, errb := run("release", "--ami")
	if strings.Contains(out+errb, awstest.SecretAccessKey) {
		t.Error("the secret access key was printed")
	}
	for _, want := range []string{"aws-dev     image  done", "aws-dev     repo   done", "aws-dev     ami    done", "aws-dev     ova    off",
		"metal-dev   ami    off", "no ami.toml", "vmware-dev  ova    done", "(all)       sums   done"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
	rels, err := filepath.Glob(filepath.Join(build, "releases", "0.1.0-*"))
	if err != nil || len(rels) != 1 {
		t.Fatalf("release directories %v, %v", rels, err)
	}
	dir := rels[0]

	// SHA256SUMS, checked by sha256sum.
	cmd := exec.Command(testkit.Tool(t, "sha256sum"), "--check", "--strict", "SHA256SUMS")
	cmd.Dir = dir
	check := testkit.RunCmd(t, cmd)
	if n := strings.Count(check, ": OK\n"); n < 20 {
		t.Errorf("sha256sum --check verified %d files:\n%s", n, check)
	}

	for _, v := range []string{"aws-dev", "metal-dev", "vmware-dev"} {
		imgDir := filepath.Join(dir, "images", "x86_64-"+v)
		osImg, _, err := image.FindDiskImage(imgDir)
		if err != nil {
			t.Fatal(err)
		}
		prefix := strings.TrimSuffix(osImg, ".img")
		for suffix, validate := range map[string]func([]byte) error{
			image.SuffixSPDX:      func(b []byte) error { _, err := sbomtest.SPDX(b); return err },
			image.SuffixCycloneDX: func(b []byte) error { _, err := sbomtest.CycloneDX(b); return err },
		} {
			b, err := os.ReadFile(prefix + suffix)
			if err == nil {
				err = validate(b)
			}
			if err != nil {
				t.Errorf("%s%s: %v", filepath.Base(prefix), suffix, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "repos", v, "x86_64", "metadata", "timestamp.json")); err != nil {
			t.Errorf("the release lacks the update repository of %s: %v", v, err)
		}
		if v == "vmware-dev" {
			if _, err := os.Stat(prefix + ".ova"); err != nil {
				t.Error(err)
			}
		}
		if v == "aws-dev" {
			if _, err := os.Stat(prefix + "-amis.json"); err != nil {
				t.Error(err)
			}
			reg := srv.Region("us-west-2")
			if len(reg.Images) != 1 {
				t.Fatalf("%d AMIs registered", len(reg.Images))
			}
			for _, im := range reg.Images {
				if err := reg.Snapshots[im.Mappings[0].SnapshotID].Equal(osImg); err != nil {
					t.Errorf("the AMI's root snapshot: %v", err)
				}
				if err := reg.Snapshots[im.Mappings[1].SnapshotID].Equal(prefix + "-data.img"); err != nil {
					t.Errorf("the AMI's data snapshot: %v", err)
				}
				if im.Form.Get("BlockDeviceMapping.1.Ebs.VolumeType") != "gp3" || im.Form.Get("ImdsSupport") != "v2.0" {
					t.Errorf("RegisterImage from variants/aws-dev/ami.toml: %v", im.Form)
				}
			}
		}
	}

	// Again: every step was done.
	puts := srv.Calls("PutSnapshotBlock")
	out, _ = run("release", "--ami")
	if strings.Contains(out, " done  ") && !strings.Contains(out, "(all)       sums   done") || strings.Count(out, "done before") != 8 {
		t.Errorf("the second release redid steps:\n%s", out)
	}
	if srv.Calls("PutSnapshotBlock") != puts || srv.Calls("RegisterImage") != 1 {
		t.Errorf("the second release uploaded %d blocks and registered %d images", srv.Calls("PutSnapshotBlock")-puts, srv.Calls("RegisterImage"))
	}
}
