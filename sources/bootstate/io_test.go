package bootstate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a device that records writes and syncs.
type recorder struct {
	data   []byte
	writes [][2]int64 // offset, length
	syncs  int
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	return copy(p, r.data[off:]), nil
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.writes = append(r.writes, [2]int64{off, int64(len(p))})
	return copy(r.data[off:], p), nil
}

func (r *recorder) Sync() error { r.syncs++; return nil }

func TestWriteIsOneAlignedSectorAndSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := &recorder{data: make([]byte, 8*BlockSize)}
	if err := Write(ctx, dev, 3*BlockSize, Initial()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(dev.writes) != 1 || dev.writes[0] != [2]int64{3 * BlockSize, BlockSize} || dev.syncs != 1 {
		t.Fatalf("writes %v, syncs %d; want one %d-byte write at %d and one sync", dev.writes, dev.syncs, BlockSize, 3*BlockSize)
	}
	if !bytes.Equal(dev.data[:3*BlockSize], make([]byte, 3*BlockSize)) || !bytes.Equal(dev.data[4*BlockSize:], make([]byte, 4*BlockSize)) {
		t.Error("Write touched bytes outside its sector")
	}
	got, _, err := Read(ctx, dev, 3*BlockSize)
	if err != nil || got != Initial() {
		t.Fatalf("Read after Write = %+v, %v; want %+v", got, err, Initial())
	}
	if err := Write(ctx, dev, 100, Initial()); err == nil {
		t.Error("Write at unaligned offset 100 = nil, want error")
	}
	if _, _, err := Read(ctx, dev, 7); err == nil {
		t.Error("Read at unaligned offset 7 = nil, want error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Write(cctx, dev, 0, Initial()); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with canceled context = %v, want context.Canceled", err)
	}
}

func TestUpdateKeepsOtherVars(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "disk.img")
	env, err := Initial().Env()
	if err != nil {
		t.Fatal(err)
	}
	_ = env.Set("saved_entry", "keep me")
	data, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 4*BlockSize)
	copy(img[2*BlockSize:], data)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, after, err := Update(ctx, f, 2*BlockSize, func(s State) (State, error) { return MarkInactiveValid(s, BankA) })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if before != Initial() || after.B.TriesLeft != 1 {
		t.Fatalf("Update = %+v -> %+v", before, after)
	}
	env2, err := ReadEnv(ctx, f, 2*BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := env2.Get("saved_entry"); v != "keep me" {
		t.Errorf("saved_entry = %q after Update, want kept", v)
	}
	// A refused transition writes nothing.
	raw := make([]byte, BlockSize)
	_, _ = f.ReadAt(raw, 2*BlockSize)
	if _, _, err := Update(ctx, f, 2*BlockSize, func(s State) (State, error) { return RollbackToInactive(s, BankB) }); err != nil {
		t.Fatalf("rollback to A (successful) = %v", err)
	}
	_, _ = f.ReadAt(raw, 2*BlockSize)
	if _, _, err := Update(ctx, f, 2*BlockSize, func(s State) (State, error) { return UpgradeToInactive(s, BankA) }); !errors.Is(err, ErrAlreadyMarked) {
		t.Fatalf("upgrade over a marked bank = %v, want ErrAlreadyMarked", err)
	}
	raw2 := make([]byte, BlockSize)
	_, _ = f.ReadAt(raw2, 2*BlockSize)
	if !bytes.Equal(raw, raw2) {
		t.Error("a refused Update changed the block")
	}
}

// TestUpdateUnchangedWritesNothing: a transition to the state the disk
// already has (clear-inactive of a clear bank, mark-successful-boot of a
// successful one) leaves the sector alone.
func TestUpdateUnchangedWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := &recorder{data: make([]byte, 2*BlockSize)}
	if err := Write(ctx, dev, BlockSize, Initial()); err != nil {
		t.Fatal(err)
	}
	dev.writes, dev.syncs = nil, 0
	for _, fn := range []func(State, Bank) (State, error){ClearInactive, MarkSuccessful} {
		before, after, err := Update(ctx, dev, BlockSize, func(s State) (State, error) { return fn(s, BankA) })
		if err != nil || before != Initial() || after != Initial() {
			t.Fatalf("Update = %+v -> %+v, %v", before, after, err)
		}
	}
	if len(dev.writes) != 0 || dev.syncs != 0 {
		t.Errorf("unchanged updates wrote %v and synced %d times, want nothing", dev.writes, dev.syncs)
	}
	if _, _, err := Update(ctx, dev, BlockSize, func(s State) (State, error) { return MarkInactiveValid(s, BankA) }); err != nil {
		t.Fatal(err)
	}
	if len(dev.writes) != 1 || dev.syncs != 1 {
		t.Errorf("a change wrote %v and synced %d times, want one write and one sync", dev.writes, dev.syncs)
	}
}
