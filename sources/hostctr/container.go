package hostctr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	runc "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults of the host containerd (packages/host: host-containerd.service).
const (
	DefaultSocket    = "/run/host-containerd/containerd.sock"
	DefaultNamespace = "default"
	// stopTimeout is how long a task has after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
)

// Kind is a host container or a bootstrap container.
type Kind string

// Container kinds.
const (
	KindHost      Kind = "host"
	KindBootstrap Kind = "bootstrap"
)

// dir is the kind's directory under /local and /.petrel.
func (k Kind) dir() string {
	if k == KindBootstrap {
		return "bootstrap-containers"
	}
	return "host-containers"
}

// containerID is the containerd ID of container name: the name itself for
// a host container (the exec contract, docs/host-containers.md), boot.NAME
// for a bootstrap container.
func containerID(k Kind, name string) string {
	if k == KindBootstrap {
		return "boot." + name
	}
	return name
}

// Paths are where the host keeps what containers see; tests move them.
type Paths struct {
	// Local is the persistent storage root on DATA: Local/<kind dir>/<name>.
	Local string
	// APISocket, APIClient and OSRelease are bound into every container.
	APISocket, APIClient, OSRelease string
	// StatusDir receives the status documents.
	StatusDir string
	// RuncRoot keeps runc's state apart from the workload containerd's;
	// FIFODir holds the pipes of the containers' output.
	RuncRoot, FIFODir string
}

// DefaultPaths are the paths of a Petrel host.
func DefaultPaths() Paths {
	return Paths{Local: "/local", APISocket: "/run/api.sock", APIClient: "/usr/bin/apiclient",
		OSRelease: "/etc/os-release", StatusDir: "/run/host-containers/status",
		RuncRoot: "/run/host-containerd/runc", FIFODir: "/run/host-containerd/fifo"}
}

// Runner runs containers in one containerd.
type Runner struct {
	client *client.Client
	paths  Paths
	log    *slog.Logger
	status statusWriter
	// out receives the containers' standard output and error.
	out io.Writer
}

// NewRunner connects to the containerd at socket, in namespace ns.
func NewRunner(ctx context.Context, socket, ns string, paths Paths, out io.Writer, log *slog.Logger) (*Runner, error) {
	c, err := client.New(socket, client.WithDefaultNamespace(ns), client.WithTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", socket, err)
	}
	return &Runner{client: c, paths: paths, log: logger(log), status: statusWriter{dir: paths.StatusDir}, out: out}, nil
}

// Close closes the connection to containerd.
func (r *Runner) Close() error { return r.client.Close() }

// Spec is one container to run.
type Spec struct {
	Kind         Kind
	Name         string
	Source       string
	Superpowered bool
	UserData     []byte
	Registry     RegistryConfig
	// UseCached uses an image already in containerd instead of pulling.
	UseCached bool
}

// persistentDir is the container's storage on DATA.
func (r *Runner) persistentDir(k Kind, name string) string {
	return filepath.Join(r.paths.Local, k.dir(), name)
}

// mounts returns the mounts of every container, and the superpowered ones.
func (r *Runner) mounts(s Spec) []specs.Mount {
	persistent := r.persistentDir(s.Kind, s.Name)
	inside := "/.petrel/" + s.Kind.dir()
	rw := []string{"rbind", "rw"}
	ro := []string{"bind", "ro"}
	m := []specs.Mount{
		{Type: "bind", Source: persistent, Destination: inside + "/" + s.Name, Options: rw},
		{Type: "bind", Source: persistent, Destination: inside + "/current", Options: rw},
		{Type: "bind", Source: r.paths.APISocket, Destination: "/run/api.sock", Options: []string{"bind", "rw"}},
		{Type: "bind", Source: r.paths.APIClient, Destination: "/usr/local/bin/apiclient", Options: ro},
		{Type: "bind", Source: r.paths.OSRelease, Destination: "/etc/petrel-release", Options: ro},
	}
	if s.Superpowered {
		m = append(m, specs.Mount{Type: "bind", Source: "/", Destination: "/.petrel/rootfs", Options: []string{"rbind", "ro", "rshared"}})
	}
	return m
}

// specOpts returns the OCI spec options of s for image img.
func (r *Runner) specOpts(s Spec, img client.Image) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithMounts(r.mounts(s)),
		oci.WithEnv([]string{"PETREL_CONTAINER=" + s.Name, "PETREL_CONTAINER_TYPE=" + string(s.Kind)}),
	}
	// The host network's name files, where the host has them (a Petrel
	// host has no /etc/hosts).
	if _, err := os.Stat("/etc/hosts"); err == nil {
		opts = append(opts, oci.WithHostHostsFile)
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		opts = append(opts, oci.WithHostResolvconf)
	}
	return append(opts, privilegeOpts(s, selinuxLabel(s))...)
}

