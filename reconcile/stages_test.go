package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// readCalls are the GitHub port's reads; everything else it offers writes.
var readCalls = []string{"OrgRepos", "InstallationRepos", "QueuedJobs", "Registrations", "FindRegistration", "JobRunBy"}

// memoWrites counts what is written to a Memo.
type memoWrites struct {
	reconcile.Memo
	mu     sync.Mutex
	writes []string
}

func (m *memoWrites) Remember(kind reconcile.MemoKind, key, value string) {
	m.mu.Lock()
	m.writes = append(m.writes, string(kind)+":"+key)
	m.mu.Unlock()
	m.Memo.Remember(kind, key, value)
}

// everyActionWorld is a world in which a pass has one of each write to make: a runner
// to create for a queued job, a finished runner to delete, a ghost registration to
// remove, and a preempted runner's job to re-run; with the pool in backoff (noted in
// the Memo) and a job found unservable earlier.
func everyActionWorld(t *testing.T) (*passWorld, *memoWrites) {
	t.Helper()
	w := newPassWorld(t)
	w.queue(time.Minute, arm64...)
	done := reconcile.Runner{Name: reconcile.RunnerName("gha", "arm64", 301, 0), Pool: "arm64", Scope: app, Repo: app, JobID: 301,
		CreatedAt: w.Now().Add(-20 * time.Minute), Phase: reconcile.PhaseFinished}
	w.backend.Put(done)
	w.gh.Register(reconcile.Registration{Name: reconcile.RunnerName("gha", "arm64", 302, 0), Scope: app,
		Labels: []string{reconcile.RegisteredLabel(w.Now().Add(-time.Hour))}})
	lost := w.preemptedRunner(w.Now().Add(-time.Minute))
	w.gh.Ran(lost)
	m := &memoWrites{Memo: w.notes}
	w.rc.Memo = m
	return w, m
}

// Observation only reads: not GitHub, not a backend, not the Memo is written, in a
// world where the same pass, applied, writes each of them.
func TestObserve_MakesNoWrite(t *testing.T) {
	t.Parallel()
	w, memo := everyActionWorld(t)
	obs := w.rc.Observe(zerolog.Nop().WithContext(context.Background()))
	if len(obs.Jobs) != 1 || len(obs.Runners) != 2 || len(obs.Preempted) != 1 {
		t.Fatalf("observed %d jobs, %d runners, %d preempted lookups; want 1, 2 and 1", len(obs.Jobs), len(obs.Runners), len(obs.Preempted))
	}
	for _, c := range w.gh.Calls() {
		if name, _, _ := strings.Cut(c, " "); !slices.Contains(readCalls, name) {
			t.Errorf("observation called GitHub's %q, a write", c)
		}
	}
	if m := w.backend.Mutations(); len(m) > 0 {
		t.Errorf("observation changed the backend: %v", m)
	}
	if len(memo.writes) > 0 {
		t.Errorf("observation wrote the Memo: %v", memo.writes)
	}
	// The same world, applied: each write the observation held back is made.
	w.mustPass(t)
	var writes []string
	for _, c := range w.gh.Calls() {
		if name, _, _ := strings.Cut(c, " "); !slices.Contains(readCalls, name) {
			writes = append(writes, name)
		}
	}
	for _, want := range []string{"GenerateJITConfig", "RemoveRegistration", "RerunJob"} {
		if !slices.Contains(writes, want) {
			t.Errorf("the pass's writes at GitHub %v lack %s: the world did not need every write", writes, want)
		}
	}
	if m := w.backend.Mutations(); len(m) < 2 {
		t.Errorf("the pass's backend writes %v, want a create and deletes", m)
	}
	if len(memo.writes) == 0 {
		t.Error("the pass noted nothing for the next one")
	}
}

