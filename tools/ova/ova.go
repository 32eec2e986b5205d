package ova

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
)

var (
	// ErrTemplate marks an OVF template that does not fit the disks: an
	// unknown or leftover placeholder, a missing {{DATA_DISK}}, a broken
	// References section.
	ErrTemplate = errors.New("invalid OVF template")
	// ErrInvalidInput marks bad arguments: no disks, a bad file name or size.
	ErrInvalidInput = errors.New("invalid input")
)

// Disk is one virtual disk of the appliance. Pack takes the OS disk first
// and, for a split layout, the data disk second.
type Disk struct {
	// Path is the streamOptimized .vmdk file on the build host.
	Path string
	// Name is the file name inside the OVA and in the OVF; default the base
	// name of Path.
	Name string
	// SizeGiB is the capacity the VM sees (the publish size), in GiB.
	SizeGiB int64
}

// Options tune Pack.
type Options struct {
	// TemplateName names the template in errors, e.g.
	// "variants/vmware-dev/template.ovf".
	TemplateName string
	// ModTime is the modification time of every tar entry; zero means the
	// Unix epoch. Pass SOURCE_DATE_EPOCH for reproducible builds.
	ModTime time.Time
}

// Placeholder names.
const (
	PlaceholderOSDisk        = "{{OS_DISK}}"
	PlaceholderOSDiskBytes   = "{{OS_DISK_BYTES}}"
	PlaceholderDataDisk      = "{{DATA_DISK}}"
	PlaceholderDataDiskBytes = "{{DATA_DISK_BYTES}}"
)

var placeholderRE = regexp.MustCompile(`\{\{[^{}]*\}\}`)

// Render fills the placeholders of an OVF template for the given disks (OS
// disk first, optional data disk second) and checks the result: every problem
// is reported at once, each naming the template.
func Render(tmpl []byte, templateName string, disks []Disk) ([]byte, error) {
	if templateName == "" {
		templateName = "OVF template"
	}
	if err := checkDisks(disks); err != nil {
		return nil, err
	}
	text := string(tmpl)
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", templateName, fmt.Sprintf(format, args...)))
	}
	values := map[string]string{
		PlaceholderOSDisk:      diskName(disks[0]),
		PlaceholderOSDiskBytes: strconv.FormatInt(disks[0].SizeGiB<<30, 10),
	}
	if !strings.Contains(text, PlaceholderOSDisk) {
		bad("%s is missing", PlaceholderOSDisk)
	}
	hasData := strings.Contains(text, PlaceholderDataDisk)
	if len(disks) == 2 {
		if !hasData {
			bad("%s is missing but a data disk was given (split layout)", PlaceholderDataDisk)
		}
		values[PlaceholderDataDisk] = diskName(disks[1])
		values[PlaceholderDataDiskBytes] = strconv.FormatInt(disks[1].SizeGiB<<30, 10)
	} else {
		for _, p := range []string{PlaceholderDataDisk, PlaceholderDataDiskBytes} {
			if strings.Contains(text, p) {
				bad("%s is used but no data disk was given (unified layout)", p)
			}
		}
	}
	out := placeholderRE.ReplaceAllStringFunc(text, func(p string) string {
		if v, ok := values[p]; ok {
			return v
		}
		return p
	})
	for _, line := range lines(out) {
		for _, p := range placeholderRE.FindAllString(line.text, -1) {
			if p == PlaceholderDataDisk || p == PlaceholderDataDiskBytes {
				continue // reported above
			}
			bad("line %d: unknown placeholder %s", line.no, p)
		}
		if s := placeholderRE.ReplaceAllString(line.text, ""); strings.Contains(s, "{{") || strings.Contains(s, "}}") {
			bad("line %d: stray %q or %q", line.no, "{{", "}}")
		}
	}
	if len(errs) == 0 {
		if err := checkReferences([]byte(out), disks); err != nil {
			bad("%v", err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, errors.Join(errs...))
	}
	return []byte(out), nil
}

type line struct {
	no   int
	text string
}

func lines(s string) []line {
	var ls []line
	for i, t := range strings.Split(s, "\n") {
		ls = append(ls, line{i + 1, t})
	}
	return ls
}

func diskName(d Disk) string {
	if d.Name != "" {
		return d.Name
	}
	return filepath.Base(d.Path)
}

