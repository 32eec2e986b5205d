package datastore

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// SetMetadata writes metadata meta for data key data. Metadata lives only in
// the live tree and is never transactional. The write is atomic and durable
// (one record of the write-ahead log).
func (s *Store) SetMetadata(ctx context.Context, meta, data Key, value []byte) error {
	if meta.typ != MetaKey || len(meta.segments) != 1 {
		return fmt.Errorf("set metadata %q: %w: not a metadata key", meta.name, ErrInvalidKey)
	}
	if data.typ != DataKey || len(data.segments) == 0 {
		return fmt.Errorf("set metadata on %q: %w: not a data key", data.name, ErrInvalidKey)
	}
	v, err := CanonicalValue(value)
	if err != nil {
		return fmt.Errorf("set metadata %q on %q: %w", meta.name, data.name, err)
	}
	return s.logLive(ctx, []walOp{{kind: opSetMeta, data: data, meta: meta, value: v}}, "set metadata")
}

// GetMetadataRaw returns metadata set on exactly data, or ErrNotFound.
func (s *Store) GetMetadataRaw(ctx context.Context, meta, data Key) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, Live()); err != nil {
		return nil, err
	}
	v, ok := s.meta[data.name][meta.name]
	if !ok {
		return nil, fmt.Errorf("get metadata %q on %q: %w", meta.name, data.name, ErrNotFound)
	}
	return v, nil
}

// GetMetadata returns metadata for data, inherited by key prefix: every
// prefix of data is tried and the most specific hit wins, so metadata on
// settings.network applies to settings.network.hostname.
func (s *Store) GetMetadata(ctx context.Context, meta, data Key) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, Live()); err != nil {
		return nil, err
	}
	var found []byte
	for _, p := range data.prefixes() {
		if v, ok := s.meta[p.name][meta.name]; ok {
			found = v
		}
	}
	if found == nil {
		return nil, fmt.Errorf("get metadata %q for %q: %w", meta.name, data.name, ErrNotFound)
	}
	return found, nil
}

// DeleteMetadata removes metadata meta set on exactly data. Missing
// metadata is not an error.
func (s *Store) DeleteMetadata(ctx context.Context, meta, data Key) error {
	if meta.typ != MetaKey || len(meta.segments) != 1 {
		return fmt.Errorf("delete metadata %q: %w: not a metadata key", meta.name, ErrInvalidKey)
	}
	return s.logLive(ctx, []walOp{{kind: opDeleteMeta, data: data, meta: meta}}, "delete metadata")
}

// MetadataEntry is one populated metadata value.
type MetadataEntry struct {
	Data  Key
	Meta  Key
	Value []byte
}

// ListMetadata returns populated metadata on data keys whose name starts
// with prefix; with a non-empty metaName only that metadata key. Sorted by
// data key, then metadata key.
func (s *Store) ListMetadata(ctx context.Context, prefix, metaName string) ([]MetadataEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, Live()); err != nil {
		return nil, err
	}
	var out []MetadataEntry
	for dataName, metas := range s.meta {
		if !strings.HasPrefix(dataName, prefix) {
			continue
		}
		dk, err := ParseKey(DataKey, dataName)
		if err != nil {
			return nil, fmt.Errorf("list metadata: %w: %w", ErrCorrupt, err)
		}
		for m, v := range metas {
			if metaName != "" && m != metaName {
				continue
			}
			mk, err := ParseKey(MetaKey, m)
			if err != nil {
				return nil, fmt.Errorf("list metadata: %w: %w", ErrCorrupt, err)
			}
			out = append(out, MetadataEntry{Data: dk, Meta: mk, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Data.name != out[j].Data.name {
			return out[i].Data.name < out[j].Data.name
		}
		return out[i].Meta.name < out[j].Meta.name
	})
	return out, nil
}
