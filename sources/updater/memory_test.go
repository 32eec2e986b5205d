package updater_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bank"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/testkit"
)

// rssEnv makes the test binary run a command and print its peak resident
// memory instead of running the tests (see TestMain): a JSON argv. The
// command must be started from a small process: Linux counts the memory
// of the process that forked it in the peak a child reports (the parent's
// address space is the child's until it execs), and the test process
// holds the test's images.
const rssEnv = "PETREL_UPDATER_RSS"

// rssHelper runs argv and prints "maxrss <KiB>" and its output.
func rssHelper(spec string) int {
	var argv []string
	if err := json.Unmarshal([]byte(spec), &argv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	os.Stdout.Write(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("maxrss %d\n", cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	return 0
}

// peakRSS runs argv from a small process and returns its peak resident
// memory in bytes and its output.
func peakRSS(t *testing.T, argv ...string) (int64, string) {
	t.Helper()
	cmd := testkit.Helper(t, rssEnv, argv)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, b.String())
	}
	out := b.String()
	i := strings.LastIndex(out, "maxrss ")
	kib, err := strconv.ParseInt(strings.TrimSpace(out[i+len("maxrss "):]), 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("no peak memory in %q", out)
	}
	return kib << 10, out[:i]
}

// TestPeakMemory runs the shipped binary's update-image with a root image
// of 60 MiB compressed (random bytes: zstd cannot shrink them) and checks
// the process's peak resident memory: the images stream through a fixed
// set of buffers (128 KiB of download, the zstd decoder's window and
// blocks, 1 MiB of writes), so it stays far below the size of the root
// (upstream's updog was OOM-killed buffering images).
func TestPeakMemory(t *testing.T) {
	t.Parallel()
	bin := petrel(t)
	repo := newRepoServer(t)
	repo.publish("0.1.0", 1<<20, false, nil, nil)
	step := manifest.Span{From: manifest.MustParseVersion("0.1.0"), To: manifest.MustParseVersion("0.2.0")}
	rel := repo.publish("0.2.0", 61<<20, true, &step, nil)
	if n := len(rel.zst[bank.Root]); n < 60<<20 {
		t.Fatalf("compressed root is %d bytes, want at least 60 MiB", n)
	}
	h := newHost(t, repo, "")
	start := time.Now()
	peak, out := peakRSS(t, append([]string{bin, "updater"}, h.args("update-image")...)...)
	wall := time.Since(start)
	t.Logf("update-image of a %.1f MiB compressed root (%.1f MiB written in all): %.2f s, peak RSS %.1f MiB",
		float64(len(rel.zst[bank.Root]))/(1<<20), float64(len(rel.raw[bank.Root])+len(rel.raw[bank.Boot])+len(rel.raw[bank.Hash]))/(1<<20),
		wall.Seconds(), float64(peak)/(1<<20))
	if peak >= 40<<20 {
		t.Errorf("peak RSS of update-image = %.1f MiB, want well under 64 MiB\n%s", float64(peak)/(1<<20), out)
	}
	if err := h.holds(rel); err != nil {
		t.Fatal(err)
	}
}
