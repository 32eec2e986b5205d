package bootstate

import (
	"errors"
	"fmt"
)

// Sentinel errors of the transitions; they arrive wrapped in *StateError.
var (
	// ErrNotBootable: the bank has neither tries left nor a successful boot.
	ErrNotBootable = errors.New("bank has no tries left and never booted successfully")
	// ErrAlreadyMarked: the inactive bank already has a priority or is
	// marked successful, so an upgrade was prepared or done already.
	ErrAlreadyMarked = errors.New("inactive bank is already marked for boot")
	// ErrNotValid: the inactive bank was not marked valid (no tries left).
	ErrNotValid = errors.New("inactive bank is not marked valid")
	// ErrInvalidBank: the bank argument is neither A nor B.
	ErrInvalidBank = errors.New("invalid bank")
)

// StateError reports a transition that the current state does not allow.
type StateError struct {
	Op    string    // transition name, e.g. "rollback-to-inactive"
	Bank  Bank      // the bank whose state refused it
	State BankState // that bank's state
	Err   error     // one of the sentinel errors above
}

func (e *StateError) Error() string {
	return fmt.Sprintf("%s: bank %s (priority %d, tries %d, successful %t): %v",
		e.Op, e.Bank, e.State.Priority, e.State.TriesLeft, e.State.Successful, e.Err)
}

func (e *StateError) Unwrap() error { return e.Err }

// Decision is what the bootloader does with a state.
type Decision struct {
	// Bank is the bank that boots.
	Bank Bank
	// Fallback is set when no bank was bootable and Bank is the one with the
	// highest priority (A on a tie), booted anyway rather than looping.
	Fallback bool
	// SpentTry is set when the boot consumed one of the bank's tries.
	SpentTry bool
	// After is the state written back before the kernel starts.
	After State
}

// Next predicts the bootloader: it picks the bank with the highest priority
// among the bootable ones (A wins ties, as in GRUB's gptprio.next) and, if
// that bank is not marked successful, spends one of its tries. When neither
// bank is bootable it boots the higher-priority bank (A on a tie) without
// changing the state. The GRUB script in tools/grub implements the same
// rules; the QEMU tests check that both agree.
func Next(s State) Decision {
	var (
		best  Bank
		found bool
	)
	for _, b := range []Bank{BankA, BankB} {
		bs := s.Bank(b)
		if bs.Bootable() && (!found || bs.Priority > s.Bank(best).Priority) {
			best, found = b, true
		}
	}
	if !found {
		b := BankA
		if s.B.Priority > s.A.Priority {
			b = BankB
		}
		return Decision{Bank: b, Fallback: true, After: s}
	}
	d := Decision{Bank: best, After: s}
	if bs := s.Bank(best); !bs.Successful && bs.TriesLeft > 0 {
		bs.TriesLeft--
		d.After = s.withBank(best, bs)
		d.SpentTry = true
	}
	return d
}

// MarkSuccessful marks the booted (active) bank successful.
func MarkSuccessful(s State, active Bank) (State, error) {
	if !active.Valid() {
		return s, fmt.Errorf("mark-successful-boot: bank %d: %w", active, ErrInvalidBank)
	}
	bs := s.Bank(active)
	bs.Successful = true
	return s.withBank(active, bs), nil
}

// ClearInactive zeroes the inactive bank before new images are written to it.
func ClearInactive(s State, active Bank) (State, error) {
	if !active.Valid() {
		return s, fmt.Errorf("clear-inactive: bank %d: %w", active, ErrInvalidBank)
	}
	return s.withBank(active.Other(), BankState{}), nil
}

// MarkInactiveValid gives the inactive bank one try once its images are
// written completely.
func MarkInactiveValid(s State, active Bank) (State, error) {
	if !active.Valid() {
		return s, fmt.Errorf("mark-inactive-valid: bank %d: %w", active, ErrInvalidBank)
	}
	bs := s.Bank(active.Other())
	bs.TriesLeft = 1
	return s.withBank(active.Other(), bs), nil
}

// UpgradeToInactive makes the next boot try the inactive bank: inactive
// priority 2 and not successful, active priority 1. The inactive bank must
// be cleared (priority 0, not successful) and marked valid (tries left).
func UpgradeToInactive(s State, active Bank) (State, error) {
	const op = "upgrade-to-inactive"
	if !active.Valid() {
		return s, fmt.Errorf("%s: bank %d: %w", op, active, ErrInvalidBank)
	}
	in := s.Bank(active.Other())
	if in.Priority != 0 || in.Successful {
		return s, &StateError{Op: op, Bank: active.Other(), State: in, Err: ErrAlreadyMarked}
	}
	if in.TriesLeft == 0 {
		return s, &StateError{Op: op, Bank: active.Other(), State: in, Err: ErrNotValid}
	}
	in.Priority, in.Successful = 2, false
	act := s.Bank(active)
	act.Priority = 1
	return s.withBank(active.Other(), in).withBank(active, act), nil
}

// CancelUpgrade undoes UpgradeToInactive: inactive priority 0, active
// priority 2.
func CancelUpgrade(s State, active Bank) (State, error) {
	if !active.Valid() {
		return s, fmt.Errorf("cancel-upgrade: bank %d: %w", active, ErrInvalidBank)
	}
	in, act := s.Bank(active.Other()), s.Bank(active)
	in.Priority, act.Priority = 0, 2
	return s.withBank(active.Other(), in).withBank(active, act), nil
}

// RollbackToInactive makes the next boot use the inactive bank again:
// inactive priority 2, active priority 1. It is refused with a *StateError
// wrapping ErrNotBootable unless the inactive bank booted successfully
// before or still has tries left; once its priority is raised it is then
// bootable.
func RollbackToInactive(s State, active Bank) (State, error) {
	const op = "rollback-to-inactive"
	if !active.Valid() {
		return s, fmt.Errorf("%s: bank %d: %w", op, active, ErrInvalidBank)
	}
	in := s.Bank(active.Other())
	if !in.Successful && in.TriesLeft == 0 {
		return s, &StateError{Op: op, Bank: active.Other(), State: in, Err: ErrNotBootable}
	}
	act := s.Bank(active)
	in.Priority, act.Priority = 2, 1
	return s.withBank(active.Other(), in).withBank(active, act), nil
}
