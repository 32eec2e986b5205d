package manifest

import (
	"errors"
	"fmt"
	"slices"
)

// ErrMissingMigration marks a pair of versions that the migrations map
// does not connect: a host between them cannot move its settings.
var ErrMissingMigration = errors.New("missing migration")

// Path returns the steps that lead from version lower up to version
// higher, as upstream's find_migrations walks them: from the current
// version it takes the step whose TO is the highest not above higher, and
// goes on from that TO. A step of the map with an empty list counts (the
// versions need no migration, but the map must say so). It fails with
// ErrMissingMigration naming the version where no step leads on.
func (m Migrations) Path(lower, higher Version) ([]Span, error) {
	if higher.Less(lower) {
		return nil, fmt.Errorf("migration path from %s to %s: the first version is the higher one", lower, higher)
	}
	var path []Span
	for cur := lower; cur.Compare(higher) != 0; {
		var best *Span
		for s := range m {
			if s.From.Compare(cur) != 0 || higher.Less(s.To) || !cur.Less(s.To) {
				continue
			}
			if best == nil || best.To.Less(s.To) {
				s := s
				best = &s
			}
		}
		if best == nil {
			return nil, fmt.Errorf("%w: no step from %s towards %s in the migrations map", ErrMissingMigration, cur, higher)
		}
		path = append(path, *best)
		cur = best.To
	}
	return path, nil
}

// Chain returns the names of the migrations that take a datastore from
// version from to version to, in the order they run: the migrations of
// each step of Path, in their listed order; for a downgrade (to below
// from) the same list reversed, each run backward. Equal versions need
// nothing.
func (m Migrations) Chain(from, to Version) ([]string, error) {
	lower, higher := from, to
	down := to.Less(from)
	if down {
		lower, higher = to, from
	}
	path, err := m.Path(lower, higher)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, s := range path {
		names = append(names, m[s]...)
	}
	if down {
		slices.Reverse(names)
	}
	return names, nil
}
