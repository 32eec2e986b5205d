package sysusers

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The factory files of Petrel's filesystem package.
const (
	basePasswd = "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	baseGroup = "root:x:0:\napi:x:274:\nnogroup:x:65534:\n"
)

// tree is the input of one Apply test.
type tree struct {
	confs         map[string]string // sysusers.d file name -> content
	passwd, group string
}

// write creates t in a new temporary root and returns the root.
func (tr tree) write(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, confDir)
	etc := filepath.Join(root, factoryEtc)
	for _, d := range []string{dir, etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range tr.confs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"passwd": tr.passwd, "group": tr.group} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readEtc returns the factory passwd and group files of root.
func readEtc(t *testing.T, root string) (passwd, group string) {
	t.Helper()
	p, err := os.ReadFile(filepath.Join(root, factoryEtc, "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(filepath.Join(root, factoryEtc, "group"))
	if err != nil {
		t.Fatal(err)
	}
	return string(p), string(g)
}

// sysusersOracle runs systemd-sysusers --root on a new root that holds the
// sysusers.d files of root and, as its etc/passwd and etc/group, root's
// factory files, and returns the passwd and group it wrote.
func sysusersOracle(t *testing.T, root string) (passwd, group string) {
	t.Helper()
	o := t.TempDir()
	if err := os.CopyFS(filepath.Join(o, confDir), os.DirFS(filepath.Join(root, confDir))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(o, "etc"), os.DirFS(filepath.Join(root, factoryEtc))); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "systemd-sysusers", "--root", o)
	p, err := os.ReadFile(filepath.Join(o, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(filepath.Join(o, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	return string(p), string(g)
}

func TestApply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		conf       string // the content of a.conf
		passwd     string // lines added to basePasswd
		group      string // lines added to baseGroup
		wantPasswd string // passwd after the basePasswd lines
		wantGroup  string // group after the baseGroup lines
		// differs says why systemd-sysusers gives another result (see the
		// package doc); "" means it must give the same.
		differs string
	}{
		{name: "nothing", conf: "# nothing\n"},
		{
			name:      "group fixed and dynamic",
			conf:      "g foo 500\ng bar -\n",
			wantGroup: "foo:x:500:\nbar:x:999:\n",
		},
		{
			name:       "user dynamic gets uid = gid",
			conf:       `u systemd-network - "systemd Network Management"`,
			wantPasswd: "systemd-network:x:999:999:systemd Network Management:/:/usr/sbin/nologin\n",
			wantGroup:  "systemd-network:x:999:\n",
		},
		{
			name:       "user fixed gets gid = uid",
			conf:       "u foo 500 Foo /var/foo /bin/sh\n",
			wantPasswd: "foo:x:500:500:Foo:/var/foo:/bin/sh\n",
			wantGroup:  "foo:x:500:\n",
		},
		{
			name:       "user fixed, gid = uid taken",
			differs:    "systemd-sysusers gives foo a dynamic UID (999) as GID 500 is taken; Apply keeps the fixed UID",
			conf:       "g bar 500\nu foo 500\n",
			wantPasswd: "foo:x:500:999::/:/usr/sbin/nologin\n",
			wantGroup:  "bar:x:500:\nfoo:x:999:\n",
		},
		{
			name:       "user uid:gid",
			conf:       "u sync 4:65534 - /bin /bin/sync\n",
			wantPasswd: "sync:x:4:65534::/bin:/bin/sync\n",
		},
		{
			name:       "user uid:group of a later g line",
			conf:       "u foo 500:grp\ng grp 600\n",
			wantPasswd: "foo:x:500:600::/:/usr/sbin/nologin\n",
			wantGroup:  "grp:x:600:\n",
		},
		{
			name:       "user -:group of another name gets a dynamic uid",
			conf:       "u foo -:nogroup\n",
			wantPasswd: "foo:x:999:65534::/:/usr/sbin/nologin\n",
		},
		{
			name:       "user with existing group of its name",
			conf:       "u api -\n",
			wantPasswd: "api:x:274:274::/:/usr/sbin/nologin\n",
		},
		{
			name:       "user with group of a g line",
			conf:       "u foo -\ng foo 321\n",
			wantPasswd: "foo:x:321:321::/:/usr/sbin/nologin\n",
			wantGroup:  "foo:x:321:\n",
		},
		{
			name:       "dynamic ids skip numbers in use",
			conf:       "u foo -\ng bar -\n",
			passwd:     "old:x:999:1::/:/bin/sh\n",
			group:      "older:x:998:\n",
			wantPasswd: "old:x:999:1::/:/bin/sh\nfoo:x:996:996::/:/usr/sbin/nologin\n",
			wantGroup:  "older:x:998:\nbar:x:997:\nfoo:x:996:\n",
		},
		{
			name:       "dynamic uid when the gid is a uid",
			conf:       "g grp 700\nu foo -:grp\n",
			passwd:     "x:x:700:700::/:/bin/sh\n",
			wantPasswd: "x:x:700:700::/:/bin/sh\nfoo:x:999:700::/:/usr/sbin/nologin\n",
			wantGroup:  "grp:x:700:\n",
		},
		{
			name:       "dynamic ids skip fixed ids of later lines",
			differs:    "systemd-sysusers lets b take 997, so c does not get the UID it asks for",
			conf:       "g a 998\nu b -\nu c 997\nu d -\n",
			group:      "e:x:999:\n",
			wantPasswd: "b:x:996:996::/:/usr/sbin/nologin\nc:x:997:997::/:/usr/sbin/nologin\nd:x:995:995::/:/usr/sbin/nologin\n",
			wantGroup:  "e:x:999:\na:x:998:\nb:x:996:\nc:x:997:\nd:x:995:\n",
		},
		{
			name:       "fixed uid that is the gid of another group",
			differs:    "systemd-sysusers gives e a dynamic UID (999) as GID 5 is taken; Apply keeps the fixed UID",
			conf:       "g d 5\nu e 5\n",
			wantPasswd: "e:x:5:999::/:/usr/sbin/nologin\n",
			wantGroup:  "d:x:5:\ne:x:999:\n",
		},
		{
			name:       "given gid wins over a group of the user's name",
			differs:    "systemd-sysusers puts api in the existing group api (274), not the GID the line gives",
			conf:       "u api 7:65534\n",
			wantPasswd: "api:x:7:65534::/:/usr/sbin/nologin\n",
		},
		{
			name:    "existing entries untouched",
			differs: "systemd-sysusers creates a group nobody for the existing user nobody",
			conf:    "u root 5 Admin /home /bin/bash\ng nogroup 7\nu nobody -\ng api\n",
		},
		{
			name:       "m lines",
			conf:       "u foo -\ng grp -\nm foo grp\nm bar grp\nm foo grp\n",
			wantPasswd: "foo:x:998:998::/:/usr/sbin/nologin\nbar:x:997:997::/:/usr/sbin/nologin\n",
			wantGroup:  "grp:x:999:bar,foo\nfoo:x:998:\nbar:x:997:\n",
		},
		{
			name:      "m line to an existing group with members",
			differs:   "systemd-sysusers creates a group nobody for the existing user nobody",
			conf:      "m root adm\nm nobody adm\n",
			group:     "adm:x:4:zed,nobody\n",
			wantGroup: "adm:x:4:nobody,root,zed\n", // sorted, as systemd-sysusers does
		},
		{
			name:      "m line creates its group",
			conf:      "m root wheel\n",
			wantGroup: "wheel:x:999:root\n",
		},
		{
			name:      "duplicate lines",
			conf:      "g foo 5\ng foo 5\n",
			wantGroup: "foo:x:5:\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := tree{map[string]string{"a.conf": tt.conf}, basePasswd + tt.passwd, baseGroup + tt.group}
			root := tr.write(t)
			oraclePasswd, oracleGroup := sysusersOracle(t, root)
			if _, err := Apply(context.Background(), root); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			passwd, group := readEtc(t, root)
			if want := basePasswd + tt.wantPasswd; passwd != want {
				t.Errorf("passwd =\n%s\nwant\n%s", passwd, want)
			}
			if want := baseGroup + tt.wantGroup; group != want {
				t.Errorf("group =\n%s\nwant\n%s", group, want)
			}
			if same := passwd == oraclePasswd && group == oracleGroup; same != (tt.differs == "") {
				t.Errorf("systemd-sysusers gives the same result: %v, want %v (%s)\nsystemd-sysusers passwd:\n%s\ngroup:\n%s",
					same, tt.differs == "", tt.differs, oraclePasswd, oracleGroup)
			}
			// A second run changes nothing.
			res, err := Apply(context.Background(), root)
			if err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			if !reflect.DeepEqual(res, &Result{}) {
				t.Errorf("second Apply = %+v, want nothing added", res)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		tree  tree
		wants []string // in the error
	}{
		{
			name: "fixed gid in use",
			tree: tree{map[string]string{"a.conf": "g foo 0\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: GID 0 of group "foo" is already used by group "root"`,
			},
		},
		{
			name: "fixed gid of an earlier line",
			tree: tree{map[string]string{"a.conf": "g foo 5\n", "b.conf": "g bar 5\n"}, basePasswd, baseGroup},
			wants: []string{
				`b.conf:1: GID 5 of group "bar" is already used by group "foo"`,
			},
		},
		{
			name: "fixed uid in use",
			tree: tree{map[string]string{"a.conf": "u foo 65534\nu bar 7\nu baz 7\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: UID 65534 of user "foo" is already used by user "nobody"`,
				`a.conf:3: UID 7 of user "baz" is already used by user "bar"`,
			},
		},
		{
			name: "missing gid",
			tree: tree{map[string]string{"a.conf": "u foo 5:4242\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: GID 4242 of user "foo" does not exist`,
			},
		},
		{
			name: "missing group",
			tree: tree{map[string]string{"a.conf": "u foo 5:nope\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: group "nope" of user "foo" does not exist`,
			},
		},
		{
			name: "conflicting lines",
			tree: tree{map[string]string{"a.conf": "u foo 5\n", "b.conf": "# c\nu foo 6\n"}, basePasswd, baseGroup},
			wants: []string{
				`b.conf:2: user "foo" is already declared differently at `,
				`a.conf:1`,
			},
		},
		{
			name: "parse errors of every file",
			tree: tree{map[string]string{"a.conf": "x\n", "b.conf": "g ok\nu 1\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: unknown line type "x"`,
				`b.conf:2: user name "1" is not valid`,
			},
		},
		{
			name: "m line to the group of a user that names another",
			tree: tree{map[string]string{"a.conf": "m root foo\nu foo -:nogroup\n"}, basePasswd, baseGroup},
			wants: []string{
				`a.conf:1: group "foo" does not exist and no g line declares it`,
			},
		},
		{
			name: "malformed passwd and group",
			tree: tree{nil, basePasswd + "bad:x:1\n\nroot:x:1:1::/:/bin/sh\n", "root:x:zero:\n"},
			wants: []string{
				"passwd:3: 3 fields, want 7",
				"passwd:4: empty line",
				`passwd:5: user "root" is already defined in line 1`,
				`group:1: GID "zero" of group "root" is not valid`,
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tt.tree.write(t)
			res, err := Apply(context.Background(), root)
			if err == nil {
				t.Fatalf("Apply = %+v, want an error", res)
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Apply error =\n%v\nwant it to contain %q", err, want)
				}
			}
			passwd, group := readEtc(t, root)
			if passwd != tt.tree.passwd || group != tt.tree.group {
				t.Errorf("Apply changed the files after an error:\n%s\n%s", passwd, group)
			}
		})
	}
}

func TestApplyFiles(t *testing.T) {
	t.Parallel()
	t.Run("missing passwd", func(t *testing.T) {
		t.Parallel()
		root := tree{nil, basePasswd, baseGroup}.write(t)
		os.Remove(filepath.Join(root, factoryEtc, "passwd"))
		_, err := Apply(context.Background(), root)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "read passwd") {
			t.Errorf("Apply error = %v, want read passwd: not exist", err)
		}
	})
	t.Run("missing sysusers.d", func(t *testing.T) {
		t.Parallel()
		root := tree{nil, basePasswd, baseGroup}.write(t)
		os.Remove(filepath.Join(root, confDir))
		res, err := Apply(context.Background(), root)
		if err != nil || !reflect.DeepEqual(res, &Result{}) {
			t.Errorf("Apply = %+v, %v, want nothing added", res, err)
		}
	})
	t.Run("symbolic links", func(t *testing.T) {
		t.Parallel()
		root := tree{map[string]string{"b.conf": "g b -\n", "other": "g c -\n"}, basePasswd, baseGroup}.write(t)
		dir := filepath.Join(root, confDir)
		for name, target := range map[string]string{"a.conf": "/dev/null", "c.conf": "other", ".d.conf": "nothing"} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Apply(context.Background(), root)
		if err == nil || !strings.Contains(err.Error(), `c.conf: a symbolic link to "other"`) || strings.Contains(err.Error(), "a.conf") {
			t.Errorf("Apply error = %v, want only c.conf refused", err)
		}
		os.Remove(filepath.Join(dir, "c.conf"))
		if _, err := Apply(context.Background(), root); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if _, group := readEtc(t, root); group != baseGroup+"b:x:999:\n" {
			t.Errorf("group = %q, want b added (and a.conf masked, other ignored)", group)
		}
	})
	t.Run("mode and no trailing newline", func(t *testing.T) {
		t.Parallel()
		root := tree{map[string]string{"a.conf": "u foo -\n"}, strings.TrimSuffix(basePasswd, "\n"), baseGroup}.write(t)
		if _, err := Apply(context.Background(), root); err != nil {
			t.Fatal(err)
		}
		passwd, _ := readEtc(t, root)
		if want := basePasswd + "foo:x:999:999::/:/usr/sbin/nologin\n"; passwd != want {
			t.Errorf("passwd = %q, want %q", passwd, want)
		}
		for _, name := range []string{"passwd", "group"} {
			fi, err := os.Stat(filepath.Join(root, factoryEtc, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o644 {
				t.Errorf("%s mode = %v, want 0644", name, fi.Mode())
			}
		}
		des, _ := os.ReadDir(filepath.Join(root, factoryEtc))
		if len(des) != 2 {
			t.Errorf("factory etc holds %d files, want passwd and group only", len(des))
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		root := tree{map[string]string{"a.conf": "u foo -\n"}, basePasswd, baseGroup}.write(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Apply(ctx, root); !errors.Is(err, context.Canceled) {
			t.Errorf("Apply error = %v, want context.Canceled", err)
		}
	})
}

// imageRoot returns a new root holding the real inputs of a Petrel image's
// users and groups: the factory passwd and group of packages/filesystem,
// the sysusers.d file of packages/host (as petrel.conf) and the
// sysusers.d files under confs.
func imageRoot(t *testing.T, confs string) string {
	t.Helper()
	repo := testkit.RepoRoot(t)
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, confDir), os.DirFS(confs)); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{
		"packages/host/petrel.sysusers": filepath.Join(confDir, "petrel.conf"),
		"packages/filesystem/passwd":    filepath.Join(factoryEtc, "passwd"),
		"packages/filesystem/group":     filepath.Join(factoryEtc, "group"),
	} {
		b, err := os.ReadFile(filepath.Join(repo, src))
		if err != nil {
			t.Fatal(err)
		}
		testkit.WriteFiles(t, root, map[string]string{dst: string(b)})
	}
	return root
}

// TestDebian12 applies the sysusers.d files of Debian 12's systemd 252
// (testdata/debian12: basic, systemd-journal, systemd-network,
// systemd-timesync, the files the image's systemd package carries) and of
// packages/host to the factory files of packages/filesystem, and compares
// the result with systemd-sysusers --root on the same input and with
// testdata/debian12.{passwd,group}.golden.
func TestDebian12(t *testing.T) {
	t.Parallel()
	root := imageRoot(t, filepath.Join("testdata", "debian12", confDir))
	oraclePasswd, oracleGroup := sysusersOracle(t, root)
	res, err := Apply(context.Background(), root)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Users) != 18 || len(res.Groups) != 43 || len(res.Members) != 0 {
		t.Errorf("Apply = %d users, %d groups, %d members, want 18, 43, 0", len(res.Users), len(res.Groups), len(res.Members))
	}
	passwd, group := readEtc(t, root)
	if passwd != oraclePasswd || group != oracleGroup {
		t.Errorf("Apply and systemd-sysusers differ\nApply passwd:\n%s\nsystemd-sysusers passwd:\n%s\nApply group:\n%s\nsystemd-sysusers group:\n%s",
			passwd, oraclePasswd, group, oracleGroup)
	}
	for name, got := range map[string]string{"passwd": passwd, "group": group} {
		golden := filepath.Join("testdata", "debian12."+name+".golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden file (run go test -update): %v", err)
		}
		if got != string(want) {
			t.Errorf("%s =\n%s\nwant (%s)\n%s", name, got, golden, want)
		}
	}
	// A second run on the output changes nothing.
	again, err := Apply(context.Background(), root)
	if err != nil || !reflect.DeepEqual(again, &Result{}) {
		t.Errorf("second Apply = %+v, %v, want nothing added", again, err)
	}
	if p, g := readEtc(t, root); p != passwd || g != group {
		t.Errorf("second Apply changed the files")
	}
}

// TestBuildMachineSysusers does the same with the sysusers.d files of the
// build machine (Debian 12's systemd, with whatever else is installed) in
// place of the copies in testdata: the same result as systemd-sysusers.
func TestBuildMachineSysusers(t *testing.T) {
	t.Parallel()
	const machine = "/usr/lib/sysusers.d"
	if _, err := os.Stat(filepath.Join(machine, "basic.conf")); err != nil {
		t.Fatalf("%s/basic.conf missing: install the Debian package systemd", machine)
	}
	root := imageRoot(t, machine)
	oraclePasswd, oracleGroup := sysusersOracle(t, root)
	if _, err := Apply(context.Background(), root); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if passwd, group := readEtc(t, root); passwd != oraclePasswd || group != oracleGroup {
		t.Errorf("Apply and systemd-sysusers differ on %s\nApply passwd:\n%s\nsystemd-sysusers passwd:\n%s\nApply group:\n%s\nsystemd-sysusers group:\n%s",
			machine, passwd, oraclePasswd, group, oracleGroup)
	}
}

// FuzzApply checks that applying any sysusers.d file to any passwd and
// group files never panics, and that when it succeeds the files it writes
// end in a newline, parse again, and a second application adds nothing.
func FuzzApply(f *testing.F) {
	f.Add([]byte("g adm 4\nu sync 4:65534 - /bin /bin/sync\nu foo -\nm foo adm\n"), []byte(basePasswd), []byte(baseGroup))
	f.Add([]byte("u a -:b\ng b -\nm c d\nu e 5\n"), []byte("x:x:999:1::/:/bin/sh"), []byte("y:x:998:a,b\n"))
	f.Fuzz(func(t *testing.T, conf, passwd, group []byte) {
		entries, err := Parse("fuzz.conf", conf)
		if err != nil {
			return
		}
		p, g, _, err := apply("passwd", passwd, "group", group, entries)
		if err != nil {
			return
		}
		for _, out := range [][]byte{p, g} {
			if out != nil && !bytes.HasSuffix(out, []byte("\n")) {
				t.Fatalf("output %q does not end in a newline", out)
			}
		}
		if p == nil {
			p = passwd
		}
		if g == nil {
			g = group
		}
		p2, g2, res, err := apply("passwd", p, "group", g, entries)
		if err != nil {
			t.Fatalf("second apply: %v\npasswd:\n%s\ngroup:\n%s", err, p, g)
		}
		if p2 != nil || g2 != nil || !reflect.DeepEqual(res, &Result{}) {
			t.Fatalf("second apply added %+v", res)
		}
	})
}
