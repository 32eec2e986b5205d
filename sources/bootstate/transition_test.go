package bootstate

import (
	"errors"
	"strings"
	"testing"
)

// st builds a State from (priority, tries, ok) triples.
func st(pa, ta uint8, oka bool, pb, tb uint8, okb bool) State {
	return State{A: BankState{pa, ta, oka}, B: BankState{pb, tb, okb}}
}

func TestNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   State
		want Decision
	}{
		{"factory A", Initial(), Decision{Bank: BankA, After: Initial()}},
		{"new B spends try", st(1, 0, true, 2, 1, false), Decision{Bank: BankB, SpentTry: true, After: st(1, 0, true, 2, 0, false)}},
		{"B tries 15", st(1, 0, true, 2, 15, false), Decision{Bank: BankB, SpentTry: true, After: st(1, 0, true, 2, 14, false)}},
		{"B out of tries falls back", st(1, 0, true, 2, 0, false), Decision{Bank: BankA, After: st(1, 0, true, 2, 0, false)}},
		{"ok bank with tries keeps them", st(1, 0, true, 2, 3, true), Decision{Bank: BankB, After: st(1, 0, true, 2, 3, true)}},
		{"A wins tie", st(2, 0, true, 2, 0, true), Decision{Bank: BankA, After: st(2, 0, true, 2, 0, true)}},
		{"B higher", st(1, 0, true, 3, 0, true), Decision{Bank: BankB, After: st(1, 0, true, 3, 0, true)}},
		{"priority 0 never picked", st(0, 5, true, 1, 1, false), Decision{Bank: BankB, SpentTry: true, After: st(0, 5, true, 1, 0, false)}},
		{"none bootable, B higher", st(1, 0, false, 3, 0, false), Decision{Bank: BankB, Fallback: true, After: st(1, 0, false, 3, 0, false)}},
		{"none bootable, tie is A", st(0, 0, false, 0, 0, false), Decision{Bank: BankA, Fallback: true, After: st(0, 0, false, 0, 0, false)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Next(tt.in); got != tt.want {
				t.Errorf("Next(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	type fn func(State, Bank) (State, error)
	for _, tt := range []struct {
		name    string
		op      fn
		in      State
		active  Bank
		want    State
		wantErr error
	}{
		{"mark successful B", MarkSuccessful, st(1, 0, true, 2, 0, false), BankB, st(1, 0, true, 2, 0, true), nil},
		{"mark successful keeps tries", MarkSuccessful, st(2, 1, false, 1, 0, true), BankA, st(2, 1, true, 1, 0, true), nil},
		{"clear inactive", ClearInactive, st(1, 0, true, 2, 3, true), BankA, st(1, 0, true, 0, 0, false), nil},
		{"clear inactive of B", ClearInactive, st(1, 0, true, 2, 0, true), BankB, st(0, 0, false, 2, 0, true), nil},
		{"mark inactive valid", MarkInactiveValid, st(1, 0, true, 0, 0, false), BankA, st(1, 0, true, 0, 1, false), nil},
		{"upgrade", UpgradeToInactive, st(1, 0, true, 0, 1, false), BankA, st(1, 0, true, 2, 1, false), nil},
		{"upgrade from B lowers B", UpgradeToInactive, st(0, 1, false, 2, 0, true), BankB, st(2, 1, false, 1, 0, true), nil},
		{"upgrade twice", UpgradeToInactive, st(1, 0, true, 2, 1, false), BankA, st(1, 0, true, 2, 1, false), ErrAlreadyMarked},
		{"upgrade over successful", UpgradeToInactive, st(1, 0, true, 0, 1, true), BankA, st(1, 0, true, 0, 1, true), ErrAlreadyMarked},
		{"upgrade not valid", UpgradeToInactive, st(1, 0, true, 0, 0, false), BankA, st(1, 0, true, 0, 0, false), ErrNotValid},
		{"cancel", CancelUpgrade, st(1, 0, true, 2, 1, false), BankA, st(2, 0, true, 0, 1, false), nil},
		{"rollback to successful", RollbackToInactive, st(0, 0, true, 2, 0, true), BankB, st(2, 0, true, 1, 0, true), nil},
		{"rollback to tries", RollbackToInactive, st(2, 0, true, 0, 1, false), BankA, st(1, 0, true, 2, 1, false), nil},
		{"rollback refused", RollbackToInactive, st(1, 0, true, 0, 0, false), BankA, st(1, 0, true, 0, 0, false), ErrNotBootable},
		{"bad bank", MarkSuccessful, Initial(), Bank(7), Initial(), ErrInvalidBank},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.op(tt.in, tt.active)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("%s(%+v, %s) error = %v, want %v", tt.name, tt.in, tt.active, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("%s(%+v, %s) = %+v, want %+v", tt.name, tt.in, tt.active, got, tt.want)
			}
			var se *StateError
			if tt.wantErr != nil && tt.wantErr != ErrInvalidBank && (!errors.As(err, &se) || se.Bank != tt.active.Other()) {
				t.Errorf("error %v is not a *StateError for the inactive bank", err)
			}
		})
	}
}

// TestUpgradeCycle walks a whole update through Next: the new bank gets one
// try; if it never marks success the old bank boots again.
func TestUpgradeCycle(t *testing.T) {
	t.Parallel()
	s := Initial()
	var err error
	for _, op := range []func(State, Bank) (State, error){ClearInactive, MarkInactiveValid, UpgradeToInactive} {
		if s, err = op(s, BankA); err != nil {
			t.Fatal(err)
		}
	}
	d := Next(s)
	if d.Bank != BankB || !d.SpentTry {
		t.Fatalf("first boot after upgrade = %+v, want B with a spent try", d)
	}
	if d2 := Next(d.After); d2.Bank != BankA {
		t.Fatalf("boot after a failed B = %+v, want A", d2)
	}
	ok, err := MarkSuccessful(d.After, BankB)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if d := Next(ok); d.Bank != BankB || d.After != ok {
			t.Fatalf("boot %d after success = %+v, want B unchanged", i, d)
		}
	}
	if _, err := RollbackToInactive(ok, BankB); err != nil {
		t.Fatalf("rollback to A: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	good := Signature + "petrel_format=1\npetrel_prio_a=1\npetrel_tries_a=0\npetrel_ok_a=1\npetrel_prio_b=15\npetrel_tries_b=3\npetrel_ok_b=0\n"
	for _, tt := range []struct {
		name    string
		in      string
		want    State
		wantErr []string
	}{
		{"good", good, st(1, 0, true, 15, 3, false), nil},
		{"unknown vars kept", good + "other=x\n", st(1, 0, true, 15, 3, false), nil},
		{"missing", Signature + "petrel_format=1\npetrel_prio_a=1\n", State{}, []string{"petrel_tries_a missing", "petrel_ok_b missing"}},
		{"bad values", Signature + "petrel_format=2\npetrel_prio_a=01\npetrel_tries_a=16\npetrel_ok_a=2\npetrel_prio_b=x\npetrel_tries_b=-1\npetrel_ok_b=0\n", State{},
			[]string{"line 2: petrel_format", "line 3: petrel_prio_a", "line 4: petrel_tries_a", "line 5: petrel_ok_a", "line 6: petrel_prio_b", "line 7: petrel_tries_b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := Parse(block(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromEnv(env)
			if len(tt.wantErr) == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("FromEnv() = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromEnv() = %+v, want errors %q", got, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("FromEnv() error %q does not mention %q", err, w)
				}
			}
		})
	}
}
