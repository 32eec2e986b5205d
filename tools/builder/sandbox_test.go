package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
)

// proc is one process, told apart from a later one with the same pid by
// its start time.
type proc struct {
	pid         int
	comm, start string
}

// procs lists the processes of this machine with their parents.
func procs(t *testing.T) (all map[int]proc, parent map[int]int) {
	t.Helper()
	all, parent = map[int]proc{}, map[int]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ppid, ok := readStat(pid)
		if ok {
			all[pid], parent[pid] = p, ppid
		}
	}
	return all, parent
}

// readStat reads /proc/PID/stat: the command name, the parent and the
// start time (field 22). ok is false once the process is gone.
func readStat(pid int) (p proc, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 {
		return proc{}, 0, false
	}
	f := strings.Fields(s[end+1:]) // state, ppid, ...
	if len(f) < 20 {
		return proc{}, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return proc{pid: pid, comm: s[open+1 : end], start: f[19]}, ppid, true
}

// sandboxTree returns the bwrap processes whose command line names top
// and all their descendants.
func sandboxTree(t *testing.T, top string) []proc {
	t.Helper()
	all, parent := procs(t)
	in := map[int]bool{}
	for pid := range all {
		if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil && strings.Contains(string(b), top) {
			in[pid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if in[pp] && !in[pid] {
				in[pid], changed = true, true
			}
		}
	}
	var tree []proc
	for pid := range in {
		tree = append(tree, all[pid])
	}
	return tree
}

// TestSandboxCancel cancels a sandboxed command that started background
// processes: when Run returns, no process of the sandbox may remain, not
// even an unreaped bwrap.
func TestSandboxCancel(t *testing.T) {
	testkit.Tool(t, "bwrap")
	top := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := (&sandbox{top: top, epoch: "0"}).command(ctx, "sh", "-c", "sleep 1001 & sleep 1002")
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()

	var tree []proc
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tree = sandboxTree(t, top)
		sleeps := 0
		for _, p := range tree {
			if p.comm == "sleep" {
				sleeps++
			}
		}
		if sleeps == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox did not start both sleeps in 30 s: %v", tree)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run of a cancelled command returned nil")
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of the cancel")
	}
	var left []string
	for _, p := range tree {
		if now, _, ok := readStat(p.pid); ok && now.start == p.start {
			state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
			left = append(left, fmt.Sprintf("%d %s (%s)", p.pid, p.comm, firstLine(string(state), "State:")))
		}
	}
	if len(left) > 0 {
		t.Errorf("processes of the cancelled sandbox remain: %v (of %d)", left, len(tree))
	}
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(l, prefix))
		}
	}
	return ""
}
