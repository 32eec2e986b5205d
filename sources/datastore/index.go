package datastore

import (
	"iter"
	"strings"
)

// parents yields the canonical name of every proper prefix of k (the
// directories its file is in below the tree), shortest first. Each is a
// prefix of k's name, so nothing is allocated.
func (k Key) parents() iter.Seq[string] {
	return func(yield func(string) bool) {
		end := 0
		for _, seg := range k.segments[:max(len(k.segments)-1, 0)] {
			end += len(seg)
			if strings.Contains(seg, ".") {
				end += 2 // quotes
			}
			if !yield(k.name[:end]) {
				return
			}
			end++ // the dot
		}
	}
}

// prefixCount counts, for each proper prefix of a set of keys, how many of
// the keys are below it. A key name that appears in it is a parent of
// some key, which is what a conflict check asks.
type prefixCount map[string]int

func (p prefixCount) add(k Key) {
	for name := range k.parents() {
		p[name]++
	}
}

func (p prefixCount) remove(k Key) {
	for name := range k.parents() {
		if p[name]--; p[name] <= 0 {
			delete(p, name)
		}
	}
}

// indexedTree is a tree with the parents of its keys counted, so that a
// conflict check of one key costs O(depth) map lookups instead of a scan
// of every key: under the writer lock, a write of n keys costs
// O(n × depth) however large the store is.
type indexedTree struct {
	values  tree
	parents prefixCount
}

func newIndexedTree(t tree) *indexedTree {
	it := &indexedTree{values: t, parents: prefixCount{}}
	if t == nil {
		it.values = tree{}
	}
	for _, kv := range it.values {
		it.parents.add(kv.Key)
	}
	return it
}

// size returns the number of keys; a nil tree has none.
func (t *indexedTree) size() int {
	if t == nil {
		return 0
	}
	return len(t.values)
}

// get returns the value of name; a nil tree has none.
func (t *indexedTree) get(name string) (KeyValue, bool) {
	if t == nil {
		return KeyValue{}, false
	}
	kv, ok := t.values[name]
	return kv, ok
}

func (t *indexedTree) set(kv KeyValue) {
	if _, ok := t.values[kv.Key.name]; !ok {
		t.parents.add(kv.Key)
	}
	t.values[kv.Key.name] = kv
}

func (t *indexedTree) delete(name string) {
	if kv, ok := t.values[name]; ok {
		t.parents.remove(kv.Key)
		delete(t.values, name)
	}
}

// conflict returns a key of t that is a parent or a child of k.
func (t *indexedTree) conflict(k Key) (string, bool) {
	for name := range k.parents() {
		if _, ok := t.values[name]; ok {
			return name, true
		}
	}
	if t.parents[k.name] > 0 {
		return firstBelow(t.values, k.name), true
	}
	return "", false
}

// firstBelow returns a name of m below the key name. It scans m; it is
// used only to name the key in the error of a refused write.
func firstBelow[V any](m map[string]V, name string) string {
	child := name + "."
	for n := range m {
		if strings.HasPrefix(n, child) {
			return n
		}
	}
	return ""
}
