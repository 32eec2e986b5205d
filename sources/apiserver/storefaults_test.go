package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/datastore"
)

// TestDatastoreLimit: a new transaction past datastore.MaxPendingTransactions
// is 413 with a message naming the limit.
func TestDatastoreLimit(t *testing.T) {
	h := startServer(t, nil, 0o660)
	ctx := context.Background()
	for i := range datastore.MaxPendingTransactions {
		if err := h.client.Set(ctx, fmt.Sprintf("t%d", i), map[string]any{"a": i}); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	want := fmt.Sprintf("~datastore limit exceeded: %d pending transactions, at most %d", datastore.MaxPendingTransactions+1, datastore.MaxPendingTransactions)
	h.run(t, []step{
		{"PATCH", "/settings?tx=extra", `{"a":1}`, 413, want},
		{"DELETE", "/tx?tx=t0", "", 200, `["settings.a"]`},
		{"PATCH", "/settings?tx=extra", `{"a":1}`, 204, ""},
	})
	// So that closing the store does not write 1,024 directories.
	txs, err := h.store.ListTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range txs {
		if _, err := h.store.DeleteTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory under dir.
func mountTmpfs(t *testing.T, dir string, size int) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatalf("this test must run as root to mount a file system (it runs as root in CI)")
	}
	mnt := filepath.Join(dir, "full")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// fillUp writes path until its file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 1} {
		for {
			if _, err := f.Write(make([]byte, chunk)); errors.Is(err, syscall.ENOSPC) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFullDisk runs the real apiserver binary on a datastore whose file
// system fills up: a PATCH that needs space is 507 and says so without a
// path, deleting a transaction and reading work, the server restarts on
// the full file system (its log cannot be checkpointed: it serves from
// it), and once space is freed writes work again.
func TestFullDisk(t *testing.T) {
	dir := shortTempDir(t)
	bin := buildServer(t, dir)
	mnt := mountTmpfs(t, dir, 2<<20)
	cur, err := datastore.Create(filepath.Join(mnt, "ds"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	start := func() (*exec.Cmd, *harness, *bytes.Buffer) {
		cmd := exec.Command(bin, "--datastore-path", cur, "--socket-path", sock, "--socket-gid", "0", "--log-level", "warn")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := apiclient.New(sock)
		t.Cleanup(func() { c.Close(); cmd.Process.Kill(); cmd.Wait() })
		waitForSocket(t, c, cmd.Process)
		return cmd, &harness{client: c}, &stderr
	}
	cmd, h, stderr := start()
	h.run(t, []step{{"PATCH", "/settings?tx=keep", `{"motd":"kept"}`, 204, ""}})
	fillUp(t, filepath.Join(mnt, "filler"))
	big := `{"motd":"` + strings.Repeat("x", 200<<10) + `"}`
	h.run(t, []step{
		// Small records still fit in the log space allocated ahead.
		{"PATCH", "/settings?tx=c", `{"network":{"hostname":"h1"}}`, 204, ""},
		{"POST", "/tx/commit?tx=c", "", 200, `["settings.network.hostname"]`},
		{"PATCH", "/settings?tx=big", big, 507, "~Insufficient Storage"},
		{"DELETE", "/tx?tx=keep", "", 200, `["settings.motd"]`},
		{"GET", "/settings", "", 200, `{"network":{"hostname":"h1"}}`},
		{"GET", "/tx/list", "", 200, `[]`},
	})
	code, body, err := h.client.Raw(context.Background(), http.MethodPatch, "/settings?tx=big", []byte(big))
	if err != nil || code != 507 || strings.Contains(string(body), mnt) {
		t.Errorf("PATCH on a full file system = %d %q, %v; want 507 without the datastore's path", code, body, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("apiserver exit after SIGTERM: %v", err)
	}
	if !strings.Contains(stderr.String(), "datastore out of space") {
		t.Errorf("apiserver log does not say why the PATCH failed:\n%s", stderr)
	}

	cmd, h, stderr = start()
	h.run(t, []step{
		{"GET", "/settings", "", 200, `{"network":{"hostname":"h1"}}`},
		{"GET", "/tx/list", "", 200, `[]`},
		{"PATCH", "/settings?tx=big", big, 507, "~Insufficient Storage"},
	})
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	h.run(t, []step{
		{"PATCH", "/settings?tx=big", big, 204, ""},
		{"POST", "/tx/commit?tx=big", "", 200, `["settings.motd"]`},
		{"GET", "/settings?prefix=settings.network", "", 200, `{"network":{"hostname":"h1"}}`},
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("apiserver exit after SIGTERM: %v", err)
	}
	if !strings.Contains(stderr.String(), "datastore checkpoint deferred") {
		t.Errorf("apiserver log after a restart on a full file system does not say the checkpoint was deferred:\n%s", stderr)
	}
}
