package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/waves"
)

// TargetName is the name of the manifest among a repository's targets.
const TargetName = "manifest.json"

// MaxSize bounds the manifest a host reads: far above any real one (a few
// KiB per release), low enough that a hostile length cannot exhaust memory.
const MaxSize = 8 << 20

var (
	// ErrInvalid marks a manifest that breaks the format.
	ErrInvalid = errors.New("invalid manifest")
	// ErrExists marks an update that is already in the manifest.
	ErrExists = errors.New("update already in the manifest")
	// ErrNoUpdate marks a version or variant the manifest does not list.
	ErrNoUpdate = errors.New("no such update in the manifest")
)

// Manifest is the content of manifest.json.
type Manifest struct {
	Updates    []Update
	Migrations Migrations
}

// Update is one release of a variant for one architecture.
type Update struct {
	Variant string
	Arch    string
	Version Version
	// MaxVersion is the highest version hosts of this variant and arch
	// may run; lowering it pulls hosts on a later version back.
	MaxVersion Version
	Waves      waves.Schedule
	Images     Images
}

// Images names the targets of an update's bank images.
type Images struct {
	Boot string `json:"boot"`
	Root string `json:"root"`
	Hash string `json:"hash"`
	// RootHash is the dm-verity root hash of the root image (64 lower-case
	// hex digits), signed with the manifest: the updater checks the root it
	// wrote against it. Petrel's field; upstream's manifests lack it.
	RootHash string `json:"root_hash,omitempty"`
}

// Names returns the image names in the order an update writes them:
// root, boot, hash (upstream's order).
func (i Images) Names() []string { return []string{i.Root, i.Boot, i.Hash} }

// Migrations maps a step between two versions to the names of the
// migrations that run when a host crosses it (an empty list is allowed).
type Migrations map[Span][]string

// Span is a step between two versions, written "(FROM, TO)".
type Span struct{ From, To Version }

// String returns upstream's form of the key: "(1.2.0, 1.3.0)".
func (s Span) String() string { return "(" + s.From.String() + ", " + s.To.String() + ")" }

// ParseSpan parses "(FROM, TO)" with optional spaces after the comma.
func ParseSpan(s string) (Span, error) {
	inner, ok := strings.CutPrefix(s, "(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	from, to, found := strings.Cut(inner, ",")
	if !ok || !found {
		return Span{}, fmt.Errorf("expected \"(FROM, TO)\" such as \"(1.2.0, 1.3.0)\", got %q", s)
	}
	var sp Span
	var err error
	if sp.From, err = ParseVersion(from); err != nil {
		return Span{}, err
	}
	if sp.To, err = ParseVersion(strings.TrimLeft(to, " ")); err != nil {
		return Span{}, err
	}
	return sp, nil
}

// json forms, in upstream's field names.
type (
	manifestJSON struct {
		Updates    []updateJSON `json:"updates"`
		Migrations Migrations   `json:"migrations"`
	}
	updateJSON struct {
		Variant    string         `json:"variant"`
		Arch       string         `json:"arch"`
		Version    Version        `json:"version"`
		MaxVersion Version        `json:"max_version"`
		Waves      waves.Schedule `json:"waves"`
		Images     Images         `json:"images"`
	}
)

// Marshal writes the manifest as indented JSON: updates in their order,
// migrations ordered by version.
func Marshal(m *Manifest) ([]byte, error) {
	out := manifestJSON{Updates: []updateJSON{}, Migrations: m.Migrations}
	for _, u := range m.Updates {
		w := u.Waves
		if w == nil {
			w = waves.Schedule{}
		}
		out.Updates = append(out.Updates, updateJSON{u.Variant, u.Arch, u.Version, u.MaxVersion, w, u.Images})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// MarshalJSON writes the migrations ordered by FROM, then TO.
func (m Migrations) MarshalJSON() ([]byte, error) {
	spans := make([]Span, 0, len(m))
	for s := range m {
		spans = append(spans, s)
	}
	slices.SortFunc(spans, func(a, b Span) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return a.To.Compare(b.To)
	})
	var b bytes.Buffer
	b.WriteByte('{')
	for i, s := range spans {
		if i > 0 {
			b.WriteByte(',')
		}
		names := m[s]
		if names == nil {
			names = []string{}
		}
		k, _ := json.Marshal(s.String())
		v, err := json.Marshal(names)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Find returns the update of variant and arch at version v, or nil.
func (m *Manifest) Find(variant, arch string, v Version) *Update {
	for i := range m.Updates {
		u := &m.Updates[i]
		if u.Variant == variant && u.Arch == arch && u.Version.Compare(v) == 0 {
			return u
		}
	}
	return nil
}

// Add adds u and raises MaxVersion as upstream does: to the highest of
// u.Version, u.MaxVersion and the MaxVersion the variant and arch had, on
// every update of the variant and arch. An update of the same variant,
// arch and version is refused with ErrExists.
func (m *Manifest) Add(u Update) error {
	if m.Find(u.Variant, u.Arch, u.Version) != nil {
		return fmt.Errorf("%w: %s %s %s", ErrExists, u.Variant, u.Arch, u.Version)
	}
	maxV := u.Version
	if maxV.Less(u.MaxVersion) {
		maxV = u.MaxVersion
	}
	for _, o := range m.Updates {
		if o.Variant == u.Variant && o.Arch == u.Arch && maxV.Less(o.MaxVersion) {
			maxV = o.MaxVersion
		}
	}
	m.Updates = append(m.Updates, u)
	m.setMax(u.Variant, u.Arch, maxV)
	slices.SortStableFunc(m.Updates, func(a, b Update) int {
		if c := strings.Compare(a.Variant, b.Variant); c != 0 {
			return c
		}
		if c := strings.Compare(a.Arch, b.Arch); c != 0 {
			return c
		}
		return b.Version.Compare(a.Version) // newest first
	})
	return nil
}

// SetMaxVersion sets the MaxVersion of every update of variant and arch to
// v, which must be one of their versions: lowering it makes hosts above it
// go back to the highest version at or below it.
func (m *Manifest) SetMaxVersion(variant, arch string, v Version) error {
	if m.Find(variant, arch, v) == nil {
		var have []string
		for _, u := range m.Updates {
			if u.Variant == variant && u.Arch == arch {
				have = append(have, u.Version.String())
			}
		}
		return fmt.Errorf("%w: set max_version of %s %s to %s: not a published version (published: %s)",
			ErrNoUpdate, variant, arch, v, strings.Join(have, ", "))
	}
	m.setMax(variant, arch, v)
	return nil
}

func (m *Manifest) setMax(variant, arch string, v Version) {
	for i := range m.Updates {
		if m.Updates[i].Variant == variant && m.Updates[i].Arch == arch {
			m.Updates[i].MaxVersion = v
		}
	}
}
