package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// These tests run whole passes from the pass's own package, against the in-memory
// GitHub and backend of reconciletest. The same passes against GitHub's HTTP API, with
// the real client, are ghpoll's pass_*_test.go.

var (
	app   = reconcile.Scope{Owner: "octo-org", Repo: "app"}
	arm64 = []string{"self-hosted", "linux", "ARM64"}
)

type passWorld struct {
	*reconciletest.Clock
	gh      *reconciletest.GitHub
	backend *reconciletest.Backend
	rc      *reconcile.Reconciler
	notes   *reconcile.Notes // what --cache keeps: a new Reconciler with them is the next --once process
	logs    bytes.Buffer
	nextJob int64
}

func newPassWorld(t *testing.T) *passWorld {
	t.Helper()
	w := &passWorld{Clock: reconciletest.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)), gh: reconciletest.NewGitHub(), nextJob: 100}
	w.backend = reconciletest.NewBackend(w.Now)
	cfg, err := reconcile.Load([]byte("github: {repos: [octo-org/app]}\npools:\n  - name: arm64\n    labels: [self-hosted, linux, ARM64]\n    max_runners: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A fault injected and never served leaves its test testing nothing.
		if u := append(w.gh.Unserved(), w.backend.Unserved()...); len(u) > 0 {
			t.Errorf("faults injected and never served: %v", u)
		}
	})
	w.notes, _ = reconcile.OpenNotes(context.Background(), nil) // the --cache, in memory: no store, no error
	w.rc = &reconcile.Reconciler{Config: cfg, GitHub: w.gh, Backends: map[string]reconcile.Backend{"arm64": w.backend}, Memo: w.notes, Now: w.Now}
	return w
}

// queue queues a job of octo-org/app that waited age.
func (w *passWorld) queue(age time.Duration, labels ...string) reconcile.Job {
	w.nextJob++
	j := reconcile.Job{ID: w.nextJob, RunID: w.nextJob * 10, Repo: app, Name: "build", Labels: labels, CreatedAt: w.Now().Add(-age)}
	w.gh.Queue(j)
	return j
}

func (w *passWorld) pass(t *testing.T) (reconcile.Summary, error) {
	t.Helper()
	return w.rc.RunOnce(zerolog.New(zerolog.SyncWriter(&w.logs)).WithContext(context.Background()))
}

func (w *passWorld) mustPass(t *testing.T) reconcile.Summary {
	t.Helper()
	sum, err := w.pass(t)
	if err != nil {
		t.Fatalf("RunOnce() = %v, want nil\n%s", err, w.logs.String())
	}
	return sum
}

func regNames(rs []reconcile.Registration) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestPass_QueuedJobGetsARegisteredRunner(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := w.queue(time.Minute, arm64...)
	w.queue(time.Minute, "ubuntu-latest") // a GitHub-hosted job
	sum := w.mustPass(t)
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	if diff := cmp.Diff([]string{name}, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Fatalf("runners mismatch (-want +got):\n%s", diff)
	}
	regs := w.gh.Regs()
	spec, _ := w.backend.Spec(name)
	if len(regs) != 1 || regs[0].Name != name || spec.JITConfig.Reveal() == "" {
		t.Fatalf("registrations %+v, runner spec %+v: want its registration and its JIT configuration", regs, spec)
	}
	if at, ok := regs[0].Registered(); !ok || !at.Equal(w.Now()) {
		t.Errorf("registration labels %v, want the pool's and the registration time", regs[0].Labels)
	}
	if sum.Created != 1 || sum.Done[reconcile.Action{Kind: "create", Pool: "arm64", Reason: reconcile.ReasonDemand}] != 1 {
		t.Errorf("summary %+v, want one create for demand", sum)
	}
	// The next pass sees it booting: nothing more to do.
	w.Advance(30 * time.Second)
	if sum := w.mustPass(t); !sum.Plan.Empty() {
		t.Errorf("second pass planned %+v, want nothing", sum.Plan)
	}
}

