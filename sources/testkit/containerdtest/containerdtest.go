// Package containerdtest runs a real containerd daemon for a test, with
// its own root, state and socket in a temporary directory, and starts
// containers in it from a busybox image it builds itself: an OCI archive
// of Debian's static busybox, imported into the daemon, so no registry
// and no network are involved. Only tests import it. It is apart from
// testkit so that the containerd client it links stays out of the test
// binaries that do not need it; the tests pass it the tools, found with
// testkit.Tool.
package containerdtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// Tools are the programs the daemon needs, by path.
type Tools struct {
	Containerd string
	Runc       string
	// Busybox is a statically linked busybox (Debian's busybox-static
	// installs /bin/busybox); the image holds it and links to it.
	Busybox string
}

// Namespace is the containerd namespace the containers are created in,
// the host containerd's.
const Namespace = "default"

// ImageName is the name of the busybox image in the daemon.
const ImageName = "petrel.test/busybox:latest"

// Daemon is a running containerd.
type Daemon struct {
	// Socket is the daemon's gRPC socket.
	Socket string
	// Dir holds the daemon's root, state, configuration and log; its
	// path is short, so that the sockets under it fit sun_path.
	Dir    string
	client *containerd.Client
	image  containerd.Image
}

// Start starts containerd with the tools, imports the busybox image and
// registers the cleanup: every container's task killed and deleted, the
// containers deleted, the daemon stopped and its directory removed. The
// daemon's log is printed when the test has failed.
func Start(t testing.TB, tools Tools) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Socket: filepath.Join(dir, "c.sock"), Dir: dir}
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Socket)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tools.Containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// The shim finds runc in PATH.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tools.Runc)+":"+filepath.Dir(tools.Containerd)+":/usr/sbin:/usr/bin:/sbin:/bin")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", tools.Containerd, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		d.cleanup(t)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("containerd log (warnings and errors):\n%s", tail(notInfo(string(log)), 60))
			}
		}
		os.RemoveAll(dir)
	})
	d.client, err = containerd.New(d.Socket, containerd.WithDefaultNamespace(Namespace))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := d.client.Version(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("containerd did not answer on %s: %v", d.Socket, err)
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd exited: %v\n%s", err, tail(string(log), 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.image = d.importBusybox(t, ctx, tools.Busybox)
	return d
}

// Client returns a client of the daemon, in Namespace.
func (d *Daemon) Client() *containerd.Client { return d.client }

// Create creates the container id from the busybox image, to run args
// (a shell sleeping forever when none), without starting it.
func (d *Daemon) Create(t testing.TB, id string, args ...string) containerd.Container {
	t.Helper()
	if len(args) == 0 {
		args = []string{"/bin/sleep", "1000000"}
	}
	ctx := context.Background()
	// runc's state directory and the container's cgroup are the
	// daemon's own: by default both are named by namespace and id only,
	// so two test daemons (tests of several packages run at once) with a
	// container of the same name would share them, and one test's
	// cleanup would kill the other's container.
	c, err := d.client.NewContainer(ctx, id, containerd.WithImage(d.image), containerd.WithNewSnapshot(id+"-snapshot", d.image),
		containerd.WithRuntime("io.containerd.runc.v2", &options.Options{Root: filepath.Join(d.Dir, "runc")}),
		containerd.WithNewSpec(oci.WithImageConfig(d.image), oci.WithProcessArgs(args...),
			oci.WithCgroup("/"+filepath.Base(d.Dir)+"/"+id)))
	if err != nil {
		t.Fatalf("create container %s: %v", id, err)
	}
	return c
}

// Run creates the container id as Create does and starts its task.
func (d *Daemon) Run(t testing.TB, id string, args ...string) containerd.Task {
	t.Helper()
	c := d.Create(t, id, args...)
	ctx := context.Background()
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("create task of %s: %v", id, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start task of %s: %v", id, err)
	}
	return task
}

// cleanup kills and deletes every task and container.
func (d *Daemon) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := d.client.Containers(ctx)
	if err != nil {
		t.Logf("list containers: %v", err)
	}
	for _, c := range cs {
		if task, err := c.Task(ctx, nil); err == nil {
			if st, err := task.Wait(ctx); err == nil {
				if task.Kill(ctx, syscall.SIGKILL) == nil {
					<-st
				}
			}
			if _, err := task.Delete(ctx); err != nil {
				t.Logf("delete task of %s: %v", c.ID(), err)
			}
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			t.Logf("delete container %s: %v", c.ID(), err)
		}
	}
	d.client.Close()
}

// importBusybox builds the busybox OCI archive, imports and unpacks it.
func (d *Daemon) importBusybox(t testing.TB, ctx context.Context, busybox string) containerd.Image {
	t.Helper()
	archive, err := BusyboxArchive(busybox)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := d.client.Import(ctx, bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("import the busybox image: %v", err)
	}
	if len(imgs) != 1 || imgs[0].Name != ImageName {
		t.Fatalf("import the busybox image: got %+v, want one image %s", imgs, ImageName)
	}
	img := containerd.NewImage(d.client, imgs[0])
	if err := img.Unpack(ctx, "overlayfs"); err != nil {
		t.Fatalf("unpack the busybox image: %v", err)
	}
	return img
}

// applets are the busybox commands the image links in /bin.
var applets = []string{"sh", "sleep", "cat", "echo", "stty", "tty", "ps", "kill", "wc", "head", "true", "false", "env", "ls", "id", "tr", "seq", "yes", "dd", "sha256sum"}

// BusyboxArchive returns an OCI image archive (oci-layout, index.json
// naming ImageName, one uncompressed layer) of busybox with the applets
// linked in /bin and PATH=/bin.
func BusyboxArchive(busybox string) ([]byte, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	mtime := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mtime},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: mtime},
	} {
		if err := lw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := lw.Write(bin); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range applets {
		if err := lw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := lw.Close(); err != nil {
		return nil, err
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    map[string]string `json:"platform,omitempty"`
	}
	blobs := map[string][]byte{}
	add := func(mediaType string, data []byte) desc {
		sum := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		blobs[sum] = data
		return desc{MediaType: mediaType, Digest: sum, Size: len(data)}
	}
	layerDesc := add("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": []string{"/bin/sh"}, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return nil, err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": add("application/vnd.oci.image.config.v1+json", config), "layers": []desc{layerDesc},
	})
	if err != nil {
		return nil, err
	}
	md := add("application/vnd.oci.image.manifest.v1+json", manifest)
	md.Annotations = map[string]string{"io.containerd.image.name": ImageName, "org.opencontainers.image.ref.name": "latest"}
	md.Platform = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []desc{md}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	w := tar.NewWriter(&out)
	files := []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}}
	for sum, data := range blobs {
		files = append(files, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(sum, "sha256:"), data})
	}
	for _, f := range files {
		if err := w.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// notInfo drops containerd's info lines.
func notInfo(log string) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "level=info") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
