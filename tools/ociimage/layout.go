package ociimage

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layout is an OCI image layout written by WriteLayout.
type Layout struct {
	Dir string
	// Manifest is the image manifest's descriptor, as index.json has it.
	Manifest ocispec.Descriptor
}

// annotation with the full image name, which containerd's import uses.
const containerdNameAnnotation = "io.containerd.image.name"

// WriteLayout makes an OCI image layout in the empty or missing directory
// dir from tree (one layer) and d's configuration, dated epoch. refName is
// the image's name (registry/repository:tag) for index.json.
func WriteLayout(dir, tree string, d *Definition, epoch time.Time, refName string) (*Layout, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("write OCI layout: %w", err)
	}
	tmp, err := os.CreateTemp(blobs, ".layer-*")
	if err != nil {
		return nil, fmt.Errorf("write OCI layout: %w", err)
	}
	layer, err := writeLayer(tree, epoch, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, digest.Digest(layer.Digest).Encoded())); err != nil {
		return nil, fmt.Errorf("write OCI layout: %w", err)
	}
	created := epoch.UTC()
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{
			Entrypoint: d.Entrypoint, Cmd: d.Cmd, Env: d.Env, WorkingDir: d.WorkingDir, Labels: d.Labels,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.Digest(layer.DiffID)}},
		History: []ocispec.History{{Created: &created, CreatedBy: "buildctl container-image --name " + d.Name}},
	}
	cfgDesc, err := writeJSONBlob(blobs, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return nil, err
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.Digest(layer.Digest), Size: layer.Size}},
	}
	mDesc, err := writeJSONBlob(blobs, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return nil, err
	}
	mDesc.Platform = &cfg.Platform
	mDesc.Annotations = map[string]string{ocispec.AnnotationRefName: refName, containerdNameAnnotation: refName}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mDesc},
	}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageIndexFile), index); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageLayoutFile), ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return nil, err
	}
	return &Layout{Dir: dir, Manifest: mDesc}, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	return nil
}

// writeJSONBlob writes v as a blob and returns its descriptor.
func writeJSONBlob(blobs, mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	sum := sha256.Sum256(data)
	d := digest.NewDigestFromBytes(digest.SHA256, sum[:])
	if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write OCI layout: %w", err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

// WriteArchive writes the layout at dir as an OCI archive (a tar of the
// layout) to w: entries sorted, dated epoch, owned by 0:0.
func WriteArchive(dir string, epoch time.Time, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg}
		if d.IsDir() {
			h.Name, h.Mode, h.Typeflag = h.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		h.Size = info.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("write OCI archive of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write OCI archive of %s: %w", dir, err)
	}
	return nil
}
