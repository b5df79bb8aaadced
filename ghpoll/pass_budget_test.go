package ghpoll_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
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

// restart is the next --once process: the cache saved and loaded again by a new client
// and a new reconciler, nothing else carried over.
func (w *orgWorld) restart(tb testing.TB, store reconcile.Store) {
	tb.Helper()
	saveTo(tb, w.client, store)
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, w.gh.APIURL,
		ghpoll.Options{Concurrency: w.rc.Concurrency, Now: w.Now, WritesPerMinute: 60000})
	if err != nil {
		tb.Fatal(err)
	}
	if err := loadFrom(client, store); err != nil {
		tb.Fatal(err)
	}
	w.client = client
	rc := w.rc
	w.rc = &reconcile.Reconciler{Config: rc.Config, GitHub: client, Budget: rc.Budget, Backends: rc.Backends, Now: rc.Now, Concurrency: rc.Concurrency}
}

// saveTo stores the client's request cache in store, as the end of a --once process
// does.
func saveTo(tb testing.TB, client *ghpoll.Client, store reconcile.Store) {
	tb.Helper()
	ctx := context.Background()
	tmp := reconcile.FileStore(filepath.Join(tb.TempDir(), "notes"))
	notes, err := reconcile.OpenNotes(ctx, tmp) // nothing stored: nothing restored
	if err == nil {
		err = client.KeepIn(notes)
	}
	if err == nil {
		_, err = notes.Save(ctx)
	}
	var data []byte
	if err == nil {
		data, err = tmp.Load(ctx)
	}
	if err == nil {
		err = store.Save(ctx, data)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// loadFrom gives the client the request cache in store, as a new process does.
func loadFrom(client *ghpoll.Client, store reconcile.Store) error {
	notes, err := reconcile.OpenNotes(context.Background(), store)
	if err != nil {
		return err
	}
	return client.KeepIn(notes)
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
	for range 40 {
		sums = append(sums, w.pass(t))
		w.Advance(time.Minute)
	}
	st := w.gh.Stats()
	if st.Limited != 0 || st.MaxPointsMin > 900 || st.MaxConcurrent > 100 {
		t.Fatalf("limits: %d limited answers, %d points in a minute at most, %d at once; want 0, ≤900, ≤100", st.Limited, st.MaxPointsMin, st.MaxConcurrent)
	}
	// Every pass within the budget; once every repository has been probed and its
	// registrations listed (the sweeps' rotation: QuietSweeps idle intervals), every
	// pass is warm: its requests answered 304.
	warm := reconcile.QuietSweeps*5 + 1
	for i, s := range sums {
		if i >= warm && s.API.Primary > 10 {
			t.Errorf("warm pass %d counted %d requests against the primary limit, want at most 10 (%+v)", i, s.API.Primary, s.API)
		}
		if s.API.Points > 600 {
			t.Errorf("pass %d spent %d points, over --points-per-minute 600", i, s.API.Points)
		}
	}
	// Every repository was looked at within --idle-poll-interval.
	if sums[len(sums)-1].API.Skipped == 0 {
		t.Errorf("no repository waited: the rotation is not at work")
	}
	t.Logf("steady pass: %+v", sums[len(sums)-1].API)
}

// Passes 5 s apart fetch the organisation's whole repository listing once a minute,
// and its first page by latest push every pass; a repository created in between (its
// first push puts it on top) has its job served without waiting for the whole
// listing, and an archived one is left out.
func TestBudget_OrganisationListedWholeOnceAMinute(t *testing.T) {
	w := newOrgWorld(t, 250, 0, 8)
	w.rc.Budget.Interval = 5 * time.Second
	whole := func() (n int) {
		for _, r := range w.gh.Requests() {
			if strings.HasPrefix(r.Path, "orgs/big-org/repos") && r.Query.Get("sort") == "" {
				n++
			}
		}
		return n
	}
	w.pass(t)
	if n := whole(); n != 3 {
		t.Fatalf("first pass fetched %d pages of the whole listing, want 3 (250 repositories)", n)
	}
	w.Advance(5 * time.Second)
	w.gh.AddRepo("big-org/new", false, false)
	w.gh.Push("big-org/new")
	w.gh.AddRepo("big-org/shelved", true, false)
	w.gh.Push("big-org/shelved")
	job := w.gh.QueueJob("big-org/new", "self-hosted", "x64")
	w.pass(t)
	if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "x64", job, 0)); !ok {
		t.Errorf("job %d of a repository created since the whole listing: no runner", job)
	}
	for range 10 { // up to 55 s after the first
		w.Advance(5 * time.Second)
		w.pass(t)
	}
	if n := whole(); n != 3 {
		t.Errorf("twelve passes 5 s apart fetched %d pages of the whole listing, want 3 (once)", n)
	}
	w.Advance(5 * time.Second)
	w.pass(t)
	if n := whole(); n != 6 {
		t.Errorf("a minute on: %d pages of the whole listing fetched, want 6 (twice)", n)
	}
	for _, r := range w.gh.Requests() {
		if strings.Contains(r.Path, "big-org/shelved") {
			t.Errorf("%s: the archived repository was polled", r.Path)
			break
		}
	}
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
	if err := reconcile.FileStore(path).Save(context.Background(), []byte("not a cache")); err != nil {
		t.Fatal(err)
	}
	w := newOrgWorld(t, 3, 0, 4)
	if err := loadFrom(w.client, reconcile.FileStore(path)); err == nil {
		t.Error("loading garbage = nil, want an error to warn with")
	}
	w.pass(t) // goes on cold
	saveTo(t, w.client, reconcile.FileStore(path))
	fresh := newOrgWorld(t, 3, 0, 4)
	if err := loadFrom(fresh.client, reconcile.FileStore(path)); err != nil {
		t.Fatalf("loading a saved cache = %v", err)
	}
}

