package updater

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/outfile"
)

// Exit codes of the updater agent beyond sources/cli's 0 (done), 1
// (failed) and 2 (usage).
const (
	// ExitNoUpdate: there is no update to check, write or apply.
	ExitNoUpdate = 3
	// ExitLocked: another updater command holds the lock.
	ExitLocked = 4
)

// Image names one release of a variant for an architecture, as
// upstream's update status does.
type Image struct {
	Variant string           `json:"variant"`
	Arch    string           `json:"arch"`
	Version manifest.Version `json:"version"`
}

// CheckResult is what `updater check-update --json` prints.
type CheckResult struct {
	// OS is the running image.
	OS Image `json:"os"`
	// AvailableUpdates are the versions of every applicable update,
	// newest first (updater.Applicable).
	AvailableUpdates []manifest.Version `json:"available_updates"`
	// ChosenUpdate is the update the host should move to (updater.Choose
	// with settings.updates.version-lock), nil when none.
	ChosenUpdate *Image `json:"chosen_update"`
}

// BankStatus is what `updater status --json` prints, and what the commands
// that change the disk print after the change: the booted bank and the
// other one.
type BankStatus struct {
	ActivePartition  Partition `json:"active_partition"`
	StagingPartition Partition `json:"staging_partition"`
}

// Partition is one bank of the disk.
type Partition struct {
	Bank bootstate.Bank `json:"bank"`
	// Image is what the bank holds: for the active bank the running image
	// (os-release); for the staging bank the image update-image wrote
	// (staged.json), while the bank still holds it and may boot; nil
	// otherwise.
	Image *Image `json:"image"`
	// NextToBoot: the bootloader picks this bank at the next boot.
	NextToBoot bool `json:"next_to_boot"`
	// Valid: the bank may boot when chosen (it has tries left or booted
	// successfully before).
	Valid bool `json:"valid"`
	// State is the bank's boot state.
	State bootstate.BankState `json:"state"`
}

// StagedFile is the name of the record of a written bank in the agent's
// state directory.
const StagedFile = "staged.json"

// Staged records what update-image wrote into a bank. It is written
// (write, fsync, rename, fsync the directory) after the images were
// checked and before the bank is marked valid, and removed right after
// the bank's boot state is cleared, so it never names a bank that holds
// something else.
type Staged struct {
	Bank  bootstate.Bank `json:"bank"`
	Image Image          `json:"image"`
	// RootHash is the dm-verity root hash the written root was checked
	// against (hex).
	RootHash string    `json:"root_hash"`
	Written  time.Time `json:"written"`
}

// readStaged reads dir's staged.json; nil when there is none.
func readStaged(dir string) (*Staged, error) {
	data, err := os.ReadFile(filepath.Join(dir, StagedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read staged update: %w", err)
	}
	var s Staged
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read staged update %s: %w", filepath.Join(dir, StagedFile), err)
	}
	return &s, nil
}

// writeStaged records s durably in dir.
func writeStaged(dir string, s Staged) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode staged update: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record staged update: %w", err)
	}
	if err := outfile.WriteFile(filepath.Join(dir, StagedFile), append(data, '\n'), outfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("record staged update: %w", err)
	}
	return nil
}

// removeStaged removes dir's staged.json durably.
func removeStaged(dir string) error {
	err := os.Remove(filepath.Join(dir, StagedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove staged update record: %w", err)
	}
	return outfile.SyncDir(dir)
}

// bankStatus describes the disk: state is its boot state, booted the
// booted bank, running the image that runs, staged the record of
// update-image (or nil).
func bankStatus(state bootstate.State, booted bootstate.Bank, running Image, staged *Staged) BankStatus {
	next := bootstate.Next(state).Bank
	part := func(b bootstate.Bank) Partition {
		bs := state.Bank(b)
		return Partition{Bank: b, NextToBoot: next == b, Valid: bs.TriesLeft > 0 || bs.Successful, State: bs}
	}
	st := BankStatus{ActivePartition: part(booted), StagingPartition: part(booted.Other())}
	st.ActivePartition.Image = &running
	if in := st.StagingPartition; staged != nil && staged.Bank == in.Bank && in.Valid {
		img := staged.Image
		st.StagingPartition.Image = &img
	}
	return st
}
