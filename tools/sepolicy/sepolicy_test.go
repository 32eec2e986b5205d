package sepolicy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/sources/testkit"
)

// pkgDir is the policy package the image ships.
var pkgDir = filepath.Join("..", "..", "packages", "selinux-policy")

func compile(t *testing.T, extra ...string) Policy {
	t.Helper()
	p, err := Compile(t.Context(), pkgDir, t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNeverallow adds one rule at a time that breaks a promise of the
// policy; secilc must refuse each, naming the neverallow rule it breaks
// and the added rule.
func TestNeverallow(t *testing.T) {
	for _, tt := range []struct {
		name, rule, neverallow string
	}{
		{"container writes the API socket", "(allow container_t api_socket_t (sock_file (write)))",
			"(neverallow container_t api_socket_t (sock_file (write append)))"},
		{"container connects to the API server", "(allow container_t api_t (unix_stream_socket (connectto)))",
			"(neverallow container_t api_t (unix_stream_socket (connectto)))"},
		{"runtime connects to the API server", "(allow runtime_t api_t (unix_stream_socket (connectto)))",
			"(neverallow not_api_client_d api_t (unix_stream_socket (connectto)))"},
		{"control container removes the API socket", "(allow control_t api_socket_t (sock_file (unlink)))",
			"(neverallow not_socket_attr_d api_socket_t files_mutate)"},
		{"control container changes the API socket's mode", "(allow control_t api_socket_t (sock_file (setattr)))",
			"(neverallow not_socket_attr_d api_socket_t files_mutate)"},
		{"superpowered container removes the API socket", "(allow super_t api_socket_t (sock_file (unlink)))",
			"(neverallow super_t api_socket_t (sock_file (create unlink link rename relabelfrom relabelto)))"},
		{"superpowered container relabels the API socket", "(allow super_t api_socket_t (sock_file (relabelfrom)))",
			"(neverallow super_t api_socket_t (sock_file (create unlink link rename relabelfrom relabelto)))"},
		{"system agent writes the datastore", "(allow system_t datastore_t (file (write)))",
			"(neverallow not_api_d datastore_t (file (write append)))"},
		{"system agent relabels to the datastore", "(allow system_t datastore_t (file (relabelto)))",
			"(neverallow not_datastore_labeller_d datastore_t files_relabelto)"},
		{"initramfs relabels from the datastore", "(allow kernel_t datastore_t (file (relabelfrom)))",
			"(neverallow not_api_d datastore_t files_change)"},
		{"control container writes /etc", "(allow control_t etc_t (file (write)))",
			"(neverallow not_etc_writer_d etc_t (file (write append)))"},
		{"runtime creates in /etc", "(allow runtime_t etc_t (dir (add_name)))",
			"(neverallow not_etc_writer_d etc_t files_mutate)"},
		{"superpowered container changes the root", "(allow super_t os_t (file (write)))",
			"(neverallow domain immutable_o files_mutate)"},
		{"init relabels an executable", "(allow init_t agent_exec_t (file (relabelfrom)))",
			"(neverallow domain immutable_o files_mutate)"},
		{"system agent runs a program from DATA", "(allow system_t local_t (file (execute)))",
			"(neverallow domain data_noexec_o files_run)"},
		{"API server runs container content", "(allow api_t cache_t (file (execute)))",
			"(neverallow not_data_exec_d content_o files_run)"},
		{"container sets the SELinux mode", "(allow container_t security_t (security (setenforce)))",
			"(neverallow confined_d security_t (security (load_policy setenforce setbool setsecparam setcheckreqprot)))"},
		{"container writes the OS's state", "(allow container_t state_t (file (write)))",
			"(neverallow confined_d host_files_o (file (write append)))"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fixture := filepath.Join(t.TempDir(), "violation.cil")
			if err := os.WriteFile(fixture, []byte(tt.rule+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Compile(t.Context(), pkgDir, t.TempDir(), fixture)
			if err == nil {
				t.Fatalf("the policy with %s compiled", tt.rule)
			}
			msg := err.Error()
			for _, want := range []string{"neverallow check failed", tt.neverallow, tt.rule} {
				if !strings.Contains(msg, want) {
					t.Errorf("secilc's report lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}

// TestFileContexts checks the compiled file_contexts against the policy
// with setfiles -c, and that the check is live: a context with a type the
// policy lacks is refused.
func TestFileContexts(t *testing.T) {
	p := compile(t)
	if err := p.CheckFileContexts(t.Context(), p.FileContexts); err != nil {
		t.Error(err)
	}
	bad := filepath.Join(t.TempDir(), "file_contexts")
	if err := os.WriteFile(bad, []byte("/nope\tsystem_u:object_r:nosuch_t:s0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := p.CheckFileContexts(t.Context(), bad)
	if err == nil || !strings.Contains(err.Error(), "nosuch_t") {
		t.Errorf("setfiles -c of a file_contexts with an unknown type: %v; want a refusal naming nosuch_t", err)
	}
}

// TestAllowDeny asks sesearch the key facts of docs/selinux.md.
func TestAllowDeny(t *testing.T) {
	p := compile(t)
	for _, tt := range []struct {
		source, target, class, perm string
		want                        bool
	}{
		// The API socket and server.
		{"api_t", "api_socket_t", "sock_file", "create", true},
		{"api_t", "api_socket_t", "sock_file", "unlink", true},
		{"system_t", "api_socket_t", "sock_file", "write", true},
		{"system_t", "api_t", "unix_stream_socket", "connectto", true},
		{"control_t", "api_socket_t", "sock_file", "write", true},
		{"control_t", "api_t", "unix_stream_socket", "connectto", true},
		{"super_t", "api_t", "unix_stream_socket", "connectto", true},
		{"container_t", "api_socket_t", "sock_file", "write", false},
		{"container_t", "api_t", "unix_stream_socket", "connectto", false},
		{"control_t", "api_socket_t", "sock_file", "unlink", false},
		{"control_t", "api_socket_t", "sock_file", "setattr", false},
		{"super_t", "api_socket_t", "sock_file", "unlink", false},
		{"super_t", "api_socket_t", "sock_file", "rename", false},
		// The host's administrator may change the socket's mode (TestHostContainers).
		{"super_t", "api_socket_t", "sock_file", "setattr", true},
		{"super_t", "api_socket_t", "sock_file", "write", true},
		{"system_t", "api_socket_t", "sock_file", "setattr", false},
		{"runtime_t", "api_t", "unix_stream_socket", "connectto", false},
		{"network_t", "api_socket_t", "sock_file", "write", false},
		// The apiclient host-ctr mounts into host containers runs in them.
		{"control_t", "agent_exec_t", "file", "entrypoint", true},
		{"super_t", "agent_exec_t", "file", "execute", true},
		{"container_t", "agent_exec_t", "file", "entrypoint", false},
		{"control_t", "agent_exec_t", "file", "write", false},
		// The datastore.
		{"api_t", "datastore_t", "file", "write", true},
		{"api_t", "datastore_t", "dir", "add_name", true},
		{"system_t", "datastore_t", "file", "read", true},
		{"system_t", "datastore_t", "file", "write", false},
		{"control_t", "datastore_t", "file", "write", false},
		{"container_t", "datastore_t", "file", "read", false},
		// The initramfs labels a datastore from before SELinux, and no more.
		{"kernel_t", "unlabeled_t", "file", "relabelfrom", true},
		{"kernel_t", "datastore_t", "file", "relabelto", true},
		{"kernel_t", "datastore_t", "dir", "relabelto", true},
		{"kernel_t", "datastore_t", "file", "relabelfrom", false},
		{"kernel_t", "datastore_t", "file", "write", false},
		{"kernel_t", "state_t", "dir", "relabelto", true},
		{"system_t", "datastore_t", "file", "relabelto", false},
		{"init_t", "datastore_t", "file", "relabelto", false},
		// /etc and the root.
		{"system_t", "etc_t", "file", "write", true},
		{"kernel_t", "etc_t", "dir", "add_name", true},
		{"control_t", "etc_t", "file", "read", true},
		{"control_t", "etc_t", "file", "write", false},
		// DATA: a host file a control container reaches (TestHostContainers
		// links one into its storage) stays the superpowered container's.
		{"control_t", "local_t", "file", "write", false},
		{"control_t", "secret_t", "file", "write", true},
		{"super_t", "local_t", "file", "write", true},
		{"super_t", "local_t", "file", "link", true},
		{"super_t", "secret_t", "dir", "add_name", true},
		{"container_t", "etc_t", "file", "write", false},
		{"runtime_t", "etc_t", "dir", "add_name", false},
		{"api_t", "etc_t", "file", "write", false},
		{"super_t", "etc_t", "file", "write", true},
		{"super_t", "os_t", "file", "write", false},
		{"init_t", "os_t", "dir", "add_name", false},
		{"control_t", "os_t", "file", "write", false},
		{"container_t", "os_t", "file", "write", false},
		{"system_t", "os_t", "file", "execute", true},
		// Executing from DATA.
		{"runtime_t", "cache_t", "file", "execute", true},
		{"container_t", "data_t", "file", "entrypoint", true},
		// A pod's tmpfs, mounted with context= of its data_t label.
		{"data_t", "data_t", "filesystem", "associate", true},
		{"local_t", "data_t", "filesystem", "associate", false},
		{"control_t", "cache_t", "file", "entrypoint", true},
		{"system_t", "local_t", "file", "execute", false},
		{"init_t", "state_t", "file", "execute", false},
		{"system_t", "cache_t", "file", "execute", false},
		{"container_t", "local_t", "file", "execute", false},
		{"api_t", "private_t", "file", "execute", false},
		// Who starts whom.
		{"kernel_t", "init_t", "process", "transition", true},
		{"init_t", "api_t", "process", "transition", true},
		{"runtime_t", "container_t", "process", "transition", true},
		{"runtime_t", "control_t", "process", "transition", true},
		{"runtime_t", "super_t", "process", "transition", true},
		{"system_t", "api_t", "process", "transition", false},
		{"container_t", "super_t", "process", "transition", false},
		{"control_t", "super_t", "process", "transition", false},
		// systemd's unit operations (apiclient reboot starts reboot.target).
		{"system_t", "os_t", "service", "start", true},
		{"super_t", "os_t", "service", "stop", true},
		{"control_t", "os_t", "service", "start", false},
		{"container_t", "init_t", "system", "reboot", false},
		// The SELinux interface.
		{"init_t", "security_t", "security", "load_policy", true},
		{"system_t", "security_t", "security", "setenforce", false},
		{"super_t", "security_t", "security", "setenforce", false},
		{"container_t", "security_t", "security", "load_policy", false},
	} {
		got, err := p.Allows(t.Context(), tt.source, tt.target, tt.class, tt.perm)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("allow %s %s:%s %s = %v, want %v", tt.source, tt.target, tt.class, tt.perm, got, tt.want)
		}
	}
}

// TestTypeTransitions checks the objects that get their own type when
// created: the API socket, the datastore, container content, and systemd
// on the initramfs's exec.
func TestTypeTransitions(t *testing.T) {
	p := compile(t)
	for _, tt := range []struct{ source, target, class, want string }{
		{"api_t", "any_t", "sock_file", `type_transition api_t any_t:sock_file api_socket_t api.sock;`},
		{"api_t", "private_t", "dir", `type_transition api_t private_t:dir datastore_t datastore;`},
		{"runtime_t", "local_t", "dir", `type_transition runtime_t local_t:dir cache_t containerd;`},
		{"runtime_t", "local_t", "dir", `type_transition runtime_t local_t:dir cache_t host-containerd;`},
		{"system_t", "local_t", "dir", `type_transition system_t local_t:dir secret_t host-containers;`},
		{"kernel_t", "init_exec_t", "process", "type_transition kernel_t init_exec_t:process init_t;"},
		{"init_t", "runtime_exec_t", "process", "type_transition init_t runtime_exec_t:process runtime_t;"},
		{"api_t", "agent_exec_t", "process", "type_transition api_t agent_exec_t:process system_t;"},
	} {
		out, err := p.Transitions(t.Context(), tt.source, tt.target, tt.class)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("sesearch -T -s %s -t %s -c %s:\n%s\nwant %s", tt.source, tt.target, tt.class, out, tt.want)
		}
	}
}

// TestPolicyShape checks what the policy is as a whole: unknown classes
// denied, MLS with the 1024 categories of lxc_contexts, and the subject
// types host-ctr and containerd will name.
func TestPolicyShape(t *testing.T) {
	p := compile(t)
	info, err := p.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Handle unknown classes:     deny", "(MLS enabled)", "Categories:         1024", "Policy Version:             33"} {
		if !strings.Contains(info, want) {
			t.Errorf("seinfo lacks %q:\n%s", want, info)
		}
	}
	types := testkit.Run(t, "seinfo", p.Binary, "-t")
	for _, ty := range []string{"kernel_t", "init_t", "system_t", "mount_t", "api_t", "runtime_t", "network_t", "clock_t", "bus_t",
		"container_t", "control_t", "super_t", "os_t", "etc_t", "local_t", "data_t", "secret_t", "api_socket_t", "state_t", "cache_t",
		"datastore_t", "private_t", "agent_exec_t", "runtime_exec_t", "init_exec_t"} {
		if !strings.Contains(types, "   "+ty+"\n") {
			t.Errorf("seinfo -t lacks %s", ty)
		}
	}
	lxc, err := os.ReadFile(filepath.Join(pkgDir, "lxc_contexts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`process = "system_u:system_r:container_t:s0"`, `file = "system_u:object_r:data_t:s0"`} {
		if !strings.Contains(string(lxc), want) {
			t.Errorf("lxc_contexts lacks %s", want)
		}
	}
}

// TestLookupMatchesLibselinux labels paths of a host with the image
// build's file_contexts lookup (sources/selinux) and with libselinux's
// (matchpathcon), which systemd and udev use on the host: they must agree.
func TestLookupMatchesLibselinux(t *testing.T) {
	p := compile(t)
	fc, err := selinux.ReadFileContexts(p.FileContexts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mode fs.FileMode
		kind string
		path string
	}{
		{fs.ModeDir, "dir", "/"}, {0, "file", "/usr/bin/petrel"}, {0, "file", "/usr/bin/api-bridge"}, {0, "file", "/usr/bin/mount"},
		{0, "file", "/usr/sbin/e2fsck"}, {0, "file", "/usr/sbin/fsck.ext4"}, {0, "file", "/usr/sbin/mkfs.ext4"}, {0, "file", "/usr/bin/containerd"},
		{0, "file", "/usr/bin/containerd-shim-runc-v2"}, {0, "file", "/usr/sbin/runc"}, {0, "file", "/usr/bin/runc"},
		{0, "file", "/usr/lib/systemd/systemd"}, {0, "file", "/usr/lib/systemd/systemd-networkd"}, {0, "file", "/usr/lib/systemd/systemd-journald"},
		{fs.ModeSymlink, "link", "/usr/bin/apiserver"}, {0, "file", "/usr/share/factory/etc/selinux/config"}, {fs.ModeDir, "dir", "/usr/share/factory/etc"},
		{0, "file", "/etc/hostname"}, {fs.ModeDir, "dir", "/local"}, {fs.ModeDir, "dir", "/local/var"}, {fs.ModeDir, "dir", "/var/lib"},
		{fs.ModeDir, "dir", "/var/lib/petrel"}, {0, "file", "/var/lib/petrel/early-boot-config.ran"}, {fs.ModeSymlink, "link", "/var/lib/petrel/datastore/current"},
		{fs.ModeDir, "dir", "/var/lib/systemd"}, {0, "file", "/var/log/journal/x/system.journal"}, {fs.ModeDir, "dir", "/var/lib/containerd"}, {fs.ModeDir, "dir", "/var/lib/host-containerd/x"},
		{fs.ModeDir, "dir", "/local/host-containers/admin"}, {fs.ModeSocket, "socket", "/run/api.sock"}, {0, "file", "/run/api.sock"},
		{fs.ModeDir, "dir", "/dev/shm"}, {fs.ModeDir, "dir", "/proc/sys"}, {0, "file", "/boot/vmlinuz"}, {fs.ModeDir, "dir", "/opt/cni"},
	} {
		out := testkit.Run(t, "matchpathcon", "-f", p.FileContexts, "-m", tt.kind, tt.path)
		want := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), tt.path))
		got, ok := fc.Lookup(tt.path, tt.mode)
		if !ok {
			got = "<<none>>"
		}
		if got != want {
			t.Errorf("%s %s: Lookup = %s, matchpathcon = %s", tt.kind, tt.path, got, want)
		}
	}
}
