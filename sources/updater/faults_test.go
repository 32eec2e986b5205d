package updater_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/bank"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
)

// TestFaults: each bad repository or setting is refused by the agent with
// an error naming its cause, nothing flips, the boot state sector is what
// it was byte for byte, no staged image shows, and once the fault is gone
// the same host updates.
func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// fault breaks the repository or the host; it returns what undoes it.
		fault func(t *testing.T, h *testHost) func()
		code  int
		want  []string
		// bankB: the fault is found only while bank B is written.
		bankB bool
	}{
		{"root image differs from its signed hash", func(t *testing.T, h *testHost) func() {
			rel := h.repo.releases["0.2.0"]
			bad := append([]byte(nil), rel.zst[bank.Root]...)
			bad[len(bad)/2] ^= 0x40
			path := h.repo.targetPath(rel.names[bank.Root], rel.zst[bank.Root])
			h.repo.serve(path, bad)
			return func() { h.repo.serve(path, nil) }
		}, 1, []string{"write root image into partition 9 (PETREL-ROOT-B): download petrel-metal-dev-x86_64-0.2.0-test-root.erofs.zst", "sha256"}, true},
		{"boot image longer than signed", func(t *testing.T, h *testHost) func() {
			rel := h.repo.releases["0.2.0"]
			path := h.repo.targetPath(rel.names[bank.Boot], rel.zst[bank.Boot])
			h.repo.serve(path, append(append([]byte(nil), rel.zst[bank.Boot]...), "more"...))
			return func() { h.repo.serve(path, nil) }
		}, 1, []string{"write boot image into partition 8 (PETREL-BOOT-B)", "longer than"}, true},
		{"expired timestamp", func(t *testing.T, h *testHost) func() {
			old := h.repo.now
			h.repo.now = time.Now().Add(-48 * time.Hour)
			h.repo.commit()
			return func() { h.repo.now = old.Add(time.Minute); h.repo.commit() }
		}, 1, []string{"refresh update metadata: timestamp metadata expired at"}, false},
		{"timestamp signed by an untrusted key", func(t *testing.T, h *testHost) func() {
			good := h.repo.keys[metadata.TIMESTAMP]
			k, err := tufrepo.NewKey()
			if err != nil {
				t.Fatal(err)
			}
			h.repo.keys[metadata.TIMESTAMP] = []*tufrepo.Key{k}
			h.repo.commit()
			return func() { h.repo.keys[metadata.TIMESTAMP] = good; h.repo.commit() }
		}, 1, []string{"refresh update metadata: timestamp metadata is not signed by the trusted keys"}, false},
		{"no migration to the update", func(t *testing.T, h *testHost) func() {
			saved := h.repo.m.Migrations
			h.repo.m.Migrations = manifest.Migrations{}
			h.repo.commit()
			return func() { h.repo.m.Migrations = saved; h.repo.commit() }
		}, 1, []string{"update 0.1.0 to 0.2.0: missing migration: no step from 0.1.0 towards 0.2.0"}, false},
		{"settings without a repository", func(t *testing.T, h *testHost) func() {
			sock := h.sock
			h.sock, _ = apiServer(t)
			setUpdates(t, h.sock, map[string]any{"seed": 5})
			return func() { h.sock = sock }
		}, 1, []string{"settings.updates.metadata-base-url, settings.updates.targets-base-url not set"}, false},
		{"another updater holds the lock", func(t *testing.T, h *testHost) func() {
			if err := os.MkdirAll(filepath.Dir(h.lock), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(h.lock, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if err := flockFile(f); err != nil {
				t.Fatal(err)
			}
			return func() { f.Close() }
		}, updater.ExitLocked, []string{"another updater command is running", h0lock}, false},
		{"version lock on the running version", func(t *testing.T, h *testHost) func() {
			setUpdates(t, h.sock, map[string]any{"version-lock": "v0.1.0"})
			return func() { setUpdates(t, h.sock, map[string]any{"version-lock": "latest"}) }
		}, updater.ExitNoUpdate, []string{"no update for metal-dev x86_64 0.1.0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHost(t, published(t), "")
			stateBefore, sector := h.bootState()
			partsB := h.partitions(disklayout.KeyBootB, disklayout.KeyRootB, disklayout.KeyHashB)
			others := h.partitions(bankA...)
			undo := tc.fault(t, h)
			code, _, errs := h.run("update", "--json")
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, h0lock, h.lock)
				if code != tc.code || !strings.Contains(errs, w) {
					t.Errorf("update = exit %d, stderr:\n%s\nwant exit %d and %q", code, errs, tc.code, w)
				}
			}
			if s, got := h.bootState(); string(got) != string(sector) || s != stateBefore {
				t.Errorf("boot state changed: %+v, want %+v", s, stateBefore)
			}
			if _, err := os.Stat(filepath.Join(h.state, updater.StagedFile)); !os.IsNotExist(err) {
				t.Errorf("%s after the refusal: %v", updater.StagedFile, err)
			}
			if got := h.partitions(bankA...); !reflect.DeepEqual(got, others) {
				t.Error("partitions outside bank B changed")
			}
			if got := h.partitions(disklayout.KeyBootB, disklayout.KeyRootB, disklayout.KeyHashB); !tc.bankB && !reflect.DeepEqual(got, partsB) {
				t.Error("bank B changed before the fault was found")
			}
			st := h.status()
			if st.StagingPartition.Image != nil || st.StagingPartition.Valid || !st.ActivePartition.NextToBoot {
				t.Errorf("status after the refusal = %+v", st)
			}
			undo()
			h.mustRun("update")
			if s, _ := h.bootState(); bootstate.Next(s).Bank != bootstate.BankB {
				t.Errorf("after the fault was gone, update left the next boot on bank %s", bootstate.Next(s).Bank)
			}
			if err := h.holds(h.repo.releases["0.2.0"]); err != nil {
				t.Error(err)
			}
		})
	}
}

// h0lock stands for the host's lock path in TestFaults' expectations.
const h0lock = "<lock>"

// flockFile takes the lock another updater command would hold.
func flockFile(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }
