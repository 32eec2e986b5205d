package bootstate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// block pads content (which must start with the signature) to BlockSize.
func block(content string) []byte {
	b := []byte(content)
	return append(b, bytes.Repeat([]byte{'#'}, BlockSize-len(b))...)
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		in       []byte
		want     []Var
		wantLine int // 0 = no SyntaxError expected (see wantErr)
		wantErr  string
	}{
		{name: "empty", in: block(Signature)},
		{name: "vars", in: block(Signature + "a=1\nb_2=x y\n"), want: []Var{{"a", "1", 2}, {"b_2", "x y", 3}}},
		{name: "empty value", in: block(Signature + "a=\n"), want: []Var{{"a", "", 2}}},
		{name: "escapes", in: block(Signature + "a=x\\\\y\\\nz\nb=2\n"), want: []Var{{"a", "x\\y\nz", 2}, {"b", "2", 4}}},
		{name: "equals in value", in: block(Signature + "a=b=c\n"), want: []Var{{"a", "b=c", 2}}},
		{name: "short", in: []byte(Signature), wantErr: "block is 25 bytes"},
		{name: "bad signature", in: block("# GRUB Environment Bl0ck\n"), wantLine: 1},
		{name: "no equals", in: block(Signature + "a=1\nbogus\n"), wantLine: 3},
		{name: "bad name", in: block(Signature + "a=1\nb-c=1\n"), wantLine: 3},
		{name: "digit first", in: block(Signature + "1a=1\n"), wantLine: 2},
		{name: "twice", in: block(Signature + "a=1\na=2\n"), wantLine: 3},
		{name: "junk in padding", in: block(Signature + "a=1\n###x"), wantLine: 3},
		{name: "no padding", in: []byte(Signature + "a=" + strings.Repeat("1", BlockSize-len(Signature)-3) + "\n"), wantLine: 3},
		{name: "value runs to end", in: append([]byte(Signature+"a="), bytes.Repeat([]byte{'x'}, BlockSize-len(Signature)-2)...), wantLine: 2},
		{name: "nul", in: block(Signature + "a=\x00\n"), wantLine: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := Parse(tt.in)
			var se *SyntaxError
			switch {
			case tt.wantLine != 0:
				if !errors.As(err, &se) || se.Line != tt.wantLine {
					t.Fatalf("Parse() error = %v, want a SyntaxError on line %d", err, tt.wantLine)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Parse() error = %v", err)
			}
			got := env.Vars()
			if len(got) != len(tt.want) {
				t.Fatalf("Parse() vars = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("var %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			// A valid block encodes back to the same bytes.
			out, err := env.Encode()
			if err != nil {
				t.Fatalf("Encode() error = %v", err)
			}
			if !bytes.Equal(out, tt.in) {
				t.Errorf("Encode(Parse(x)) = %q, want %q", out, tt.in)
			}
		})
	}
}

func TestEncodeFull(t *testing.T) {
	t.Parallel()
	env := &Env{}
	if err := env.Set("big", strings.Repeat("x", BlockSize-len(Signature)-len("big=\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Encode(); !errors.Is(err, ErrBlockFull) {
		t.Fatalf("Encode() of a block without padding = %v, want ErrBlockFull", err)
	}
	if err := env.Set("big", "small"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Encode(); err != nil {
		t.Fatalf("Encode() = %v", err)
	}
	if err := env.Set("bad-name", "1"); err == nil {
		t.Error("Set(bad-name) = nil, want error")
	}
}

// TestGrubEditenvAgrees checks the block format against GRUB's own
// grub-editenv: it lists what Go wrote, and Go parses what it wrote.
func TestGrubEditenvAgrees(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "grubenv")
	s := State{A: BankState{Priority: 1, Successful: true}, B: BankState{Priority: 2, TriesLeft: 15}}
	env, err := s.Env()
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Set("note", "back\\slash"); err != nil {
		t.Fatal(err)
	}
	data, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := testkit.Run(t, "grub-editenv", path, "list")
	want := "petrel_format=1\npetrel_prio_a=1\npetrel_tries_a=0\npetrel_ok_a=1\npetrel_prio_b=2\npetrel_tries_b=15\npetrel_ok_b=0\nnote=back\\slash\n"
	if out != want {
		t.Errorf("grub-editenv list = %q, want %q", out, want)
	}
	// GRUB changes a value; Go must read GRUB's layout.
	testkit.Run(t, "grub-editenv", path, "set", "petrel_tries_b=9", "extra=1")
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env2, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(grub-editenv output) = %v", err)
	}
	got, err := FromEnv(env2)
	if err != nil {
		t.Fatal(err)
	}
	s.B.TriesLeft = 9
	if got != s {
		t.Errorf("state after grub-editenv set = %+v, want %+v", got, s)
	}
	if v, _ := env2.Get("extra"); v != "1" {
		t.Errorf("extra = %q, want 1", v)
	}
	// Go's encoding of the same change is byte-identical to GRUB's.
	if err := s.ApplyTo(env); err != nil {
		t.Fatal(err)
	}
	_ = env.Set("extra", "1")
	mine, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, data) {
		t.Errorf("Go encoding %q\ndiffers from grub-editenv's %q", mine, data)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(block(Signature))
	f.Add(block(Signature + "petrel_format=1\npetrel_prio_a=1\npetrel_tries_a=0\npetrel_ok_a=1\n"))
	f.Add(block(Signature + "a=x\\\\y\\\nz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Parse(data)
		if err != nil {
			return
		}
		out, err := env.Encode()
		if err != nil {
			t.Fatalf("Encode after successful Parse: %v", err)
		}
		env2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Encode(Parse(x))) = %v", err)
		}
		if a, b := env.Vars(), env2.Vars(); len(a) != len(b) {
			t.Fatalf("round trip changed the variables: %+v vs %+v", a, b)
		}
		_, _ = FromEnv(env)
	})
}
