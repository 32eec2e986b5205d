package hello

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(t *testing.T) {
	p := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(p, []byte("# comment\nNAME=\"Petrel OS\"\nVERSION_ID=0.1.0\n"), 0o644)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"--os-release", p}, &out, &errb); code != 0 {
		t.Fatalf("Main() = %d, stderr %q", code, errb.String())
	}
	if got, want := out.String(), "Petrel OS 0.1.0\n"; got != want {
		t.Errorf("Main() printed %q, want %q", got, want)
	}
	if code := Main(context.Background(), []string{"--os-release", p + ".missing"}, &out, &errb); code != 1 {
		t.Errorf("Main() with a missing file = %d, want 1", code)
	}
}

func TestParseError(t *testing.T) {
	_, err := Parse(strings.NewReader("NAME=x\nbogus\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Parse() error = %v, want one naming line 2", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("NAME=\"Petrel OS\"\nVERSION_ID=0.1.0\n")
	f.Fuzz(func(t *testing.T, s string) { Parse(strings.NewReader(s)) })
}
