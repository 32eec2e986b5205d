package updater_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/migration"
	"github.com/petrel-os/petrel/sources/updater"
)

// published returns a repository with releases 0.1.0 and 0.2.0, a
// migration between them.
func published(t testing.TB) *repoServer {
	t.Helper()
	r := newRepoServer(t)
	r.publish("0.1.0", 4<<20, false, nil, nil)
	step := manifest.Span{From: manifest.MustParseVersion("0.1.0"), To: manifest.MustParseVersion("0.2.0")}
	r.publish("0.2.0", 8<<20, false, &step, map[string]string{
		"migrate_v0.2.0_motd.toml": "[[operation]]\nkind = \"move\"\nfrom = \"settings.motd\"\nto = \"settings.greeting\"\n"})
	return r
}

// TestUpdateFlow drives the agent as the update API does: check-update
// lists 0.2.0; update-image writes it into bank B (and nothing else),
// saves what the next boot's migrator needs and marks B valid;
// update-apply makes B boot next, update-revert undoes it, update-apply
// again; the JSON answers say so at every step.
func TestUpdateFlow(t *testing.T) {
	t.Parallel()
	repo := published(t)
	h := newHost(t, repo, "")
	before := h.partitions(bankA...)
	_, sector0 := h.bootState()

	var check updater.CheckResult
	if err := json.Unmarshal([]byte(h.mustRun("check-update", "--json")), &check); err != nil {
		t.Fatal(err)
	}
	v2 := manifest.MustParseVersion("0.2.0")
	want := updater.CheckResult{OS: updater.Image{Variant: variant, Arch: arch, Version: manifest.MustParseVersion("0.1.0")},
		AvailableUpdates: []manifest.Version{v2, manifest.MustParseVersion("0.1.0")},
		ChosenUpdate:     &updater.Image{Variant: variant, Arch: arch, Version: v2}}
	if !reflect.DeepEqual(check, want) {
		t.Fatalf("check-update = %+v, want %+v", check, want)
	}
	if out := h.mustRun("check-update"); !strings.Contains(out, "chosen:    0.2.0") {
		t.Errorf("check-update text = %q", out)
	}
	st := h.status()
	if st.ActivePartition.Bank != bootstate.BankA || !st.ActivePartition.NextToBoot || st.ActivePartition.Image.Version != manifest.MustParseVersion("0.1.0") ||
		st.StagingPartition.Bank != bootstate.BankB || st.StagingPartition.Image != nil || st.StagingPartition.Valid {
		t.Fatalf("status before the update = %+v", st)
	}
	if _, s := h.bootState(); string(s) != string(sector0) {
		t.Fatal("check-update and status changed the boot state")
	}

	var after updater.BankStatus
	if err := json.Unmarshal([]byte(h.mustRun("update-image", "--json")), &after); err != nil {
		t.Fatal(err)
	}
	if in := after.StagingPartition; in.Image == nil || in.Image.Version != v2 || !in.Valid || in.NextToBoot ||
		in.State != (bootstate.BankState{TriesLeft: 1}) || !after.ActivePartition.NextToBoot {
		t.Fatalf("status after update-image = %+v", after)
	}
	if err := h.holds(repo.releases["0.2.0"]); err != nil {
		t.Fatal(err)
	}
	if got := h.partitions(bankA...); !reflect.DeepEqual(got, before) {
		t.Errorf("update-image changed partitions outside bank B: before %v, after %v", before, got)
	}
	// What the next boot's migrator reads: its TUF source on the saved
	// metadata and targets gives the manifest and the migration.
	src := &migration.TUFSource{Config: updater.Config{MetadataURL: "file:///nonexistent",
		TargetsURL:  "file://" + updater.MigratorTargetsDir(h.state),
		TrustedRoot: repo.rootJSON, CacheDir: updater.MigratorMetadataDir(h.state)}}
	m, err := src.Manifest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names, err := m.Migrations.Chain(v2, manifest.MustParseVersion("0.1.0"))
	if err != nil || len(names) != 1 {
		t.Fatalf("saved manifest's chain back = %v, %v", names, err)
	}
	if data, err := src.Migration(context.Background(), names[0]); err != nil || !strings.Contains(string(data), "settings.greeting") {
		t.Fatalf("saved migration %s = %q, %v", names[0], data, err)
	}

	if err := json.Unmarshal([]byte(h.mustRun("update-apply", "--json")), &after); err != nil {
		t.Fatal(err)
	}
	s, _ := h.bootState()
	if d := bootstate.Next(s); d.Bank != bootstate.BankB || !d.SpentTry || !after.StagingPartition.NextToBoot || after.ActivePartition.NextToBoot {
		t.Fatalf("after update-apply: state %+v, status %+v", s, after)
	}
	h.mustRun("update-revert")
	if s, _ := h.bootState(); bootstate.Next(s).Bank != bootstate.BankA {
		t.Fatalf("after update-revert the next boot is %s", bootstate.Next(s).Bank)
	}
	if st := h.status(); st.StagingPartition.Image == nil || !st.StagingPartition.Valid {
		t.Fatalf("after update-revert the staged image is gone: %+v", st)
	}
	if out := h.mustRun("update-apply"); !strings.Contains(out, "staging  bank B: metal-dev x86_64 0.2.0 (next to boot)") {
		t.Errorf("update-apply text = %q", out)
	}
	// The new bank booted (GRUB spent its try) and succeeded: from bank
	// B, the running image is 0.2.0 and bank A, which holds 0.1.0, shows
	// no staged image.
	s, _ = h.bootState()
	s = bootstate.Next(s).After
	s, _ = bootstate.MarkSuccessful(s, bootstate.BankB)
	writeState(t, h, s)
	h.bootFrom(bootstate.BankB, "0.2.0")
	st = h.status()
	if st.ActivePartition.Bank != bootstate.BankB || st.ActivePartition.Image.Version != v2 || !st.ActivePartition.NextToBoot ||
		st.StagingPartition.Bank != bootstate.BankA || st.StagingPartition.Image != nil || !st.StagingPartition.Valid {
		t.Fatalf("status on bank B = %+v", st)
	}
	if code, _, errs := h.run("check-update"); code != updater.ExitNoUpdate || !strings.Contains(errs, "no update for metal-dev x86_64 0.2.0") {
		t.Errorf("check-update on 0.2.0 = exit %d %q, want %d", code, errs, updater.ExitNoUpdate)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeState writes the boot state as GRUB or partflip would.
func writeState(t testing.TB, h *testHost, s bootstate.State) {
	t.Helper()
	loc := h.location()
	f, err := os.OpenFile(h.disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := bootstate.Update(context.Background(), f, loc.EnvOffset, func(bootstate.State) (bootstate.State, error) { return s, nil }); err != nil {
		t.Fatal(err)
	}
}
