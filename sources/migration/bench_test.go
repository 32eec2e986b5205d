package migration

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/petrel-os/petrel/sources/manifest"
)

// benchChain writes a chain of five migrations 1.0.0 → 1.5.0 that touch
// every kind of data: a moved prefix of 100 values, a replaced value, 100
// removed values (saved), metadata added and a template replaced.
func benchChain(b *testing.B) string {
	dir := b.TempDir()
	migs := []string{
		"[[operation]]\nkind = \"move\"\nfrom = 'settings.kernel.sysctl.\"net.a\"'\nto = 'settings.kernel.sysctl.\"net.b\"'\n",
		"[[operation]]\nkind = \"replace-value\"\nkey = \"settings.motd\"\nold = \"hello\"\nnew = \"hello 1.2\"\n",
		"[[operation]]\nkind = \"remove-settings\"\nkeys = [\"settings.host-containers\"]\n",
		"[[operation]]\nkind = \"add-metadata\"\nkey = \"settings.ntp\"\nmeta = \"affected-services\"\nvalue = [\"chronyd\"]\n",
		"[[operation]]\nkind = \"replace-template\"\nkey = \"configuration-files.motd\"\nold = \"{{settings.motd}}\"\nnew = \"{{ settings.motd }}\"\n",
	}
	var spans []string
	for i, m := range migs {
		name := fmt.Sprintf("migrate_v1.%d.0_m%d.toml", i+1, i+1)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(m), 0o644); err != nil {
			b.Fatal(err)
		}
		spans = append(spans, fmt.Sprintf(`"(1.%d.0, 1.%d.0)": [%q]`, i, i+1, name))
	}
	man := `{"updates": [], "migrations": {` + strings.Join(spans, ",") + `}}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(man), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchData is 1,000 live settings (sysctls and host containers) with
// metadata, and 10 pending transactions of 20 settings each.
func benchData(b *testing.B) *Data {
	var lines []string
	lines = append(lines, `live settings.motd "hello"`, `meta settings.motd affected-services ["motd"]`,
		`meta configuration-files.motd template "{{settings.motd}}"`)
	for i := range 100 {
		lines = append(lines, fmt.Sprintf(`live settings.kernel.sysctl."net.a%d" "%d"`, i, i))
	}
	for i := range 100 {
		c := fmt.Sprintf("c%d", i)
		lines = append(lines, fmt.Sprintf(`live settings.host-containers.%s.source "registry.example/%s:v1"`, c, c),
			fmt.Sprintf(`live settings.host-containers.%s.enabled true`, c))
	}
	for i := len(lines); i < 1000+2; i++ {
		lines = append(lines, fmt.Sprintf(`live settings.kernel.sysctl."vm.k%d" "%d"`, i, i))
	}
	for tx := range 10 {
		for i := range 20 {
			lines = append(lines, fmt.Sprintf(`tx tx%d settings.kernel.sysctl."net.a%d" "p%d"`, tx, i, tx))
		}
	}
	return parseData(b, strings.Join(lines, "\n"))
}

// diskUsage returns the bytes the tree under dir occupies (allocated
// blocks of files and directories) and the number of inodes.
func diskUsage(b *testing.B, dir string) (n, inodes int64) {
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		n += st.Blocks * 512
		inodes++
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n, inodes
}

// BenchmarkMigrate5: the migrator on a datastore of 1,000 settings and
// 10 pending transactions through a chain of 5 migrations, forward
// (1.0.0 → 1.5.0) and backward. It reports the PRIVATE space the
// datastore base uses before and after (both versions' directories stay)
// and its inodes afterwards. For figures that stand for a host, run it
// with TMPDIR on an ext4 file system made like PRIVATE (see
// docs/performance.md): b.TempDir and os.MkdirTemp follow TMPDIR.
func BenchmarkMigrate5(b *testing.B) {
	src := benchChain(b)
	template := b.TempDir()
	newDatastore(b, template, "1.0.0", benchData(b))
	before, _ := diskUsage(b, template)
	upgraded := b.TempDir()
	copyTree(b, template, upgraded)
	if _, err := Run(context.Background(), Config{Base: upgraded, To: manifest.MustParseVersion("1.5.0"), Source: DirSource{Dir: src}}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, to string
		from     string
	}{{"forward", "1.5.0", template}, {"backward", "1.0.0", upgraded}} {
		b.Run(tc.name, func(b *testing.B) {
			var after, inodes int64
			for b.Loop() {
				b.StopTimer()
				base, err := os.MkdirTemp("", "bench")
				if err != nil {
					b.Fatal(err)
				}
				copyTree(b, tc.from, base)
				b.StartTimer()
				res, err := Run(context.Background(), Config{Base: base, To: manifest.MustParseVersion(tc.to), Source: DirSource{Dir: src}})
				if err != nil || len(res.Migrations) != 5 {
					b.Fatalf("Run = %+v, %v", res, err)
				}
				b.StopTimer()
				after, inodes = diskUsage(b, base)
				if err := os.RemoveAll(base); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(before)/1024, "KiB-before")
			b.ReportMetric(float64(after)/1024, "KiB-after")
			b.ReportMetric(float64(inodes), "inodes-after")
		})
	}
}
