package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// ghView is the world as GitHub, for one pass.
type ghView struct{ p *pass }

func (g ghView) OrgRepos(context.Context, string) ([]reconcile.Scope, error) {
	return nil, errors.New("no orgs in the simulation")
}

func (g ghView) InstallationRepos(context.Context) ([]reconcile.Scope, error) {
	return nil, errors.New("no App installation in the simulation")
}

func (g ghView) TakeStats() reconcile.APIStats { return reconcile.APIStats{} }

// QueuedJobs lists the repository's queued jobs, and those in progress with their
// runners, at one moment.
func (g ghView) QueuedJobs(_ context.Context, repo reconcile.Scope) (queued, running []reconcile.Job, err error) {
	w := g.p.w
	if err := g.p.call("listing jobs of " + repo.String()); err != nil {
		return nil, nil, err
	}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		switch {
		case j.repo != repo:
		case j.status == reconcile.JobWaiting:
			queued = append(queued, reconcile.Job{ID: j.id, RunID: j.runID, Repo: j.repo, Name: "build", Labels: slices.Clone(j.labels), CreatedAt: j.created})
		case j.status == reconcile.JobInProgress && j.runner != "":
			running = append(running, reconcile.Job{ID: j.id, RunID: j.runID, Repo: j.repo, Name: "build", Labels: slices.Clone(j.labels),
				CreatedAt: j.created, RunnerName: j.runner})
		}
	}
	return queued, running, nil
}

// JobRunBy finds the job the runner took, as GitHub shows it.
func (g ghView) JobRunBy(_ context.Context, repo reconcile.Scope, runner string, _ int64, since time.Time) (reconcile.JobOutcome, bool, error) {
	w := g.p.w
	if err := g.p.call("looking up the job runner " + runner + " ran"); err != nil {
		return reconcile.JobOutcome{}, false, err
	}
	ids := sortedKeys(w.jobs)
	slices.Reverse(ids) // the newest first: names come back, and an older job may name an earlier runner
	for _, id := range ids {
		j := w.jobs[id]
		if j.repo != repo || j.runner != runner || (j.status == reconcile.JobCompleted && j.completedAt.Before(since)) {
			continue
		}
		latest, active := w.runState(j.runID)
		o := reconcile.JobOutcome{ID: j.id, RunID: j.runID, Repo: j.repo, Labels: slices.Clone(j.labels), Status: j.status,
			RunnerName: j.runner, RunAttempt: j.attempt, LatestAttempt: latest, RunStatus: reconcile.JobCompleted}
		for _, e := range w.jobs { // the same job in earlier attempts
			if e.lineage == w.lineageOf(j) && e.attempt < j.attempt && e.conclusion != reconcile.ConclusionOther {
				o.PriorFailures++
			}
		}
		if j.status == reconcile.JobCompleted {
			o.Conclusion, o.Concluded, o.CompletedAt = j.conclusion, concluded(j.conclusion), j.completedAt
		}
		if active {
			o.RunStatus = reconcile.JobInProgress
		}
		return o, true, nil
	}
	return reconcile.JobOutcome{}, false, nil
}

// RerunJob queues the job again in a new attempt of its run, as GitHub does, under a
// new id; its dependent stage follows it.
func (g ghView) RerunJob(_ context.Context, repo reconcile.Scope, id int64) error {
	w := g.p.w
	if err := g.p.call(fmt.Sprintf("re-running job %d", id)); err != nil {
		return err
	}
	j, ok := w.jobs[id]
	if !ok || j.repo != repo || j.status != reconcile.JobCompleted {
		return fmt.Errorf("re-running job %d: GitHub answered 403 (not a completed job)", id)
	}
	latest, active := w.runState(j.runID)
	if active {
		return fmt.Errorf("re-running job %d: GitHub answered 403 (its run is not completed)", id)
	}
	n := &job{id: w.id(), runID: j.runID, repo: j.repo, labels: slices.Clone(j.labels), status: reconcile.JobWaiting, created: w.now,
		attempt: latest + 1, lineage: w.lineageOf(j), next: j.next}
	j.next = nil
	w.jobs[n.id] = n
	w.reruns++
	w.log("pass %d: job %d re-run as job %d (attempt %d)", g.p.id, j.id, n.id, n.attempt)
	return nil
}

