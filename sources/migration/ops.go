package migration

import (
	"errors"
	"fmt"

	"github.com/petrel-os/petrel/sources/datastore"
)

// Direction is the way migrations run: Forward for an upgrade, Backward
// for a downgrade.
type Direction int

const (
	Forward Direction = iota
	Backward
)

func (d Direction) String() string {
	if d == Backward {
		return "backward"
	}
	return "forward"
}

// ErrUnknownFunction: a migration names a function this migrator does
// not have (a newer release's function run by an older migrator).
var ErrUnknownFunction = errors.New("unknown migration function")

// Apply runs migrations over d. Forward runs each migration's operations
// in order and records what they keep in saves under the migration's
// name (replacing an older record). Backward takes the migrations in the
// order given (the caller reverses the chain for a downgrade), runs each
// one's operations in reverse order with what its forward kept, and
// drops that record. On error d and saves are partly changed; callers
// throw both away.
func Apply(d *Data, saves Saves, ms []*Migration, dir Direction, fns Functions) error {
	for _, m := range ms {
		if dir == Forward {
			kept := map[int]*Saved{}
			for i, op := range m.Operations {
				s := &Saved{}
				if err := op.forward(d, s, fns); err != nil {
					return fmt.Errorf("migration %s: operation[%d] (%s) forward: %w", m.Name, i, op.Kind, err)
				}
				if !s.empty() {
					kept[i] = s
				}
			}
			saves[m.Name] = kept
			continue
		}
		for i := len(m.Operations) - 1; i >= 0; i-- {
			op := m.Operations[i]
			s := saves[m.Name][i]
			if s == nil {
				s = &Saved{}
			}
			if err := op.backward(d, s, fns); err != nil {
				return fmt.Errorf("migration %s: operation[%d] (%s) backward: %w", m.Name, i, op.Kind, err)
			}
		}
		delete(saves, m.Name)
	}
	return nil
}

func (op Operation) forward(d *Data, s *Saved, fns Functions) error {
	switch op.Kind {
	case AddSettings:
		for _, k := range op.Keys {
			keep(d, k.Name(), s, true)
		}
	case RemoveSettings:
		for _, k := range op.Keys {
			keep(d, k.Name(), s, true)
			clearUnder(d, k.Name(), true)
		}
	case Move:
		keep(d, op.To.Name(), s, true)
		clearUnder(d, op.To.Name(), true)
		return move(d, op.From, op.To)
	case ReplaceValue:
		for _, t := range d.trees() {
			kv, ok := t.values[op.Key.Name()]
			if !ok || !op.touches(kv.Value) {
				continue
			}
			s.Values = append(s.Values, SavedValue{Tx: t.tx, Key: op.Key.Name(), Value: string(kv.Value)})
			if nv, ok := op.replace(kv.Value, Forward); ok {
				t.values[op.Key.Name()] = datastore.KeyValue{Key: op.Key, Value: nv}
			}
		}
	case ReplaceTemplate, ReplaceGenerator, ReplaceMetadata:
		v, ok := d.meta(op.Key.Name(), op.Meta.Name())
		if !ok || !op.touches(v) {
			return nil
		}
		keepMeta(d, op, s)
		nv, changed := op.replace(v, Forward)
		if !changed {
			return nil
		}
		d.setMeta(datastore.MetadataEntry{Data: op.Key, Meta: op.Meta, Value: nv})
		if op.Regenerate {
			keep(d, op.Key.Name(), s, false)
			clearUnder(d, op.Key.Name(), false)
		}
	case AddMetadata:
		keepMeta(d, op, s)
		d.setMeta(datastore.MetadataEntry{Data: op.Key, Meta: op.Meta, Value: op.Value})
	case RemoveMetadata:
		if keepMeta(d, op, s) {
			d.deleteMeta(op.Key.Name(), op.Meta.Name())
		}
	case Function:
		f, err := fns.get(op.Function)
		if err != nil {
			return err
		}
		return f.Forward(d, s)
	default:
		return fmt.Errorf("unknown operation kind %q", op.Kind)
	}
	return nil
}

