package powercut

import (
	"slices"
	"testing"
)

func TestStates(t *testing.T) {
	d := New([]byte("abcd"))
	d.WriteAt([]byte("X"), 0)
	d.Sync()
	d.WriteAt([]byte("Y"), 1)
	d.WriteAt([]byte("Z"), 2)
	var got []string
	for _, s := range d.States() {
		got = append(got, string(s.Bytes))
	}
	// Epoch 0: the first write or not; epoch 1: X plus any subset of Y, Z.
	want := []string{"abcd", "Xbcd", "Xbcd", "XYcd", "XbZd", "XYZd"}
	if !slices.Equal(got, want) {
		t.Errorf("States = %q, want %q", got, want)
	}
	if string(d.Bytes()) != "XYZd" || d.Syncs() != 1 || d.Writes() != 3 {
		t.Errorf("disk = %q after %d syncs and %d writes", d.Bytes(), d.Syncs(), d.Writes())
	}
}
