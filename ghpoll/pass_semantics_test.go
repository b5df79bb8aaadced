package ghpoll_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// These tests run whole passes against a fake GitHub that answers as real GitHub does
// in the everyday cases a simple fake leaves out. The source of each behaviour is named
// beside its test.

// A run that waits for an environment's approval has status "waiting" while its
// approved jobs are queued (GitHub's workflow run statuses: queued, in_progress,
// waiting, requested, pending, completed; the gap actions-runner-controller issue 2723
// reports). Its queued jobs are served, found on the newest page of runs, which shows
// every run as it is: the status=waiting filter is not needed (cancel-workflows pull
// request 36 saw it return nothing while runs waited).
func TestSemantics_QueuedJobsOfAWaitingRunAreServed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	w.mustPass(t) // the repository is quiet: the next pass probes it
	run := w.gh.AddRun("octo-org/app", "waiting")
	approved := w.gh.AddJob(run, "queued", arm64Labels...)
	held := w.gh.AddJob(run, "waiting", arm64Labels...) // waits for a reviewer
	w.Advance(time.Minute)
	w.mustPass(t)
	want := []string{reconcile.RunnerName("gha", "arm64", approved, 0)}
	if diff := cmp.Diff(want, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners mismatch (-want +got):\n%s (job %d waits for approval)", diff, held)
	}
	for _, r := range w.gh.Requests() {
		if r.Query.Get("status") == "waiting" {
			t.Errorf("%s?%s: the run was on the newest page, no listing by status was needed", r.Path, r.Query.Encode())
		}
	}
}

// head_repository.fork is true for every branch of a repository that is itself a fork
// (GitHub's repository object: "fork": whether the repository is a fork); a pull
// request from a fork is one whose head repository is another repository than the
// run's.
func TestSemantics_PullRequestInsideAForkedRepositoryIsNotAForkPullRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	w.gh.SetRepoFork("octo-org/app")
	inside := w.gh.AddRun("octo-org/app", "queued")
	w.gh.SetRunEvent(inside, "pull_request")
	insideJob := w.gh.AddJob(inside, "queued", arm64Labels...)
	push := w.gh.AddRun("octo-org/app", "queued")
	pushJob := w.gh.AddJob(push, "queued", arm64Labels...)
	fromFork := w.gh.AddRun("octo-org/app", "queued")
	w.gh.SetRunOrigin(fromFork, false, true)
	forkJob := w.gh.AddJob(fromFork, "queued", arm64Labels...)
	w.mustPass(t)
	want := []string{reconcile.RunnerName("gha", "arm64", insideJob, 0), reconcile.RunnerName("gha", "arm64", pushJob, 0)}
	slices.Sort(want)
	if diff := cmp.Diff(want, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners mismatch (-want +got):\n%s (job %d is a pull request from another repository)", diff, forkJob)
	}
}