// A cache saved by one --once run makes the next one's requests conditional.
func TestBudget_CacheCarriesAcrossRuns(t *testing.T) {
	w := newOrgWorld(t, 50, 0, 8)
	for range reconcile.QuietSweeps*5 + 1 { // every repository probed and swept
		w.pass(t)
		w.Advance(time.Minute)
	}
	path := t.TempDir() + "/cache"
	saveTo(t, w.client, reconcile.FileStore(path))
	// A new process: a new client, the same GitHub.
	next, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, w.gh.APIURL, ghpoll.Options{Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := loadFrom(next, reconcile.FileStore(path)); err != nil {
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

// BenchmarkRateLimitSimulation: thirty simulated minutes of an organisation, a pass
// each interval, jobs arriving mostly in a few busy repositories: a thousand
// repositories a pass a minute, and two hundred a pass every 5 s. It reports the points
// spent in the worst minute, the primary requests an hour, and how long jobs waited
// from queued to their runner's create: in busy repositories, in quiet ones after a
// push, and in quiet ones with no push (a schedule, a dispatch).
func BenchmarkRateLimitSimulation(b *testing.B) {
	for _, o := range orgShapes {
		name := fmt.Sprintf("%d-repos-every-%v", o.repos, o.interval)
		if o.once {
			name += "-once"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r := simulateOrg(b, o, 30)
				b.ReportMetric(float64(r.maxPointsMin), "max-points/min")
				b.ReportMetric(float64(r.primaryPerHour), "primary/hour")
				b.ReportMetric(r.busy.p(99).Seconds(), "busy-p99-s")
				b.ReportMetric(r.pushed.p(99).Seconds(), "pushed-p99-s")
				b.ReportMetric(r.quiet.p(50).Seconds(), "quiet-p50-s")
				b.ReportMetric(r.quiet.p(99).Seconds(), "quiet-p99-s")
				b.ReportMetric(r.quiet.p(100).Seconds(), "quiet-max-s")
				b.ReportMetric(r.floor.Seconds(), "floor-s")
				b.ReportMetric(float64(r.limited), "limited")
			}
		})
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
	busy, pushed, quiet                   waits
	missed                                int
	// floor is the budget's floor for a quiet repository's job: the repositories ÷
	// the read points a minute, plus an interval.
	floor time.Duration
}

// orgShape is an organisation the simulation runs: its repositories, how many of them
// are busy, the jobs a minute, and the passes' interval.
type orgShape struct {
	repos, busy, jobsPerMinute int
	quietOneIn                 int // one job in this many is in a quiet repository
	interval                   time.Duration
	once                       bool // each pass a --once process with --cache (a CronJob)
}

func (o orgShape) String() string {
	s := fmt.Sprintf("%d repositories, a pass every %v", o.repos, o.interval)
	if o.once {
		s += ", --once with a cache"
	}
	return s
}

// orgShapes: a thousand repositories with ten busy ones, a pass a minute, in loop mode
// and as a CronJob (a --once process a minute, its cache carried over); two hundred
// with one busy one, a pass every 5 s (the case where a job in a quiet repository
// waited a minute and more for its runner).
var orgShapes = []orgShape{
	{repos: 1000, busy: 10, jobsPerMinute: 6, quietOneIn: 4, interval: time.Minute},
	{repos: 1000, busy: 10, jobsPerMinute: 6, quietOneIn: 4, interval: time.Minute, once: true},
	{repos: 200, busy: 1, jobsPerMinute: 2, quietOneIn: 2, interval: 5 * time.Second},
}

func simulateOrg(tb testing.TB, o orgShape, minutes int) orgResult {
	n, interval := o.repos, o.interval
	w := newOrgWorld(tb, n, 0, 32)
	w.rc.Budget.Interval = interval
	rng := rand.New(rand.NewPCG(1, 2))
	store := reconcile.FileStore(filepath.Join(tb.TempDir(), "cache"))
	busyRepos := w.repos[:o.busy]
	type pending struct {
		run     int64
		queued  time.Time
		kind    *waits
		runner  string
		endsAt  time.Time
		started bool
	}
	jobs := map[int64]*pending{}
	var res orgResult
	// Fifteen minutes first, as a CronJob that has been running a while: every
	// repository looked at, the busy ones known to be busy. Then the measurement.
	const warmup = 15
	passes := int(time.Minute / interval)
	var start time.Time
	for p := range (warmup + minutes) * passes {
		if p == warmup*passes {
			w.gh.ResetStats()
			start = w.Now()
			res = orgResult{}
		}
		// About jobsPerMinute jobs a minute, at random moments of the interval; the pass
		// runs at its end. Some are in quiet repositories, half of them pushed to.
		arrivals := 0
		for range o.jobsPerMinute*2/3 + rng.IntN(o.jobsPerMinute*2/3+1) {
			if rng.IntN(passes) == 0 {
				arrivals++
			}
		}
		for range arrivals {
			repo, kind := busyRepos[rng.IntN(len(busyRepos))], &res.busy
			if rng.IntN(o.quietOneIn) == 0 {
				repo, kind = w.repos[o.busy+rng.IntN(n-o.busy)], &res.quiet
				if rng.IntN(2) == 0 {
					w.gh.Push(repo)
					kind = &res.pushed
				}
			}
			run := w.gh.AddRun(repo, "queued")
			job := w.gh.AddJob(run, "queued", "self-hosted", "x64")
			jobs[job] = &pending{run: run, queued: w.Now().Add(-time.Duration(rng.Int64N(int64(interval)))), kind: kind}
		}
		w.pass(tb)
		if o.once {
			w.restart(tb, store)
		}
		for _, id := range slices.Sorted(maps.Keys(jobs)) {
			j := jobs[id]
			name := reconcile.RunnerName("gha", "x64", id, 0)
			switch {
			case !j.started:
				if _, ok := w.backend.Spec(name); !ok {
					continue
				}
				*j.kind = append(*j.kind, w.Now().Sub(j.queued))
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
		w.Advance(interval)
	}
	for _, j := range jobs {
		if !j.started {
			res.missed++
		}
	}
	st := w.gh.Stats()
	res.maxPointsMin, res.limited = st.MaxPointsMin, st.Limited
	res.primaryPerHour = int(float64(st.Primary) / w.Now().Sub(start).Hours())
	res.floor = time.Duration(float64(n)/w.rc.Budget.ReadPointsPerMinute()*float64(time.Minute)) + interval
	return res
}

// The simulation's targets, checked: never past either limit or the budget; busy
// repositories, and quiet ones just pushed to, served within two intervals; quiet ones
// without a push within 1.2 times the budget's floor.
func TestBudget_ThirtyMinutesOfAnOrganisation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates thirty minutes of an organisation")
	}
	for _, o := range orgShapes {
		t.Run(o.String(), func(t *testing.T) {
			r := simulateOrg(t, o, 30)
			t.Logf("max points/min %d, primary/hour %d; waits p99: busy %v, pushed %v, quiet %v (max %v, floor %v)",
				r.maxPointsMin, r.primaryPerHour, r.busy.p(99), r.pushed.p(99), r.quiet.p(99), r.quiet.p(100), r.floor)
			var problems []string
			if budget := reconcile.DefaultBudget().PointsPerMinute; r.limited > 0 || r.maxPointsMin > budget {
				problems = append(problems, fmt.Sprintf("limits: %d limited answers, %d points in a minute (budget %d)", r.limited, r.maxPointsMin, budget))
			}
			if r.primaryPerHour >= 5000 {
				problems = append(problems, fmt.Sprintf("%d primary requests an hour", r.primaryPerHour))
			}
			if p := r.busy.p(99); p > 2*o.interval {
				problems = append(problems, fmt.Sprintf("busy p99 %v, want within two intervals", p))
			}
			if p := r.pushed.p(99); p > 2*o.interval {
				problems = append(problems, fmt.Sprintf("pushed p99 %v, want within two intervals", p))
			}
			// The floor counts three quarters of the points for quiet repositories; what
			// the busy ones and the organisation's listings take comes off it, and the
			// points writes do not need come on.
			want := r.floor * 12 / 10
			if p := r.quiet.p(99); p > want {
				problems = append(problems, fmt.Sprintf("quiet p99 %v, want within %v (the floor %v)", p, want, r.floor))
			}
			if len(r.busy) == 0 || len(r.pushed) < 5 || len(r.quiet) < 5 || r.missed > 2 { // every kind exercised
				problems = append(problems, fmt.Sprintf("served busy %d, pushed %d, quiet %d; %d never", len(r.busy), len(r.pushed), len(r.quiet), r.missed))
			}
			if len(problems) > 0 {
				t.Error(strings.Join(problems, "; "))
			}
		})
	}
}