func (op Operation) backward(d *Data, s *Saved, fns Functions) error {
	switch op.Kind {
	case AddSettings, RemoveSettings:
		for _, k := range op.Keys {
			clearUnder(d, k.Name(), true)
		}
		return restore(d, s)
	case Move:
		clearUnder(d, op.From.Name(), true)
		if err := move(d, op.To, op.From); err != nil {
			return err
		}
		return restore(d, s)
	case ReplaceValue:
		kept := map[string]string{}
		for _, v := range s.Values {
			kept[v.Tx] = v.Value
		}
		for _, t := range d.trees() {
			kv, ok := t.values[op.Key.Name()]
			if !ok {
				continue
			}
			if nv, ok := op.undo(kv.Value, kept, t.tx); ok {
				t.values[op.Key.Name()] = datastore.KeyValue{Key: op.Key, Value: nv}
			}
		}
	case ReplaceTemplate, ReplaceGenerator, ReplaceMetadata:
		v, ok := d.meta(op.Key.Name(), op.Meta.Name())
		if !ok {
			return nil
		}
		kept := map[string]string{}
		for _, m := range s.Metadata {
			if m.Key == op.Key.Name() && m.Meta == op.Meta.Name() {
				kept[""] = m.Value
			}
		}
		nv, changed := op.undo(v, kept, "")
		if !changed {
			return nil
		}
		d.setMeta(datastore.MetadataEntry{Data: op.Key, Meta: op.Meta, Value: nv})
		if op.Regenerate {
			// The old generator makes the value again, unless the
			// forward kept the value it had.
			clearUnder(d, op.Key.Name(), false)
			return restore(d, &Saved{Values: s.Values})
		}
	case AddMetadata:
		d.deleteMeta(op.Key.Name(), op.Meta.Name())
		return restore(d, s)
	case RemoveMetadata:
		return restore(d, s)
	case Function:
		f, err := fns.get(op.Function)
		if err != nil {
			return err
		}
		return f.Backward(d, s)
	default:
		return fmt.Errorf("unknown operation kind %q", op.Kind)
	}
	return nil
}

// touches reports whether v is one of the map's old or new values: the
// forward keeps those, so that its backward restores exactly them.
func (op Operation) touches(v []byte) bool {
	for _, r := range op.Map {
		if string(v) == string(r.Old) || string(v) == string(r.New) {
			return true
		}
	}
	return false
}

// replace maps v through the map (Forward: old → new; Backward: new →
// old) and reports whether it changed.
func (op Operation) replace(v []byte, dir Direction) ([]byte, bool) {
	for _, r := range op.Map {
		from, to := r.Old, r.New
		if dir == Backward {
			from, to = r.New, r.Old
		}
		if string(v) == string(from) {
			return to, true
		}
	}
	return v, false
}

// undo is the backward of a replacement of the value v in tree tx. When
// the forward kept the value it saw there, that value comes back if v is
// still what the forward made of it (a value changed since is left
// alone); otherwise (a datastore that never went forward) v is mapped
// new → old.
func (op Operation) undo(v []byte, kept map[string]string, tx string) ([]byte, bool) {
	if orig, ok := kept[tx]; ok {
		made, _ := op.replace([]byte(orig), Forward)
		if string(made) == string(v) && orig != string(v) {
			return []byte(orig), true
		}
		return v, false
	}
	return op.replace(v, Backward)
}

// keepMeta records in s the metadata op.Meta of op.Key, and reports
// whether there is one.
func keepMeta(d *Data, op Operation, s *Saved) bool {
	v, ok := d.meta(op.Key.Name(), op.Meta.Name())
	if ok {
		s.Metadata = append(s.Metadata, SavedMeta{Key: op.Key.Name(), Meta: op.Meta.Name(), Value: string(v)})
	}
	return ok
}

// keep records in s every value (all trees) at or below root, and with
// meta every metadata entry there too.
func keep(d *Data, root string, s *Saved, meta bool) {
	for _, t := range d.trees() {
		for _, name := range valuesUnder(t.values, root) {
			s.Values = append(s.Values, SavedValue{Tx: t.tx, Key: name, Value: string(t.values[name].Value)})
		}
	}
	if !meta {
		return
	}
	for _, data := range valuesUnder(d.Metadata, root) {
		for _, m := range sortedKeys(d.Metadata[data]) {
			s.Metadata = append(s.Metadata, SavedMeta{Key: data, Meta: m, Value: string(d.Metadata[data][m].Value)})
		}
	}
}