// A job can match a pool by labels and still never be given to our runner (runs-on
// names a runner group; an org runner group does not allow the repository, and
// GitHub's default group settings exclude public repositories; a group limited to
// some workflows). The fake GitHub, like real GitHub in that case, never assigns it.
func TestSemantics_JobGitHubWillNotAssignStopsHoldingARunner(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	var logs syncBuffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	pass := func(rc *reconcile.Reconciler) reconcile.Summary {
		t.Helper()
		sum, err := rc.RunOnce(ctx)
		if err != nil {
			t.Fatalf("RunOnce() = %v", err)
		}
		return sum
	}
	stuck, name := w.queueArm64()
	pass(w.rc)
	w.Advance(time.Minute)
	w.gh.SetRunner(name, true, false) // online and idle; GitHub gives it nothing

	// Past idle_timeout (5 minutes) the job is judged; the runner is surplus.
	var sum reconcile.Summary
	for range 6 {
		w.Advance(time.Minute)
		if sum = pass(w.rc); len(sum.Plan.Unservable) > 0 {
			break
		}
	}
	if len(sum.Plan.Unservable) != 1 || sum.Plan.Unservable[0].Job.ID != stuck {
		t.Fatalf("unservable %+v, want job %d", sum.Plan.Unservable, stuck)
	}
	if len(w.backend.Runners()) != 0 || len(w.gh.Runners()) != 0 {
		t.Fatalf("runners %v, registrations %v: the idle runner is still held", reconciletest.Names(w.backend.Runners()), regNames(w.gh.Runners()))
	}
	if !strings.Contains(logs.String(), `"reason":"unservable"`) || !strings.Contains(logs.String(), `"job_id":`+itoa(stuck)) {
		t.Errorf("no warning names the job:\n%s", logs.String())
	}
	if sum.Plan.Pools[0].Unservable != 1 {
		t.Errorf("pool status %+v, want 1 unservable", sum.Plan.Pools[0])
	}

	// The next passes, of this process or of a new one sharing the cache, make no
	// runner for it; a servable job that comes still gets one.
	w.Advance(time.Minute)
	pass(w.rc)
	fresh := &reconcile.Reconciler{Config: w.rc.Config, GitHub: w.rc.GitHub, Budget: w.rc.Budget, Backends: w.rc.Backends, Memo: w.rc.Memo, Now: w.Now}
	pass(fresh)
	if len(w.backend.Runners()) != 0 {
		t.Fatalf("runners %v made again for the unservable job", reconciletest.Names(w.backend.Runners()))
	}
	servable := w.gh.QueueJob("octo-org/app", arm64Labels...)
	pass(fresh)
	if diff := cmp.Diff([]string{reconcile.RunnerName("gha", "arm64", servable, 0)}, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners mismatch (-want +got):\n%s", diff)
	}

	// It is tried again after reconcile.UnservableRetry: a runner group may have been fixed.
	w.Advance(reconcile.UnservableRetry)
	pass(fresh)
	if _, ok := w.backend.Spec(name); !ok {
		t.Errorf("job %d not tried again after %v", stuck, reconcile.UnservableRetry)
	}
}

// Runs are listed newest first, by creation; a re-run keeps its id and its place
// (GitHub's "Re-run a workflow" keeps the run id and bumps run_attempt), so the newest
// page of a repository with a long history does not show it. Nor does it show the
// oldest runs of a burst larger than a page.
func TestSemantics_ReRunAndBurstInAQuietRepositoryAreFound(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		queue func(w *world) int64
	}{
		{"re-run of an old run, gone in progress", func(w *world) int64 {
			old := w.gh.Runs("octo-org/app")[0] // the oldest
			w.gh.SetRunStatus(old, "in_progress")
			w.gh.AddJob(old, "in_progress", "ubuntu-latest") // another job of the attempt runs on a hosted runner
			return w.gh.AddJob(old, "queued", arm64Labels...)
		}},
		{"the oldest run of a burst larger than a page", func(w *world) int64 {
			run := w.gh.AddRun("octo-org/app", "in_progress")
			job := w.gh.AddJob(run, "queued", arm64Labels...)
			for range 120 {
				w.gh.AddRun("octo-org/app", "completed")
			}
			return job
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, probes, _ := quietRepository(t, 150)
			if len(probes) != 2 {
				t.Errorf("a quiet repository with more runs than a page cost run listings %v, want 2 (the newest page and the count of completed runs)", probes)
			}
			job := tt.queue(w)
			w.Advance(time.Minute)
			w.mustPass(t)
			if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", job, 0)); !ok {
				t.Errorf("job %d not found: runners %v", job, reconciletest.Names(w.backend.Runners()))
			}
		})
	}
}

// A quiet repository whose runs all fit on the newest page costs one conditional
// request to probe.
func TestSemantics_ProbeOfASmallQuietRepositoryIsOneRequest(t *testing.T) {
	t.Parallel()
	_, probes, sum := quietRepository(t, 30)
	if len(probes) != 1 || sum.API.NotModified == 0 {
		t.Errorf("run listings %v (%d not modified), want one conditional request", probes, sum.API.NotModified)
	}
}

