package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/updater"
)

// fakeUpdaterEnv makes the test binary act as the updater agent, keeping
// its banks in the state file the variable names (TestMain).
const fakeUpdaterEnv = "APISERVER_TEST_FAKE_UPDATER"

// fakeDisk is the fake updater's state: what the disk and the repository
// hold, as the contract of the updater agent describes them
// (docs/updates.md): two banks, the one booted, which boots next, whether
// the inactive one was written and marked valid, and the updates the
// repository offers.
type fakeDisk struct {
	Variant, Arch string
	Active        string            // "A" or "B"
	Versions      map[string]string // bank → version written there, "" none
	Staged        bool              // the inactive bank was written and marked valid
	Next          string            // the bank that boots next
	Available     []string          // applicable updates, newest first
	// Fail makes a verb exit with the code and print the message.
	Fail map[string]fakeFailure
	// Gate makes a verb wait until the file <state>.open exists.
	Gate string
	// Calls records every command line but --socket-path, in order.
	Calls [][]string
	// Socket is the last --socket-path given.
	Socket string
}

type fakeFailure struct {
	Exit   int
	Stderr string
}

func inactive(b string) string {
	if b == "A" {
		return "B"
	}
	return "A"
}

// fakeUpdater installs the fake updater in dir with disk as its state and
// returns the program's path (a script that runs this test binary).
func fakeUpdater(t *testing.T, dir string, disk fakeDisk) (path, state string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state = filepath.Join(dir, "updater-state.json")
	writeDisk(t, state, disk)
	path = filepath.Join(dir, "updater")
	script := fmt.Sprintf("#!/bin/sh\n%s=%q exec %q \"$@\"\n", fakeUpdaterEnv, state, self)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, state
}

func writeDisk(t *testing.T, state string, disk fakeDisk) {
	t.Helper()
	data, err := json.Marshal(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readDisk(t *testing.T, state string) fakeDisk {
	t.Helper()
	var d fakeDisk
	data, err := os.ReadFile(state)
	if err == nil {
		err = json.Unmarshal(data, &d)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openGate lets a gated verb of the fake updater go on.
func openGate(t *testing.T, state string) {
	t.Helper()
	if err := os.WriteFile(state+".open", nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runFakeUpdater is the fake updater's main: the verbs of the updater
// agent with its exit codes (1 failure, 2 usage, 3 no update) and its
// JSON types. Like the agent, status names the staging bank's image only
// while it holds what update-image wrote and may boot.
func runFakeUpdater(state string, args []string, stdout, stderr io.Writer) int {
	var d fakeDisk
	data, err := os.ReadFile(state)
	if err == nil {
		err = json.Unmarshal(data, &d)
	}
	if err != nil {
		fmt.Fprintln(stderr, "fake updater:", err)
		return 1
	}
	// The API tells the updater its socket: drop it from the arguments
	// and record it.
	if i := slices.Index(args, "--socket-path"); i >= 0 && i+1 < len(args) {
		d.Socket, args = args[i+1], slices.Delete(slices.Clone(args), i, i+2)
	}
	d.Calls = append(d.Calls, args)
	defer func() {
		// Atomically: the test reads the state while a verb runs.
		data, _ := json.Marshal(d)
		os.WriteFile(state+".new", data, 0o644)
		os.Rename(state+".new", state)
	}()
	if len(args) == 0 || args[len(args)-1] != "--json" {
		fmt.Fprintln(stderr, "fake updater: want VERB ... --json")
		return 2
	}
	verb := args[0]
	if d.Gate == verb {
		for {
			if _, err := os.Stat(state + ".open"); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if f, ok := d.Fail[verb]; ok {
		if verb == "update-image" {
			d.Staged, d.Versions[inactive(d.Active)] = false, ""
		}
		fmt.Fprintln(stderr, f.Stderr)
		return f.Exit
	}
	version := func(v string) manifest.Version {
		mv, err := manifest.ParseVersion(v)
		if err != nil {
			panic(fmt.Sprintf("fake updater: version %q: %v", v, err))
		}
		return mv
	}
	img := func(v string) *updater.Image {
		if v == "" {
			return nil
		}
		return &updater.Image{Variant: d.Variant, Arch: d.Arch, Version: version(v)}
	}
	bank := func(b string) bootstate.Bank {
		bb, err := bootstate.ParseBank(b)
		if err != nil {
			panic(err)
		}
		return bb
	}
	out := json.NewEncoder(stdout)
	other := inactive(d.Active)
	switch verb {
	case "status":
		staged := img(d.Versions[other])
		if !d.Staged {
			staged = nil
		}
		out.Encode(updater.BankStatus{
			ActivePartition:  updater.Partition{Bank: bank(d.Active), Image: img(d.Versions[d.Active]), NextToBoot: d.Next == d.Active, Valid: true},
			StagingPartition: updater.Partition{Bank: bank(other), Image: staged, NextToBoot: d.Next == other, Valid: d.Staged},
		})
	case "check-update":
		res := updater.CheckResult{OS: *img(d.Versions[d.Active])}
		for _, v := range d.Available {
			res.AvailableUpdates = append(res.AvailableUpdates, version(v))
			if res.ChosenUpdate == nil && v != d.Versions[d.Active] {
				res.ChosenUpdate = img(v)
			}
		}
		out.Encode(res)
		if res.ChosenUpdate == nil {
			return updater.ExitNoUpdate
		}
	case "update-image":
		if len(args) != 4 || args[1] != "--version" || !slices.Contains(d.Available, args[2]) {
			fmt.Fprintf(stderr, "fake updater: no update %v\n", args[1:])
			return 3
		}
		d.Staged, d.Versions[other], d.Next = true, args[2], d.Active
	case "update-apply":
		if !d.Staged {
			fmt.Fprintln(stderr, "upgrade-to-inactive: inactive bank is not marked valid")
			return 1
		}
		d.Next = other
	case "update-revert":
		d.Next = d.Active
	default:
		fmt.Fprintf(stderr, "fake updater: unknown verb %q\n", verb)
		return 2
	}
	return 0
}
