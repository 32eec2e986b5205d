package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestChain(t *testing.T) {
	t.Parallel()
	v := MustParseVersion
	m := Migrations{
		{v("1.0.0"), v("1.1.0")}: {"a", "b"},
		{v("1.0.0"), v("1.2.0")}: {"skip"}, // the largest step not above the target wins
		{v("1.1.0"), v("1.2.0")}: {"c"},
		{v("1.2.0"), v("1.3.0")}: {},
		{v("1.3.0"), v("2.0.0")}: {"d"},
		{v("1.0.0"), v("9.0.0")}: {"too-far"}, // beyond every target below
	}
	for _, tc := range []struct {
		from, to string
		want     []string
		err      string
	}{
		{"1.0.0", "1.0.0", nil, ""},
		{"1.0.0", "1.1.0", []string{"a", "b"}, ""},
		{"1.1.0", "1.0.0", []string{"b", "a"}, ""},
		{"1.0.0", "1.2.0", []string{"skip"}, ""},
		{"1.1.0", "2.0.0", []string{"c", "d"}, ""},
		{"2.0.0", "1.1.0", []string{"d", "c"}, ""},
		{"1.2.0", "1.3.0", []string{}, ""},
		{"1.0.0", "2.0.0", []string{"skip", "d"}, ""},
		{"1.0.0", "1.2.5", nil, "no step from 1.2.0 towards 1.2.5"},
		{"0.9.0", "1.0.0", nil, "no step from 0.9.0 towards 1.0.0"},
		{"2.0.0", "0.9.0", nil, "no step from 0.9.0 towards 2.0.0"},
	} {
		got, err := m.Chain(v(tc.from), v(tc.to))
		if tc.err != "" {
			if !errors.Is(err, ErrMissingMigration) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Chain(%s, %s) = %v, %v; want ErrMissingMigration %q", tc.from, tc.to, got, err, tc.err)
			}
			continue
		}
		if err != nil || (len(got) != 0 || len(tc.want) != 0) && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Chain(%s, %s) = %q, %v; want %q", tc.from, tc.to, got, err, tc.want)
		}
	}
}