func TestPass_FinishedRunnerAndItsRegistrationAreRemoved(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := w.queue(time.Minute, arm64...)
	w.mustPass(t)
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	w.gh.Dequeue(j.ID)
	w.backend.SetPhase(name, reconcile.PhaseFinished) // preempted before it took a job
	w.Advance(time.Minute)
	w.mustPass(t)
	if len(w.backend.Runners()) != 0 || len(w.gh.Regs()) != 0 {
		t.Errorf("runners %v, registrations %v left; want none", reconciletest.Names(w.backend.Runners()), regNames(w.gh.Regs()))
	}
}

// A registration another pass made a moment ago, with no machine yet, is that pass's
// create under way: no second runner beside it; past the grace, the job gets one.
func TestPass_CreateUnderWayIsNotDoubled(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := w.queue(time.Minute, arm64...)
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	w.gh.Register(reconcile.Registration{Name: name, Scope: app, Labels: append(slices.Clone(arm64), reconcile.RegisteredLabel(w.Now()))})
	if sum := w.mustPass(t); !sum.Plan.Empty() || sum.Plan.Pools[0].Booting != 1 {
		t.Fatalf("plan %+v beside a create under way, want nothing, the registration counted as booting", sum.Plan)
	}
	// The other pass died: past the grace, the job gets a runner of another name.
	w.Advance(reconcile.RegistrationGrace)
	w.mustPass(t)
	if diff := cmp.Diff([]string{name + "-r1"}, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners after the grace mismatch (-want +got):\n%s", diff)
	}
}

// A repository GitHub does not know any more is reported and does not fail the pass;
// when it is the only one, the pass fails: the credentials see nothing.
func TestPass_UnreachableRepository(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.GitHub.Repos = append(w.rc.Config.GitHub.Repos, "octo-org/gone")
	gone := reconcile.Scope{Owner: "octo-org", Repo: "gone"}
	w.gh.Gone(gone)
	w.queue(time.Minute, arm64...)
	sum := w.mustPass(t)
	if diff := cmp.Diff([]string{"octo-org/gone"}, sum.Unreachable); diff != "" || sum.Created != 1 {
		t.Errorf("unreachable mismatch (-want +got):\n%s(created %d, want 1)", diff, sum.Created)
	}
	w.rc.Config.GitHub.Repos = []string{"octo-org/gone"}
	if _, err := w.pass(t); err == nil || !strings.Contains(err.Error(), "every polled repository is unreachable") {
		t.Errorf("RunOnce() with every repository gone = %v", err)
	}
}

// A job GitHub will not give to our idle runner stops holding it, and the process
// makes no runner for it again until reconcile.UnservableRetry has passed.
func TestPass_UnservableJobIsRememberedByTheProcess(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := w.queue(time.Hour, arm64...)
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	w.mustPass(t)
	w.gh.SetRunner(name, true, false) // online, idle; GitHub gives it nothing
	w.Advance(6 * time.Minute)
	sum := w.mustPass(t)
	if len(sum.Plan.Unservable) != 1 || len(w.backend.Runners()) != 0 {
		t.Fatalf("unservable %+v, runners %v; want the job judged and its runner gone", sum.Plan.Unservable, reconciletest.Names(w.backend.Runners()))
	}
	w.Advance(time.Minute)
	if sum := w.mustPass(t); len(sum.Plan.Create) != 0 {
		t.Errorf("planned %+v for a job found unservable", sum.Plan.Create)
	}
	w.Advance(reconcile.UnservableRetry)
	if sum := w.mustPass(t); len(sum.Plan.Create) != 1 {
		t.Errorf("planned %+v after %v, want the job tried again", sum.Plan.Create, reconcile.UnservableRetry)
	}
}

// A job of a public repository a pool matches is refused, and the skip is logged.
func TestPass_PublicRepositoryJobIsRefusedAndLogged(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := reconcile.Job{ID: 7, Repo: app, Name: "build", Labels: arm64, CreatedAt: w.Now(), Public: true}
	w.gh.Queue(j)
	sum := w.mustPass(t)
	if len(sum.Plan.Create) != 0 || len(sum.Plan.Refused) != 1 || sum.Plan.Refused[0].Reason != reconcile.ReasonPublicRepo {
		t.Errorf("plan %+v, want job 7 refused as public_repo", sum.Plan)
	}
	if !strings.Contains(w.logs.String(), `"reason":"public_repo"`) {
		t.Errorf("no skip logged:\n%s", w.logs.String())
	}
}

