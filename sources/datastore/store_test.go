package datastore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	cur, err := Create(t.TempDir(), "1.26.1")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	s, err := Open(context.Background(), cur)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cur
}

func TestCreateLinkChain(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	cur, err := Create(base, "1.26.1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"current": "v1", "v1": "v1.26", "v1.26": "v1.26.1"}
	for link, target := range want {
		got, err := os.Readlink(filepath.Join(base, link))
		if err != nil || got != target {
			t.Errorf("readlink %s = %q, %v, want %q", link, got, err, target)
		}
	}
	last, _ := os.Readlink(filepath.Join(base, "v1.26.1"))
	if !strings.HasPrefix(last, "v1.26.1_") || len(last) != len("v1.26.1_")+16 || strings.Contains(last, "/") {
		t.Errorf("readlink v1.26.1 = %q, want v1.26.1_<16 alnum>", last)
	}
	for _, d := range []string{"live", "pending"} {
		if st, err := os.Stat(filepath.Join(cur, d)); err != nil || !st.IsDir() {
			t.Errorf("%s missing: %v", d, err)
		}
	}
	if _, err := Create(base, "1.2"); err == nil {
		t.Errorf("Create(version 1.2) succeeded, want error")
	}
}

func TestSetGetCommitOnDisk(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	motd := MustKey(DataKey, "settings.motd")
	label := MustKey(DataKey, `settings.kubernetes.node-labels."my.label"`)
	other := MustKey(DataKey, "services.x.restart-commands")
	tx := Pending("test transaction")
	if err := s.SetMany(ctx, []KeyValue{{motd, []byte(`"hi"`)}, {label, []byte(`"v"`)}, {other, []byte(`["a"]`)}}, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, motd, Live()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("live Get before commit = %v, want ErrNotFound", err)
	}
	// Pending writes reach the pending files at a checkpoint.
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(s.Dir(), "pending", "test%20transaction", "settings", "motd"))
	if err != nil || string(raw) != `"hi"` {
		t.Fatalf("pending file = %q, %v", raw, err)
	}
	txs, _ := s.ListTransactions(ctx)
	if fmt.Sprint(txs) != "[test transaction]" {
		t.Fatalf("ListTransactions = %q", txs)
	}
	keys, err := s.Commit(ctx, "test transaction")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys); got != `[settings.kubernetes.node-labels."my.label" settings.motd]` {
		t.Fatalf("Commit keys = %s", got)
	}
	if _, err := s.Get(ctx, other, Live()); !errors.Is(err, ErrNotFound) {
		t.Errorf("non-settings key committed: %v", err)
	}
	keys, err = s.Commit(ctx, "test transaction")
	if err != nil || len(keys) != 0 {
		t.Errorf("second Commit = %v, %v, want nothing", keys, err)
	}
	// Live files are applied after the commit returns; Close finishes them
	// and checkpoints the log.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(s.Dir(), walName)); err != nil || st.Size() != int64(headerLen) {
		t.Errorf("log after Close = %v, %v, want only the header", st, err)
	}
	raw, err = os.ReadFile(filepath.Join(s.Dir(), "live", "settings", "kubernetes", "node-labels", "my%2Elabel"))
	if err != nil || string(raw) != `"v"` {
		t.Fatalf("live file = %q, %v", raw, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "pending", "test%20transaction")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending tx dir still exists: %v", err)
	}
	if entries, err := os.ReadDir(filepath.Join(s.Dir(), "pending")); err != nil || len(entries) != 0 {
		t.Errorf("pending directory after commit = %v, %v, want empty", entries, err)
	}
	// Reopen: the values come back from disk.
	s2, err := Open(ctx, s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v, err := s2.Get(ctx, label, Live())
	if err != nil || string(v) != `"v"` {
		t.Errorf("reopened Get = %q, %v", v, err)
	}
}

