package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/selinux"
)

// loadPolicy loads the SELinux policy of the new root's factory /etc and
// sets the mode (enforcing= of the command line, else the
// configuration's), before anything below the new root is created: the
// tmpfs /etc and the mount points then get their labels from the policy,
// and systemd starts in its own domain (init_t) by the transition on its
// executable. It returns the type of the policy it loaded (SELINUXTYPE=
// of the configuration), "" when it loaded none; a root without a
// configuration, or one that says disabled, boots without SELinux. A
// configuration that wants SELinux on a kernel that does not run it
// (security=selinux missing from the command line) is fatal: the host
// would run unconfined. k is the kernel's selinuxfs (selinux.FS).
func loadPolicy(con console, root, cmdlineEnforcing string, k selinux.Kernel) (string, error) {
	etc := filepath.Join(root, FactoryEtc)
	cfgPath := filepath.Join(etc, "selinux", "config")
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		con.printf("no SELinux policy in the new root (%s): booting without SELinux", filepath.Join(FactoryEtc, "selinux", "config"))
		return "", nil
	}
	cfg, err := selinux.ReadConfig(cfgPath)
	if err != nil {
		return "", err
	}
	if cfg.Mode == selinux.Disabled {
		con.printf("SELinux disabled by %s", cfgPath)
		return "", nil
	}
	err = unix.Mount("selinuxfs", k.FS, "selinuxfs", unix.MS_NOSUID|unix.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("the new root's SELinux configuration is %s, but the kernel does not run SELinux (mount selinuxfs on %s: %w); the kernel command line needs security=selinux", cfg.Mode, k.FS, err)
	}
	vers, err := k.PolicyVersion()
	if err != nil {
		return "", err
	}
	policy, err := selinux.PolicyFile(etc, cfg, vers)
	if err != nil {
		return "", err
	}
	if err := k.Load(policy); err != nil {
		return "", err
	}
	enforce := selinux.Enforce(cfg, cmdlineEnforcing)
	if err := k.SetEnforce(enforce); err != nil {
		return "", err
	}
	mode := selinux.Permissive
	if enforce {
		mode = selinux.Enforcing
	}
	rel, _ := filepath.Rel(root, policy)
	con.printf("loaded SELinux policy %s (/%s), %s", cfg.Type, rel, mode)
	return cfg.Type, nil
}