// A deletion that fails frees no slot: the create that counted on it is dropped.
func TestPass_FailedDeletionKeepsThePoolWithinMaxRunners(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	var jobs []reconcile.Job
	for range 2 {
		jobs = append(jobs, w.queue(time.Minute, arm64...))
	}
	w.mustPass(t)
	for _, j := range jobs {
		w.gh.Dequeue(j.ID)
		w.gh.SetRunner(reconcile.RunnerName("gha", "arm64", j.ID, 0), true, true)
	}
	// A third, past max_lifetime (24 h), still running a job: planned for deletion.
	// With it, the pool is full; without it, it has room for one.
	old := reconcile.Runner{Name: "gha-arm64-1", Pool: "arm64", Scope: app, Repo: app, JobID: 1, CreatedAt: w.Now().Add(-25 * time.Hour)}
	w.backend.Put(old)
	w.gh.Register(reconcile.Registration{Name: old.Name, Scope: app, Online: true, Busy: true})
	next := w.queue(time.Minute, arm64...)
	w.backend.FailNext("delete", errors.New("backend down"))
	w.Advance(time.Minute)
	sum, err := w.pass(t)
	if err == nil || len(sum.Plan.Create) != 1 {
		t.Fatalf("RunOnce() = %v, plan %+v; want the failed deletion and one planned create", err, sum.Plan)
	}
	name := reconcile.RunnerName("gha", "arm64", next.ID, 0)
	if _, made := w.backend.Spec(name); made || len(w.backend.Runners()) != 3 {
		t.Errorf("runners %v: the create went ahead though the deletion it counted on failed", reconciletest.Names(w.backend.Runners()))
	}
	// Room is claimed before registering: the refused create cost GitHub nothing.
	if slices.ContainsFunc(w.gh.Calls(), func(c string) bool { return strings.HasSuffix(c, " "+name) }) {
		t.Errorf("GitHub calls %v: %s was registered, though the pool had no room for it", w.gh.Calls(), name)
	}
}

// Another pass (cron, a terminal and a timer at once) fills the pool while this one
// registers its runners: the pools are counted again after the registrations, and what
// no longer fits is deregistered, not started.
func TestPass_OverlappingPassThatFillsThePool(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t) // max_runners 3
	for range 3 {
		w.queue(time.Minute, arm64...)
	}
	// The other pass's runners appear as this one registers its second runner: the
	// pool has made no runner lately, so its first create went alone (health.go), and
	// the other two are registered together.
	var regs atomic.Int32
	w.gh.OnRegister(func(reconcile.Registration) {
		if regs.Add(1) == 2 {
			for i := range 2 {
				w.backend.Put(reconcile.Runner{Name: fmt.Sprintf("gha-arm64-90%d", i), Pool: "arm64", Scope: app, Repo: app, JobID: int64(900 + i), CreatedAt: w.Now()})
			}
		}
	})
	sum, err := w.pass(t)
	if err != nil {
		t.Fatalf("RunOnce() = %v\n%s", err, w.logs.String())
	}
	if n := len(w.backend.Runners()); n != 3 || sum.Created != 1 {
		t.Errorf("%d runners in the pool, %d created; want max_runners, 3, with one of ours\n%s", n, sum.Created, w.logs.String())
	}
	for _, r := range w.gh.Regs() {
		if _, made := w.backend.Spec(r.Name); !made {
			t.Errorf("registration %s left without a runner", r.Name)
		}
	}
	if !strings.Contains(w.logs.String(), "another pass filled the pool meanwhile") {
		t.Errorf("nothing said of the creates given up:\n%s", w.logs.String())
	}
}

