package migration

import (
	"errors"
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/settings"
)

// Model tells which settings a settings model has.
type Model interface {
	// Known returns nil when key (settings or a key below it) is a
	// setting or a table of settings of the model, else why not.
	Known(key datastore.Key) error
}

// CurrentModel is the settings model compiled into this program
// (sources/settings).
type CurrentModel struct{}

// Known asks the settings validator about a document holding only key,
// without a value: it checks every name on the way and nothing else.
func (CurrentModel) Known(key datastore.Key) error {
	segs := key.Segments()
	if segs[0] != "settings" {
		return fmt.Errorf("%s is not below settings", key.Name())
	}
	doc := map[string]any{}
	cur := doc
	for i, s := range segs[1:] {
		if i == len(segs)-2 {
			cur[s] = nil // null: the name is checked, no value
			break
		}
		next := map[string]any{}
		cur[s] = next
		cur = next
	}
	return settings.Validate(doc)
}

// Step is one step of a release chain and the migrations that cross it.
type Step struct {
	Span       manifest.Span
	Migrations []*Migration
}

// History is the settings model of every version of a release chain.
// Only the current release's model is compiled in; the model of an older
// version is derived from it by undoing the settings that the later
// migrations add, remove and move: a setting that a later step removes
// (or moves away) existed before it, one that a later step adds (or
// moves in) did not.
type History struct {
	Current manifest.Version
	Model   Model
	Steps   []Step
}

// Known tells whether the model of version v has key (a key below
// settings).
func (h History) Known(v manifest.Version, key datastore.Key) error {
	switch c := v.Compare(h.Current); {
	case c > 0:
		return fmt.Errorf("no settings model of %s: the release is %s", v, h.Current)
	case c == 0:
		return h.Model.Known(key)
	}
	spans := manifest.Migrations{}
	byspan := map[manifest.Span][]*Migration{}
	for _, s := range h.Steps {
		spans[s.Span] = nil
		byspan[s.Span] = s.Migrations
	}
	path, err := spans.Path(v, h.Current)
	if err != nil {
		return fmt.Errorf("no settings model of %s: %w", v, err)
	}
	for _, span := range path {
		for _, m := range byspan[span] {
			for i, op := range m.Operations {
				for _, r := range op.retires() {
					if under(key.Name(), r.Name()) {
						return nil
					}
				}
				for _, a := range op.introduces() {
					if under(key.Name(), a.Name()) {
						return fmt.Errorf("%s comes with %s operation[%d] (%s) at %s", key.Name(), m.Name, i, op.Kind, span.To)
					}
				}
			}
		}
	}
	if err := h.Model.Known(key); err != nil {
		return fmt.Errorf("%w (the model of %s, unchanged since)", err, h.Current)
	}
	return nil
}

// introduces returns the keys the operation brings into the model.
func (op Operation) introduces() []datastore.Key {
	switch op.Kind {
	case AddSettings:
		return op.Keys
	case Move:
		return []datastore.Key{op.To}
	}
	return nil
}

// retires returns the keys the operation takes out of the model.
func (op Operation) retires() []datastore.Key {
	switch op.Kind {
	case RemoveSettings:
		return op.Keys
	case Move:
		return []datastore.Key{op.From}
	}
	return nil
}

// ErrUnknownSetting marks an operation on a setting the model of its
// version does not have.
var ErrUnknownSetting = errors.New("unknown setting")

// CheckModel checks that the operations of m, which crosses span, touch
// only settings the models know: keys that exist after the step (added,
// moved to, replaced, given metadata) in the model of span.To, keys that
// exist before it (removed, moved from, replaced) in the model of
// span.From. Keys outside settings (services, configuration-files) are
// the OS's and not checked.
func CheckModel(m *Migration, span manifest.Span, h History) error {
	var probs []Problem
	check := func(i int, op Operation, field string, k datastore.Key, at manifest.Version) {
		if !under(k.Name(), "settings") {
			return
		}
		if err := h.Known(at, k); err != nil {
			probs = append(probs, Problem{Operation: i, Kind: op.Kind, Line: op.Line, Field: field,
				Msg: fmt.Sprintf("%v: %s is not a setting of the model of %s: %s", ErrUnknownSetting, k.Name(), at, strings.TrimPrefix(err.Error(), "invalid settings: "))})
		}
	}
	for i, op := range m.Operations {
		switch op.Kind {
		case AddSettings:
			for j, k := range op.Keys {
				check(i, op, fmt.Sprintf("keys[%d]", j), k, span.To)
			}
		case RemoveSettings:
			for j, k := range op.Keys {
				check(i, op, fmt.Sprintf("keys[%d]", j), k, span.From)
			}
		case Move:
			check(i, op, "from", op.From, span.From)
			check(i, op, "to", op.To, span.To)
		case ReplaceValue, ReplaceTemplate, ReplaceGenerator, ReplaceMetadata:
			check(i, op, "key", op.Key, span.From)
			check(i, op, "key", op.Key, span.To)
		case AddMetadata:
			check(i, op, "key", op.Key, span.To)
		case RemoveMetadata:
			check(i, op, "key", op.Key, span.From)
		}
	}
	if len(probs) > 0 {
		return &Error{File: m.Name, Problems: probs}
	}
	return nil
}
