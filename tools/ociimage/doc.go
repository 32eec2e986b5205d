// Package ociimage makes OCI container images from RPMs of this
// repository: the admin and control host-container images
// (docs/host-containers.md). An image is defined by
// packages/NAME-container/image.toml (its packages, entry point and
// environment); the packages' closure is installed into a staging tree,
// which becomes one layer. Every timestamp is SOURCE_DATE_EPOCH and every
// list is sorted, so a commit always gives the same digests. The image is
// written as an OCI image layout, then as an OCI archive (a tar of the
// layout, what `host-ctr` imports for air-gapped hosts) or pushed to a
// registry with go-containerregistry. The layer and layout are written
// here rather than with go-containerregistry's mutate package because its
// compression and timestamps are not promised to stay the same between
// releases.
package ociimage