// GitHub rate-limits a registration: the pass registers nothing more, starts what it
// registered, fails saying how many creates are left, and the next pass makes them.
func TestPass_RateLimitedRegistrationLeavesTheRestToTheNextPass(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Concurrency = 1 // one registration at a time, in plan order
	for range 3 {
		w.queue(time.Minute, arm64...)
	}
	w.gh.LimitWrites(1)
	sum, err := w.pass(t)
	if err == nil || !strings.Contains(err.Error(), "2 creates left for the next pass") {
		t.Fatalf("RunOnce() = %v, want the creates left said", err)
	}
	if sum.Created != 1 || sum.NotStarted != 2 || len(w.gh.Regs()) != 1 {
		t.Errorf("created %d, not started %d, registrations %v; want 1, 2, 1", sum.Created, sum.NotStarted, regNames(w.gh.Regs()))
	}
	jits := 0
	for _, c := range w.gh.Calls() {
		if strings.HasPrefix(c, "GenerateJITConfig") {
			jits++
		}
	}
	if jits != 2 {
		t.Errorf("%d registrations asked for, want 2: none after the rate limit", jits)
	}
	w.gh.LimitWrites(-1)
	w.Advance(time.Minute)
	if sum := w.mustPass(t); sum.Created != 2 || len(w.backend.Runners()) != 3 {
		t.Errorf("next pass created %d, runners %v; want the 2 left", sum.Created, reconciletest.Names(w.backend.Runners()))
	}
}

// A pass told to stop starts no new action and says what was left.
func TestPass_StoppedPassSaysWhatWasLeft(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.queue(time.Minute, arm64...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := w.rc.RunOnce(ctx)
	if err == nil || len(w.backend.Mutations()) != 0 {
		t.Errorf("RunOnce(cancelled) = %v with backend calls %v; want an error and nothing done", err, w.backend.Mutations())
	}
	if sum.Created != 0 {
		t.Errorf("created %d", sum.Created)
	}
}

// A registration of ours with no runner, whose job no longer waits, is a ghost.
func TestPass_GhostRegistrationIsRemoved(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.gh.Register(reconcile.Registration{Name: "gha-arm64-77", Scope: app})
	w.gh.Register(reconcile.Registration{Name: "someone-elses-runner", Scope: app})
	sum := w.mustPass(t)
	if diff := cmp.Diff([]string{"someone-elses-runner"}, regNames(w.gh.Regs())); diff != "" || sum.Deregistered != 1 {
		t.Errorf("registrations mismatch (-want +got):\n%s(deregistered %d)", diff, sum.Deregistered)
	}
}

// hiding is a GitHub whose registration listings leave one name out, as when another
// pass registers that runner after this pass has looked.
type hiding struct {
	*reconciletest.GitHub
	name string
}

func (h hiding) Registrations(ctx context.Context, s reconcile.Scope) ([]reconcile.Registration, error) {
	regs, err := h.GitHub.Registrations(ctx, s)
	return slices.DeleteFunc(regs, func(r reconcile.Registration) bool { return r.Name == h.name }), err
}

// GitHub answers 409 for a name already registered: a registration left by a pass that
// died is replaced; one another pass made a moment ago is left to it.
func TestPass_NameConflict(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		labels   func(now time.Time) []string
		replaced bool
	}{
		{"a dead pass's registration is replaced", func(time.Time) []string { return arm64 }, true},
		{"a create under way is left alone", func(now time.Time) []string { return append(slices.Clone(arm64), reconcile.RegisteredLabel(now)) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newPassWorld(t)
			j := w.queue(time.Minute, arm64...)
			name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
			id := w.gh.Register(reconcile.Registration{Name: name, Scope: app, Labels: tt.labels(w.Now())})
			w.rc.GitHub = hiding{GitHub: w.gh, name: name}
			w.mustPass(t)
			regs := w.gh.Regs()
			_, made := w.backend.Spec(name)
			if len(regs) != 1 || (regs[0].ID != id) != tt.replaced || made != tt.replaced {
				t.Errorf("registrations %+v, runner made %v; want replaced %v", regs, made, tt.replaced)
			}
		})
	}
}

// The loop runs a pass at once and then every interval, reports each, and returns the
// last one's error once told to stop.
func TestRun_PassesUntilStopped(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Now = nil // real time: the loop's ticker is
	w.gh.FailNext("QueuedJobs", 100)
	ctx, cancel := context.WithCancel(zerolog.New(zerolog.SyncWriter(&w.logs)).WithContext(context.Background()))
	passes := 0
	err := w.rc.Run(ctx, 10*time.Millisecond, time.Minute, func(_ reconcile.Summary, err error) {
		if passes++; passes == 3 {
			cancel()
		}
	})
	if passes != 3 || err == nil {
		t.Errorf("Run() = %v after %d passes; want 3 passes and the last one's error", err, passes)
	}
}

