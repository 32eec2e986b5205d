package migration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/outfile"
)

// SavesFile is the file in a versioned datastore directory that keeps
// what forward operations saved for their backward. It travels with the
// data: each migration copies it into the directory it writes, adding
// what its forward operations saved and dropping what its backward
// operations restored.
const SavesFile = "migration-saves.json"

// savesFormat is the version of the saves file's format.
const savesFormat = 1

// Saves holds what forward operations kept, by migration name and
// operation index.
type Saves map[string]map[int]*Saved

// Saved is what one forward operation kept for its backward.
type Saved struct {
	// Values are values the operation removed, overwrote or left alone
	// for a reason its backward must know.
	Values []SavedValue `json:"values,omitempty"`
	// Metadata likewise.
	Metadata []SavedMeta `json:"metadata,omitempty"`
	// Function is a registered function's own record (JSON).
	Function json.RawMessage `json:"function,omitempty"`
}

// SavedValue is one value of live (Tx "") or of transaction Tx. Value is
// the canonical JSON text, kept as a string so that it comes back byte
// for byte.
type SavedValue struct {
	Tx    string `json:"tx,omitempty"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SavedMeta is one metadata value.
type SavedMeta struct {
	Key   string `json:"key"`
	Meta  string `json:"meta"`
	Value string `json:"value"`
}

func (s *Saved) empty() bool {
	return s == nil || len(s.Values) == 0 && len(s.Metadata) == 0 && len(s.Function) == 0
}

type savesJSON struct {
	Format     int                          `json:"format"`
	Migrations map[string]map[string]*Saved `json:"migrations"`
}

// ReadSaves reads dir's saves file; a missing file holds nothing.
func ReadSaves(dir string) (Saves, error) {
	path := filepath.Join(dir, SavesFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Saves{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved values: %w", err)
	}
	var f savesJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read saved values %s: %w", path, err)
	}
	if f.Format != savesFormat {
		return nil, fmt.Errorf("read saved values %s: format %d, this migrator reads format %d", path, f.Format, savesFormat)
	}
	s := Saves{}
	for name, ops := range f.Migrations {
		s[name] = map[int]*Saved{}
		for idx, saved := range ops {
			i, err := strconv.Atoi(idx)
			if err != nil || i < 0 {
				return nil, fmt.Errorf("read saved values %s: migration %s: operation %q is not an index", path, name, idx)
			}
			if err := saved.check(); err != nil {
				return nil, fmt.Errorf("read saved values %s: migration %s: operation %d: %w", path, name, i, err)
			}
			s[name][i] = saved
		}
	}
	return s, nil
}

// check refuses saved keys and values that the datastore could not hold.
func (s *Saved) check() error {
	for _, v := range s.Values {
		if _, err := datastore.ParseKey(datastore.DataKey, v.Key); err != nil {
			return err
		}
		if v.Tx != "" {
			if err := datastore.CheckTransactionName(v.Tx); err != nil {
				return err
			}
		}
		if c, err := datastore.CanonicalValue([]byte(v.Value)); err != nil || string(c) != v.Value {
			return fmt.Errorf("value of %s is not canonical JSON: %s", v.Key, v.Value)
		}
	}
	for _, m := range s.Metadata {
		if _, err := datastore.ParseKey(datastore.DataKey, m.Key); err != nil {
			return err
		}
		if _, err := datastore.ParseKey(datastore.MetaKey, m.Meta); err != nil {
			return err
		}
		if c, err := datastore.CanonicalValue([]byte(m.Value)); err != nil || string(c) != m.Value {
			return fmt.Errorf("metadata %s of %s is not canonical JSON: %s", m.Meta, m.Key, m.Value)
		}
	}
	return nil
}

// WriteSaves writes s into dir (mode 0600: saved values may be secrets)
// and fsyncs it. Nothing is written when s is empty.
func WriteSaves(dir string, s Saves) error {
	f := savesJSON{Format: savesFormat, Migrations: map[string]map[string]*Saved{}}
	for name, ops := range s {
		for i, saved := range ops {
			if saved.empty() {
				continue
			}
			if f.Migrations[name] == nil {
				f.Migrations[name] = map[string]*Saved{}
			}
			f.Migrations[name][strconv.Itoa(i)] = saved
		}
	}
	if len(f.Migrations) == 0 {
		return nil
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode saved values: %w", err)
	}
	if err := outfile.WriteFile(filepath.Join(dir, SavesFile), append(data, '\n'), outfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write saved values: %w", err)
	}
	return nil
}
