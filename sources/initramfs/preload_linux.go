package initramfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// preloadArg makes /init the reader of a preload instead of PID 1 (see
// startPreload); the next argument is the number of files, passed as
// descriptors 3 and up.
const preloadArg = "--preload"

// Preload reading, and why: the first start of a program on the verity
// root pays for its pages one fault at a time, each a small read that
// dm-verity hashes and EROFS decompresses. Under software emulation the
// agents' binary took 1.4 s from exec to its first log line, and
// containerd 4 s to start, most of it in such faults. Read sequentially,
// the same files take 0.3 s and 0.5 s, while PID 1 is busy with systemd's
// own start-up and the second CPU is idle (docs/performance.md).

// startPreload starts a child of /init that reads the files named by the
// new root's preload list (PreloadList) into the page cache, so that it
// runs on while /init executes systemd. The files are opened here, in the
// new root (absolute links resolve inside it), before it becomes "/".
// A preload only saves time: a missing or bad list, or a file that cannot
// be opened, is reported and skipped, never fatal.
func startPreload(con console, root string) {
	data, err := os.ReadFile(filepath.Join(root, PreloadList))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		con.printf("preload: %v; nothing is read ahead", err)
		return
	}
	names, err := ReadPreloadList(string(data))
	if err != nil {
		con.printf("preload: %s: %v; nothing is read ahead", PreloadList, err)
		return
	}
	files, size := openPreload(con, root, names)
	if len(files) == 0 {
		return
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		con.printf("preload: find /init: %v", err)
		return
	}
	// The child outlives this process's exec of systemd, which reaps it.
	cmd := exec.Command(self, preloadArg, strconv.Itoa(len(files)))
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = con.w, con.w
	if err := cmd.Start(); err != nil {
		con.printf("preload: start the reader: %v", err)
		return
	}
	opened := make([]string, len(files))
	for i, f := range files {
		opened[i] = f.Name()
	}
	con.printf("reading ahead %d files, %.1f MiB: %s", len(files), float64(size)/(1<<20), strings.Join(opened, ", "))
}

// openPreload opens the regular files among names below root, resolving
// links inside root, and returns them with their total size.
func openPreload(con console, root string, names []string) ([]*os.File, int64) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		con.printf("preload: open %s: %v", root, err)
		return nil, 0
	}
	defer unix.Close(dir)
	var files []*os.File
	var size int64
	for _, n := range names {
		fd, err := unix.Openat2(dir, strings.TrimPrefix(n, "/"), &unix.OpenHow{
			Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			con.printf("preload: open %s: %v; skipped", n, err)
			continue
		}
		f := os.NewFile(uintptr(fd), n)
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			con.printf("preload: %s is not a regular file; skipped", n)
			f.Close()
			continue
		}
		files = append(files, f)
		size += st.Size()
	}
	return files, size
}

// runPreload is the reading child: it reads the n files at descriptors
// 3 and up to their ends, in order, and says on out how long that took.
func runPreload(ctx context.Context, n int, out io.Writer) int {
	start := time.Now()
	var files []*os.File
	for fd := 3; fd < 3+n; fd++ {
		files = append(files, os.NewFile(uintptr(fd), "descriptor "+strconv.Itoa(fd)))
	}
	size, err := readAll(ctx, files)
	if err != nil {
		fmt.Fprintf(out, "%spreload: %v\n", prefix, err)
		return 1
	}
	fmt.Fprintf(out, "%sread ahead %d files, %.1f MiB in %s\n", prefix, n, float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))
	return 0
}

// readAll reads each file to its end (sequentially: the kernel reads ahead
// in large requests) and closes it; it returns the bytes read.
func readAll(ctx context.Context, files []*os.File) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	var errs []error
	for _, f := range files {
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
		for ctx.Err() == nil {
			k, err := f.Read(buf)
			total += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("read %s: %w", f.Name(), err))
				break
			}
		}
		f.Close()
	}
	return total, errors.Join(errs...)
}
