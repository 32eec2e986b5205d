package verity

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/sources/testkit"
)

// This file holds the helpers that run the real veritysetup as the oracle.

// vsResult is what `veritysetup format` printed.
type vsResult struct {
	root       []byte
	hashBlocks uint64
}

var (
	reRoot       = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]{64})$`)
	reHashBlocks = regexp.MustCompile(`(?m)^Hash blocks:\s+(\d+)$`)
	rePosition   = regexp.MustCompile(`Verification failed at position (\d+)\.`)
)

// uuidString spells u as veritysetup's --uuid wants it.
func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// veritysetupFormat runs `veritysetup format` with p on dataPath into a
// fresh hashPath.
func veritysetupFormat(t testing.TB, dataPath, hashPath string, p Params) vsResult {
	t.Helper()
	p = p.withDefaults()
	out := testkit.Run(t, "veritysetup", "format", "--format", "1", "--hash", "sha256",
		"--data-block-size", strconv.Itoa(int(p.DataBlockSize)),
		"--hash-block-size", strconv.Itoa(int(p.HashBlockSize)),
		"--salt", hex.EncodeToString(p.Salt), "--uuid", uuidString(p.UUID),
		dataPath, hashPath)
	m := reRoot.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("veritysetup format: no root hash in output:\n%s", out)
	}
	root, _ := hex.DecodeString(m[1])
	m = reHashBlocks.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("veritysetup format: no hash blocks in output:\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return vsResult{root: root, hashBlocks: n}
}

// veritysetupVerify runs `veritysetup verify`; ok reports exit status 0 and
// badOffset is the data offset it names on failure, or -1.
func veritysetupVerify(t testing.TB, dataPath, hashPath string, root []byte) (ok bool, badOffset int64, out string) {
	t.Helper()
	cmd := exec.Command(testkit.Tool(t, "veritysetup"), "verify", "-v", dataPath, hashPath, hex.EncodeToString(root))
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", cmd, err)
	}
	badOffset = -1
	if m := rePosition.FindSubmatch(b); m != nil {
		badOffset, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return err == nil, badOffset, string(b)
}

// writeData writes blocks pseudo-random blocks of size bs (every seventh
// block zero, as in a real file system) and returns the path and bytes.
func writeData(t testing.TB, dir string, blocks, bs int, seed uint64) (string, []byte) {
	t.Helper()
	b := make([]byte, blocks*bs)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'v', 'e', 'r', 'i', 't', 'y'})
	_, _ = r.Read(b)
	for i := 0; i < blocks; i += 7 {
		clear(b[i*bs : (i+1)*bs])
	}
	p := filepath.Join(dir, "data.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// formatFile runs Format from dataPath into a new file hashPath.
func formatFile(t testing.TB, dataPath, hashPath string, p Params) *Tree {
	t.Helper()
	d, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h, err := os.Create(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tree, err := Format(context.Background(), d, fi.Size(), h, p)
	if err != nil {
		t.Fatalf("Format(%s) = %v", dataPath, err)
	}
	return tree
}

// verifyFiles runs Verify on two files.
func verifyFiles(t testing.TB, dataPath, hashPath string, root []byte) error {
	t.Helper()
	d, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h, err := os.Open(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fi, err := d.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Verify(context.Background(), d, fi.Size(), h, root)
}

// firstDiff describes where two byte slices first differ.
func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x != %#02x", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d != %d", len(a), len(b))
}

// flipByte xors one byte of the file at path.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src to a new file dst.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	if err := outfile.Copy(src, dst, outfile.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
}