// A busy repository is polled from the newest page too: with a long history, the page
// and the count of completed runs (two requests) show every run that can hold a queued
// job; the listings by status are for when the counts disagree. A job queued later in
// a run in progress (the next stage) is found.
func TestSemantics_BusyRepositoryIsPolledFromTheNewestPage(t *testing.T) {
	t.Parallel()
	w, _, _ := quietRepository(t, 150)
	run := w.gh.AddRun("octo-org/app", "in_progress")
	w.gh.AddJob(run, "in_progress", "ubuntu-latest")
	w.Advance(time.Minute)
	w.mustPass(t) // busy from now on
	next := w.gh.AddJob(run, "queued", arm64Labels...)
	w.Advance(time.Minute)
	before := len(w.gh.Requests())
	w.mustPass(t)
	var runs []string
	for _, r := range w.gh.Requests()[before:] {
		if strings.HasSuffix(r.Path, "/actions/runs") {
			runs = append(runs, r.Query.Encode())
		}
	}
	if want := []string{"page=1&per_page=100", "page=1&per_page=1&status=completed"}; !slices.Equal(runs, want) {
		t.Errorf("run listings of a busy repository %v, want %v", runs, want)
	}
	if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", next, 0)); !ok {
		t.Errorf("job %d of the next stage not found: runners %v", next, reconciletest.Names(w.backend.Runners()))
	}
}

// quietRepository makes a repository with n completed runs, polls it once, and probes
// it: it returns the world, the run listings of the probe, and the probe's pass.
func quietRepository(t *testing.T, n int) (*world, []string, reconcile.Summary) {
	t.Helper()
	w := newWorld(t, "octo-org/app")
	for range n {
		w.gh.AddRun("octo-org/app", "completed")
	}
	w.mustPass(t)
	w.Advance(time.Minute)
	before := len(w.gh.Requests())
	sum := w.mustPass(t)
	var runs []string
	for _, r := range w.gh.Requests()[before:] {
		if strings.HasSuffix(r.Path, "/actions/runs") {
			runs = append(runs, r.Query.Encode())
		}
	}
	return w, runs, sum
}

// Ghosts are left where demand has gone; a repository that always has runs (GitHub-
// hosted jobs keep it busy) is polled every pass, and its registrations must still be
// listed within --idle-poll-interval.
func TestSemantics_GhostInABusyRepositoryIsSwept(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	hosted := w.gh.AddRun("octo-org/app", "in_progress")
	w.gh.AddJob(hosted, "in_progress", "ubuntu-latest")
	w.mustPass(t)
	w.gh.AddRunner("octo-org/app", "gha-arm64-4242", false, false) // a dead pass's leftover; its job ran elsewhere
	idle := reconcile.DefaultBudget().IdleInterval
	for start := w.Now(); w.Now().Sub(start) <= idle; w.Advance(time.Minute) {
		w.mustPass(t)
		if len(w.gh.Runners()) == 0 {
			return
		}
	}
	t.Errorf("ghost %v still registered after %v of passes", regNames(w.gh.Runners()), idle)
}

