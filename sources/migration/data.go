package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/petrel-os/petrel/sources/datastore"
)

// Data is a whole datastore in memory, as migrations change it: the live
// values, the values of each pending transaction and the metadata (live
// only). Maps are keyed by canonical key name; values are canonical JSON.
type Data struct {
	Live     map[string]datastore.KeyValue
	Pending  map[string]map[string]datastore.KeyValue
	Metadata map[string]map[string]datastore.MetadataEntry // data key name → metadata key name
}

// NewData returns an empty Data.
func NewData() *Data {
	return &Data{Live: map[string]datastore.KeyValue{}, Pending: map[string]map[string]datastore.KeyValue{},
		Metadata: map[string]map[string]datastore.MetadataEntry{}}
}

// ReadData reads every live value, metadata entry and pending
// transaction of an open store.
func ReadData(ctx context.Context, s *datastore.Store) (*Data, error) {
	d := NewData()
	live, err := s.Values(ctx, "", datastore.Live())
	if err != nil {
		return nil, fmt.Errorf("read live values: %w", err)
	}
	for _, kv := range live {
		d.Live[kv.Key.Name()] = kv
	}
	meta, err := s.ListMetadata(ctx, "", "")
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	for _, m := range meta {
		d.setMeta(m)
	}
	txs, err := s.ListTransactions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	for _, tx := range txs {
		kvs, err := s.Values(ctx, "", datastore.Pending(tx))
		if err != nil {
			return nil, fmt.Errorf("read transaction %q: %w", tx, err)
		}
		t := map[string]datastore.KeyValue{}
		for _, kv := range kvs {
			t[kv.Key.Name()] = kv
		}
		d.Pending[tx] = t
	}
	return d, nil
}

// Contents returns d as the datastore writes it, sorted by key.
// Transactions left without values are dropped, as a store drops them.
func (d *Data) Contents() datastore.Contents {
	c := datastore.Contents{Live: sortedValues(d.Live), Pending: map[string][]datastore.KeyValue{}}
	for tx, t := range d.Pending {
		if len(t) > 0 {
			c.Pending[tx] = sortedValues(t)
		}
	}
	for _, data := range sortedKeys(d.Metadata) {
		for _, meta := range sortedKeys(d.Metadata[data]) {
			c.Metadata = append(c.Metadata, d.Metadata[data][meta])
		}
	}
	return c
}

func sortedValues(t map[string]datastore.KeyValue) []datastore.KeyValue {
	out := make([]datastore.KeyValue, 0, len(t))
	for _, name := range sortedKeys(t) {
		out = append(out, t[name])
	}
	return out
}

// tree is one tree of values: live (tx "") or a pending transaction.
type tree struct {
	tx     string
	values map[string]datastore.KeyValue
}

// trees returns live and then each transaction, by name.
func (d *Data) trees() []tree {
	out := []tree{{values: d.Live}}
	for _, tx := range sortedKeys(d.Pending) {
		out = append(out, tree{tx: tx, values: d.Pending[tx]})
	}
	return out
}

// tree returns the values of tx ("" for live), creating a transaction
// that does not exist.
func (d *Data) tree(tx string) map[string]datastore.KeyValue {
	if tx == "" {
		return d.Live
	}
	t := d.Pending[tx]
	if t == nil {
		t = map[string]datastore.KeyValue{}
		d.Pending[tx] = t
	}
	return t
}

func (d *Data) meta(data, meta string) ([]byte, bool) {
	m, ok := d.Metadata[data][meta]
	return m.Value, ok
}

func (d *Data) setMeta(m datastore.MetadataEntry) {
	if d.Metadata[m.Data.Name()] == nil {
		d.Metadata[m.Data.Name()] = map[string]datastore.MetadataEntry{}
	}
	d.Metadata[m.Data.Name()][m.Meta.Name()] = m
}

func (d *Data) deleteMeta(data, meta string) {
	delete(d.Metadata[data], meta)
	if len(d.Metadata[data]) == 0 {
		delete(d.Metadata, data)
	}
}

// valuesUnder returns the names of the values of t at or below root,
// sorted.
func valuesUnder[V any](t map[string]V, root string) []string {
	var out []string
	for name := range t {
		if under(name, root) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Settings returns the values of t under "settings" as the nested
// document the settings model checks: {"motd": "hi", "network": {...}}.
func Settings(t map[string]datastore.KeyValue) (map[string]any, error) {
	root := map[string]any{}
	for _, name := range sortedKeys(t) {
		kv := t[name]
		segs := kv.Key.Segments()
		if segs[0] != "settings" {
			continue
		}
		if len(segs) == 1 {
			return nil, fmt.Errorf("settings: a value instead of a table of settings")
		}
		var v any
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m := root
		for i, s := range segs[1 : len(segs)-1] {
			next, ok := m[s].(map[string]any)
			if !ok {
				if m[s] != nil {
					return nil, fmt.Errorf("%s: %s is a value", name, strings.Join(segs[:i+2], "."))
				}
				next = map[string]any{}
				m[s] = next
			}
			m = next
		}
		leaf := segs[len(segs)-1]
		if _, isTable := m[leaf].(map[string]any); isTable {
			return nil, fmt.Errorf("%s: a value and a table of settings", name)
		}
		m[leaf] = v
	}
	return root, nil
}

// Diff describes the first differences between a and b (values of every
// tree and metadata, byte for byte), or returns "" when they are equal.
func Diff(a, b *Data) string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < 5 {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	diffTree := func(where string, x, y map[string]datastore.KeyValue) {
		for _, name := range sortedKeys(x) {
			if w, ok := y[name]; !ok {
				add("%s %s: %s, then missing", where, name, x[name].Value)
			} else if string(w.Value) != string(x[name].Value) {
				add("%s %s: %s, then %s", where, name, x[name].Value, w.Value)
			}
		}
		for _, name := range sortedKeys(y) {
			if _, ok := x[name]; !ok {
				add("%s %s: missing, then %s", where, name, y[name].Value)
			}
		}
	}
	diffTree("live", a.Live, b.Live)
	txs := map[string]bool{}
	for tx, t := range a.Pending {
		txs[tx] = len(t) > 0
	}
	for tx, t := range b.Pending {
		txs[tx] = txs[tx] || len(t) > 0
	}
	for _, tx := range sortedKeys(txs) {
		diffTree(fmt.Sprintf("transaction %q", tx), a.Pending[tx], b.Pending[tx])
	}
	flat := func(d *Data) map[string]datastore.KeyValue {
		m := map[string]datastore.KeyValue{}
		for data, metas := range d.Metadata {
			for meta, e := range metas {
				m[data+" "+meta] = datastore.KeyValue{Key: e.Data, Value: e.Value}
			}
		}
		return m
	}
	diffTree("metadata", flat(a), flat(b))
	return strings.Join(out, "; ")
}
