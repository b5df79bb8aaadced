package ghpoll_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// orgWorld is an organisation of n repositories on a fake GitHub that enforces both
// rate limits, with a simulated clock.
type orgWorld struct {
	*reconciletest.Clock
	gh      *ghpolltest.Server
	client  *ghpoll.Client
	backend *reconciletest.Backend
	rc      *reconcile.Reconciler
	repos   []string
}

func newOrgWorld(tb testing.TB, n int, latency time.Duration, concurrency int) *orgWorld {
	tb.Helper()
	w := &orgWorld{gh: ghpolltest.NewServer(tb), Clock: reconciletest.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))}
	w.gh.SetClock(w.Now)
	limits := ghpolltest.GitHubLimits
	limits.Latency = latency
	w.gh.SetLimits(limits)
	for i := range n {
		name := fmt.Sprintf("big-org/repo%04d", i)
		w.gh.AddRepo(name, false, false)
		w.repos = append(w.repos, name)
	}
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, w.gh.APIURL,
		ghpoll.Options{Concurrency: concurrency, Now: w.Now, WritesPerMinute: 60000})
	if err != nil {
		tb.Fatal(err)
	}
	w.client = client
	w.backend = reconciletest.NewBackend(w.Now)
	cfg, err := reconcile.Load([]byte("github: {orgs: [big-org]}\npools:\n  - name: x64\n    labels: [self-hosted, x64]\n    max_runners: 500\n"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.GitHub.APIURL = w.gh.APIURL
	w.rc = &reconcile.Reconciler{Config: cfg, GitHub: client, Budget: reconcile.DefaultBudget(), Backends: map[string]reconcile.Backend{"x64": w.backend},
		Now: w.Now, Concurrency: concurrency}
	return w
}

func (w *orgWorld) pass(tb testing.TB) reconcile.Summary {
	tb.Helper()
	sum, err := w.rc.RunOnce(context.Background())
	if err != nil {
		tb.Fatalf("pass: %v", err)
	}
	return sum
}

// warm runs a pass a minute for one rotation (--idle-poll-interval and a minute), as a
// CronJob that has run a while: every repository has been looked at.
func (w *orgWorld) warm(tb testing.TB) {
	tb.Helper()
	for range 6 {
		w.pass(tb)
		w.Advance(time.Minute)
	}
}

// In steady state, a pass a minute over a thousand quiet repositories stays inside
// both limits and costs next to nothing of the primary one.
func TestBudget_ThousandQuietRepositories(t *testing.T) {
	w := newOrgWorld(t, 1000, 0, 32)
	var sums []reconcile.Summary
	for range 15 {
		sums = append(sums, w.pass(t))
		w.Advance(time.Minute)
	}
	st := w.gh.Stats()
	if st.Limited != 0 || st.MaxPointsMin > 900 || st.MaxConcurrent > 100 {
		t.Fatalf("limits: %d limited answers, %d points in a minute at most, %d at once; want 0, ≤900, ≤100", st.Limited, st.MaxPointsMin, st.MaxConcurrent)
	}
	// After one rotation (5 minutes), every pass is warm.
	for i, s := range sums[6:] {
		if s.API.Primary > 10 {
			t.Errorf("warm pass %d counted %d requests against the primary limit, want at most 10 (%+v)", i+6, s.API.Primary, s.API)
		}
		if s.API.Points > 600 {
			t.Errorf("warm pass %d spent %d points, over --points-per-minute 600", i+6, s.API.Points)
		}
	}
	// Every repository was looked at within --idle-poll-interval.
	if sums[len(sums)-1].API.Skipped == 0 {
		t.Errorf("no repository waited: the rotation is not at work")
	}
	t.Logf("steady pass: %+v", sums[len(sums)-1].API)
}

// A job in a quiet repository is found within --idle-poll-interval plus one interval,
// even when its run went in progress meanwhile (another of its jobs started on a
// GitHub-hosted runner).
func TestBudget_QueuedJobInAQuietRepositoryIsFound(t *testing.T) {
	w := newOrgWorld(t, 300, 0, 16)
	for range 6 {
		w.pass(t)
		w.Advance(time.Minute)
	}
	run := w.gh.AddRun(w.repos[137], "in_progress")
	w.gh.AddJob(run, "in_progress", "ubuntu-latest")
	job := w.gh.AddJob(run, "queued", "self-hosted", "x64")
	queued := w.Now()
	for w.Now().Sub(queued) <= 6*time.Minute {
		w.pass(t)
		if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "x64", job, 0)); ok {
			t.Logf("found after %v", w.Now().Sub(queued))
			return
		}
		w.Advance(time.Minute)
	}
	t.Fatalf("job %d in a quiet repository had no runner %v after it queued", job, w.Now().Sub(queued))
}

