package initramfs

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestReadPreloadList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# a list\n\n  /usr/bin/petrel  \n/usr/bin/containerd\n", want: []string{"/usr/bin/petrel", "/usr/bin/containerd"}},
		{name: "relative", in: "usr/bin/petrel\n", err: `line 1: "usr/bin/petrel": expected the absolute, clean path of a file`},
		{name: "unclean", in: "/usr/bin/petrel\n/usr/../etc/shadow\n", err: `line 2: "/usr/../etc/shadow"`},
		{name: "root", in: "/\n", err: `line 1: "/"`},
		{name: "twice", in: "/a\n/a\n", err: `line 2: "/a" is listed twice`},
		{name: "every problem", in: "a\n/b/\n", err: `line 1: "a": expected the absolute, clean path of a file; line 2: "/b/"`},
		{name: "too many", in: strings.Repeat("/f\n", 1) + func() string {
			var b strings.Builder
			for i := range maxPreloadFiles {
				b.WriteString(path.Join("/g", string(rune('a'+i%26)), strings.Repeat("x", i)) + "\n")
			}
			return b.String()
		}(), err: "65 files, at most 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPreloadList(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ReadPreloadList = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ReadPreloadList = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzReadPreloadList(f *testing.F) {
	f.Add("/usr/bin/petrel\n# c\n\n/usr/bin/containerd\n")
	f.Add("a\n/b/../c\n")
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ReadPreloadList(in)
		if err != nil {
			return
		}
		if len(names) > maxPreloadFiles {
			t.Fatalf("%d names", len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if !strings.HasPrefix(n, "/") || path.Clean(n) != n || n == "/" || seen[n] {
				t.Fatalf("accepted %q", n)
			}
			seen[n] = true
		}
	})
}
