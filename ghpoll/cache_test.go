package ghpoll

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// realisticCache is the cache of an organisation of n repositories after a rotation:
// each repository's probe page and registrations page, with GitHub's weak ETags (a
// hash: they do not compress), and its polling state; one in fifty is busy, with its
// three run lists and a run's jobs. Pages were used over the last idle interval, in
// the order of the repositories' numbers.
func realisticCache(n int, now time.Time) *pollCache {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	etag := func() string { // api.github.com's: weak, 64 hex digits
		return fmt.Sprintf(`W/"%016x%016x%016x%016x"`, rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	}
	c := newPollCache()
	put := func(key string, items any, used time.Time) {
		raw, _ := json.Marshal(items)
		c.putPage(key, cachedPage{ETag: etag(), Items: raw, Used: used})
	}
	for i := range n {
		repo := fmt.Sprintf("big-org/repo%05d", i)
		used := now.Add(-5 * time.Minute).Add(time.Duration(i) * 5 * time.Minute / time.Duration(n))
		put("probe:"+repo+"#1", []probeLite{{Total: rng.IntN(400)}}, used)
		put("runners:"+repo+"#1", []any{}, used)
		st := repoState{Polled: used, Swept: used}
		if i%50 == 0 {
			for _, status := range runStatuses {
				put(fmt.Sprintf("runs:%s:%s#1", repo, status), []runLite{{ID: rng.Int64(), Status: status, Created: used}}, now)
			}
			put(fmt.Sprintf("jobs:%s:%d#1", repo, rng.Int64()), []jobLite{{ID: rng.Int64(), Status: "queued", Name: "build (arm64)",
				Labels: []string{"self-hosted", "linux", "ARM64"}, Created: used}}, now)
			st.Runs, st.HadRuns = 1, now
		}
		c.setRepo(repo, st)
	}
	return c
}

// memStore is a reconcile.Store in memory, holding at most limit bytes (0: any).
type memStore struct {
	data  []byte
	limit int
}

func (m *memStore) Load(context.Context) ([]byte, error)      { return m.data, nil }
func (m *memStore) Save(_ context.Context, data []byte) error { m.data = data; return nil }
func (m *memStore) Limit() int                                { return m.limit }
func (m *memStore) Shared(string) reconcile.Shared            { return &reconcile.LocalShared{} }

// cacheClient is a client at now whose request cache is c, kept in notes on store.
func cacheClient(t *testing.T, now time.Time, c *pollCache, store reconcile.Store) (*Client, *reconcile.Notes) {
	t.Helper()
	client, err := NewWithOptions(http.DefaultClient, "https://api.github.com/", Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := reconcile.OpenNotes(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.KeepIn(notes); err != nil {
		t.Fatal(err)
	}
	if c != nil {
		client.cache = c
	}
	return client, notes
}

// saveIn stores c's request cache in st, as the end of a pass does.
func saveIn(t testing.TB, c *Client, st *memStore) {
	t.Helper()
	tmp := &memStore{limit: st.limit}
	notes, err := reconcile.OpenNotes(context.Background(), tmp) // nothing stored: nothing restored
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KeepIn(notes); err != nil {
		t.Fatal(err)
	}
	if _, err := notes.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.data = tmp.data
}

// loadFrom gives c the request cache stored in st, as a new process does.
func loadFrom(t testing.TB, c *Client, st reconcile.Store) {
	t.Helper()
	notes, err := reconcile.OpenNotes(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KeepIn(notes); err != nil {
		t.Fatal(err)
	}
}

// The stored cache grows with the repositories: past a store's limit (a ConfigMap
// holds 1 MiB), it is trimmed to fit, the pages used longest ago first, and what the
// rotation needs (every repository's polling state) is kept.
func TestCache_SavedWithinALimitDropsTheLeastRecentlyUsedPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	full := map[int]int{}
	for _, n := range []int{1000, 5000} {
		store := &memStore{}
		_, notes := cacheClient(t, now, realisticCache(n, now), store)
		if _, err := notes.Save(ctx); err != nil {
			t.Fatal(err)
		}
		full[n] = len(store.data)
		t.Logf("%d repositories: %d bytes stored", n, len(store.data))
	}
	store := &memStore{limit: full[5000] / 3}
	_, notes := cacheClient(t, now, realisticCache(5000, now), store)
	dropped, err := notes.Save(ctx)
	if err != nil {
		t.Fatalf("Save() = %v", err)
	}
	if len(store.data) > store.limit || dropped == 0 {
		t.Fatalf("Save within %d = %d bytes with %d pages dropped, want it within the limit", store.limit, len(store.data), dropped)
	}
	next, _ := cacheClient(t, now, nil, store)
	back := next.cache
	if len(back.Repos) != 5000 {
		t.Errorf("%d repositories' states kept, want all 5000", len(back.Repos))
	}
	// Every page kept was used no earlier than every page dropped.
	var oldestKept time.Time
	for _, p := range back.Pages {
		if oldestKept.IsZero() || p.Used.Before(oldestKept) {
			oldestKept = p.Used
		}
	}
	for k, p := range realisticCache(5000, now).Pages {
		if _, kept := back.Pages[k]; !kept && p.Used.After(oldestKept) {
			t.Errorf("page %s (used %v) dropped while one used at %v was kept", k, p.Used, oldestKept)
			break
		}
	}
	if _, kept := back.Pages["probe:big-org/repo04999#1"]; !kept {
		t.Error("the most recently used probe was dropped")
	}
	t.Logf("limit %d: %d bytes, %d of %d pages dropped", store.limit, len(store.data), dropped, len(realisticCache(5000, now).Pages))
}

// PollFacts gives ChooseRepos what the cache remembers: a repository's runs and when
// it was polled; as its sweep, the later of its own registration listing and its org's
// (org runners are listed for the org); and a poll's cost: its runs view as it took
// last time (one request when never looked at), and each run's jobs.
func TestPollFacts_FromTheCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c, err := NewWithOptions(http.DefaultClient, "https://api.github.com/", Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	busy := reconcile.Scope{Owner: "octo-org", Repo: "busy"}
	quiet := reconcile.Scope{Owner: "octo-org", Repo: "quiet"}
	c.cache.setRepo(busy.String(), repoState{Runs: 3, Polled: now, Swept: now.Add(-10 * time.Minute), ViewCost: 2})
	got := c.PollFacts([]reconcile.Scope{busy, quiet}).Repos
	want := reconcile.RepoFacts{Runs: 3, Polled: now, Swept: now.Add(-10 * time.Minute), PollCost: 5}
	if got[busy] != want {
		t.Errorf("PollFacts(busy) = %+v, want %+v", got[busy], want)
	}
	if got[quiet] != (reconcile.RepoFacts{PollCost: 1}) {
		t.Errorf("PollFacts(never looked at) = %+v, want only the cost of a look, 1", got[quiet])
	}
	c.cache.setRepo("octo-org", repoState{Swept: now.Add(-time.Minute)}) // the org's runners, listed a minute ago
	if got := c.PollFacts([]reconcile.Scope{busy}).Repos[busy].Swept; !got.Equal(now.Add(-time.Minute)) {
		t.Errorf("Swept = %v after its org's registrations were listed a minute ago, want %v", got, now.Add(-time.Minute))
	}
}
