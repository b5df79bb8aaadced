package reconcile_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// pages is a Part: named pages, the lowest numbers the least useful.
type pages struct{ Kept []int }

func (p *pages) RestoreNotes(data json.RawMessage) error { return json.Unmarshal(data, p) }
func (p *pages) NotesData() (json.RawMessage, error)     { return json.Marshal(p) }
func (p *pages) Shrink(share float64) int {
	n := min(len(p.Kept), int(float64(len(p.Kept))*share)+1)
	p.Kept = p.Kept[n:]
	return n
}

// bounded is a Store in memory that holds at most limit bytes.
type bounded struct {
	data  []byte
	limit int
}

func (b *bounded) Load(context.Context) ([]byte, error) { return b.data, nil }
func (b *bounded) Shared(string) reconcile.Shared       { return &reconcile.LocalShared{} }
func (b *bounded) Save(_ context.Context, data []byte) error {
	if len(data) > b.limit {
		return fmt.Errorf("%d bytes: over %d", len(data), b.limit)
	}
	b.data = data
	return nil
}
func (b *bounded) Limit() int { return b.limit }

// The notes carry the memo and each part to the next process through the store; a
// part no process attaches is kept as it was.
func TestNotes_CarryTheMemoAndThePartsToTheNextProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := reconcile.FileStore(filepath.Join(t.TempDir(), "cache"))
	first, err := reconcile.OpenNotes(ctx, store)
	if err != nil {
		t.Fatalf("OpenNotes of a missing file = %v, want empty notes", err)
	}
	a, b := &pages{Kept: []int{1, 2, 3}}, &pages{Kept: []int{7}}
	if err := first.Attach("a", a); err != nil {
		t.Fatal(err)
	}
	if err := first.Attach("b", b); err != nil {
		t.Fatal(err)
	}
	first.Remember(reconcile.MemoPoolHealth, "arm64", `{"spot":1}`)
	first.Remember(reconcile.MemoUnservable, "", "gone soon")
	first.Remember(reconcile.MemoUnservable, "", "") // forgotten
	if _, err := first.Save(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := reconcile.OpenNotes(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	back := &pages{}
	if err := second.Attach("a", back); err != nil || fmt.Sprint(back.Kept) != "[1 2 3]" {
		t.Errorf("part a restored as %v (%v), want [1 2 3]", back.Kept, err)
	}
	if v, ok := second.Recall(reconcile.MemoPoolHealth, "arm64"); !ok || v != `{"spot":1}` {
		t.Errorf("Recall(pool-health, arm64) = %q, %v; want what the first process noted", v, ok)
	}
	if _, ok := second.Recall(reconcile.MemoUnservable, ""); ok {
		t.Error("a forgotten value came back")
	}
	if _, err := second.Save(ctx); err != nil { // b is not attached in this process
		t.Fatal(err)
	}
	third, _ := reconcile.OpenNotes(ctx, store)
	if err := third.Attach("b", b); err != nil || fmt.Sprint(b.Kept) != "[7]" {
		t.Errorf("part b, which the second process did not attach, came back as %v (%v), want [7]", b.Kept, err)
	}
}

// A store that holds little gets what fits: the parts shrink, what matters least first,
// until the notes fit; a part with nothing left to drop is an error, not a failed save.
func TestNotes_ShrinkToFitABoundedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	big := &pages{}
	for i := range 20000 {
		big.Kept = append(big.Kept, i*7919)
	}
	whole := &bounded{limit: 1 << 30}
	n, _ := reconcile.OpenNotes(ctx, whole)
	_ = n.Attach("pages", &pages{Kept: big.Kept})
	if _, err := n.Save(ctx); err != nil {
		t.Fatal(err)
	}
	store := &bounded{limit: len(whole.data) / 4}
	n, _ = reconcile.OpenNotes(ctx, store)
	p := &pages{Kept: big.Kept}
	_ = n.Attach("pages", p)
	dropped, err := n.Save(ctx)
	if err != nil || dropped == 0 || len(store.data) > store.limit {
		t.Fatalf("Save() = %d dropped, %v, %d bytes; want it trimmed within %d", dropped, err, len(store.data), store.limit)
	}
	if p.Kept[len(p.Kept)-1] != big.Kept[len(big.Kept)-1] {
		t.Error("the most useful item was dropped")
	}
	tiny := &bounded{limit: 10}
	n, _ = reconcile.OpenNotes(ctx, tiny)
	_ = n.Attach("pages", &pages{Kept: []int{1}})
	if _, err := n.Save(ctx); err == nil || !strings.Contains(err.Error(), "nothing left to drop") {
		t.Errorf("Save() into 10 bytes = %v, want an error saying nothing is left to drop", err)
	}
}

// Notes that cannot be read are an error to warn about, and the notes returned work.
func TestNotes_UnreadableNotesStartCold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, data := range []string{"not a cache", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffgarbage"} {
		n, err := reconcile.OpenNotes(ctx, &bounded{data: []byte(data), limit: 1 << 20})
		if err == nil || !strings.Contains(err.Error(), "not a cache") {
			t.Errorf("OpenNotes(%q) = %v, want 'not a cache'", data, err)
		}
		n.Remember(reconcile.MemoUnservable, "", "x")
		if v, _ := n.Recall(reconcile.MemoUnservable, ""); v != "x" {
			t.Error("the notes returned with the error do not work")
		}
	}
	// Notes of another format (a cache an older version wrote) are dropped.
	old := &bounded{limit: 1 << 20}
	n, _ := reconcile.OpenNotes(ctx, old)
	if _, err := n.Save(ctx); err != nil {
		t.Fatal(err)
	}
	older := &bounded{data: gzipped(t, `{"version":3,"cache":{}}`), limit: 1 << 20}
	if _, err := reconcile.OpenNotes(ctx, older); err == nil || !strings.Contains(err.Error(), "cache format 3") {
		t.Errorf("OpenNotes of format 3 = %v, want it named", err)
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
