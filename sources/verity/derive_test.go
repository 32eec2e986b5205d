package verity

import (
	"bytes"
	"fmt"
	"testing"
)

func TestDerive(t *testing.T) {
	t.Parallel()
	a := DeriveSalt([]byte("aws-k8s-1.31"), []byte("1.2.3"))
	if len(a) != 32 {
		t.Fatalf("len(DeriveSalt()) = %d, want 32", len(a))
	}
	if b := DeriveSalt([]byte("aws-k8s-1.31"), []byte("1.2.3")); !bytes.Equal(a, b) {
		t.Errorf("DeriveSalt is not deterministic: %x != %x", a, b)
	}
	for _, tt := range []struct {
		name  string
		parts [][]byte
	}{
		{"other version", [][]byte{[]byte("aws-k8s-1.31"), []byte("1.2.4")}},
		{"moved boundary", [][]byte{[]byte("aws-k8s-1.311"), []byte(".2.3")}},
		{"joined parts", [][]byte{[]byte("aws-k8s-1.311.2.3")}},
		{"extra empty part", [][]byte{[]byte("aws-k8s-1.31"), []byte("1.2.3"), nil}},
	} {
		if b := DeriveSalt(tt.parts...); bytes.Equal(a, b) {
			t.Errorf("DeriveSalt(%s) = DeriveSalt(original) = %x", tt.name, b)
		}
	}
	u := DeriveUUID([]byte("aws-k8s-1.31"), []byte("1.2.3"))
	if bytes.Equal(u[:], a[:16]) {
		t.Errorf("DeriveUUID = first half of DeriveSalt of the same parts: domains are not separated")
	}
	if u[6]>>4 != 8 || u[8]>>6 != 2 {
		t.Errorf("DeriveUUID = %x, want version 8 and variant 10", u)
	}
	if u != DeriveUUID([]byte("aws-k8s-1.31"), []byte("1.2.3")) {
		t.Errorf("DeriveUUID is not deterministic")
	}
	// Pinned value: a changed derivation would silently change every
	// image's hash device, so it must show up as a test failure.
	if got, want := uuidString(DeriveUUID([]byte("petrel"))), pinnedUUID; got != want {
		t.Errorf("DeriveUUID(\"petrel\") = %s, want %s", got, want)
	}
}

const pinnedUUID = "ae5f68ed-8a77-859c-9c2b-0bf9d5c8c30e"

func TestDeriveSaltPinned(t *testing.T) {
	t.Parallel()
	if got := DeriveSalt([]byte("petrel")); fmt.Sprintf("%x", got) != pinnedSalt {
		t.Errorf("DeriveSalt(\"petrel\") = %x, want %s", got, pinnedSalt)
	}
}

const pinnedSalt = "831a0e23d48d4b2269fd4c4d2387d5e5a36a25c66a40dc6753da9dfbd68f004a"
