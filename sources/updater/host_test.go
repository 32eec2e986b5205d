package updater_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/bank"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/partflip"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
	"github.com/petrel-os/petrel/sources/verity"
)

// This file builds what the agent needs on a host, for real: an OS disk
// image laid out by sources/disklayout with an ESP holding the grubenv
// (bank A booted and successful) and recognisable bytes in bank A, a
// kernel command line naming BOOT-A, os-release, an API server with its
// datastore on a Unix socket serving settings.updates, and a signed TUF
// repository served over HTTP on 127.0.0.1.

const variant, arch = "metal-dev", "x86_64"

// release is one published version and its images.
type release struct {
	version  manifest.Version
	raw, zst map[bank.Part][]byte
	names    map[bank.Part]string
	rootHash []byte
}

// repoServer is a signed repository over HTTP whose answers a test can
// replace.
type repoServer struct {
	t        testing.TB
	dir      string
	keys     map[string][]*tufrepo.Key
	repo     *tufrepo.Repo
	rootJSON []byte
	now      time.Time
	m        *manifest.Manifest
	releases map[string]*release
	srv      *httptest.Server

	mu       sync.Mutex
	override map[string]http.HandlerFunc // by URL path
}

func newRepoServer(t testing.TB) *repoServer {
	t.Helper()
	r := &repoServer{t: t, dir: t.TempDir(), now: time.Now().Add(-time.Hour),
		m: &manifest.Manifest{Migrations: manifest.Migrations{}}, releases: map[string]*release{}, override: map[string]http.HandlerFunc{}}
	var err error
	if r.keys, err = tufrepo.NewKeys(); err != nil {
		t.Fatal(err)
	}
	if r.rootJSON, err = tufrepo.NewSignedRoot(r.keys, r.now.Add(365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r.repo, err = tufrepo.Create(r.dir, r.rootJSON); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Also under /<variant>/<arch>/, as buildctl repo lays out
		// build/repos/.
		req.URL.Path = strings.TrimPrefix(req.URL.Path, "/"+variant+"/"+arch)
		r.mu.Lock()
		h := r.override[req.URL.Path]
		r.mu.Unlock()
		if h != nil {
			h(w, req)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// publish adds a release whose root is rootBytes of pseudo-random data
// (compressible by half unless random), with the migrations of the step
// from the previous release.
func (r *repoServer) publish(version string, rootBytes int, random bool, step *manifest.Span, migrations map[string]string) *release {
	r.t.Helper()
	v := manifest.MustParseVersion(version)
	rng := rand.New(rand.NewPCG(uint64(len(r.releases))+1, 7))
	root := make([]byte, rootBytes)
	for i := 0; i < len(root); i += 8 {
		if random || i/4096%2 == 0 {
			x := rng.Uint64()
			for j := 0; j < 8 && i+j < len(root); j++ {
				root[i+j] = byte(x >> (8 * j))
			}
		}
	}
	var hash testkit.MemFile
	tree, err := verity.Format(context.Background(), bytes.NewReader(root), int64(len(root)), &hash,
		verity.Params{Salt: verity.DeriveSalt([]byte(version)), UUID: verity.DeriveUUID([]byte(version))})
	if err != nil {
		r.t.Fatal(err)
	}
	boot := make([]byte, 3<<20)
	for i := range boot {
		boot[i] = byte(rng.Uint32())
	}
	rel := &release{version: v, raw: map[bank.Part][]byte{bank.Root: root, bank.Boot: boot, bank.Hash: hash.Bytes()},
		zst: map[bank.Part][]byte{}, names: map[bank.Part]string{}, rootHash: tree.RootHash}
	prefix := fmt.Sprintf("petrel-%s-%s-%s-test", variant, arch, version)
	suffix := map[bank.Part]string{bank.Root: "-root.erofs.zst", bank.Boot: "-boot.ext4.zst", bank.Hash: "-root.verity.zst"}
	for _, p := range bank.Parts() {
		var b bytes.Buffer
		if err := imagecodec.Compress(context.Background(), &b, bytes.NewReader(rel.raw[p]), imagecodec.LevelFastest); err != nil {
			r.t.Fatal(err)
		}
		rel.zst[p], rel.names[p] = b.Bytes(), prefix+suffix[p]
		if _, err := r.repo.AddTargetBytes(rel.names[p], rel.zst[p]); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.m.Add(manifest.Update{Variant: variant, Arch: arch, Version: v, Waves: nil,
		Images: manifest.Images{Root: rel.names[bank.Root], Boot: rel.names[bank.Boot], Hash: rel.names[bank.Hash], RootHash: hex.EncodeToString(tree.RootHash)}}); err != nil {
		r.t.Fatal(err)
	}
	if step != nil {
		var names []string
		for name, content := range migrations {
			names = append(names, name)
			if _, err := r.repo.AddTargetBytes(name, []byte(content)); err != nil {
				r.t.Fatal(err)
			}
		}
		r.m.Migrations[*step] = names
	}
	r.releases[version] = rel
	r.commit()
	return rel
}

// commit signs the manifest and the metadata anew.
func (r *repoServer) commit() {
	r.t.Helper()
	data, err := manifest.Marshal(r.m)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.repo.AddTargetBytes(manifest.TargetName, data); err != nil {
		r.t.Fatal(err)
	}
	r.now = r.now.Add(time.Second)
	life := map[string]time.Duration{metadata.TARGETS: 24 * time.Hour, metadata.SNAPSHOT: 24 * time.Hour, metadata.TIMESTAMP: 24 * time.Hour}
	if err := r.repo.Commit(tufrepo.Commit{Now: r.now, Expires: life, Keys: r.keys, Targets: true}); err != nil {
		r.t.Fatal(err)
	}
}

// targetPath is the URL path of a target.
func (r *repoServer) targetPath(name string, data []byte) string {
	sum := sha256.Sum256(data)
	return "/" + tufrepo.TargetsDir + "/" + hex.EncodeToString(sum[:]) + "." + name
}

// serve makes the server answer path with data.
func (r *repoServer) serve(path string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if data == nil {
		delete(r.override, path)
		return
	}
	r.override[path] = func(w http.ResponseWriter, req *http.Request) {
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(data))
	}
}

// apiServer is a real API server (apitest.Serve) with the settings
// model and a datastore of version 0.1.0.
func apiServer(t testing.TB) (sock string, rebooted func() int) {
	t.Helper()
	rb := &rebooter{}
	sock = apitest.Serve(t, "0.1.0", func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Validator: settings.Validator{}, Rebooter: rb, SocketGID: -1}
	})
	return sock, rb.count
}

type rebooter struct {
	mu sync.Mutex
	n  int
}

func (r *rebooter) Reboot(context.Context) error { r.mu.Lock(); r.n++; r.mu.Unlock(); return nil }
func (r *rebooter) count() int                   { r.mu.Lock(); defer r.mu.Unlock(); return r.n }

// setUpdates sets settings.updates through the API, as a user would.
func setUpdates(t testing.TB, sock string, s map[string]any) {
	t.Helper()
	c := apiclient.New(sock)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "", map[string]any{"updates": s}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// testHost is a host's disk, files and API.
type testHost struct {
	t                                     testing.TB
	dir                                   string
	disk, cmdline, osRelease, root, state string
	lock, sock                            string
	layout                                *disklayout.Layout
	repo                                  *repoServer
	rebooted                              func() int
}

// newHost makes a host running 0.1.0 from bank A, with settings.updates
// naming repo. sock is an API server to share (empty: a new one).
func newHost(t testing.TB, repo *repoServer, sock string) *testHost {
	t.Helper()
	h := &testHost{t: t, dir: t.TempDir(), repo: repo, sock: sock, rebooted: func() int { return 0 }}
	if h.sock == "" {
		h.sock, h.rebooted = apiServer(t)
		setUpdates(t, h.sock, map[string]any{
			"metadata-base-url": repo.srv.URL + "/" + tufrepo.MetadataDir,
			"targets-base-url":  repo.srv.URL + "/" + tufrepo.TargetsDir,
			"seed":              1234, "version-lock": "latest", "ignore-waves": false,
		})
	}
	h.root = h.write("root.json", string(repo.rootJSON))
	h.state = filepath.Join(h.dir, "state")
	h.lock = filepath.Join(h.dir, "run", "lock", "petrel-updater.lock") // the agent makes the directory
	h.disk, h.layout = newDisk(t, h.dir)
	h.bootFrom(bootstate.BankA, "0.1.0")
	return h
}

// bootFrom makes the host one booted from bank b running version.
func (h *testHost) bootFrom(b bootstate.Bank, version string) {
	h.t.Helper()
	tab, err := gpt.ReadFile(context.Background(), h.disk)
	if err != nil {
		h.t.Fatal(err)
	}
	l, err := bank.Find(tab, b)
	if err != nil {
		h.t.Fatal(err)
	}
	p, _ := tab.Partition(l.Boot.Number)
	h.cmdline = h.write("cmdline", fmt.Sprintf(`console=ttyS0 root=/dev/dm-0 ro "dm-mod.create=root,,,ro,0 8 verity 1 PARTUUID=%s/PARTNROFF=1 PARTUUID=%s/PARTNROFF=2 4096 4096 1 1 sha256 00 - 2 restart_on_corruption ignore_zero_blocks" -- x`+"\n", p.GUID, p.GUID))
	h.osRelease = h.write("os-release", "NAME=Petrel\nVERSION_ID="+version+"\nVARIANT_ID="+variant+"\nBUILD_ID=test\n")
}

func (h *testHost) write(name, data string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// newDisk writes a sparse OS disk image of the metal-dev layout: the GPT,
// an ESP with EFI/BOOT/grubenv in the initial state (A booted and
// successful), and a pattern at both ends of every other partition.
func newDisk(t testing.TB, dir string) (string, *disklayout.Layout) {
	t.Helper()
	l, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(l.OSDisk.SizeBytes); err != nil {
		t.Fatal(err)
	}
	if err := gpt.Write(context.Background(), f, l.OSDisk.SizeBytes, l.OSDisk.GPT([]byte(dir))); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.OSDisk.Partitions {
		if p.Key == disklayout.KeyEFIA {
			continue
		}
		for _, off := range []int64{p.OffsetBytes(), p.OffsetBytes() + p.SizeBytes() - disklayout.MiB} {
			if _, err := f.WriteAt(bytes.Repeat([]byte(p.Key), disklayout.MiB/len(p.Key)), off); err != nil {
				t.Fatal(err)
			}
		}
	}
	esp, _ := l.OSDisk.Partition(disklayout.KeyEFIA)
	espImg := filepath.Join(dir, "esp.img")
	testkit.Run(t, "mkfs.vfat", "-C", espImg, fmt.Sprint(esp.SizeBytes()/1024))
	env, err := bootstate.Initial().Env()
	if err != nil {
		t.Fatal(err)
	}
	block, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	grubenv := filepath.Join(dir, "grubenv")
	if err := os.WriteFile(grubenv, block, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := []string{"MTOOLS_SKIP_CHECK=1"}
	testkit.RunEnv(t, mt, "mmd", "-i", espImg, "::/EFI", "::/EFI/BOOT")
	testkit.RunEnv(t, mt, "mcopy", "-i", espImg, grubenv, "::/EFI/BOOT/grubenv")
	data, err := os.ReadFile(espImg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, esp.OffsetBytes()); err != nil {
		t.Fatal(err)
	}
	return path, l
}

// args are the agent's flags for this host, then extra.
func (h *testHost) args(extra ...string) []string {
	return append([]string{"--socket-path", h.sock, "--root-path", h.root, "--state-directory", h.state,
		"--disk", h.disk, "--cmdline", h.cmdline, "--os-release", h.osRelease, "--lock-path", h.lock}, extra...)
}

// run runs the agent in this process.
func (h *testHost) run(extra ...string) (int, string, string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	code := updater.MainWithStep(context.Background(), h.args(extra...), &out, &errb, nil)
	return code, out.String(), errb.String()
}

// mustRun runs the agent and wants exit 0.
func (h *testHost) mustRun(extra ...string) string {
	h.t.Helper()
	code, out, errs := h.run(extra...)
	if code != 0 {
		h.t.Fatalf("updater %v: exit %d\n%s%s", extra, code, out, errs)
	}
	return out
}

// status returns `updater status --json`.
func (h *testHost) status() updater.BankStatus {
	h.t.Helper()
	var st updater.BankStatus
	if err := json.Unmarshal([]byte(h.mustRun("status", "--json")), &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// location finds the boot state as partflip does.
func (h *testHost) location() *partflip.Location {
	h.t.Helper()
	o := partflip.DefaultOptions()
	o.Disk, o.CmdlinePath = h.disk, h.cmdline
	loc, err := partflip.Locate(context.Background(), o)
	if err != nil {
		h.t.Fatal(err)
	}
	return loc
}

// bootState reads the boot state and the raw grubenv sector.
func (h *testHost) bootState() (bootstate.State, []byte) {
	h.t.Helper()
	loc := h.location()
	s, err := loc.ReadState(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := os.Open(h.disk)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	sector := make([]byte, 512)
	if _, err := f.ReadAt(sector, loc.EnvOffset); err != nil {
		h.t.Fatal(err)
	}
	return s, sector
}

// partitions returns the SHA-256 of each partition named by keys.
func (h *testHost) partitions(keys ...string) map[string]string {
	h.t.Helper()
	f, err := os.Open(h.disk)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	for _, k := range keys {
		p, _ := h.layout.OSDisk.Partition(k)
		sum := sha256.New()
		if _, err := io.Copy(sum, io.NewSectionReader(f, p.OffsetBytes(), p.SizeBytes())); err != nil {
			h.t.Fatal(err)
		}
		out[k] = hex.EncodeToString(sum.Sum(nil))
	}
	return out
}

// holds reports whether bank B's partitions start with rel's images.
func (h *testHost) holds(rel *release) error {
	f, err := os.Open(h.disk)
	if err != nil {
		return err
	}
	defer f.Close()
	for p, key := range map[bank.Part]string{bank.Boot: disklayout.KeyBootB, bank.Root: disklayout.KeyRootB, bank.Hash: disklayout.KeyHashB} {
		part, _ := h.layout.OSDisk.Partition(key)
		got := make([]byte, len(rel.raw[p]))
		if _, err := f.ReadAt(got, part.OffsetBytes()); err != nil {
			return err
		}
		if !bytes.Equal(got, rel.raw[p]) {
			return fmt.Errorf("%s does not hold the %s image of %s", key, p, rel.version)
		}
	}
	return nil
}

// bankA are the partitions an update of bank B must not touch.
var bankA = []string{disklayout.KeyBIOS, disklayout.KeyBootA, disklayout.KeyRootA, disklayout.KeyHashA, disklayout.KeyReservedA,
	disklayout.KeyEFIB, disklayout.KeyReservedB, disklayout.KeyPrivate}
