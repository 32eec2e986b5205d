package buildctl_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/buildctl"
)

// buildFixture is the builder's fixture project: base, lib and app (app
// build-requires lib and requires base), kit test-kit = [app].
var buildFixture = filepath.Join("..", "builder", "testdata", "fixture")

// newBuildProject copies the fixture, applies edits (path → content) and
// commits it to a git repository, whose commit time is SOURCE_DATE_EPOCH.
func newBuildProject(t *testing.T, edits map[string]string) string {
	t.Helper()
	for _, tool := range []string{"rpmbuild", "bwrap", "createrepo_c", "cpio"} {
		testkit.Tool(t, tool)
	}
	return testkit.Repo(t, buildFixture, edits)
}

func buildctlRun(t *testing.T, root string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = buildctl.Main(context.Background(), append([]string{"-C", root}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBuildKitIncremental(t *testing.T) {
	root := newBuildProject(t, nil)
	code, out, errOut := buildctlRun(t, root, "build-kit")
	if code != 0 {
		t.Fatalf("build-kit = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(out, "built 3 of 3 packages") || !strings.Contains(out, "kit test-kit assembled: build/kits/test-kit/x86_64 (3 packages)") {
		t.Errorf("first build-kit printed %q", out)
	}
	repo := filepath.Join(root, "build/kits/test-kit/x86_64")
	rpms, _ := filepath.Glob(filepath.Join(repo, "*.rpm"))
	if len(rpms) != 3 {
		t.Fatalf("kit repository holds %q, want 3 RPMs", rpms)
	}
	if _, err := os.Stat(filepath.Join(repo, "repodata", "repomd.xml")); err != nil {
		t.Errorf("kit repository has no repodata: %v", err)
	}
	// The kit installs into an empty root.
	inst := t.TempDir()
	testkit.Run(t, "rpm", append([]string{"--root", inst, "-i", "--nosignature"}, rpms...)...)
	if out := testkit.Run(t, "rpm", "--root", inst, "-qa", "--qf", "%{NAME}\n"); !strings.Contains(out, "petrel-app") {
		t.Errorf("rpm -qa in the installed root = %q", out)
	}
	repomd, _ := os.ReadFile(filepath.Join(repo, "repodata", "repomd.xml"))

	// Nothing changed: no rpmbuild runs (the logs are untouched) and
	// every package is reported cached.
	logInfo, _ := os.Stat(filepath.Join(root, "build/logs/app.log"))
	code, out, errOut = buildctlRun(t, root, "build-kit", "test-kit")
	if code != 0 {
		t.Fatalf("second build-kit = %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "all 3 packages cached") || !strings.Contains(out, "kit test-kit unchanged") {
		t.Errorf("second build-kit printed %q, want all cached and the kit unchanged", out)
	}
	if strings.Contains(errOut, "built") {
		t.Errorf("second build-kit progress %q mentions a build", errOut)
	}
	if st, _ := os.Stat(filepath.Join(root, "build/logs/app.log")); !os.SameFile(st, logInfo) || !st.ModTime().Equal(logInfo.ModTime()) {
		t.Errorf("app.log was rewritten: rpmbuild ran again")
	}

	// Edit base: base rebuilds, and app, which requires it; lib does not.
	spec := filepath.Join(root, "packages/base/base.spec")
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte("Release: 1"), []byte("Release: 2"), 1), 0o644)
	code, out, errOut = buildctlRun(t, root, "build-kit")
	if code != 0 {
		t.Fatalf("build-kit after an edit = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"cached lib", "built base", "built app"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress after editing base.spec lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "built 2 of 3 packages (1 cached)") || !strings.Contains(out, "kit test-kit assembled") {
		t.Errorf("build-kit after an edit printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(repo, "petrel-base-1.0-2.noarch.rpm")); err != nil {
		t.Errorf("kit lacks the new base RPM: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "petrel-base-1.0-1.noarch.rpm")); err == nil {
		t.Errorf("kit still holds the old base RPM")
	}

	// Clean, rebuild: the same repository, byte for byte.
	os.WriteFile(spec, data, 0o644)
	if code, out, errOut := buildctlRun(t, root, "clean"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("clean = %d %q %q", code, out, errOut)
	}
	for _, d := range []string{"rpms", "kits", "state", "logs"} {
		if _, err := os.Stat(filepath.Join(root, "build", d)); err == nil {
			t.Errorf("clean left build/%s", d)
		}
	}
	if code, out, errOut := buildctlRun(t, root, "build-kit"); code != 0 {
		t.Fatalf("build-kit after clean = %d\n%s%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(filepath.Join(repo, "repodata", "repomd.xml")); !bytes.Equal(again, repomd) {
		t.Errorf("repomd.xml differs between two clean builds:\n%s\n---\n%s", repomd, again)
	}
	if code, _, _ := buildctlRun(t, root, "clean", "--all"); code != 0 {
		t.Fatal("clean --all failed")
	}
	if _, err := os.Stat(filepath.Join(root, "build", "cache")); err == nil {
		t.Errorf("clean --all left build/cache")
	}
}

func TestBuildErrors(t *testing.T) {
	good := []byte("upstream tarball\n")
	bad := []byte("tampered tarball\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/src-1.0.tar.gz":
			w.Write(bad)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	goodSum := sha512.Sum512(good)
	badSum := sha512.Sum512(bad)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	libSpec := func(extra, build string) string {
		return "Name: %{_cross_os}lib\nVersion: 2.0\nRelease: 3\nSummary: s\nLicense: MIT\nBuildArch: noarch\n" + extra +
			"\n%description\nd\n%build\n" + build + "\n%install\nmkdir -p %{buildroot}/x\n%files\n/x\n"
	}
	for _, tt := range []struct {
		name  string
		edits map[string]string
		args  []string
		code  int
		want  []string
	}{
		{
			name:  "dependency cycle",
			edits: map[string]string{"packages/lib/lib.spec": libSpec("Requires: %{_cross_os}app", "")},
			code:  2,
			want:  []string{"dependency cycle: app -> lib -> app"},
		},
		{
			name:  "unknown dependency",
			edits: map[string]string{"packages/lib/lib.spec": libSpec("BuildRequires: %{_cross_os}ghost", "")},
			code:  2,
			want:  []string{"packages/lib/lib.spec:7:", `unknown dependency "petrel-ghost"`},
		},
		{
			name:  "malformed spec",
			edits: map[string]string{"packages/lib/lib.spec": "Name: %{_cross_os}lib\nVersion 2.0\nLicense: MIT\n"},
			code:  2,
			want:  []string{"packages/lib/lib.spec:2"},
		},
		{
			name:  "missing source file",
			edits: map[string]string{"packages/lib/lib.spec": libSpec("Source0: lib-2.0.tar.gz", "")},
			code:  2,
			want:  []string{"packages/lib/lib.spec:7", `"lib-2.0.tar.gz"`},
		},
		{
			name: "host tool too old",
			edits: map[string]string{"Twoliter.toml": "schema-version = 1\nrelease-version = \"1.2.3\"\n[os]\nname = \"petrel\"\n" +
				"pretty-name = \"Petrel OS\"\nvendor = \"Petrel\"\n[[sdk.tool]]\ncommand = \"rpmbuild\"\npackage = \"rpm\"\nmin-version = \"99.0\"\n"},
			code: 1,
			want: []string{"rpmbuild (Debian package rpm)", "apt-get install --no-install-recommends rpm"},
		},
		{
			name: "unknown kit",
			args: []string{"build-kit", "nosuch-kit"},
			code: 2,
			want: []string{`unknown kit "nosuch-kit"`},
		},
		{
			name: "unknown package",
			args: []string{"build-package", "nosuch"},
			code: 2,
			want: []string{`"nosuch"`},
		},
		{
			name: "no package named",
			args: []string{"build-package"},
			code: 2,
			want: []string{"usage error"},
		},
		{
			name: "SHA-512 mismatch",
			edits: map[string]string{
				"packages/lib/lib.spec": libSpec("Source0: src-1.0.tar.gz", ""),
				"packages/lib/package.toml": fmt.Sprintf("[[external-files]]\nurl = %q\nsha512 = %q\n",
					srv.URL+"/src-1.0.tar.gz", hex.EncodeToString(goodSum[:])),
				"Makefile.toml": "[env]\nBUILDSYS_BUILD_DIR = \"build\"\nBUILDSYS_UPSTREAM_SOURCE_FALLBACK = \"true\"\n",
			},
			code: 1,
			want: []string{`"src-1.0.tar.gz"`, "expected " + hex.EncodeToString(goodSum[:]), "got " + hex.EncodeToString(badSum[:])},
		},
		{
			name:  "failing build",
			edits: map[string]string{"packages/lib/lib.spec": libSpec("", "echo step one\necho 'fatal: the compiler exploded' >&2\nexit 7")},
			code:  1,
			want:  []string{`build package "lib"`, "build/logs/lib.log", "fatal: the compiler exploded", "Bad exit status"},
		},
		{
			name: "network access in build",
			edits: map[string]string{"packages/lib/lib.spec": libSpec("",
				"bash -c 'exec 3<>/dev/tcp/127.0.0.1/"+port+"'")},
			code: 1,
			want: []string{`build package "lib"`, "Connection refused"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := newBuildProject(t, tt.edits)
			args := tt.args
			if args == nil {
				args = []string{"build-package", "app"}
			}
			code, out, errOut := buildctlRun(t, root, args...)
			t.Logf("exit %d, stderr:\n%s", code, errOut)
			if code != tt.code {
				t.Errorf("buildctl %v = %d, want %d\nstdout: %s\nstderr: %s", args, code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			// A failed build leaves nothing in the lookaside cache.
			filepath.WalkDir(filepath.Join(root, "build", "cache", "lookaside"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("lookaside cache holds %s after %s", p, tt.name)
				}
				return nil
			})
		})
	}
}
