package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

var stockout = reconcile.Classify(reconcile.FailNoCapacity, errors.New("ZONE_RESOURCE_POOL_EXHAUSTED in every zone tried"))

// registrations counts the JIT registrations GitHub was asked for.
func registrations(gh *reconciletest.GitHub) int {
	n := 0
	for _, c := range gh.Calls() {
		if strings.HasPrefix(c, "GenerateJITConfig") {
			n++
		}
	}
	return n
}

func TestBackoff_ADoublingScheduleUpToItsBound(t *testing.T) {
	t.Parallel()
	b := reconcile.DefaultBackoff
	var got []time.Duration
	for fails := 1; fails <= 6; fails++ {
		got = append(got, reconcile.BackoffWait(b, fails))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

// A stockout met cold costs one registration: the pool's first create goes alone.
// Then the pool is in backoff: passes before the probe is due register nothing and
// warn; the due probe is the oldest job's, alone; the pass never fails for it; a new
// process on the same cache (Memo) knows all of it; and once capacity is back, the
// probe's success lets every job through in the same pass.
func TestPass_StockoutPutsThePoolInBackoffWithOneProbeWhenDue(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.Pools[0].MaxRunners = 10
	var jobs []reconcile.Job
	for i := range 5 {
		jobs = append(jobs, w.queue(time.Duration(10-i)*time.Minute, arm64...))
	}
	w.backend.Refuse("", stockout)
	sum := w.mustPass(t)
	if n := registrations(w.gh); n != 1 {
		t.Fatalf("%d registrations in the first pass, want 1: the first create went alone\n%s", n, w.logs.String())
	}
	if len(w.gh.Regs()) != 0 {
		t.Errorf("registrations left behind: %v", regNames(w.gh.Regs()))
	}
	if len(sum.Health) != 1 || !sum.Health[0].Held || sum.Health[0].Class != reconcile.FailNoCapacity {
		t.Errorf("health %+v, want pool arm64 held for no capacity", sum.Health)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "pool arm64: no capacity (stockout)") || !strings.Contains(sum.Warnings[0], "5 jobs wait") {
		t.Errorf("warnings %q, want one naming the pool, the stockout and the 5 waiting jobs", sum.Warnings)
	}

	// 30 s later, in a new process on the same cache: the probe is not due.
	w.Advance(30 * time.Second)
	w.rc = &reconcile.Reconciler{Config: w.rc.Config, GitHub: w.gh, Backends: w.rc.Backends, Memo: w.notes, Now: w.Now}
	sum = w.mustPass(t)
	if n := registrations(w.gh); n != 1 || len(sum.Plan.Create) != 0 || len(sum.Plan.Waiting) != 5 {
		t.Errorf("before the probe is due: %d registrations in all, plan creates %d, waiting %d; want 1, 0, 5", n, len(sum.Plan.Create), len(sum.Plan.Waiting))
	}

	// A minute after the failure: one probe, the oldest job's; it fails, and the next
	// waits two minutes.
	w.Advance(31 * time.Second)
	sum = w.mustPass(t)
	if len(sum.Plan.Create) != 1 || !sum.Plan.Create[0].Probe || sum.Plan.Create[0].JobID != jobs[0].ID {
		t.Errorf("plan creates %+v, want one probe for the oldest job %d", sum.Plan.Create, jobs[0].ID)
	}
	if n := registrations(w.gh); n != 2 {
		t.Errorf("%d registrations in all, want 2", n)
	}
	if h := sum.Health[0]; h.ProbesFailed != 1 || !h.Next.Equal(w.Now().Add(2*time.Minute)) {
		t.Errorf("health %+v, want a failed probe and the next at +2m", h)
	}

	// Capacity is back; the probe due at +2m works and every job gets its runner.
	w.backend.Refuse("", nil)
	w.Advance(2 * time.Minute)
	sum = w.mustPass(t)
	if sum.Created != 5 || len(w.backend.Runners()) != 5 {
		t.Errorf("created %d, runners %v; want all 5 jobs served once the probe worked\n%s", sum.Created, reconciletest.Names(w.backend.Runners()), w.logs.String())
	}
	if h := sum.Health[0]; h.Held || h.ProbesOK != 1 {
		t.Errorf("health %+v, want out of backoff after one good probe", h)
	}
}

// An invalid template or a missing permission is not weather: the pass fails (exit 1),
// and the pool is probed once a pass, not once a job.
func TestPass_InvalidConfigurationFailsThePassAndProbesOnceAPass(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	for range 3 {
		w.queue(time.Minute, arm64...)
	}
	w.backend.Refuse("", reconcile.Classify(reconcile.FailInvalid, errors.New("template gha-arm64 not found")))
	for pass := 1; pass <= 3; pass++ {
		if _, err := w.pass(t); err == nil || !strings.Contains(err.Error(), "template gha-arm64 not found") {
			t.Fatalf("pass %d: RunOnce() = %v, want the invalid template", pass, err)
		}
		if n := registrations(w.gh); n != pass {
			t.Errorf("pass %d: %d registrations in all, want %d: one probe a pass", pass, n, pass)
		}
		w.Advance(10 * time.Second)
	}
}

// A pool with two options: the preferred one out of capacity, the create moves on to
// the next with the same registration, so every job is served, each runner says which
// option made it, and no registration is spent twice. Once the preferred option's
// backoff is over, the oldest create probes it first; it works, and the pool is back on
// it.
func TestPass_FallbackOptionServesWhileThePreferredIsOutOfCapacity(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.Pools[0].MaxRunners = 10
	w.backend.SetOptions("arm64", "spot", "standard")
	w.backend.Refuse("spot", stockout)
	for range 4 {
		w.queue(time.Minute, arm64...)
	}
	sum := w.mustPass(t)
	if sum.Created != 4 || registrations(w.gh) != 4 {
		t.Fatalf("created %d with %d registrations, want 4 and 4\n%s", sum.Created, registrations(w.gh), w.logs.String())
	}
	for _, r := range w.backend.Runners() {
		if r.Option != "standard" {
			t.Errorf("%s made by %q, want standard", r.Name, r.Option)
		}
	}
	if len(sum.Warnings) != 0 || sum.Health[0].Held || len(sum.Health[0].Backoff) != 1 || sum.Health[0].Backoff[0].Option != "spot" {
		t.Errorf("warnings %q, health %+v: want spot alone in backoff, the pool not held", sum.Warnings, sum.Health)
	}
	w.backend.Refuse("spot", nil)
	w.Advance(time.Minute)
	more := w.queue(time.Second, arm64...)
	sum = w.mustPass(t)
	if spec, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", more.ID, 0)); !ok || spec.Option != "spot" {
		t.Errorf("the new job's runner made by %q (made %v), want spot again", spec.Option, ok)
	}
	if h := sum.Health[0]; len(h.Backoff) != 0 || h.ProbesOK != 1 {
		t.Errorf("health %+v, want spot out of backoff after its probe", h)
	}
}

// Without a cache, the process keeps the pools' health between its passes (the loop).
func TestPass_BackoffHeldInTheProcessWithoutAMemo(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Memo = nil // no --cache
	for range 3 {
		w.queue(time.Minute, arm64...)
	}
	w.backend.Refuse("", stockout)
	ctx := zerolog.Nop().WithContext(context.Background())
	if _, err := w.rc.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.Advance(10 * time.Second)
	sum, err := w.rc.RunOnce(ctx)
	if err != nil || registrations(w.gh) != 1 || len(sum.Plan.Waiting) != 3 {
		t.Errorf("second pass: %v, %d registrations, %d waiting; want nil, 1, 3", err, registrations(w.gh), len(sum.Plan.Waiting))
	}
}

// A pool that made no runner lately sends its first create alone: the others are
// registered once it has started. One the backend lists a runner of, made minutes ago,
// registers its burst at once.
func TestPass_QuietPoolsFirstCreateGoesAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		made  time.Duration // how long ago the pool's listed runner was made; 0: none
		alone bool
	}{{"a cold pool", 0, true}, {"a runner made 5 minutes ago", 5 * time.Minute, false}, {"a runner made 2 hours ago", 2 * time.Hour, true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPassWorld(t)
			w.rc.Config.Pools[0].MaxRunners = 10
			w.rc.Config.Pools[0].MaxLifetime = reconcile.Duration(24 * time.Hour)
			if tc.made > 0 {
				old := reconcile.Runner{Name: "gha-arm64-1", Pool: "arm64", Scope: app, Repo: app, JobID: 1, CreatedAt: w.Now().Add(-tc.made)}
				w.backend.Put(old)
				w.gh.Register(reconcile.Registration{Name: old.Name, Scope: app, Online: true, Busy: true})
			}
			for range 4 {
				w.queue(time.Minute, arm64...)
			}
			var mu sync.Mutex
			var before []int // creates the backend had when each registration was made
			w.gh.OnRegister(func(reconcile.Registration) {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, c := range w.backend.Calls() {
					if strings.HasPrefix(c, "create ") {
						n++
					}
				}
				before = append(before, n)
			})
			w.mustPass(t)
			want := []int{0, 0, 0, 0}
			if tc.alone {
				want = []int{0, 1, 1, 1}
			}
			if !slices.Equal(before, want) {
				t.Errorf("creates made before each registration %v, want %v", before, want)
			}
		})
	}
}