func TestTransactionNames(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	k := MustKey(DataKey, "settings.a")
	for _, tx := range []string{"", "../x", "/", "..", "a/b", "bad\x00", strings.Repeat("é", 40)} {
		err := s.Set(ctx, k, []byte(`1`), Pending(tx))
		if !errors.Is(err, ErrInvalidTransaction) {
			t.Errorf("Set in tx %q = %v, want ErrInvalidTransaction", tx, err)
		}
		if _, err := s.Commit(ctx, tx); !errors.Is(err, ErrInvalidTransaction) {
			t.Errorf("Commit(%q) = %v, want ErrInvalidTransaction", tx, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Dir()))
	for _, e := range entries {
		if e.Name() == "x" || e.Name() == "settings" {
			t.Errorf("a transaction escaped the datastore: %s", e.Name())
		}
	}
}

func TestConflicts(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte(`1`), Live()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"settings.a.b", "settings"} {
		if err := s.Set(ctx, MustKey(DataKey, k), []byte(`1`), Pending("t")); !errors.Is(err, ErrConflict) {
			t.Errorf("Set(%s) = %v, want ErrConflict", k, err)
		}
	}
}

func TestMetadataInheritance(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	as := MustKey(MetaKey, "affected-services")
	network := MustKey(DataKey, "settings.network")
	proxy := MustKey(DataKey, "settings.network.https-proxy")
	hostname := MustKey(DataKey, "settings.network.hostname")
	if err := s.SetMetadata(ctx, as, network, []byte(`["network"]`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata(ctx, as, hostname, []byte(`["hostname"]`)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  Key
		want string
	}{{proxy, `["network"]`}, {hostname, `["hostname"]`}, {network, `["network"]`}} {
		v, err := s.GetMetadata(ctx, as, tt.key)
		if err != nil || string(v) != tt.want {
			t.Errorf("GetMetadata(%s) = %s, %v, want %s", tt.key, v, err, tt.want)
		}
	}
	if _, err := s.GetMetadata(ctx, as, MustKey(DataKey, "settings.motd")); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetMetadata(settings.motd) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetMetadataRaw(ctx, as, proxy); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetMetadataRaw(proxy) = %v, want ErrNotFound", err)
	}
	// Metadata files are not data keys.
	if err := s.Set(ctx, hostname, []byte(`"h"`), Live()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(s.Dir(), "live", "settings", "network.affected-services"))
	if err != nil || string(raw) != `["network"]` {
		t.Fatalf("metadata file = %q, %v", raw, err)
	}
	s2, err := Open(ctx, s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	keys, _ := s2.List(ctx, "settings.", Live())
	if fmt.Sprint(keys) != "[settings.network.hostname]" {
		t.Errorf("List after reopen = %v", keys)
	}
	md, _ := s2.ListMetadata(ctx, "settings.", "affected-services")
	if len(md) != 2 {
		t.Errorf("ListMetadata = %v, want 2 entries", md)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	s, cur := newStore(t)
	if _, err := Open(context.Background(), cur); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	s.Close()
	if err := os.RemoveAll(filepath.Join(s.Dir(), "live")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), cur); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "live datastore missing") {
		t.Errorf("Open without live = %v, want ErrCorrupt", err)
	}
}

func TestConcurrentCommits(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	const writers, rounds = 4, 20
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				tx := fmt.Sprintf("w%d-%d", w, r)
				kvs := []KeyValue{
					{MustKey(DataKey, fmt.Sprintf("settings.w%d.gen", w)), fmt.Appendf(nil, "%d", r)},
					{MustKey(DataKey, fmt.Sprintf("settings.w%d.copy", w)), fmt.Appendf(nil, "%d", r)},
				}
				if err := s.SetMany(ctx, kvs, Pending(tx)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Commit(ctx, tx); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds * 5 {
				kvs, err := s.Values(ctx, fmt.Sprintf("settings.w%d.", w), Live())
				if err != nil {
					t.Error(err)
					return
				}
				if len(kvs) == 2 && string(kvs[0].Value) != string(kvs[1].Value) {
					t.Errorf("torn commit seen: %s != %s", kvs[0].Value, kvs[1].Value)
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range writers {
		v, err := s.Get(ctx, MustKey(DataKey, fmt.Sprintf("settings.w%d.gen", w)), Live())
		if err != nil || string(v) != fmt.Sprint(rounds-1) {
			t.Errorf("final w%d = %s, %v", w, v, err)
		}
	}
}