// privilegeOpts returns the spec options of s's privileges and then, if
// label is not "", its SELinux process label. The label comes last:
// oci.WithPrivileged clears it, and a container without one runs in
// the runtime's domain (runtime_t), as do the processes `apiclient exec`
// starts in it with the container's process settings.
func privilegeOpts(s Spec, label string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case s.Superpowered:
		opts = append(opts, oci.WithPrivileged, oci.WithHostNamespace(specs.PIDNamespace),
			oci.WithAllDevicesAllowed, oci.WithHostDevices)
	case s.Kind == KindBootstrap:
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace), oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_AUDIT_CONTROL"}))
	}
	if label != "" {
		opts = append(opts, oci.WithSelinuxLabel(label))
	}
	return opts
}

// SELinux labels of host containers (docs/selinux.md): superpowered
// ones run as super_t, all others (and bootstrap containers) as
// control_t, with every category. No mount label: the snapshot is
// container content (cache_t) by the policy's type transition, and a
// context= option on the overlay mount is not the runtime's to give.
const (
	labelControl = "system_u:system_r:control_t:s0-s0:c0.c1023"
	labelSuper   = "system_u:system_r:super_t:s0-s0:c0.c1023"
)

// selinuxFS is where the kernel shows SELinux when it runs it.
const selinuxFS = "/sys/fs/selinux/enforce"

// selinuxLabel returns the process label of s, or "" when the host does
// not run SELinux (a build machine's tests).
func selinuxLabel(s Spec) string {
	if _, err := os.Stat(selinuxFS); err != nil {
		return ""
	}
	if s.Superpowered {
		return labelSuper
	}
	return labelControl
}

// prepare writes the user data into the persistent directory.
func (r *Runner) prepare(s Spec) error {
	dir := r.persistentDir(s.Kind, s.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create persistent storage of %s: %w", s.Name, err)
	}
	tmp := filepath.Join(dir, ".user-data.tmp")
	if err := os.WriteFile(tmp, s.UserData, 0o600); err != nil {
		return fmt.Errorf("write user data of %s: %w", s.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "user-data")); err != nil {
		return fmt.Errorf("write user data of %s: %w", s.Name, err)
	}
	return nil
}

// started is called once the task runs.
type started func(pid uint32, image string)

// Run gets the image, creates and starts the container and waits for its
// task to exit or ctx to end (then the task is stopped). A container of
// the same ID left over from before is removed first; the container and
// its snapshot are removed at the end. It returns the task's exit code.
func (r *Runner) Run(ctx context.Context, s Spec, onStart started) (int, error) {
	id := containerID(s.Kind, s.Name)
	if err := r.CleanUp(ctx, id); err != nil {
		return -1, err
	}
	if err := r.prepare(s); err != nil {
		return -1, err
	}
	start := time.Now()
	img, err := r.image(ctx, s.Source, s.Registry, s.UseCached)
	if err != nil {
		return -1, err
	}
	r.log.Info("image ready", "container", id, "image", img.Target().Digest.String(), "took", time.Since(start).Round(time.Millisecond).String())
	ctr, err := r.client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id+"-snapshot", img),
		client.WithRuntime("io.containerd.runc.v2", &runc.Options{Root: r.paths.RuncRoot}),
		client.WithNewSpec(r.specOpts(s, img)...),
	)
	if err != nil {
		return -1, fmt.Errorf("create container %s: %w", id, err)
	}
	// The clean-up must run even when ctx is cancelled (a stop).
	cleanCtx := context.WithoutCancel(ctx)
	defer func() {
		if err := ctr.Delete(cleanCtx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("delete container", "container", id, "error", err)
		}
	}()
	out := r.out
	if out == nil {
		out = io.Discard
	}
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, out), cio.WithFIFODir(r.paths.FIFODir)))
	if err != nil {
		return -1, fmt.Errorf("create task of container %s: %w", id, err)
	}
	defer func() {
		if _, err := task.Delete(cleanCtx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("delete task", "container", id, "error", err)
		}
	}()
	exitCh, err := task.Wait(cleanCtx)
	if err != nil {
		return -1, fmt.Errorf("wait for task of container %s: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return -1, fmt.Errorf("start task of container %s: %w", id, err)
	}
	if onStart != nil {
		onStart(task.Pid(), img.Target().Digest.String())
	}
	select {
	case st := <-exitCh:
		code, _, err := st.Result()
		if err != nil {
			return -1, fmt.Errorf("wait for task of container %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
	}
	r.log.Info("stopping container", "container", id)
	if err := task.Kill(cleanCtx, syscall.SIGTERM, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		r.log.Warn("send SIGTERM", "container", id, "error", err)
	}
	select {
	case <-exitCh:
	case <-time.After(stopTimeout):
		if err := task.Kill(cleanCtx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("send SIGKILL", "container", id, "error", err)
		}
		<-exitCh
	}
	return -1, ctx.Err()
}

// CleanUp removes container id, its task and its snapshot, if they exist.
func (r *Runner) CleanUp(ctx context.Context, id string) error {
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task of container %s: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("load task of container %s: %w", id, err)
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	r.log.Info("removed a container left over from before", "container", id)
	return nil
}
