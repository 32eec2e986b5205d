package settings

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/petrel-os/petrel/sources/datastore"
)

// Flatten turns a nested document (decoded TOML, or JSON from DecodeJSON
// or encoding/json) into datastore key/value pairs under prefix: tables
// become key segments, scalars and lists (of anything) become JSON values
// (json.Number keeps its spelling), nulls are skipped. Pairs are sorted by
// key name. Every problem is reported at once; the error matches
// datastore.ErrInvalidKey or datastore.ErrInvalidValue as its causes do.
func Flatten(prefix []string, doc map[string]any) ([]datastore.KeyValue, error) {
	var out []datastore.KeyValue
	var errs []error
	var walk func(path []string, t map[string]any)
	walk = func(path []string, t map[string]any) {
		for _, k := range sortedKeys(t) {
			p := with(path, k)
			switch v := t[k].(type) {
			case nil:
			case map[string]any:
				walk(p, v)
			default:
				kv, err := pair(p, v)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, kv)
			}
		}
	}
	walk(prefix, doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("flatten settings: %w", errors.Join(errs...))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Name() < out[j].Key.Name() })
	return out, nil
}

func pair(path []string, v any) (datastore.KeyValue, error) {
	key, err := datastore.KeyFromSegments(datastore.DataKey, path)
	if err != nil {
		return datastore.KeyValue{}, err
	}
	val, err := encodeValue(v)
	if err != nil {
		return datastore.KeyValue{}, fmt.Errorf("%s: %w", key.Name(), err)
	}
	return datastore.KeyValue{Key: key, Value: val}, nil
}

func encodeValue(v any) ([]byte, error) {
	switch x := v.(type) {
	case time.Time, map[string]any:
		return nil, fmt.Errorf("%w: %s cannot be stored as one value", datastore.ErrInvalidValue, typeName(x))
	case []map[string]any: // a TOML array of tables, stored as a list
		l := make([]any, len(x))
		for i, m := range x {
			l[i] = m
		}
		v = l
	}
	return datastore.EncodeValue(v)
}