func TestBudget_CorruptCacheIsIgnored(t *testing.T) {
	path := t.TempDir() + "/cache"
	if err := ghpoll.FileStore(path).Save(context.Background(), []byte("not a cache")); err != nil {
		t.Fatal(err)
	}
	w := newOrgWorld(t, 3, 0, 4)
	if err := w.client.LoadCache(context.Background(), ghpoll.FileStore(path)); err == nil {
		t.Error("LoadCache of garbage = nil, want an error to warn with")
	}
	w.pass(t) // goes on cold
	if _, err := w.client.SaveCache(context.Background(), ghpoll.FileStore(path)); err != nil {
		t.Fatal(err)
	}
	fresh := newOrgWorld(t, 3, 0, 4)
	if err := fresh.client.LoadCache(context.Background(), ghpoll.FileStore(path)); err != nil {
		t.Fatalf("LoadCache of a saved cache = %v", err)
	}
}

// A cache saved by one --once run makes the next one's requests conditional.
func TestBudget_CacheCarriesAcrossRuns(t *testing.T) {
	w := newOrgWorld(t, 50, 0, 8)
	w.pass(t)
	path := t.TempDir() + "/cache"
	if _, err := w.client.SaveCache(context.Background(), ghpoll.FileStore(path)); err != nil {
		t.Fatal(err)
	}
	// A new process: a new client, the same GitHub.
	next, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, w.gh.APIURL, ghpoll.Options{Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.LoadCache(context.Background(), ghpoll.FileStore(path)); err != nil {
		t.Fatal(err)
	}
	w.rc.GitHub = next
	w.Advance(5 * time.Minute)
	sum := w.pass(t)
	if sum.API.Polled != 50 || sum.API.Primary > 2 {
		t.Errorf("second run polled %d repositories with %d primary requests (%d not modified); want 50 with at most 2", sum.API.Polled, sum.API.Primary, sum.API.NotModified)
	}
}

// BenchmarkPass: one pass over N repositories, 2% with queued runs, 50 ms a request.
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, warm := range []bool{false, true} {
			name := fmt.Sprintf("repos=%d/cold", n)
			if warm {
				name = fmt.Sprintf("repos=%d/warm", n)
			}
			b.Run(name, func(b *testing.B) {
				var sum reconcile.Summary
				for b.Loop() {
					b.StopTimer()
					w := newOrgWorld(b, n, 50*time.Millisecond, 32)
					for i := 0; i < n; i += 50 {
						w.gh.QueueJob(w.repos[i], "self-hosted", "x64")
					}
					if warm {
						w.warm(b)
						w.Advance(time.Minute)
						w.gh.ResetStats()
					}
					b.StartTimer()
					sum = w.pass(b)
				}
				b.ReportMetric(float64(sum.API.Requests), "requests/pass")
				b.ReportMetric(float64(sum.API.Points), "points/pass")
				b.ReportMetric(float64(sum.API.Primary), "primary/pass")
				b.ReportMetric(float64(sum.API.Polled), "polled/pass")
			})
		}
	}
}

// BenchmarkRateLimitSimulation: thirty simulated minutes of a thousand-repository
// organisation, one pass a minute, jobs arriving mostly in a few busy repositories.
// It reports the points spent in the worst minute, the primary requests an hour, and
// how long jobs waited from queued to their runner's create.
func BenchmarkRateLimitSimulation(b *testing.B) {
	for b.Loop() {
		r := simulateOrg(b, 1000, 30)
		b.ReportMetric(float64(r.maxPointsMin), "max-points/min")
		b.ReportMetric(float64(r.primaryPerHour), "primary/hour")
		b.ReportMetric(r.busy.p(50).Seconds(), "busy-p50-s")
		b.ReportMetric(r.busy.p(99).Seconds(), "busy-p99-s")
		b.ReportMetric(r.busy.p(100).Seconds(), "busy-max-s")
		b.ReportMetric(r.idle.p(50).Seconds(), "idle-p50-s")
		b.ReportMetric(r.idle.p(99).Seconds(), "idle-p99-s")
		b.ReportMetric(r.idle.p(100).Seconds(), "idle-max-s")
		b.ReportMetric(float64(r.limited), "limited")
	}
}

type waits []time.Duration

