package bootstate

import (
	"errors"
	"fmt"
	"strconv"
)

// Bank names one of the two A/B partition sets.
type Bank int

const (
	// BankA is the first partition set (BOOT-A, ROOT-A, HASH-A).
	BankA Bank = iota
	// BankB is the second partition set (BOOT-B, ROOT-B, HASH-B).
	BankB
)

// String returns "A" or "B".
func (b Bank) String() string {
	switch b {
	case BankA:
		return "A"
	case BankB:
		return "B"
	}
	return "Bank(" + strconv.Itoa(int(b)) + ")"
}

// MarshalText encodes the bank as "A" or "B".
func (b Bank) MarshalText() ([]byte, error) {
	if !b.Valid() {
		return nil, fmt.Errorf("marshal bank %d: %w", int(b), ErrInvalidBank)
	}
	return []byte(b.String()), nil
}

// UnmarshalText accepts what ParseBank accepts.
func (b *Bank) UnmarshalText(text []byte) error {
	v, err := ParseBank(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Other returns the other bank.
func (b Bank) Other() Bank {
	if b == BankA {
		return BankB
	}
	return BankA
}

// Valid reports whether b is BankA or BankB.
func (b Bank) Valid() bool { return b == BankA || b == BankB }

// ParseBank accepts "a", "A", "b" or "B".
func ParseBank(s string) (Bank, error) {
	switch s {
	case "a", "A":
		return BankA, nil
	case "b", "B":
		return BankB, nil
	}
	return 0, fmt.Errorf("parse bank %q: want A or B", s)
}

// suffix is the lower-case letter used in variable names.
func (b Bank) suffix() string {
	if b == BankB {
		return "b"
	}
	return "a"
}

// MaxCounter is the largest priority or tries value: the 4-bit range of
// Bottlerocket's GPT attribute fields, which is also what the GRUB script's
// decrement ladder covers.
const MaxCounter = 15

// BankState is the boot state of one bank.
type BankState struct {
	// Priority orders the banks; the higher bootable one wins, 0 never boots.
	Priority uint8 `json:"priority"`
	// TriesLeft counts boot attempts left before the bank counts as failed.
	TriesLeft uint8 `json:"tries_left"`
	// Successful is set by the host once a boot of this bank succeeded.
	Successful bool `json:"successful"`
}

// Bootable reports whether the bootloader may pick the bank: it needs a
// non-zero priority and either tries left or a successful boot.
func (s BankState) Bootable() bool {
	return s.Priority > 0 && (s.TriesLeft > 0 || s.Successful)
}

// FormatVersion is the value of FormatVar written by this package.
const FormatVersion = "1"

// Names of the variables in the environment block. GRUB's script loads only
// these (load_env with a whitelist), so no other variable can leak into it.
const (
	FormatVar = "petrel_format"
	prioVar   = "petrel_prio_"
	triesVar  = "petrel_tries_"
	okVar     = "petrel_ok_"
)

// VarNames returns the names of the state variables of bank b.
func VarNames(b Bank) (prio, tries, ok string) {
	return prioVar + b.suffix(), triesVar + b.suffix(), okVar + b.suffix()
}

// State is the A/B state of a disk. It is a plain value: transitions return
// a new State and never change their argument.
type State struct {
	A BankState `json:"a"`
	B BankState `json:"b"`
}

// Bank returns the state of bank b.
func (s State) Bank(b Bank) BankState {
	if b == BankB {
		return s.B
	}
	return s.A
}

// withBank returns s with bank b replaced by bs.
func (s State) withBank(b Bank, bs BankState) State {
	if b == BankB {
		s.B = bs
	} else {
		s.A = bs
	}
	return s
}

// Validate checks that every counter fits the range GRUB's script handles.
func (s State) Validate() error {
	var errs []error
	for _, b := range []Bank{BankA, BankB} {
		bs := s.Bank(b)
		if bs.Priority > MaxCounter {
			errs = append(errs, fmt.Errorf("bank %s: priority %d is above %d", b, bs.Priority, MaxCounter))
		}
		if bs.TriesLeft > MaxCounter {
			errs = append(errs, fmt.Errorf("bank %s: tries %d is above %d", b, bs.TriesLeft, MaxCounter))
		}
	}
	return errors.Join(errs...)
}

// Initial is the state of a freshly built image: bank A has priority 1 and
// is marked successful, bank B is empty (Bottlerocket's build-time bits).
func Initial() State {
	return State{A: BankState{Priority: 1, Successful: true}}
}

// FromEnv decodes the state variables from env. Every missing or malformed
// variable is reported, each naming its line.
func FromEnv(env *Env) (State, error) {
	var errs []error
	if v := env.find(FormatVar); v == nil {
		errs = append(errs, fmt.Errorf("grubenv: variable %s missing", FormatVar))
	} else if v.Value != FormatVersion {
		errs = append(errs, fmt.Errorf("grubenv line %d: %s=%q, want %q", v.Line, FormatVar, v.Value, FormatVersion))
	}
	counter := func(name string, max uint8) uint8 {
		v := env.find(name)
		if v == nil {
			errs = append(errs, fmt.Errorf("grubenv: variable %s missing", name))
			return 0
		}
		n, ok := canonicalUint(v.Value)
		if !ok || n > uint64(max) {
			errs = append(errs, fmt.Errorf("grubenv line %d: %s=%q, want a decimal number 0..%d without leading zeros", v.Line, name, v.Value, max))
			return 0
		}
		return uint8(n)
	}
	var s State
	for _, b := range []Bank{BankA, BankB} {
		prio, tries, ok := VarNames(b)
		s = s.withBank(b, BankState{
			Priority:   counter(prio, MaxCounter),
			TriesLeft:  counter(tries, MaxCounter),
			Successful: counter(ok, 1) == 1,
		})
	}
	if err := errors.Join(errs...); err != nil {
		return State{}, err
	}
	return s, nil
}

// canonicalUint parses a decimal number written the way the GRUB script
// compares it: digits only, no sign, no leading zero. The script matches
// tries with string equality, so "01" would never be decremented.
func canonicalUint(s string) (uint64, bool) {
	if s == "" || len(s) > 2 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 8)
	return n, err == nil
}

// ApplyTo stores s into env, keeping every other variable and the order.
func (s State) ApplyTo(env *Env) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("store boot state: %w", err)
	}
	set := func(name, value string) {
		// Names are constants that validName accepts.
		_ = env.Set(name, value)
	}
	set(FormatVar, FormatVersion)
	for _, b := range []Bank{BankA, BankB} {
		bs := s.Bank(b)
		prio, tries, ok := VarNames(b)
		set(prio, strconv.Itoa(int(bs.Priority)))
		set(tries, strconv.Itoa(int(bs.TriesLeft)))
		set(ok, boolDigit(bs.Successful))
	}
	return nil
}

// Env returns a new environment block holding only s.
func (s State) Env() (*Env, error) {
	env := &Env{}
	if err := s.ApplyTo(env); err != nil {
		return nil, err
	}
	return env, nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
