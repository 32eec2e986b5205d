package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/testkit"
)

// crashEnv makes the test binary run the migrator instead of the tests
// (see TestMain): a JSON crashArgs.
const crashEnv = "PETREL_MIGRATION_CRASH_TEST"

type crashArgs struct {
	Base, Source, To string
	// StopAt, when above 0, makes the migrator SIGKILL itself before its
	// StopAt-th write step.
	StopAt int
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashEnv); spec != "" {
		os.Exit(crashHelper(spec))
	}
	os.Exit(m.Run())
}

// crashHelper is the migrator process of the crash tests.
func crashHelper(spec string) int {
	var a crashArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := 0
	cfg := Config{Base: a.Base, To: manifest.MustParseVersion(a.To), Source: DirSource{Dir: a.Source}, step: func(string) {
		n++
		if n == a.StopAt {
			testkit.KillSelf()
		}
	}}
	if _, err := Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// crashRun runs the migrator in a child process; kill, when set, is how
// long to let it run before SIGKILL.
func crashRun(t *testing.T, a crashArgs, kill time.Duration) (killed bool, out string) {
	t.Helper()
	return testkit.RunKilled(t, testkit.Helper(t, crashEnv, a), kill)
}

// copyTree copies a datastore base: directories, files and links.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case e.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o600)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashAtEveryStep kills the migrator (a real process, SIGKILL)
// before each of its write steps, and at random moments, for an upgrade
// through migrations, the downgrade back and a step without migrations.
// After every kill current names a complete datastore that Open opens,
// holding exactly the data before or exactly the data after the
// migration (after exactly when current's link moved before the kill);
// running the migrator again finishes the job, with nothing left over.
//
// Not parallel: a fork of the child process shares, until its exec, the
// open file description of a datastore lock that a parallel test has
// just closed, and that test's next Open would find it locked.
func TestCrashAtEveryStep(t *testing.T) {
	src := sourceDir(t, nil)
	upgraded := t.TempDir()
	newDatastore(t, upgraded, "1.0.0", parseData(t, baseData))
	if _, err := runTo(t, upgraded, src, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	atOne := t.TempDir()
	newDatastore(t, atOne, "1.0.0", parseData(t, baseData))
	atOneOne := t.TempDir()
	newDatastore(t, atOneOne, "1.1.0", parseData(t, baseData))
	for _, tc := range []struct {
		name, to string
		template string
		before   *Data
		after    *Data
	}{
		{"upgrade", "2.0.0", atOne, parseData(t, baseData), migrated(t)},
		{"downgrade", "1.0.0", upgraded, migrated(t), parseData(t, baseData)},
		{"relink", "1.2.0", atOneOne, parseData(t, baseData), parseData(t, baseData)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The steps, and the shape of a base after an undisturbed run.
			ref := t.TempDir()
			copyTree(t, tc.template, ref)
			start, _ := datastore.ReadChain(ref)
			var steps []string
			cfg := Config{Base: ref, To: manifest.MustParseVersion(tc.to), Source: DirSource{Dir: src},
				step: func(s string) { steps = append(steps, s) }}
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			wantShape := shape(t, ref)
			// current moves with the first link that its chain uses.
			flip := slices.IndexFunc(steps, func(s string) bool {
				name, ok := strings.CutPrefix(s, "link ")
				return ok && (name == datastore.CurrentLink || name == start.Major || name == start.Minor || name == start.Patch)
			})
			if flip < 0 {
				t.Fatalf("no step moves current's chain: %q", steps)
			}
			t.Logf("%d write steps: %q; current moves at %q", len(steps), steps, steps[flip])
			check := func(t *testing.T, base string, flipped bool) {
				t.Helper()
				want := tc.before
				if flipped {
					want = tc.after
				}
				if diff := Diff(want, readDatastore(t, base)); diff != "" {
					t.Fatalf("after the kill (flipped %v) current holds: %s", flipped, diff)
				}
				if _, err := Run(context.Background(), Config{Base: base, To: manifest.MustParseVersion(tc.to), Source: DirSource{Dir: src}}); err != nil {
					t.Fatalf("migrator after the kill: %v", err)
				}
				if diff := Diff(tc.after, readDatastore(t, base)); diff != "" {
					t.Fatalf("after the second run: %s", diff)
				}
				if got := shape(t, base); got != wantShape {
					t.Fatalf("after the second run base holds %s, want %s", got, wantShape)
				}
			}
			for i := range steps {
				base := t.TempDir()
				copyTree(t, tc.template, base)
				killed, out := crashRun(t, crashArgs{Base: base, Source: src, To: tc.to, StopAt: i + 1}, 0)
				if !killed {
					t.Fatalf("step %d (%s): the migrator was not killed: %s", i+1, steps[i], out)
				}
				check(t, base, i > flip)
			}
			// Random moments, from before the first step to after the end.
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			timed := t.TempDir()
			copyTree(t, tc.template, timed)
			began := time.Now()
			crashRun(t, crashArgs{Base: timed, Source: src, To: tc.to}, 0)
			full := time.Since(began) * 3 / 2
			for range 6 {
				base := t.TempDir()
				copyTree(t, tc.template, base)
				killed, _ := crashRun(t, crashArgs{Base: base, Source: src, To: tc.to}, time.Duration(rng.Int64N(int64(full))))
				c, err := datastore.ReadChain(base)
				if err != nil {
					t.Fatalf("after a kill (killed %v): %v", killed, err)
				}
				check(t, base, c.Version == tc.to)
			}
		})
	}
}
