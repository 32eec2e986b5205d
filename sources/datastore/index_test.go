package datastore

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestKeyParents(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"a", nil},
		{"a.b", []string{"a"}},
		{`a."b.c".d`, []string{"a", `a."b.c"`}},
		{`"x.y".z.w`, []string{`"x.y"`, `"x.y".z`}},
	} {
		got := slices.Collect(MustKey(DataKey, tt.name).parents())
		if !slices.Equal(got, tt.want) {
			t.Errorf("parents(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// conflictModel is the obvious check the prefix index replaces: k
// conflicts with a name that is a parent or a child of it.
func conflictModel(names []string, k string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, k+".") || strings.HasPrefix(k, n+".") {
			return true
		}
	}
	return false
}

// TestConflictIndex drives random live and pending writes, deletes,
// commits and metadata through the store and checks every answer against
// conflictModel, so that the counts stay right as keys come and go.
func TestConflictIndex(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 9))
	names := []string{"settings.a", "settings.a.b", "settings.a.b.c", `settings."a.b"`, `settings."a.b".c`,
		"settings.a.c", "settings.d", "settings.d.e", "settings.ab", "settings.ab.c"}
	live := map[string]bool{}
	pending := map[string]bool{}
	meta := map[string]bool{}
	keysOf := func(ms ...map[string]bool) []string {
		var out []string
		for _, m := range ms {
			for k := range m {
				out = append(out, k)
			}
		}
		return out
	}
	metaBelow := func(k string) bool {
		for n := range meta {
			if strings.HasPrefix(n, k+".") {
				return true
			}
		}
		return false
	}
	as := MustKey(MetaKey, "m")
	for step := range 3000 {
		name := names[rng.IntN(len(names))]
		key := MustKey(DataKey, name)
		var err error
		var wantConflict bool
		what := ""
		switch op := rng.IntN(7); op {
		case 0, 1:
			what = "live set"
			wantConflict = conflictModel(keysOf(live), name) || metaBelow(name)
			err = s.Set(ctx, key, []byte("1"), Live())
			if err == nil {
				live[name] = true
			}
		case 2:
			what = "pending set"
			wantConflict = conflictModel(keysOf(live, pending), name) || metaBelow(name)
			err = s.Set(ctx, key, []byte("1"), Pending("t"))
			if err == nil {
				pending[name] = true
			}
		case 3:
			what = "live delete"
			err = s.Delete(ctx, key, Live())
			delete(live, name)
		case 4:
			what = "pending delete"
			err = s.Delete(ctx, key, Pending("t"))
			delete(pending, name)
		case 5:
			what = "commit"
			wantConflict = false
			pk := keysOf(pending)
			for _, k := range pk {
				if conflictModel(keysOf(live), k) || metaBelow(k) {
					wantConflict = true
				}
			}
			_, err = s.Commit(ctx, "t")
			if err == nil {
				for _, k := range pk {
					live[k] = true
				}
				clear(pending)
			}
		case 6:
			what = "metadata"
			if rng.IntN(2) == 0 {
				for p := range key.parents() {
					wantConflict = wantConflict || live[p]
				}
				err = s.SetMetadata(ctx, as, key, []byte(`"x"`))
				if err == nil {
					meta[name] = true
				}
			} else {
				what = "delete metadata"
				err = s.DeleteMetadata(ctx, as, key)
				delete(meta, name)
			}
		}
		if got := errors.Is(err, ErrConflict); got != wantConflict || (err != nil && !got) {
			t.Fatalf("step %d: %s %s = %v, want conflict %v (live %v, pending %v, metadata %v)",
				step, what, name, err, wantConflict, keysOf(live), keysOf(pending), keysOf(meta))
		}
	}
}
