package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/graph"
	"github.com/petrel-os/petrel/tools/project"
)

var _ Graph = (*graph.Graph)(nil)

// fixture copies testdata/fixture to a temporary directory, applies edits
// (path → content; "" deletes) and commits it to a fresh git repository.
func fixture(t *testing.T, edits map[string]string) string {
	t.Helper()
	for _, tool := range []string{"rpmbuild", "rpm", "rpm2cpio", "bwrap", "cpio"} {
		testkit.Tool(t, tool)
	}
	return testkit.Repo(t, filepath.Join("testdata", "fixture"), edits)
}

// newBuilder loads the project at root and returns a Builder writing to
// buildDir, with progress going to out.
func newBuilder(t *testing.T, root, buildDir string, out *bytes.Buffer) *Builder {
	t.Helper()
	p, err := project.Load(context.Background(), root)
	if err != nil {
		t.Fatalf("project.Load(%q): %v", root, err)
	}
	g, err := graph.New(p)
	if err != nil {
		t.Fatalf("graph.New: %v", err)
	}
	cfg, err := p.Config(func(string) string { return "" }, project.Overrides{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildDir = buildDir
	b := &Builder{Project: p, Graph: g, Config: cfg}
	if out != nil {
		b.Progress = out
	}
	return b
}

func build(t *testing.T, b *Builder, pkgs ...string) *Report {
	t.Helper()
	rep, err := b.Build(context.Background(), pkgs)
	if err != nil {
		t.Fatalf("Build(%q): %v", pkgs, err)
	}
	return rep
}

func TestBuildInspectInstall(t *testing.T) {
	root := fixture(t, nil)
	var out bytes.Buffer
	b := newBuilder(t, root, filepath.Join(t.TempDir(), "build"), &out)
	rep := build(t, b, "app")
	if want := []string{"base", "lib", "app"}; !slices.Equal(rep.Built, want) || len(rep.Cached) != 0 {
		t.Errorf("Build(app) built %q cached %q, want built %q", rep.Built, rep.Cached, want)
	}
	for _, want := range []string{"[3/3] built app in "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress output %q lacks %q", out.String(), want)
		}
	}

	rpms, err := b.RPMs("app")
	if err != nil || len(rpms) != 1 {
		t.Fatalf("RPMs(app) = %q, %v; want one RPM", rpms, err)
	}
	if want := filepath.Join(b.Config.BuildDir, "rpms", "app", "petrel-app-0.9-1.noarch.rpm"); rpms[0] != want {
		t.Errorf("RPMs(app) = %q, want %q", rpms[0], want)
	}
	info := testkit.Run(t, "rpm", "-qp", "--qf", "%{NAME}|%{VERSION}|%{RELEASE}|%{LICENSE}|%{VENDOR}|%{BUILDHOST}|%{BUILDTIME}\n", rpms[0])
	if want := "petrel-app|0.9|1|Apache-2.0 OR MIT|Petrel|petrel|1704164645\n"; info != want {
		t.Errorf("rpm -qp --qf of app = %q, want %q", info, want)
	}
	qi := testkit.Run(t, "rpm", "-qip", rpms[0])
	for _, want := range []string{"Name        : petrel-app", "Version     : 0.9", "Release     : 1", "License     : Apache-2.0 OR MIT"} {
		if !strings.Contains(qi, want) {
			t.Errorf("rpm -qip lacks %q:\n%s", want, qi)
		}
	}
	if got, want := testkit.Run(t, "rpm", "-qlp", rpms[0]), "/usr/bin/app\n/usr/share/app/built-with.txt\n"; got != want {
		t.Errorf("rpm -qlp = %q, want %q", got, want)
	}
	// Only explicit dependencies, no automatic ones.
	reqs := testkit.Run(t, "rpm", "-qp", "--requires", rpms[0])
	for _, l := range strings.Split(strings.TrimSpace(reqs), "\n") {
		if l != "petrel-base" && !strings.HasPrefix(l, "rpmlib(") {
			t.Errorf("app requires %q; want only petrel-base and rpmlib()", l)
		}
	}

	// Install every built RPM into an empty root.
	inst := t.TempDir()
	var all []string
	for _, p := range []string{"base", "lib", "app"} {
		r, err := b.RPMs(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r...)
	}
	testkit.Run(t, "rpm", append([]string{"--root", inst, "-i", "--nosignature"}, all...)...)
	got, err := os.ReadFile(filepath.Join(inst, "usr/share/app/built-with.txt"))
	if err != nil || !strings.Contains(string(got), `LIB_VERSION "2.0"`) {
		t.Errorf("installed built-with.txt = %q, %v; want the sysroot's lib.h line", got, err)
	}
	if st, err := os.Stat(filepath.Join(inst, "usr/bin/app")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("installed /usr/bin/app: %v, %v; want mode 0755", st, err)
	}
	if _, err := os.Stat(filepath.Join(inst, "usr/share/factory/etc/motd")); err != nil {
		t.Errorf("base not installed: %v", err)
	}
	// The build log exists; the work directory is gone.
	if _, err := os.Stat(b.LogPath("app")); err != nil {
		t.Errorf("build log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.stateDir("app"), "work")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("work directory left after a successful build: %v", err)
	}
}

func TestIncremental(t *testing.T) {
	root := fixture(t, nil)
	buildDir := filepath.Join(t.TempDir(), "build")
	var out bytes.Buffer
	b := newBuilder(t, root, buildDir, &out)
	build(t, b, "app")
	first, _ := b.RPMs("base")
	st1, _ := os.Stat(first[0])

	out.Reset()
	rep := build(t, newBuilder(t, root, buildDir, &out), "app")
	if len(rep.Built) != 0 || !slices.Equal(rep.Cached, []string{"base", "lib", "app"}) {
		t.Errorf("second Build built %q cached %q, want nothing built", rep.Built, rep.Cached)
	}
	if strings.Contains(out.String(), "built") {
		t.Errorf("second Build printed %q, want only cached lines", out.String())
	}
	if _, err := os.Stat(b.LogPath("base")); err != nil {
		t.Fatal(err)
	}

	// Change lib's spec: lib and what depends on it rebuild, base does not.
	spec := filepath.Join(root, "packages/lib/lib.spec")
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte(`"2.0"`), []byte(`"2.1"`), 1), 0o644)
	b3 := newBuilder(t, root, buildDir, &out)
	rep = build(t, b3, "app")
	want := append([]string{"lib"}, b3.Graph.(*graph.Graph).Dependents("lib")...)
	if !slices.Equal(rep.Built, want) || !slices.Equal(rep.Cached, []string{"base"}) {
		t.Errorf("after editing lib.spec Build built %q cached %q, want built %q cached [base]", rep.Built, rep.Cached, want)
	}
	if !slices.Equal(want, []string{"lib", "app"}) {
		t.Errorf("Dependents(lib) = %q, want [app]", want[1:])
	}
	st2, _ := os.Stat(first[0])
	if !os.SameFile(st1, st2) {
		t.Errorf("base's RPM was replaced although base was cached")
	}
	rpms, _ := b3.RPMs("app")
	inst := t.TempDir()
	cmd := exec.Command("sh", "-c", "rpm2cpio "+rpms[0]+" | cpio -i --quiet --to-stdout ./usr/share/app/built-with.txt")
	cmd.Dir = inst
	if got, err := cmd.Output(); err != nil || !strings.Contains(string(got), `"2.1"`) {
		t.Errorf("rebuilt app carries %q, %v; want the new lib.h", got, err)
	}

	// A deleted RPM is rebuilt even though the key is unchanged.
	os.RemoveAll(filepath.Join(buildDir, "rpms", "base"))
	rep = build(t, newBuilder(t, root, buildDir, &out), "base")
	if !slices.Equal(rep.Built, []string{"base"}) {
		t.Errorf("Build after deleting base's RPMs built %q, want [base]", rep.Built)
	}
}

