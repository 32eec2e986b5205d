package hostctr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteserrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/petrel-os/petrel/sources/settings"
)

// ErrBadSource is a container source that is neither an image reference
// nor an OCI archive path.
var ErrBadSource = errors.New("bad container source")

// Pull retries: upstream's exponential backoff (1 s doubling, at most
// 30 s, five attempts) with 2-6 s of jitter. Errors that another attempt
// cannot fix (no such image, refused credentials) are not retried.
const (
	pullAttempts   = 5
	pullFirstDelay = time.Second
	pullMaxDelay   = 30 * time.Second
)

// image returns source's image in the host containerd, unpacked into the
// default snapshotter: pulled from its registry, or imported from an OCI
// archive (settings.OCIArchivePrefix). A registry image already present
// is used when cached is true.
func (r *Runner) image(ctx context.Context, source string, reg RegistryConfig, cached bool) (client.Image, error) {
	if path, ok := strings.CutPrefix(source, settings.OCIArchivePrefix); ok {
		return r.importArchive(ctx, path)
	}
	named, err := reference.ParseDockerRef(source)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not an image reference: %v", ErrBadSource, source, err)
	}
	ref := named.String()
	if cached {
		if img, err := r.client.GetImage(ctx, ref); err == nil {
			if err := img.Unpack(ctx, ""); err != nil {
				return nil, fmt.Errorf("unpack cached image %s: %w", ref, err)
			}
			return img, nil
		}
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(func(host string) (bool, error) { return reg.insecure(host), nil }),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(reg.credentials))),
	)})
	delay := pullFirstDelay
	for attempt := 1; ; attempt++ {
		img, err := r.client.Pull(ctx, ref, client.WithPullUnpack, client.WithResolver(resolver))
		if err == nil {
			return img, nil
		}
		err = fmt.Errorf("pull %s: %w", ref, err)
		if attempt == pullAttempts || final(err) || ctx.Err() != nil {
			return nil, err
		}
		wait := delay + time.Duration(2000+rand.IntN(4000))*time.Millisecond
		r.log.Warn("pull failed; retrying", "image", ref, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
		delay = min(2*delay, pullMaxDelay)
	}
}

// final says whether another pull attempt cannot help: the image does not
// exist, or the registry refuses the credentials.
func final(err error) bool {
	var status remoteserrors.ErrUnexpectedStatus
	if errors.As(err, &status) {
		switch status.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return true
		}
	}
	return errors.Is(err, docker.ErrInvalidAuthorization) || errdefs.IsNotFound(err) || errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err)
}

// importArchive imports an OCI archive (a tar of an OCI image layout) and
// unpacks its image for this platform.
func (r *Runner) importArchive(ctx context.Context, path string) (client.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import OCI archive: %w", err)
	}
	defer f.Close()
	name := "import.petrel.local" + path
	imgs, err := r.client.Import(ctx, f, client.WithIndexName(name))
	if err != nil {
		return nil, fmt.Errorf("import OCI archive %s: %w", path, err)
	}
	for _, i := range imgs {
		if i.Name != name {
			continue
		}
		img := client.NewImage(r.client, i)
		if err := img.Unpack(ctx, ""); err != nil {
			return nil, fmt.Errorf("unpack OCI archive %s: %w", path, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("import OCI archive %s: no image index in it", path)
}

// logger returns l or a logger that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
