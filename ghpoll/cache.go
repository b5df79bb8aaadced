package ghpoll

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// pollCache holds what conditional requests need from one pass to the next: each page's
// ETag with the part of its answer that a pass uses (not the whole body), and each
// repository's polling state. Losing it is harmless: it only saves rate limit.
type pollCache struct {
	mu    sync.Mutex
	Pages map[string]*cachedPage `json:"pages"`
	Repos map[string]*repoState  `json:"repos"`
	// Unservable holds the jobs a pass found GitHub would not give to our runners
	// (reconcile.Notebook).
	Unservable map[int64]time.Time `json:"unservable,omitempty"`
	// Memo holds the backends' facts (reconcile.Memo).
	Memo map[string]string `json:"memo,omitempty"`
	// Writes are when this client's runner registrations (content-creating requests)
	// of the last hour were sent, for the hourly write budget.
	Writes []time.Time `json:"writes,omitempty"`
	// LimitedUntil is when GitHub said calls may resume after a rate limit: a later
	// --once process waits as well.
	LimitedUntil time.Time `json:"limited_until,omitzero"`
}

// limited returns until when GitHub asked for no calls.
func (c *pollCache) limited() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.LimitedUntil
}

// limit records that GitHub asked for no calls until then.
func (c *pollCache) limit(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.LimitedUntil) {
		c.LimitedUntil = until
	}
}

// takeWrite counts a content-creating request sent at now against perHour in any hour,
// or returns when the oldest of the last hour's leaves the window.
func (c *pollCache) takeWrite(now time.Time, perHour int) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Writes = slices.DeleteFunc(c.Writes, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(c.Writes) >= perHour {
		return c.Writes[0].Add(time.Hour), false
	}
	c.Writes = append(c.Writes, now)
	return time.Time{}, true
}

// registered returns when the last hour's runner registrations were sent.
func (c *pollCache) registered() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.Writes)
}

type cachedPage struct {
	ETag  string          `json:"etag"`
	Next  int             `json:"next,omitempty"`
	Items json.RawMessage `json:"items"`
	Used  time.Time       `json:"used"`
}

// repoState is what the poller remembers of a repository.
type repoState struct {
	Polled   time.Time `json:"polled,omitzero"`     // runs last looked at (runsView)
	HadRuns  time.Time `json:"had_runs,omitzero"`   // when a poll last found runs
	Runs     int       `json:"runs,omitempty"`      // runs that could hold a queued job at the last look
	Swept    time.Time `json:"swept,omitzero"`      // registrations last listed whole
	Pushed   time.Time `json:"pushed,omitzero"`     // pushed_at, as the org's listing by push last showed it
	ViewCost int       `json:"view_cost,omitempty"` // requests its runs view took last time (runsView)
}

// cacheVersion changes when the format does; an older cache is dropped.
const cacheVersion = 3

// pageTTL: a page unused this long is dropped when the cache is saved.
const pageTTL = 24 * time.Hour

// newPollCache returns an empty cache.
func newPollCache() *pollCache {
	return &pollCache{Pages: map[string]*cachedPage{}, Repos: map[string]*repoState{}}
}

func (c *pollCache) page(key string) (cachedPage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.Pages[key]
	if !ok {
		return cachedPage{}, false
	}
	return *p, true
}

// pages counts the cached pages whose key starts with prefix.
func (c *pollCache) pages(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.Pages {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func (c *pollCache) putPage(key string, p cachedPage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Pages[key] = &p
}

func (c *pollCache) touch(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.Pages[key]; ok {
		p.Used = now
	}
}

// repo returns a copy of a repository's state.
func (c *pollCache) repo(key string) repoState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.Repos[key]; ok {
		return *s
	}
	return repoState{}
}

func (c *pollCache) setRepo(key string, s repoState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Repos[key] = &s
}

// Store keeps a cache between processes: a file, or a Kubernetes ConfigMap.
type Store interface {
	Load(ctx context.Context) ([]byte, error) // nil, nil: nothing stored yet
	Save(ctx context.Context, data []byte) error
}

// Bounded is a Store that holds at most Limit bytes (a ConfigMap: 1 MiB in all).
type Bounded interface {
	Limit() int
}

type envelope struct {
	Version int        `json:"version"`
	Cache   *pollCache `json:"cache"`
}

// marshal encodes the cache, gzipped, dropping pages unused for a day.
func (c *pollCache) marshal(now time.Time) ([]byte, error) {
	data, _, err := c.marshalWithin(now, 0)
	return data, err
}

// marshalWithin is marshal for a store that holds at most limit bytes (0: no limit).
// When the cache does not fit, the pages used longest ago are dropped first: a page
// costs one request to fetch again, and the least recently used belong to the quiet
// repositories looked at least often. The repositories' polling state, the notebook
// and the memo are kept. It returns how many pages it dropped.
func (c *pollCache) marshalWithin(now time.Time, limit int) ([]byte, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.Pages {
		if now.Sub(p.Used) > pageTTL {
			delete(c.Pages, k)
		}
	}
	dropped := 0
	for {
		data, err := c.encode()
		if err != nil || limit <= 0 || len(data) <= limit {
			return data, dropped, err
		}
		if len(c.Pages) == 0 {
			return nil, dropped, fmt.Errorf("cache of %d bytes without any page is over the store's %d", len(data), limit)
		}
		// Drop the share of pages the excess is of the whole, and a tenth more, so
		// that a few rounds suffice.
		n := min(len(c.Pages), int(float64(len(c.Pages))*(1-float64(limit)/float64(len(data)))*1.1)+1)
		keys := make([]string, 0, len(c.Pages))
		for k := range c.Pages {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(c.Pages[a].Used.Compare(c.Pages[b].Used), strings.Compare(a, b))
		})
		for _, k := range keys[:n] {
			delete(c.Pages, k)
		}
		dropped += n
	}
}

// encode gzips the cache's JSON; the caller holds c.mu.
func (c *pollCache) encode() ([]byte, error) {
	raw, err := json.Marshal(envelope{Version: cacheVersion, Cache: c})
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

// maxCacheSize bounds what a stored cache may inflate to.
const maxCacheSize = 64 << 20

// unmarshalCache decodes what marshal wrote.
func unmarshalCache(data []byte) (*pollCache, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a cache: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxCacheSize+1))
	if err != nil {
		return nil, fmt.Errorf("not a cache: %w", err)
	}
	if len(raw) > maxCacheSize {
		return nil, errors.New("cache larger than 64 MiB")
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("not a cache: %w", err)
	}
	if env.Version != cacheVersion || env.Cache == nil {
		return nil, fmt.Errorf("cache format %d, want %d", env.Version, cacheVersion)
	}
	if env.Cache.Pages == nil {
		env.Cache.Pages = map[string]*cachedPage{}
	}
	if env.Cache.Repos == nil {
		env.Cache.Repos = map[string]*repoState{}
	}
	return env.Cache, nil
}

// FileStore keeps the cache in a file, written atomically.
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
	dir := filepath.Dir(string(f))
	tmp, err := os.CreateTemp(dir, ".reconcile-cache-*")
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