func (ws waits) p(q int) time.Duration {
	if len(ws) == 0 {
		return 0
	}
	s := slices.Clone(ws)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*q + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

type orgResult struct {
	maxPointsMin, primaryPerHour, limited int
	busy, idle                            waits
	missed                                int
}

func simulateOrg(tb testing.TB, n, minutes int) orgResult {
	w := newOrgWorld(tb, n, 0, 32)
	rng := rand.New(rand.NewPCG(1, 2))
	busyRepos := w.repos[:10]
	type pending struct {
		run     int64
		queued  time.Time
		idle    bool
		runner  string
		endsAt  time.Time
		started bool
	}
	jobs := map[int64]*pending{}
	var res orgResult
	// Fifteen minutes first, as a CronJob that has been running a while: every
	// repository looked at, the busy ones known to be busy. Then the measurement.
	const warmup = 15
	var start time.Time
	for m := range warmup + minutes {
		if m == warmup {
			w.gh.ResetStats()
			start = w.Now()
			res = orgResult{}
		}
		// Jobs arrive at random moments of the minute, mostly in a few busy
		// repositories; the pass runs at its end.
		for range 4 + rng.IntN(4) {
			repo, idle := busyRepos[rng.IntN(len(busyRepos))], rng.IntN(10) == 0
			if idle {
				repo = w.repos[10+rng.IntN(n-10)]
			}
			run := w.gh.AddRun(repo, "queued")
			job := w.gh.AddJob(run, "queued", "self-hosted", "x64")
			jobs[job] = &pending{run: run, queued: w.Now().Add(-time.Duration(rng.IntN(60)) * time.Second), idle: idle}
		}
		w.pass(tb)
		for _, id := range slices.Sorted(maps.Keys(jobs)) {
			j := jobs[id]
			name := reconcile.RunnerName("gha", "x64", id, 0)
			switch {
			case !j.started:
				if _, ok := w.backend.Spec(name); !ok {
					continue
				}
				if j.idle {
					res.idle = append(res.idle, w.Now().Sub(j.queued))
				} else {
					res.busy = append(res.busy, w.Now().Sub(j.queued))
				}
				// Its runner boots and takes it; it runs two to five minutes.
				j.started, j.runner, j.endsAt = true, name, w.Now().Add(time.Duration(2+rng.IntN(4))*time.Minute)
				w.gh.SetJobStatus(id, "in_progress", name)
				w.gh.SetRunStatus(j.run, "in_progress")
				w.gh.SetRunner(name, true, true)
			case !w.Now().Before(j.endsAt):
				w.gh.SetJobStatus(id, "completed", name)
				w.gh.SetRunStatus(j.run, "completed")
				w.gh.RemoveRunner(name)
				w.backend.SetPhase(name, reconcile.PhaseFinished)
				delete(jobs, id)
			}
		}
		w.Advance(time.Minute)
	}
	for _, j := range jobs {
		if !j.started {
			res.missed++
		}
	}
	st := w.gh.Stats()
	res.maxPointsMin, res.limited = st.MaxPointsMin, st.Limited
	res.primaryPerHour = int(float64(st.Primary) / w.Now().Sub(start).Hours())
	return res
}

// The simulation's targets, checked: never past either limit, busy repositories served
// within one interval plus the pass, quiet ones within the idle interval plus one.
func TestBudget_ThirtyMinutesOfAThousandRepositories(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates thirty minutes of a thousand repositories")
	}
	r := simulateOrg(t, 1000, 30)
	t.Logf("max points/min %d, primary/hour %d, busy wait p50 %v p99 %v max %v, idle wait p50 %v p99 %v max %v",
		r.maxPointsMin, r.primaryPerHour, r.busy.p(50), r.busy.p(99), r.busy.p(100), r.idle.p(50), r.idle.p(99), r.idle.p(100))
	var problems []string
	if r.limited > 0 || r.maxPointsMin > 900 {
		problems = append(problems, fmt.Sprintf("limits: %d limited answers, %d points in a minute", r.limited, r.maxPointsMin))
	}
	if r.primaryPerHour > 5000 {
		problems = append(problems, fmt.Sprintf("%d primary requests an hour", r.primaryPerHour))
	}
	if p := r.busy.p(99); p > 2*time.Minute {
		problems = append(problems, fmt.Sprintf("busy p99 %v, want within one interval and the pass", p))
	}
	if p := r.idle.p(100); p > 6*time.Minute {
		problems = append(problems, fmt.Sprintf("idle max %v, want within --idle-poll-interval and one interval", p))
	}
	if len(r.busy) == 0 || len(r.idle) == 0 {
		problems = append(problems, "no job was served")
	}
	if len(problems) > 0 {
		t.Error(strings.Join(problems, "; "))
	}
}
