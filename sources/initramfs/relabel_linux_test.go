package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/selinux"
)

// fileContextsText holds the lines of Petrel's file_contexts (from
// packages/selinux-policy/fs.cil) that label DATA and PRIVATE, and one
// <<none>> line.
const fileContextsText = `/.*	system_u:object_r:os_t:s0
/(local|var|opt)(/.*)?	system_u:object_r:local_t:s0
/var/lib/systemd(/.*)?	system_u:object_r:state_t:s0
/var/log/journal(/.*)?	system_u:object_r:state_t:s0
/var/lib/(host-)?containerd(/.*)?	system_u:object_r:cache_t:s0
/local/(host|bootstrap)-containers(/.*)?	system_u:object_r:secret_t:s0
/var/lib/petrel(/.*)?	system_u:object_r:private_t:s0
/var/lib/petrel/datastore(/.*)?	system_u:object_r:datastore_t:s0
/local/lost\+found(/.*)?	<<none>>
`

const (
	localT     = "system_u:object_r:local_t:s0"
	stateT     = "system_u:object_r:state_t:s0"
	cacheT     = "system_u:object_r:cache_t:s0"
	secretT    = "system_u:object_r:secret_t:s0"
	privateT   = "system_u:object_r:private_t:s0"
	datastoreT = "system_u:object_r:datastore_t:s0"
)

// TestRelabel runs the initramfs's relabel over a new root whose DATA
// (/local) and PRIVATE (/var/lib/petrel) are directories with the files
// of a host from before SELinux, with the command line's mounts: each file
// gets the label of the path it has on the host (DATA's var/lib/systemd
// is /var/lib/systemd, state_t, not local_t), <<none>> files keep theirs,
// the console names the count and the mount point; a file system whose
// root is labelled is left alone, even files in it without a label.
func TestRelabel(t *testing.T) {
	data := []string{"var/lib/systemd/random-seed", "var/log/journal/id/system.journal", "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/ab",
		"var/lib/petrel/", "opt/cni/bin/", "host-containers/admin/user-data", "lost+found/#12"}
	private := []string{"datastore/v1/live/settings/motd", "early-boot-config.ran"}
	want := map[string]string{
		"local": localT, "local/var": localT, "local/var/lib/systemd": stateT, "local/var/lib/systemd/random-seed": stateT,
		"local/var/log/journal/id/system.journal": stateT, "local/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/ab": cacheT,
		"local/var/lib/petrel": privateT, "local/opt/cni/bin": localT, "local/host-containers/admin/user-data": secretT,
		"var/lib/petrel": privateT, "var/lib/petrel/datastore": datastoreT, "var/lib/petrel/datastore/v1/live/settings/motd": datastoreT,
		"var/lib/petrel/early-boot-config.ran": privateT,
	}
	untouched := []string{"local/lost+found", "local/lost+found/#12"}
	for _, tt := range []struct {
		name      string
		labelled  []string // file systems whose root is labelled before
		wantLines []string // console lines, as regular expressions
	}{
		{"from before SELinux", nil, []string{
			`^petrel-init: labelled 21 files on /local \(a file system from before SELinux\) in \d+\.\ds$`,
			`^petrel-init: labelled 7 files on /var/lib/petrel \(a file system from before SELinux\) in \d+\.\ds$`}},
		{"DATA labelled", []string{"local"}, []string{
			`^petrel-init: labelled 7 files on /var/lib/petrel \(a file system from before SELinux\) in \d+\.\ds$`}},
		{"both labelled", []string{"local", "var/lib/petrel"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for dir, files := range map[string][]string{"local": data, "var/lib/petrel": private} {
				for _, f := range files {
					p := filepath.Join(root, dir, f)
					if strings.HasSuffix(f, "/") {
						mkdir(t, p)
						continue
					}
					mkdir(t, filepath.Dir(p))
					if err := os.WriteFile(p, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			fcDir := filepath.Join(root, FactoryEtc, "selinux", "petrel", "contexts", "files")
			mkdir(t, fcDir)
			if err := os.WriteFile(filepath.Join(fcDir, "file_contexts"), []byte(fileContextsText), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.labelled {
				if err := selinux.SetLabel(filepath.Join(root, d), want[d]); err != nil {
					t.Fatal(err)
				}
			}
			cl, err := ParseCmdline(hostMountsCmdline)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := relabel(console{&out}, root, "petrel", cl.Mounts); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("console %q, want %d lines", out.String(), len(tt.wantLines))
			}
			for i, re := range tt.wantLines {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("console line %q does not match %q", lines[i], re)
				}
			}
			for name, label := range want {
				fsRoot := "local"
				if strings.HasPrefix(name, "var/lib/petrel") {
					fsRoot = "var/lib/petrel"
				}
				if slices.Contains(tt.labelled, fsRoot) && name != fsRoot {
					label = "" // a labelled file system is not walked
				}
				if got := labelOf(t, root, name); got != label {
					t.Errorf("label of %s = %q, want %q", name, got, label)
				}
			}
			for _, name := range untouched {
				if got := labelOf(t, root, name); got != "" {
					t.Errorf("label of %s = %q, want none (<<none>>)", name, got)
				}
			}
		})
	}
}

// TestRelabelNoFileContexts: a relabel that cannot read the policy's
// file_contexts fails the boot naming it, rather than booting a host that
// the policy denies; a labelled host does not read it at all.
func TestRelabelNoFileContexts(t *testing.T) {
	cl, err := ParseCmdline(hostMountsCmdline)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		labelled bool
		wantErr  string
	}{
		{"unlabelled", false, "read the policy's labels: read file contexts: open "},
		{"labelled", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"local", "var/lib/petrel"} {
				mkdir(t, filepath.Join(root, d))
				if tt.labelled {
					if err := selinux.SetLabel(filepath.Join(root, d), localT); err != nil {
						t.Fatal(err)
					}
				}
			}
			var out bytes.Buffer
			err := relabel(console{&out}, root, "petrel", cl.Mounts)
			if tt.wantErr == "" {
				if err != nil || out.Len() != 0 {
					t.Errorf("relabel = %v, console %q; want nothing", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "selinux/petrel/contexts/files/file_contexts") {
				t.Errorf("relabel error %v, want one with %q naming the file", err, tt.wantErr)
			}
		})
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func labelOf(t *testing.T, root, name string) string {
	t.Helper()
	l, err := selinux.Label(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