// clearUnder deletes every value (all trees) at or below root, and with
// meta every metadata entry there too.
func clearUnder(d *Data, root string, meta bool) {
	for _, t := range d.trees() {
		for _, name := range valuesUnder(t.values, root) {
			delete(t.values, name)
		}
	}
	if meta {
		for _, data := range valuesUnder(d.Metadata, root) {
			delete(d.Metadata, data)
		}
	}
}

// restore sets every value and metadata entry of s.
func restore(d *Data, s *Saved) error {
	for _, v := range s.Values {
		k, err := datastore.ParseKey(datastore.DataKey, v.Key)
		if err != nil {
			return fmt.Errorf("restore saved value: %w", err)
		}
		d.tree(v.Tx)[k.Name()] = datastore.KeyValue{Key: k, Value: []byte(v.Value)}
	}
	for _, m := range s.Metadata {
		k, err := datastore.ParseKey(datastore.DataKey, m.Key)
		if err != nil {
			return fmt.Errorf("restore saved metadata: %w", err)
		}
		mk, err := datastore.ParseKey(datastore.MetaKey, m.Meta)
		if err != nil {
			return fmt.Errorf("restore saved metadata: %w", err)
		}
		d.setMeta(datastore.MetadataEntry{Data: k, Meta: mk, Value: []byte(m.Value)})
	}
	return nil
}

// move renames every value (all trees) and metadata entry at or below
// from to the same place below to.
func move(d *Data, from, to datastore.Key) error {
	n := len(from.Segments())
	rename := func(k datastore.Key) (datastore.Key, error) {
		nk, err := datastore.KeyFromSegments(datastore.DataKey, append(to.Segments(), k.Segments()[n:]...))
		if err != nil {
			return nk, fmt.Errorf("move %s to %s: %w", k.Name(), to.Name(), err)
		}
		return nk, nil
	}
	for _, t := range d.trees() {
		for _, name := range valuesUnder(t.values, from.Name()) {
			kv := t.values[name]
			nk, err := rename(kv.Key)
			if err != nil {
				return err
			}
			delete(t.values, name)
			t.values[nk.Name()] = datastore.KeyValue{Key: nk, Value: kv.Value}
		}
	}
	for _, data := range valuesUnder(d.Metadata, from.Name()) {
		entries := d.Metadata[data]
		delete(d.Metadata, data)
		for _, m := range sortedKeys(entries) {
			nk, err := rename(entries[m].Data)
			if err != nil {
				return err
			}
			d.setMeta(datastore.MetadataEntry{Data: nk, Meta: entries[m].Meta, Value: entries[m].Value})
		}
	}
	return nil
}

// Func is one direction of a registered function: it changes d, and may
// keep what its backward needs in s.Function (forward) or read it there
// (backward; empty when the datastore never went forward).
type Func func(d *Data, s *Saved) error

// Registered is a Go function that migrations call by name: a change the
// operations cannot express. Both directions are required.
type Registered struct {
	Forward, Backward Func
}

// Functions maps names to registered functions.
type Functions map[string]Registered

func (fns Functions) get(name string) (Registered, error) {
	f, ok := fns[name]
	if !ok {
		return f, fmt.Errorf("%w %q", ErrUnknownFunction, name)
	}
	return f, nil
}

// Builtins returns the functions compiled into this migrator: none yet.
// A function added here is reviewed and tested forward and back like
// code, and never removed or changed once a release uses it: an older
// migrator that lacks a newer release's function refuses to run that
// release's migrations backward (ErrUnknownFunction), and the host stays
// on the newer release.
func Builtins() Functions { return Functions{} }

// Check refuses a migration that names a function fns does not have, or
// one registered without both directions.
func (m *Migration) Check(fns Functions) error {
	var probs []Problem
	for i, op := range m.Operations {
		if op.Kind != Function {
			continue
		}
		f, ok := fns[op.Function]
		switch {
		case !ok:
			probs = append(probs, Problem{Operation: i, Kind: op.Kind, Line: op.Line, Field: "name",
				Msg: fmt.Sprintf("%v %q (registered: %v)", ErrUnknownFunction, op.Function, sortedKeys(fns))})
		case f.Forward == nil || f.Backward == nil:
			probs = append(probs, Problem{Operation: i, Kind: op.Kind, Line: op.Line, Field: "name",
				Msg: fmt.Sprintf("function %q is registered without a forward and a backward", op.Function)})
		}
	}
	if len(probs) > 0 {
		return &Error{File: m.Name, Problems: probs}
	}
	return nil
}