// pacedGitHub makes each registration wait its turn, as GitHub's write pace does; the
// wait is called off with the pass. After budget registrations, the hour's budget is
// spent (budget < 0: no budget).
type pacedGitHub struct {
	*reconciletest.GitHub
	turn   time.Duration
	mu     sync.Mutex
	budget int
}

func (g *pacedGitHub) GenerateJITConfig(ctx context.Context, s reconcile.Scope, name string, labels []string) (reconcile.Registration, reconcile.Secret, error) {
	g.mu.Lock()
	spent := g.budget == 0
	g.budget--
	g.mu.Unlock()
	if spent {
		return reconcile.Registration{}, "", fmt.Errorf("%w: 475 registrations in the last hour", reconcile.ErrWriteBudget)
	}
	select {
	case <-time.After(g.turn):
	case <-ctx.Done():
		return reconcile.Registration{}, "", ctx.Err()
	}
	return g.GitHub.GenerateJITConfig(ctx, s, name, labels)
}

// A burst outlasts the pass's deadline at the write pace, or spends the hour's
// registrations: the pass starts what it registered, leaves no registration without a
// runner, defers the rest without failing, and the next pass goes on.
func TestPass_CreatesLeftAtTheDeadlineOrBudgetAreDeferred(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		turn    time.Duration
		budget  int
		timeout time.Duration
	}{
		{"the deadline", 100 * time.Millisecond, -1, 150 * time.Millisecond},
		{"the hour's budget", 0, 1, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newPassWorld(t)
			w.rc.Now, w.rc.Concurrency = nil, 1
			for range 3 {
				w.queue(time.Minute, arm64...)
			}
			w.rc.GitHub = &pacedGitHub{GitHub: w.gh, turn: tt.turn, budget: tt.budget}
			ctx := zerolog.New(zerolog.SyncWriter(&w.logs)).WithContext(context.Background())
			sum, err := w.rc.RunWithin(ctx, tt.timeout)
			if err != nil {
				t.Fatalf("RunWithin() = %v, want the pass to succeed\n%s", err, w.logs.String())
			}
			if sum.Created == 0 || sum.Deferred == 0 || sum.Created+sum.Deferred != 3 {
				t.Errorf("created %d, deferred %d; want some of each, 3 in all", sum.Created, sum.Deferred)
			}
			for _, r := range w.gh.Regs() {
				if _, made := w.backend.Spec(r.Name); !made {
					t.Errorf("registration %s left without a runner", r.Name)
				}
			}
			if !strings.Contains(w.logs.String(), "creates deferred to the next pass") {
				t.Errorf("nothing said of the deferred creates:\n%s", w.logs.String())
			}
			w.rc.GitHub = w.gh
			if w.mustPass(t); len(w.backend.Runners()) != 3 {
				t.Errorf("next pass: runners %v, want all 3", reconciletest.Names(w.backend.Runners()))
			}
		})
	}
}

// preemptedRunner puts a runner of w's pool whose machine the platform took away at
// `at`, made for job 501 and running it, and returns that job as GitHub reports it
// once it noticed: failed, 30 s after the preemption, in the run's first attempt.
func (w *passWorld) preemptedRunner(at time.Time) reconcile.JobOutcome {
	r := reconcile.Runner{Name: reconcile.RunnerName("gha", "arm64", 501, 0), Pool: "arm64", Scope: app, Repo: app, JobID: 501,
		CreatedAt: at.Add(-10 * time.Minute), Phase: reconcile.PhaseFinished, PreemptedAt: at}
	w.backend.Put(r)
	return reconcile.JobOutcome{ID: 501, RunID: 5010, Repo: app, Labels: arm64, Status: reconcile.JobCompleted, Conclusion: reconcile.ConclusionFailed,
		RunnerName: r.Name, CompletedAt: at.Add(30 * time.Second), RunAttempt: 1, RunStatus: reconcile.JobCompleted}
}

