package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/tools/buildctl"
)

// TestRequiredUnitFails boots with user data that the settings model
// refuses (a host name with a space), so early-boot-config fails to start.
// mark-successful-boot requires it: the bank must not be marked
// successful, and buildctl boot must stop early and name both units.
// Bank A starts with one try and no success mark, so only this boot's
// mark-successful-boot could mark it.
func TestRequiredUnitFails(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "bad-user-data.img")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	envOff := bootStateOffset(t, f)
	if _, _, err := bootstate.Update(t.Context(), f, envOff, func(s bootstate.State) (bootstate.State, error) {
		s.A.TriesLeft, s.A.Successful = 1, false
		return s, nil
	}); err != nil {
		t.Fatal(err)
	}

	ud := filepath.Join(t.TempDir(), "user-data.toml")
	if err := os.WriteFile(ud, []byte("[settings.network]\nhostname = \"not a host name\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args := []string{"-C", projectRoot(t), "boot", img, "--persist", "--quiet", "--user-data", ud,
		"--timeout", bootTimeout.String(), "--console-log", consoleLog(t)}
	code := buildctl.Main(t.Context(), args, &out, &errb)
	t.Logf("buildctl boot exited %d:\n%s", code, errb.String())
	if code != 1 {
		t.Fatalf("buildctl %v = %d, want 1", args, code)
	}
	for _, want := range []string{
		"the host cannot become ready: mark-successful-boot.service cannot start: a unit it requires failed",
		"Failed to start early-boot-config",
		"settings.network.hostname",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("buildctl boot's error lacks %q", want)
		}
	}
	s, _, err := bootstate.Read(t.Context(), f, envOff)
	if err != nil {
		t.Fatal(err)
	}
	if s.A.Successful || s.A.TriesLeft != 0 {
		t.Errorf("bank A after a boot whose early-boot-config failed = %+v, want its try spent and not successful", s.A)
	}
}
