package settings

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Service is a unit of configuration: the files rendered for it and the
// commands run after they change (upstream's Service).
type Service struct {
	ConfigurationFiles []string `toml:"configuration-files" json:"configuration-files"`
	RestartCommands    []string `toml:"restart-commands" json:"restart-commands"`
}

// ConfigurationFile is one rendered file (upstream's ConfigurationFile).
// Mode is an octal string such as "0644"; empty means 0644.
type ConfigurationFile struct {
	Path         string `toml:"path" json:"path"`
	TemplatePath string `toml:"template-path" json:"template-path"`
	Mode         string `toml:"mode,omitempty" json:"mode,omitempty"`
}

// Defaults is a variant's merged defaults, in upstream's defaults.toml
// shape: [settings], [metadata], [services], [configuration-files].
type Defaults struct {
	Settings           map[string]any
	Metadata           map[string]any // nested; leaves are metadata values
	Services           map[string]Service
	ConfigurationFiles map[string]ConfigurationFile
	// Raw is the merged document, for storewolf.
	Raw map[string]any
	// Files lists the files merged, in order.
	Files []string
}

// sections allowed at the top level of a defaults file.
var defaultSections = []string{"settings", "metadata", "services", "configuration-files"}

// LoadDefaults reads every *.toml file in dir, sorted by name, and merges
// them: later files win, tables merge recursively, scalars and arrays are
// replaced whole, and a value whose type differs from the earlier one
// (table versus anything else) is an error naming both files and the key.
// The merged settings are validated against the model.
func LoadDefaults(ctx context.Context, dir string) (*Defaults, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("list defaults in %q: %w", dir, err)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("load defaults from %q: no *.toml files", dir)
	}
	merged := map[string]any{}
	origin := map[string]string{} // key path -> file that set it
	var errs []error
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read defaults file: %w", err)
		}
		doc, err := decodeTOML(p, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range sortedKeys(doc) {
			if !contains(defaultSections, k) {
				errs = append(errs, fmt.Errorf("%s: unknown section [%s] (expected one of %s)", p, k, strings.Join(defaultSections, ", ")))
			}
		}
		errs = append(errs, mergeTOML(merged, doc, nil, p, origin)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("load defaults from %q: %w", dir, err)
	}
	d, err := defaultsFrom(merged)
	if err != nil {
		return nil, fmt.Errorf("load defaults from %q: %w", dir, err)
	}
	d.Files = paths
	return d, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decodeTOML parses a TOML document, naming the file and line on error.
func decodeTOML(name string, data []byte) (map[string]any, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: line %d, column %d: %s", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return doc, nil
}

// mergeTOML merges src (from file) into dst.
func mergeTOML(dst, src map[string]any, path []string, file string, origin map[string]string) []error {
	var errs []error
	for _, k := range sortedKeys(src) {
		p := with(path, k)
		key := JoinPath(p)
		sv := src[k]
		dv, exists := dst[k]
		st, sIsTable := sv.(map[string]any)
		dt, dIsTable := dv.(map[string]any)
		switch {
		case !exists:
			dst[k] = sv
			markOrigin(origin, p, sv, file)
		case sIsTable && dIsTable:
			errs = append(errs, mergeTOML(dt, st, p, file, origin)...)
		case sIsTable != dIsTable:
			errs = append(errs, fmt.Errorf("%s: %s is a %s, but %s made it a %s", file, key, typeName(sv), origin[key], typeName(dv)))
		default:
			dst[k] = sv
			origin[key] = file
		}
	}
	return errs
}

func markOrigin(origin map[string]string, path []string, v any, file string) {
	origin[JoinPath(path)] = file
	if t, ok := v.(map[string]any); ok {
		for k, c := range t {
			markOrigin(origin, with(path, k), c, file)
		}
	}
}

// defaultsFrom checks and splits a merged document.
func defaultsFrom(doc map[string]any) (*Defaults, error) {
	d := &Defaults{Raw: doc, Services: map[string]Service{}, ConfigurationFiles: map[string]ConfigurationFile{}}
	var errs []error
	tableOf := func(name string) map[string]any {
		v, ok := doc[name]
		if !ok {
			return map[string]any{}
		}
		t, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: expected a table, got %s", name, typeName(v)))
			return map[string]any{}
		}
		return t
	}
	d.Settings = tableOf("settings")
	d.Metadata = tableOf("metadata")
	if err := Validate(d.Settings); err != nil {
		errs = append(errs, err)
	}
	for _, n := range sortedKeys(tableOf("services")) {
		var s Service
		if err := decodeInto(doc["services"].(map[string]any)[n], &s); err != nil {
			errs = append(errs, fmt.Errorf("services.%s: %w", n, err))
			continue
		}
		d.Services[n] = s
	}
	for _, n := range sortedKeys(tableOf("configuration-files")) {
		var c ConfigurationFile
		if err := decodeInto(doc["configuration-files"].(map[string]any)[n], &c); err != nil {
			errs = append(errs, fmt.Errorf("configuration-files.%s: %w", n, err))
			continue
		}
		if c.Path == "" || c.TemplatePath == "" {
			errs = append(errs, fmt.Errorf("configuration-files.%s: expected both path and template-path", n))
		}
		d.ConfigurationFiles[n] = c
	}
	for n, s := range d.Services {
		for _, f := range s.ConfigurationFiles {
			if _, ok := d.ConfigurationFiles[f]; !ok {
				errs = append(errs, fmt.Errorf("services.%s.configuration-files: %q is not defined in [configuration-files]", n, f))
			}
		}
	}
	errs = append(errs, checkMetadata(d.Metadata, nil)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// checkMetadata requires every leaf of [metadata] to be a string or a list.
func checkMetadata(t map[string]any, path []string) []error {
	var errs []error
	for _, k := range sortedKeys(t) {
		p := with(path, k)
		switch v := t[k].(type) {
		case map[string]any:
			errs = append(errs, checkMetadata(v, p)...)
		case string, []any:
			if len(p) < 2 {
				errs = append(errs, fmt.Errorf("metadata.%s: metadata needs a data key and a metadata name", JoinPath(p)))
			}
		default:
			errs = append(errs, fmt.Errorf("metadata.%s: expected a string or a list, got %s", JoinPath(p), typeName(v)))
		}
	}
	return errs
}

// decodeInto re-encodes a decoded TOML table and decodes it strictly into
// out, so unknown fields are reported.
func decodeInto(v any, out any) error {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(v); err != nil {
		return fmt.Errorf("encode table: %w", err)
	}
	md, err := toml.Decode(b.String(), out)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("unknown field %q", und[0].String())
	}
	return nil
}