// twoPools gives the world two pools: arm64 on arm, x64 on the world's backend.
func (w *passWorld) twoPools(t *testing.T, arm reconcile.Backend) {
	t.Helper()
	cfg, err := reconcile.Load([]byte("github: {repos: [octo-org/app]}\npools:\n" +
		"  - {name: arm64, labels: [self-hosted, linux, ARM64], max_runners: 5}\n" +
		"  - {name: x64, labels: [self-hosted, linux, x64], max_runners: 5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.rc = &reconcile.Reconciler{Config: cfg, GitHub: w.gh, Memo: w.notes, Now: w.Now, Backends: map[string]reconcile.Backend{"arm64": arm, "x64": w.backend}}
}

// gated holds every create until its gate opens (a slow insert operation).
type gated struct {
	*reconciletest.Backend
	gate chan struct{}
}

func (g gated) Create(ctx context.Context, spec reconcile.RunnerSpec) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Backend.Create(ctx, spec)
}

// A quiet pool's first create, slow to start, holds back that pool's other creates and
// no other pool's: a pool that made runners lately goes at full speed meanwhile.
func TestPass_AQuietPoolsFirstCreateHoldsBackNoOtherPool(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	slow := gated{reconciletest.NewBackend(w.Now), make(chan struct{})}
	w.twoPools(t, slow)
	recent := reconcile.Runner{Name: "gha-x64-1", Pool: "x64", Scope: app, Repo: app, JobID: 1, CreatedAt: w.Now().Add(-5 * time.Minute)}
	w.backend.Put(recent)
	w.gh.Register(reconcile.Registration{Name: recent.Name, Scope: app, Online: true, Busy: true})
	for range 2 {
		w.queue(time.Minute, arm64...)
		w.queue(time.Minute, "self-hosted", "linux", "x64")
	}
	done := make(chan error, 1)
	go func() { _, err := w.pass(t); done <- err }()
	deadline := time.After(10 * time.Second)
	for len(w.backend.Runners()) < 3 {
		select {
		case <-deadline:
			close(slow.gate)
			t.Fatalf("x64 runners %v while arm64's first create is held: want both x64 jobs served meanwhile", reconciletest.Names(w.backend.Runners()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n := registrations(w.gh); n != 3 {
		t.Errorf("%d registrations while arm64's first create is held, want 3: x64's two and arm64's first alone", n)
	}
	close(slow.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(slow.Runners()) != 2 {
		t.Errorf("arm64 runners %v, want both once its first create started", reconciletest.Names(slow.Runners()))
	}
}

// The stockout with the default schedule, passes a minute apart as from cron,
// each a new process on the same cache: 20 jobs, three passes cost two registrations
// (t=0 cold, t=60 the due probe; t=120 waits for the probe at t=180); capacity is back
// at t=150, and the pass at t=180 serves all 20.
func TestPass_StockoutPassesAMinuteApartWithTheDefaultSchedule(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.Pools[0].MaxRunners = 20
	for range 20 {
		w.queue(time.Minute, arm64...)
	}
	w.backend.Refuse("", stockout)
	process := func() reconcile.Summary {
		w.rc = &reconcile.Reconciler{Config: w.rc.Config, GitHub: w.gh, Backends: w.rc.Backends, Memo: w.notes, Now: w.Now}
		return w.mustPass(t)
	}
	for pass := range 3 {
		if sum := process(); len(sum.Warnings) != 1 {
			t.Errorf("pass %d: warnings %q, want one", pass+1, sum.Warnings)
		}
		w.Advance(time.Minute)
	}
	if n := registrations(w.gh); n != 2 {
		t.Errorf("%d registrations in three passes, want 2", n)
	}
	w.backend.Refuse("", nil) // t=180: capacity came back at t=150
	if sum := process(); sum.Created != 20 {
		t.Errorf("the first pass after capacity came back created %d, want all 20\n%s", sum.Created, w.logs.String())
	}
}

// hungDeletes never answers a deletion (an engine that stopped answering after it
// listed its runners).
type hungDeletes struct{ *reconciletest.Backend }

func (hungDeletes) Delete(ctx context.Context, _ reconcile.Runner) error {
	<-ctx.Done()
	return ctx.Err()
}

// A backend that does not answer a deletion holds the pass, and the other pools'
// creates (which follow the deletions), no longer than BackendTimeout, not the in-flight
// bound: the other pool's job is served, and the error names the deletion that hung.
func TestPass_AHungDeletionHoldsBackNoOtherPoolPastTheBackendTimeout(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	hung := hungDeletes{reconciletest.NewBackend(w.Now)}
	w.twoPools(t, hung)
	w.rc.BackendTimeout = 200 * time.Millisecond
	hung.Put(reconcile.Runner{Name: "gha-arm64-1", Pool: "arm64", Scope: app, Repo: app, JobID: 1, CreatedAt: w.Now().Add(-time.Hour), Phase: reconcile.PhaseFinished})
	job := w.queue(time.Minute, "self-hosted", "linux", "x64")
	start := time.Now()
	sum, err := w.pass(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the pass took %v, want about the backend timeout (200ms), not the in-flight bound", took)
	}
	if err == nil || !strings.Contains(err.Error(), "deleting runner gha-arm64-1") || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("RunOnce() = %v, want the hung deletion named", err)
	}
	if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "x64", job.ID, 0)); !ok || sum.Created != 1 {
		t.Errorf("x64's job not served (created %d)", sum.Created)
	}
}