// The job a preemption killed is re-run once its run has completed (GitHub re-runs
// nothing sooner), and gets a runner like any queued job; until then, the preempted
// runner is kept as the evidence. Jobs that ended on their own, or were cancelled
// before, are left alone, as is a job past the pool's rerun_preempted.
func TestPass_PreemptedJobIsRerun(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	lost := w.preemptedRunner(w.Now().Add(-time.Minute))
	lost.RunStatus = reconcile.JobInProgress // the run's other jobs go on
	w.gh.Ran(lost)
	sum := w.mustPass(t)
	if len(w.backend.Runners()) != 1 || sum.Deleted != 0 {
		t.Fatalf("runners %v after a pass whose run is still going; want the preempted one kept", reconciletest.Names(w.backend.Runners()))
	}
	lost.RunStatus = reconcile.JobCompleted
	w.gh.Ran(lost)
	w.Advance(time.Minute)
	sum = w.mustPass(t)
	if !slices.Contains(w.gh.Calls(), "RerunJob octo-org/app 501") || sum.Done[reconcile.Action{Kind: "rerun", Pool: "arm64", Reason: reconcile.ReasonPreempted}] != 1 {
		t.Fatalf("calls %v, done %v; want job 501 re-run once", w.gh.Calls(), sum.Done)
	}
	if len(w.backend.Runners()) != 0 || !strings.Contains(w.logs.String(), `"action":"rerun"`) {
		t.Errorf("runners %v; want the preempted one deleted once its job was re-run, and a rerun line", reconciletest.Names(w.backend.Runners()))
	}
	w.Advance(time.Minute)
	if sum := w.mustPass(t); sum.Created != 1 {
		t.Errorf("created %d, want a runner for the re-run job", sum.Created)
	}
}

func TestPass_JobsNotRerun(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		job  func(j *reconcile.JobOutcome, preempted time.Time)
	}{
		{"a step failed before the preemption", func(j *reconcile.JobOutcome, at time.Time) { j.StepFailedAt = at.Add(-10 * time.Minute) }},
		{"cancelled before the preemption", func(j *reconcile.JobOutcome, at time.Time) {
			j.Conclusion, j.CompletedAt = reconcile.ConclusionCancelled, at.Add(-10*time.Minute)
		}},
		{"it succeeded", func(j *reconcile.JobOutcome, _ time.Time) {
			j.Conclusion, j.Concluded = reconcile.ConclusionOther, "success"
		}},
		{"preempted again past rerun_preempted", func(j *reconcile.JobOutcome, _ time.Time) {
			j.RunAttempt, j.LatestAttempt, j.PriorFailures = 2, 2, 1
		}},
		{"its run was re-run since", func(j *reconcile.JobOutcome, _ time.Time) { j.LatestAttempt = 2 }},
		{"it ran on another runner", func(j *reconcile.JobOutcome, _ time.Time) { j.RunnerName = "gha-arm64-999" }},
		{"no pool serves its labels", func(j *reconcile.JobOutcome, _ time.Time) { j.Labels = []string{"self-hosted", "gpu"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newPassWorld(t)
			at := w.Now().Add(-time.Minute)
			j := w.preemptedRunner(at)
			tt.job(&j, at)
			w.gh.Ran(j)
			w.mustPass(t)
			if slices.ContainsFunc(w.gh.Calls(), func(c string) bool { return strings.HasPrefix(c, "RerunJob") }) {
				t.Errorf("calls %v: the job was re-run", w.gh.Calls())
			}
			if len(w.backend.Runners()) != 0 || !strings.Contains(w.logs.String(), "job of a preempted runner not re-run") {
				t.Errorf("runners %v; want the preempted runner deleted, and a line saying why its job was not re-run\n%s", reconciletest.Names(w.backend.Runners()), w.logs.String())
			}
		})
	}
}

// rerun_preempted: 0 turns re-runs off: GitHub is not even asked; a pass without a
// preempted runner asks GitHub nothing about jobs either.
func TestPass_RerunsOffAskNothing(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	zero := 0
	w.rc.Config.Pools[0].RerunPreempted = &zero
	w.gh.Ran(w.preemptedRunner(w.Now().Add(-time.Minute)))
	w.backend.Put(reconcile.Runner{Name: "gha-arm64-502", Pool: "arm64", Scope: app, Repo: app, JobID: 502, CreatedAt: w.Now(), Phase: reconcile.PhaseFinished})
	w.mustPass(t)
	if slices.ContainsFunc(w.gh.Calls(), func(c string) bool { return strings.HasPrefix(c, "JobRunBy") || strings.HasPrefix(c, "RerunJob") }) {
		t.Errorf("calls %v, want no job lookups", w.gh.Calls())
	}
}

