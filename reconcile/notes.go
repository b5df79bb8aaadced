package reconcile

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// The state a pass keeps for the next is GitHub's and the platforms' to hold; what is
// left is what saves requests and failed calls: ETags and poll facts (ghpoll's part),
// the jobs GitHub would not give to our runners, the pools' backoff, the zones that
// lack a machine type. Main opens one Notes from one Store (--cache) and hands it to
// whoever keeps a part. Losing it is harmless: a request or a probe is made again.

// Store keeps the notes between processes: a file (FileStore), or a ConfigMap (k8s).
type Store interface {
	// Load returns what Save stored; nil, nil when nothing was.
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, data []byte) error
	// Shared returns the record of that name that the processes using this store
	// update in turn (see Shared).
	Shared(name string) Shared
}

// Bounded is a Store that holds at most Limit bytes (a ConfigMap: 1 MiB in all).
type Bounded interface {
	Limit() int
}

// MemoKind names what a memo entry holds; each owner declares its own kinds.
type MemoKind string

// The core's memo kinds.
const (
	MemoPoolHealth MemoKind = "pool-health" // a pool's standing with its platform, by pool (health.go)
	MemoUnservable MemoKind = "unservable"  // the jobs GitHub does not give to our runners
)

// Memo keeps small facts between passes, and between processes when a Store is
// configured.
type Memo interface {
	// Recall returns the value remembered under kind and key.
	Recall(kind MemoKind, key string) (string, bool)
	// Remember keeps value under kind and key; an empty value forgets it.
	Remember(kind MemoKind, key, value string)
}

// A Part is a component's own share of the notes, kept whole (ghpoll's request cache).
type Part interface {
	// RestoreNotes takes back what NotesData gave in an earlier process.
	RestoreNotes(data json.RawMessage) error
	// NotesData returns the part as it stands.
	NotesData() (json.RawMessage, error)
	// Shrink drops a share (0 to 1) of what the part keeps, what matters least first,
	// for a Bounded store; it returns how many items it dropped, 0 when none is left.
	Shrink(share float64) int
}

// Notes are what passes keep for later passes: a Memo of small facts, and the Parts.
type Notes struct {
	store Store
	mu    sync.Mutex
	memo  map[string]string
	raw   map[string]json.RawMessage // parts as loaded, for those not attached yet
	parts map[string]Part
}

var _ Memo = (*Notes)(nil)

// notesVersion changes when the format does; notes of another format are dropped.
const notesVersion = 4

// maxNotesSize bounds what stored notes may inflate to.
const maxNotesSize = 64 << 20

type notesEnvelope struct {
	Version int                        `json:"version"`
	Memo    map[string]string          `json:"memo,omitempty"`
	Parts   map[string]json.RawMessage `json:"parts,omitempty"`
}

// OpenNotes loads the notes from store (nil: kept in this process only). Notes that
// cannot be read are an error the caller warns about; the Notes returned are empty and
// usable all the same.
func OpenNotes(ctx context.Context, store Store) (*Notes, error) {
	n := &Notes{store: store, memo: map[string]string{}, raw: map[string]json.RawMessage{}, parts: map[string]Part{}}
	if store == nil {
		return n, nil
	}
	data, err := store.Load(ctx)
	if err != nil || data == nil {
		return n, err
	}
	env, err := decodeNotes(data)
	if err != nil {
		return n, err
	}
	n.memo, n.raw = env.Memo, env.Parts
	if n.memo == nil {
		n.memo = map[string]string{}
	}
	if n.raw == nil {
		n.raw = map[string]json.RawMessage{}
	}
	return n, nil
}

func decodeNotes(data []byte) (notesEnvelope, error) {
	var env notesEnvelope
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return env, fmt.Errorf("not a cache: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxNotesSize+1))
	switch {
	case err != nil:
		return env, fmt.Errorf("not a cache: %w", err)
	case len(raw) > maxNotesSize:
		return env, errors.New("cache larger than 64 MiB")
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return notesEnvelope{}, fmt.Errorf("not a cache: %w", err)
	}
	if env.Version != notesVersion {
		return notesEnvelope{}, fmt.Errorf("cache format %d, want %d", env.Version, notesVersion)
	}
	return env, nil
}

// Attach makes part the keeper of the named share: it gets back what it kept in an
// earlier process, if anything, and is saved with the notes. A share that cannot be
// restored is an error the caller warns about; the part starts afresh.
func (n *Notes) Attach(name string, part Part) error {
	n.mu.Lock()
	raw := n.raw[name]
	delete(n.raw, name)
	n.parts[name] = part
	n.mu.Unlock()
	if raw == nil {
		return nil
	}
	return part.RestoreNotes(raw)
}

// Recall implements Memo.
func (n *Notes) Recall(kind MemoKind, key string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.memo[memoKey(kind, key)]
	return v, ok
}

// Remember implements Memo.
func (n *Notes) Remember(kind MemoKind, key, value string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if value == "" {
		delete(n.memo, memoKey(kind, key))
		return
	}
	n.memo[memoKey(kind, key)] = value
}

func memoKey(kind MemoKind, key string) string { return string(kind) + ":" + key }

// Save stores the notes, for a Bounded store within its limit: the parts shrink, what
// matters least first, until they fit. It returns how many items the parts dropped.
// Without a store it does nothing.
func (n *Notes) Save(ctx context.Context) (int, error) {
	if n == nil || n.store == nil {
		return 0, nil
	}
	limit := 0
	if b, ok := n.store.(Bounded); ok {
		limit = b.Limit()
	}
	dropped := 0
	for {
		data, err := n.encode()
		if err != nil || limit <= 0 || len(data) <= limit {
			if err != nil {
				return dropped, err
			}
			return dropped, n.store.Save(ctx, data)
		}
		// Drop the share the excess is of the whole, and a tenth more, so that a few
		// rounds suffice.
		share := min(1, (1-float64(limit)/float64(len(data)))*1.1+0.01)
		d := 0
		for _, p := range n.attached() {
			d += p.Shrink(share)
		}
		if d == 0 {
			return dropped, fmt.Errorf("notes of %d bytes with nothing left to drop are over the store's %d", len(data), limit)
		}
		dropped += d
	}
}

func (n *Notes) attached() []Part {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Part, 0, len(n.parts))
	for _, p := range n.parts {
		out = append(out, p)
	}
	return out
}

// encode gzips the notes' JSON.
func (n *Notes) encode() ([]byte, error) {
	n.mu.Lock()
	env := notesEnvelope{Version: notesVersion, Memo: n.memo, Parts: map[string]json.RawMessage{}}
	parts := make(map[string]Part, len(n.parts))
	for name, raw := range n.raw {
		env.Parts[name] = raw // kept for a part this process does not attach
	}
	for name, p := range n.parts {
		parts[name] = p
	}
	n.mu.Unlock()
	for name, p := range parts {
		data, err := p.NotesData()
		if err != nil {
			return nil, fmt.Errorf("notes of %s: %w", name, err)
		}
		env.Parts[name] = data
	}
	n.mu.Lock()
	raw, err := json.Marshal(env)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FileStore keeps the notes in a file, written atomically.
type FileStore string

// Load implements Store.
func (f FileStore) Load(context.Context) ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save implements Store: a temporary file beside it, then a rename.
func (f FileStore) Save(_ context.Context, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(string(f)), ".reconcile-cache-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), string(f))
}