func TestReproducible(t *testing.T) {
	root := fixture(t, nil)
	var dirs []string
	for range 2 {
		d := filepath.Join(t.TempDir(), "build")
		build(t, newBuilder(t, root, d, nil), "app")
		dirs = append(dirs, d)
	}
	n := 0
	filepath.WalkDir(filepath.Join(dirs[0], "rpms"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dirs[0], p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(dirs[1], rel))
		if err != nil {
			t.Errorf("second build lacks %s: %v", rel, err)
		} else if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two clean builds", rel)
		}
		n++
		return nil
	})
	if n != 3 {
		t.Errorf("compared %d RPMs, want 3", n)
	}
}

func TestBuildFailures(t *testing.T) {
	// A server on the host's loopback: reachable from the test, not from
	// the sandbox, which has its own network namespace.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "reachable") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	probe := fmt.Sprintf(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/%s && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3'`, port)
	if out, err := exec.Command("sh", "-c", probe).CombinedOutput(); err != nil || !strings.Contains(string(out), "reachable") {
		t.Fatalf("probe %q outside the sandbox: %v %s; the test needs it to work there", probe, err, out)
	}
	for _, tt := range []struct {
		name  string
		build string
		want  []string
	}{
		{"failing build", "echo compiling lib; echo 'error: something broke' >&2; exit 3", []string{"error: something broke", "compiling lib"}},
		{"network access", probe, []string{"Connection refused"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := "Name: %{_cross_os}lib\nVersion: 2.0\nRelease: 3\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\n" +
				tt.build + "\n%install\nmkdir -p %{buildroot}/x\n%files\n/x\n"
			root := fixture(t, map[string]string{"packages/lib/lib.spec": spec})
			b := newBuilder(t, root, filepath.Join(t.TempDir(), "build"), nil)
			rep, err := b.Build(context.Background(), []string{"app"})
			var be *BuildError
			if !errors.As(err, &be) {
				t.Fatalf("Build() error = %v, want a *BuildError", err)
			}
			msg := err.Error()
			t.Logf("error:\n%s", msg)
			for _, want := range append([]string{`build package "lib"`, b.LogPath("lib")}, tt.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if slices.Contains(rep.Built, "app") || slices.Contains(rep.Built, "lib") {
				t.Errorf("report built %q after lib failed", rep.Built)
			}
			if _, err := b.RPMs("lib"); err == nil {
				t.Errorf("RPMs(lib) succeeded after a failed build")
			}
		})
	}
}

func TestIdentityMacros(t *testing.T) {
	p := &project.Project{Manifest: project.Manifest{ReleaseVersion: "1.0.0", OS: project.OSIdentity{Name: "remix", PrettyName: "Remix 100%", Vendor: "ACME"}}}
	got, err := IdentityMacros(p, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"%_cross_os remix-\n", "%_cross_vendor remix\n", "%vendor ACME\n", "%_cross_pretty_name Remix 100%%\n", "%_cross_go_arch amd64\n", "%_cross_home_url %{nil}\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("IdentityMacros() lacks %q:\n%s", want, got)
		}
	}
	if _, err := IdentityMacros(p, "mips"); !errors.Is(err, project.ErrInvalidInput) {
		t.Errorf("IdentityMacros(mips) error = %v, want ErrInvalidInput", err)
	}
	// rpm agrees with the generated file.
	f := filepath.Join(t.TempDir(), "id.macros")
	os.WriteFile(f, got, 0o644)
	out := testkit.Run(t, "rpm", "--load", f, "--eval", "%{_cross_os}app %{_cross_pretty_name}")
	if out != "remix-app Remix 100%\n" {
		t.Errorf("rpm --eval = %q", out)
	}
}
