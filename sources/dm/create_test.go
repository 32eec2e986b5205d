package dm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const verityTable = "0 20272 verity 1 PARTUUID=0b8ba6fd-0d4e-4fc2-9a37-bd9ae1f12f3c/PARTNROFF=1 " +
	"PARTUUID=0b8ba6fd-0d4e-4fc2-9a37-bd9ae1f12f3c/PARTNROFF=2 4096 4096 2534 1 sha256 " +
	"45b81d61aa b7c84011 2 restart_on_corruption ignore_zero_blocks"

func TestParseCreate(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want []Device
	}{
		{
			name: "verity root",
			in:   "root,,,ro," + verityTable,
			want: []Device{{Name: "root", Minor: -1, ReadOnly: true, Targets: []Target{{
				Start: 0, Length: 20272, Type: "verity",
				Params: strings.SplitN(verityTable, " ", 4)[3],
			}}}},
		},
		{
			name: "quoted by boot loader",
			in:   `"root,,,ro,0 8 zero"`,
			want: []Device{{Name: "root", Minor: -1, ReadOnly: true, Targets: []Target{{Length: 8, Type: "zero"}}}},
		},
		{
			name: "two devices, uuid, minor, two tables, extra spaces",
			in:   "a,UUID-A,3,rw,0 8 linear /dev/vda 0, 8  8 linear /dev/vdb 0 ; b,,,ro,0 1 zero",
			want: []Device{
				{Name: "a", UUID: "UUID-A", Minor: 3, Targets: []Target{
					{Start: 0, Length: 8, Type: "linear", Params: "/dev/vda 0"},
					{Start: 8, Length: 8, Type: "linear", Params: "/dev/vdb 0"},
				}},
				{Name: "b", Minor: -1, ReadOnly: true, Targets: []Target{{Length: 1, Type: "zero"}}},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCreate(tt.in)
			if err != nil {
				t.Fatalf("ParseCreate(%q) error: %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCreate(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
			again, err := ParseCreate(FormatCreate(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %q = %+v, %v", FormatCreate(got), again, err)
			}
		})
	}
}

func TestParseCreateErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want []string // substrings, all must appear
	}{
		{"empty", ``, []string{"empty value"}},
		{"too few fields", "root,,,ro", []string{"found 4 fields"}},
		{"bad flags and minor reported together", "root,,x,rx,0 8 zero", []string{`minor "x"`, `flags "rx"`}},
		{"empty name", ",,,ro,0 8 zero", []string{"name: must not be empty"}},
		{"duplicate name", "a,,,ro,0 8 zero;a,,,ro,0 8 zero", []string{"already used by device 1"}},
		{"short table", "root,,,ro,0 8", []string{"table 1"}},
		{"zero length", "root,,,ro,0 0 zero", []string{"sector count"}},
		{"gap between tables", "root,,,ro,0 8 zero,9 8 zero", []string{"expected 8"}},
		{"long type", "root,,,ro,0 8 abcdefghijklmnopq", []string{"longer than 15"}},
		{"long name", strings.Repeat("n", 128) + ",,,ro,0 8 zero", []string{"128 bytes"}},
		{"slash in name", "a/b,,,ro,0 8 zero", []string{"must not contain"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCreate(tt.in)
			if err == nil {
				t.Fatalf("ParseCreate(%q) succeeded, want error", tt.in)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("ParseCreate(%q) error %v does not wrap ErrSyntax", tt.in, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseCreate(%q) error %q, want it to mention %q", tt.in, err, w)
				}
			}
		})
	}
}

func FuzzParseCreate(f *testing.F) {
	f.Add("root,,,ro," + verityTable)
	f.Add(`"root,,,ro,0 8 zero"`)
	f.Add("a,UUID-A,3,rw,0 8 linear /dev/vda 0,8 8 linear /dev/vdb 0;b,,,ro,0 1 zero")
	f.Add("a,,,ro,18446744073709551615 1 zero")
	f.Fuzz(func(t *testing.T, s string) {
		devs, err := ParseCreate(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseCreate(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		for _, d := range devs {
			if d.Name == "" || len(d.Name) > MaxNameLen || len(d.Targets) == 0 {
				t.Fatalf("ParseCreate(%q) accepted device %+v", s, d)
			}
		}
		again, err := ParseCreate(FormatCreate(devs))
		if err != nil {
			t.Fatalf("reparse of %q: %v", FormatCreate(devs), err)
		}
		if !reflect.DeepEqual(again, devs) {
			t.Fatalf("round trip of %q: got %+v, want %+v", s, again, devs)
		}
	})
}