func checkDisks(disks []Disk) error {
	var errs []error
	if len(disks) < 1 || len(disks) > 2 {
		errs = append(errs, fmt.Errorf("got %d disks, want an OS disk and at most one data disk", len(disks)))
	}
	names := map[string]bool{}
	for i, d := range disks {
		name := diskName(d)
		switch {
		case name == "" || name == "." || strings.ContainsAny(name, "/\\\"<>&'") || len(name) > 100:
			errs = append(errs, fmt.Errorf("disk %d: file name %q: want a plain name of at most 100 bytes", i, name))
		case names[name]:
			errs = append(errs, fmt.Errorf("disk %d: file name %q used twice", i, name))
		}
		names[name] = true
		if d.SizeGiB <= 0 || d.SizeGiB > 1<<20 {
			errs = append(errs, fmt.Errorf("disk %d: size %d GiB, want 1..%d", i, d.SizeGiB, 1<<20))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidInput, errors.Join(errs...))
	}
	return nil
}

// references returns the hrefs of the OVF References section in order.
func references(ovf []byte) ([]string, error) {
	var env struct {
		Files []struct {
			Href string `xml:"href,attr"`
		} `xml:"References>File"`
	}
	if err := xml.Unmarshal(ovf, &env); err != nil {
		return nil, fmt.Errorf("parse OVF: %w", err)
	}
	var hrefs []string
	for _, f := range env.Files {
		hrefs = append(hrefs, f.Href)
	}
	return hrefs, nil
}

// checkReferences makes sure the References section names exactly the disks.
func checkReferences(ovf []byte, disks []Disk) error {
	hrefs, err := references(ovf)
	if err != nil {
		return err
	}
	var want []string
	for _, d := range disks {
		want = append(want, diskName(d))
	}
	got := slices.Sorted(slices.Values(hrefs))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("References lists files %q, want exactly the disks %q", hrefs, want)
	}
	return nil
}

// Pack writes the OVA at out: the rendered OVF named <prefix>.ovf, the
// manifest <prefix>.mf with a "SHA256(<file>)= <hex>" line per file, and the
// disks in References order, where <prefix> is the base name of out without
// ".ova". It writes a temporary file, syncs it and renames it into place.
func Pack(ctx context.Context, out string, tmpl []byte, disks []Disk, opts Options) (err error) {
	ovf, err := Render(tmpl, opts.TemplateName, disks)
	if err != nil {
		return err
	}
	prefix := strings.TrimSuffix(filepath.Base(out), ".ova")
	ovfName, mfName := prefix+".ovf", prefix+".mf"
	if len(ovfName) > 100 {
		return fmt.Errorf("%w: OVA name %q is too long for a tar member name", ErrInvalidInput, out)
	}
	hrefs, err := references(ovf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	env, err := ParseEnvelope(ovf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if err := checkAgainstVMDKs(env, disks); err != nil {
		name := opts.TemplateName
		if name == "" {
			name = "OVF template"
		}
		return fmt.Errorf("%w: %s does not agree with the disks: %w", ErrTemplate, name, err)
	}
	byName := map[string]Disk{}
	for _, d := range disks {
		byName[diskName(d)] = d
	}
	ordered := make([]Disk, 0, len(hrefs))
	for _, h := range hrefs {
		ordered = append(ordered, byName[h])
	}

	sums := map[string]string{ovfName: hexSHA256(ovf)}
	for _, d := range ordered {
		if sums[diskName(d)], err = fileSHA256(ctx, d.Path); err != nil {
			return err
		}
	}
	var mf bytes.Buffer
	for _, name := range append([]string{ovfName}, hrefs...) {
		fmt.Fprintf(&mf, "SHA256(%s)= %s\n", name, sums[name])
	}

	tmp, err := outfile.Create(out)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	tw := tar.NewWriter(bw)
	mtime := opts.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	if err := addBytes(tw, ovfName, ovf, mtime); err != nil {
		return err
	}
	if err := addBytes(tw, mfName, mf.Bytes(), mtime); err != nil {
		return err
	}
	for _, d := range ordered {
		if err := addFile(ctx, tw, diskName(d), d.Path, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish OVA tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write OVA: %w", err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("write OVA: %w", err)
	}
	return nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("hash disk %q: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func header(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  mtime,
		Format:   tar.FormatUSTAR,
	}
}

func addBytes(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(header(name, int64(len(data)), mtime)); err != nil {
		return fmt.Errorf("write tar header of %q: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %q into OVA: %w", name, err)
	}
	return nil
}

func addFile(ctx context.Context, tw *tar.Writer, name, path string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat disk %q: %w", path, err)
	}
	if err := tw.WriteHeader(header(name, st.Size(), mtime)); err != nil {
		return fmt.Errorf("write tar header of %q: %w", name, err)
	}
	if n, err := io.Copy(tw, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("copy disk %q into OVA: %w", path, err)
	} else if n != st.Size() {
		return fmt.Errorf("copy disk %q into OVA: size changed from %d to %d bytes", path, st.Size(), n)
	}
	return nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