// --dry-run says which job it would re-run, and re-runs nothing.
func TestPass_DryRunShowsTheRerun(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.DryRun = true
	w.gh.Ran(w.preemptedRunner(w.Now().Add(-time.Minute)))
	w.mustPass(t)
	if slices.ContainsFunc(w.gh.Calls(), func(c string) bool { return strings.HasPrefix(c, "RerunJob") }) || !strings.Contains(w.logs.String(), "would re-run job") {
		t.Errorf("calls %v; want no re-run and a 'would re-run job' line:\n%s", w.gh.Calls(), w.logs.String())
	}
}

// A create the pool has no room for, because another pass filled it since this pass
// looked, is refused before registering and does not fail the pass.
func TestPass_PoolFilledByAnotherPassRefusesQuietly(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t) // max_runners 3
	w.queue(time.Minute, arm64...)
	hiding := &listing{Backend: w.backend}
	w.rc.Backends["arm64"] = hiding
	for i := range 3 { // another pass's runners, made after this pass listed the pool
		hiding.later = append(hiding.later, reconcile.Runner{Name: fmt.Sprintf("gha-arm64-90%d", i), Pool: "arm64", Scope: app, Repo: app, JobID: int64(900 + i), CreatedAt: w.Now()})
	}
	sum, err := w.pass(t)
	if err != nil || sum.Created != 0 || sum.NotStarted != 0 {
		t.Fatalf("RunOnce() = %v, created %d, not started %d; want no error and nothing created\n%s", err, sum.Created, sum.NotStarted, w.logs.String())
	}
	if len(w.gh.Regs()) != 0 || !strings.Contains(w.logs.String(), "not created: the pool is at max_runners") {
		t.Errorf("registrations %v; want none, and a line saying why\n%s", regNames(w.gh.Regs()), w.logs.String())
	}
}

// listing is a backend whose first listing misses runners that appear from the second
// on: another pass made them meanwhile.
type listing struct {
	*reconciletest.Backend
	mu    sync.Mutex
	later []reconcile.Runner
	seen  bool
}

func (l *listing) List(ctx context.Context) ([]reconcile.Runner, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen {
		for _, r := range l.later {
			l.Backend.Put(r)
		}
		l.later = nil
	}
	l.seen = true
	return l.Backend.List(ctx)
}

// TestPass_ABusyRunnerIsKnownFromThisPassesJobListing: a runner running a job is known
// busy from the job listing of the same pass, in the first pass of a process (every
// --once process): its scope's registrations need no listing. (The repository was
// swept a moment ago: only the runner could call for a listing.)
func TestPass_ABusyRunnerIsKnownFromThisPassesJobListing(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Budget = reconcile.DefaultBudget()
	w.gh.SetPollFacts(reconcile.PollFacts{Repos: map[reconcile.Scope]reconcile.RepoFacts{
		app: {Runs: 1, HadRuns: w.Now(), Polled: w.Now().Add(-time.Minute), Swept: w.Now(), PollCost: 2}}})
	j := w.queue(time.Minute, arm64...)
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	w.backend.Put(reconcile.Runner{Name: name, Pool: "arm64", Scope: app, Repo: app, JobID: j.ID, CreatedAt: w.Now().Add(-2 * time.Minute)})
	w.gh.Register(reconcile.Registration{Name: name, Scope: app, Online: true, Busy: true})
	w.gh.Ran(reconcile.JobOutcome{ID: j.ID, RunID: j.RunID, Repo: app, Labels: arm64, Status: reconcile.JobInProgress, RunnerName: name, RunAttempt: 1})
	sum := w.mustPass(t)
	if got := sum.Observed.Running[name].ID; got != j.ID {
		t.Errorf("the pass saw %s running job %d, want %d: it must know from its own listing", name, got, j.ID)
	}
	for _, c := range w.gh.Calls() {
		if strings.HasPrefix(c, "Registrations") {
			t.Errorf("the pass called %q; the runner is known busy from the job listing of the same pass", c)
		}
	}
	if st := sum.Plan.States[name]; st != reconcile.StateBusy || !sum.Plan.Empty() {
		t.Errorf("state %q, plan %+v: want busy and nothing to do", st, sum.Plan)
	}
}