// PollFacts is never asked: the simulation runs without a Budget.
func (g ghView) PollFacts([]reconcile.Scope) reconcile.PollFacts { return reconcile.PollFacts{} }

func (g ghView) Registrations(_ context.Context, scope reconcile.Scope) ([]reconcile.Registration, error) {
	w := g.p.w
	if err := g.p.call("listing registrations of " + scope.String()); err != nil {
		return nil, err
	}
	var out []reconcile.Registration
	for _, id := range sortedKeys(w.regs) {
		if r := w.regs[id]; r.Scope == scope {
			out = append(out, r.Registration)
		}
	}
	return out, nil
}

func (g ghView) FindRegistration(ctx context.Context, scope reconcile.Scope, name string) (reconcile.Registration, bool, error) {
	regs, err := g.Registrations(ctx, scope)
	if err != nil {
		return reconcile.Registration{}, false, err
	}
	i := slices.IndexFunc(regs, func(r reconcile.Registration) bool { return r.Name == name })
	if i < 0 {
		return reconcile.Registration{}, false, nil
	}
	return regs[i], true, nil
}

func (g ghView) GenerateJITConfig(ctx context.Context, scope reconcile.Scope, name string, labels []string) (reconcile.Registration, reconcile.Secret, error) {
	w, p := g.p.w, g.p
	p.jits++
	if err := p.call("generate-jitconfig " + name); err != nil {
		return reconcile.Registration{}, "", err
	}
	if r := w.regByName(name); r != nil && r.Scope == scope {
		w.log("pass %d: jit %s: 409, name taken", p.id, name)
		return reconcile.Registration{}, "", reconcile.ErrNameTaken
	}
	id := w.id()
	r := &registration{Registration: reconcile.Registration{ID: id, Name: name, Scope: scope, Labels: slices.Clone(labels)},
		jit: fmt.Sprintf("jit-%d", id)}
	w.regs[id] = r
	w.log("pass %d: registered %s", p.id, name)
	// Invariant 9: while a pool is in backoff (its platform refused a create and none
	// was made since), a pass registers at most one of its runners: the probe.
	if pool := poolOf(w.Cfg, name); p.held[pool] {
		if p.heldRegs[pool]++; p.heldRegs[pool] > 1 {
			w.violate("invariant 9: pass %d registered %d runners of pool %s while it is in backoff", p.id, p.heldRegs[pool], pool)
		}
	}
	if w.trouble && w.chance(w.P.Crash) {
		p.dead = true
		w.passFaults++
		w.log("pass %d: dies after registering %s, before creating it", p.id, name)
	}
	if !p.dead && p.jits == 1 && p.depth == 0 && w.trouble && w.chance(w.P.Overlap) {
		// The other pass sees this registration with no machine yet.
		w.passFaults++ // an overlap makes this pass's view stale: not a clean pass
		w.log("pass %d: another pass starts between registering %s and creating it", p.id, name)
		w.runPass(ctx, p.depth+1)
	}
	return r.Registration, reconcile.Secret(r.jit), nil
}

func (g ghView) RemoveRegistration(_ context.Context, scope reconcile.Scope, id int64) error {
	w := g.p.w
	if err := g.p.call(fmt.Sprintf("removing registration %d", id)); err != nil {
		return err
	}
	r, ok := w.regs[id]
	if !ok || r.Scope != scope {
		return nil
	}
	if r.Busy {
		return reconcile.ErrRunnerBusy
	}
	delete(w.regs, id)
	w.log("pass %d: removed registration %s", g.p.id, r.Name)
	return nil
}