// A repository that was deleted, renamed or lost to the token answers 404 (GitHub
// answers 404, not 403, for a private repository the token cannot see; 403 when the
// token lacks a permission). It is reported and does not fail the pass, unless every
// repository is unreachable.
func TestSemantics_UnreachableRepositoryIsReportedNotFailed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app", "octo-org/gone", "octo-org/hidden")
	w.gh.SetRepoGone("octo-org/gone")
	w.gh.Fail(http.MethodGet, "repos/octo-org/hidden/", http.StatusForbidden, 100)
	job := w.gh.QueueJob("octo-org/app", arm64Labels...)
	var logs syncBuffer
	sum, err := w.rc.RunOnce(zerolog.New(&logs).WithContext(context.Background()))
	if err != nil {
		t.Fatalf("RunOnce() = %v, want nil: one repository gone is not a failed pass", err)
	}
	if diff := cmp.Diff([]string{"octo-org/gone", "octo-org/hidden"}, sum.Unreachable); diff != "" {
		t.Errorf("unreachable mismatch (-want +got):\n%s", diff)
	}
	if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", job, 0)); !ok {
		t.Error("the reachable repository's job got no runner")
	}
	for _, repo := range []string{"octo-org/gone", "octo-org/hidden"} {
		if n := strings.Count(logs.String(), `"repo":"`+repo+`"`); n != 1 {
			t.Errorf("%d log lines name %s, want one warning:\n%s", n, repo, logs.String())
		}
	}

	// Later passes, in rotation on the budget, go on without failing for it.
	for range 6 {
		w.Advance(time.Minute)
		if _, err := w.pass(t); err != nil {
			t.Fatalf("a later pass: %v", err)
		}
	}

	// Every repository unreachable: the token sees nothing, and the pass fails.
	all := newWorld(t, "octo-org/gone")
	all.gh.SetRepoGone("octo-org/gone")
	if _, err := all.pass(t); err == nil || !strings.Contains(err.Error(), "every polled repository is unreachable") {
		t.Errorf("RunOnce() = %v, want every repository unreachable", err)
	}
}

// GitHub gives a runner any job its labels cover: the job a preempted runner ran may
// not be the one it was made for. JobRunBy finds it among the repository's latest
// completed runs, the newest first, and passes over an older job of an earlier runner
// of the same name (names come back). A runner that ran nothing has no job.
func TestSemantics_JobRunByFindsTheJobTheRunnerTook(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	made := w.gh.QueueJob("octo-org/app", arm64Labels...) // still queued: the runner took another
	name := reconcile.RunnerName("gha", "arm64", made, 0)
	taken := w.gh.QueueJob("octo-org/app", arm64Labels...)   // queued long, in an older run
	earlier := w.gh.QueueJob("octo-org/app", arm64Labels...) // a newer run: an earlier runner of that name ran it
	w.gh.SetJobStatus(earlier, "in_progress", name)
	w.gh.FailStep(earlier)
	w.Advance(time.Hour)
	since := w.Now()
	w.gh.SetJobStatus(taken, "in_progress", name)
	w.Advance(time.Minute)
	w.gh.LoseRunner(taken)
	client := w.rc.GitHub
	job, found, err := client.JobRunBy(context.Background(), reconcile.Scope{Owner: "octo-org", Repo: "app"}, name, made, since)
	if err != nil || !found {
		t.Fatalf("JobRunBy() = %v, found %v; want the job it took", err, found)
	}
	if job.ID != taken || job.Status != reconcile.JobCompleted || job.Conclusion != reconcile.ConclusionFailed || job.Concluded != "failure" || job.RunAttempt != 1 || job.RunStatus != reconcile.JobCompleted || !job.StepFailedAt.IsZero() {
		t.Errorf("JobRunBy() = %+v; want job %d, failed without a failed step, in its completed run's first attempt", job, taken)
	}
	if err := client.RerunJob(context.Background(), job.Repo, job.ID); err != nil {
		t.Fatalf("RerunJob() = %v", err)
	}
	run, _ := w.gh.Job(taken)
	if jobs := w.gh.Jobs(run.RunID); len(jobs) != 2 || jobs[1].Status != "queued" || jobs[1].Attempt != 2 {
		t.Errorf("jobs of the run %+v; want the job queued again in attempt 2", jobs)
	}
	if _, found, err := client.JobRunBy(context.Background(), reconcile.Scope{Owner: "octo-org", Repo: "app"}, "gha-arm64-404", 404, since); err != nil || found {
		t.Errorf("JobRunBy(a runner that ran nothing) = found %v, %v; want none", found, err)
	}
}
