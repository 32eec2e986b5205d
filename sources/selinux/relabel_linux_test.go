package selinux

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Labels of fcText that the relabel tests expect.
const (
	osLabel      = "system_u:object_r:os_t:s0"
	localLabel   = "system_u:object_r:local_t:s0"
	privateLabel = "system_u:object_r:private_t:s0"
	storeLabel   = "system_u:object_r:datastore_t:s0"
	otherLabel   = "system_u:object_r:cache_t:s0"
)

// makeTree creates files below root: names ending in "/" are directories,
// "name -> target" symbolic links, "name|" named pipes, the rest regular
// files.
func makeTree(t *testing.T, root string, files []string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, strings.TrimSuffix(strings.Fields(f)[0], "|"))
		var err error
		switch {
		case strings.HasSuffix(f, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.Contains(f, " -> "):
			err = os.Symlink(strings.Fields(f)[2], p)
		case strings.HasSuffix(f, "|"):
			err = unix.Mkfifo(p, 0o600)
		default:
			err = os.WriteFile(p, []byte("x"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// labelOf reads name's label below root, failing the test on an error.
func labelOf(t *testing.T, root, name string) string {
	t.Helper()
	l, err := Label(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRelabel relabels trees as the initramfs relabels PRIVATE (mounted
// at /var/lib/petrel): every file gets the label of its host path, files
// under <<none>> keep what they have (a label or none), a file that has
// its label already is not counted, the count is of labels written, and
// a file system mounted inside the tree is not entered. The security.selinux
// attribute is written and read back on the test machine's file system
// (ext4 or tmpfs store it without SELinux in the kernel).
func TestRelabel(t *testing.T) {
	tree := []string{"datastore/", "datastore/v1/", "datastore/v1/live", "datastore/current -> v1",
		"keep/", "keep/mine", "keep/bare", "early-boot-config.ran", "pipe|", "mnt/"}
	for _, tt := range []struct {
		name    string
		before  map[string]string // labels set before the relabel
		want    map[string]string // "" is no label
		wantN   int
		mounted bool // a tmpfs on mnt/ with a file in it
	}{
		{
			name:   "no labels",
			before: map[string]string{},
			want: map[string]string{"/": privateLabel, "datastore": storeLabel, "datastore/v1": storeLabel, "datastore/v1/live": storeLabel,
				"datastore/current": storeLabel, "keep": "", "keep/mine": "", "keep/bare": "",
				"early-boot-config.ran": privateLabel, "pipe": privateLabel, "mnt": privateLabel},
			wantN: 8,
		},
		{
			name:   "cut short: some labelled, the root not",
			before: map[string]string{"datastore/v1/live": storeLabel, "datastore/v1": storeLabel, "keep/mine": otherLabel, "pipe": otherLabel},
			want: map[string]string{"/": privateLabel, "datastore": storeLabel, "datastore/v1": storeLabel, "datastore/v1/live": storeLabel,
				"datastore/current": storeLabel, "keep/mine": otherLabel, "keep/bare": "", "pipe": privateLabel},
			wantN: 6, // not datastore/v1 and its file, which have their labels
		},
		{
			name:   "another file system below",
			before: map[string]string{},
			// mnt is the tmpfs's root: neither it nor what it holds is DATA's.
			want:    map[string]string{"/": privateLabel, "mnt": "", "mnt/inside": "", "early-boot-config.ran": privateLabel},
			wantN:   7,
			mounted: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			makeTree(t, root, tree)
			if tt.mounted {
				mnt := filepath.Join(root, "mnt")
				if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
					t.Fatalf("mount a tmpfs in the tree (tests run as root): %v", err)
				}
				t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
				makeTree(t, mnt, []string{"inside"})
			}
			for name, l := range tt.before {
				if err := SetLabel(filepath.Join(root, name), l); err != nil {
					t.Fatal(err)
				}
			}
			fc, err := ParseFileContexts(strings.NewReader(fcText), "fc")
			if err != nil {
				t.Fatal(err)
			}
			n, err := fc.Relabel(root, func(name string) string { return path.Join("/var/lib/petrel", name) })
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantN {
				t.Errorf("Relabel labelled %d files, want %d", n, tt.wantN)
			}
			for name, want := range tt.want {
				if got := labelOf(t, root, name); got != want {
					t.Errorf("label of %s = %q, want %q", name, got, want)
				}
			}
			if u, err := Unlabelled(root); err != nil || u {
				t.Errorf("Unlabelled after the relabel = %v, %v; want false", u, err)
			}
		})
	}
}

// TestWalkOrder checks that Walk hands out a directory after what it
// holds and the root last: the root's label is what marks a file system
// labelled, so it must be written when everything else is.
func TestWalkOrder(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, []string{"a/", "a/b/", "a/b/c", "d"})
	fc, err := ParseFileContexts(strings.NewReader(fcText), "fc")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = fc.Walk(root, func(name string) string { return path.Join("/local", name) }, func(file, name, ctx string) error {
		if ctx != localLabel {
			t.Errorf("%s: label %q, want %q", name, ctx, localLabel)
		}
		if file != filepath.Join(root, name) {
			t.Errorf("%s: file %q, want it below %q", name, file, root)
		}
		got = append(got, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/a/b/c /a/b /a /d /"; strings.Join(got, " ") != want {
		t.Errorf("Walk order %q, want %q", strings.Join(got, " "), want)
	}
}

// TestUnlabelled: a root without a label, or with the type the kernel
// reports for one once a policy is loaded, was never labelled; any other
// label means labelled.
func TestUnlabelled(t *testing.T) {
	for _, tt := range []struct {
		name, label string
		want        bool
	}{
		{"no label", "", true},
		{"unlabeled_t", "system_u:object_r:unlabeled_t:s0", true},
		{"local_t", localLabel, false},
		{"os_t", osLabel, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.label != "" {
				if err := SetLabel(dir, tt.label); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Unlabelled(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Unlabelled = %v, want %v", got, tt.want)
			}
		})
	}
}