// A dry run is decided in apply alone: it observes and plans exactly what a real pass
// does, says each action it would take, and writes nothing anywhere.
func TestApply_DryRunWritesNothingAndSaysEachAction(t *testing.T) {
	t.Parallel()
	w, memo := everyActionWorld(t)
	w.rc.DryRun = true
	sum := w.mustPass(t)
	if len(sum.Plan.Create) != 1 || len(sum.Plan.Delete) != 2 || len(sum.Plan.Deregister) != 1 || len(sum.Plan.Reruns()) != 1 {
		t.Fatalf("plan %+v, want a create, two deletions, a deregistration and a re-run", sum.Plan)
	}
	for _, c := range w.gh.Calls() {
		if name, _, _ := strings.Cut(c, " "); !slices.Contains(readCalls, name) {
			t.Errorf("a dry run called GitHub's %q, a write", c)
		}
	}
	if m := w.backend.Mutations(); len(m) > 0 || len(memo.writes) > 0 {
		t.Errorf("a dry run wrote the backend %v and the Memo %v", m, memo.writes)
	}
	for _, line := range []string{"would create runner", "would delete runner", "would remove registration", "would re-run job"} {
		if !strings.Contains(w.logs.String(), line) {
			t.Errorf("the dry run did not say %q:\n%s", line, w.logs.String())
		}
	}
}

// A re-run GitHub refuses keeps the preempted runner as evidence, fails the pass at
// the rerun stage, and the next pass tries again.
func TestApply_AFailedRerunKeepsTheEvidence(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	lost := w.preemptedRunner(w.Now().Add(-time.Minute))
	w.gh.Ran(lost)
	w.gh.FailNext("RerunJob", 1)
	sum, err := w.pass(t)
	if err == nil || sum.ErrorsByStage[reconcile.StageRerun] != 1 {
		t.Fatalf("pass = %v, errors %v; want the re-run's failure", err, sum.ErrorsByStage)
	}
	if len(w.backend.Runners()) != 1 || sum.Deleted != 0 {
		t.Fatalf("runners %v: the preempted runner must be kept when its job's re-run failed", reconciletest.Names(w.backend.Runners()))
	}
	w.Advance(time.Minute)
	w.mustPass(t)
	if n := strings.Count(strings.Join(w.gh.Calls(), "\n"), "RerunJob"); n != 2 || len(w.backend.Runners()) != 0 {
		t.Errorf("%d re-runs asked, runners %v; want the second pass to re-run and delete", n, reconciletest.Names(w.backend.Runners()))
	}
}

// The registration of a finished runner that GitHub will not remove is no reason to
// keep the runner: it is deleted all the same, and the failure said.
func TestApply_AFinishedRunnerGoesEvenIfItsRegistrationStays(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	done := reconcile.Runner{Name: reconcile.RunnerName("gha", "arm64", 301, 0), Pool: "arm64", Scope: app, Repo: app, JobID: 301,
		CreatedAt: w.Now().Add(-20 * time.Minute), Phase: reconcile.PhaseFinished}
	w.backend.Put(done)
	w.gh.Register(reconcile.Registration{Name: done.Name, Scope: app})
	w.gh.FailNext("RemoveRegistration", 1)
	sum, err := w.pass(t)
	if err == nil || sum.ErrorsByStage[reconcile.StageDeregister] != 1 || sum.Deleted != 1 || len(w.backend.Runners()) != 0 {
		t.Errorf("pass = %v, errors %v, deleted %d; want the runner deleted and the registration's failure said", err, sum.ErrorsByStage, sum.Deleted)
	}
}

// An organisation or App installation whose repositories cannot be listed fails the
// pass at list_repos, and the configured repositories are still served.
func TestObserve_RepositoriesThatCannotBeListed(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.GitHub.Orgs = []string{"Other-Org"}
	w.rc.Config.GitHub.InstallationRepos = true
	w.queue(time.Minute, arm64...)
	sum, err := w.pass(t)
	if err == nil || sum.ErrorsByStage[reconcile.StageListRepos] != 2 {
		t.Fatalf("pass = %v, errors %v; want the org's and the installation's listings failed at list_repos", err, sum.ErrorsByStage)
	}
	if sum.Created != 1 {
		t.Errorf("created %d, want the configured repository's job served", sum.Created)
	}
	if !slices.Contains(w.gh.Calls(), "OrgRepos other-org") {
		t.Errorf("calls %v, want the org listed by its lowercase name", w.gh.Calls())
	}
}
