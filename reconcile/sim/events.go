package sim

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// What happens in the world between passes: runs and jobs come, runners boot, take
// jobs and end, machines are preempted.

// Step advances the world by one step.
func (w *World) Step() {
	w.now = w.now.Add(w.P.Step)
	if w.arrive {
		for n := w.poisson(w.P.ArrivalRate); n > 0; n-- {
			w.newRun()
		}
	}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		switch {
		case j.status == reconcile.JobWaiting && j.hosted && w.chance(0.2):
			w.finishJob(j, "served by a GitHub-hosted runner")
		case j.status == reconcile.JobWaiting && j.unassignable && w.now.Sub(j.created) >= unassignableFor:
			w.finishJob(j, whyCancelled+": GitHub never gave it to a runner")
		case j.status == reconcile.JobWaiting && w.trouble && w.chance(w.P.CancelRate):
			w.finishJob(j, whyCancelled+" while queued")
		case j.status == reconcile.JobInProgress && !j.failAt.IsZero():
			if !j.failAt.After(w.now) {
				j.status, j.conclusion, j.completedAt = reconcile.JobCompleted, reconcile.ConclusionFailed, w.now
				w.log("job %d failed: its runner %s lost communication with the server", j.id, j.runner)
			}
		case j.status == reconcile.JobInProgress && !j.doneAt.After(w.now):
			w.finishJob(j, "done")
		}
	}
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		switch {
		case m.finished:
		case !m.offAt.IsZero() && !m.offAt.After(w.now):
			m.finished = true
			w.log("machine %s powered off", m.name)
		case !m.started && !m.bootAt.IsZero() && !m.bootAt.After(w.now):
			w.boot(m)
		case w.trouble && w.chance(w.P.Preempt):
			w.preempt(m)
		}
	}
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		if !r.offlineAt.IsZero() && !r.offlineAt.After(w.now) {
			r.Online, r.Busy, r.offlineAt = false, false, time.Time{}
			w.log("registration %s noticed offline", r.Name)
		}
	}
	w.assign()
	w.recordSpent()
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		switch {
		case !r.Online || r.Busy:
			r.idleSince = time.Time{}
		case r.idleSince.IsZero():
			r.idleSince = w.now
		}
	}
}

// poisson draws from a Poisson distribution of that mean (Knuth's method).
func (w *World) poisson(mean float64) int {
	limit, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= w.rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

func (w *World) newRun() {
	repo := w.repos[w.rng.IntN(len(w.repos))]
	runID := w.id()
	first := w.newJob(runID, repo)
	if w.chance(w.P.StageShare) {
		first.next = &job{runID: runID, repo: repo}
		first.next.labels, first.next.hosted = w.pickLabels()
	}
	w.jobs[first.id] = first
	w.log("job %d queued in %s %v (unassignable: %v)", first.id, repo, first.labels, first.unassignable)
}

func (w *World) pickLabels() ([]string, bool) {
	if w.chance(w.P.HostedShare) {
		return []string{"ubuntu-latest"}, true
	}
	return slices.Clone(jobLabels[w.rng.IntN(len(jobLabels))]), false
}

func (w *World) newJob(runID int64, repo reconcile.Scope) *job {
	j := &job{id: w.id(), runID: runID, repo: repo, status: reconcile.JobWaiting, created: w.now, attempt: 1}
	j.labels, j.hosted = w.pickLabels()
	j.unassignable = !j.hosted && w.chance(w.P.Unassignable)
	return j
}

func (w *World) finishJob(j *job, why string) {
	j.status, j.completedAt = reconcile.JobCompleted, w.now
	switch {
	case why == "done":
		j.conclusion = reconcile.ConclusionOther
		w.served[w.lineageOf(j)] = true
	case strings.HasPrefix(why, whyCancelled):
		j.conclusion = reconcile.ConclusionCancelled
		w.served[w.lineageOf(j)] = true // ended by a person: nothing left to serve
	default:
		j.conclusion = reconcile.ConclusionOther // served elsewhere
	}
	w.log("job %d %s", j.id, why)
	if j.runner != "" {
		if r := w.regByName(j.runner); r != nil && r.Busy && r.offlineAt.IsZero() {
			delete(w.regs, r.ID) // an ephemeral runner deregisters after its job
			w.log("registration %s removed by GitHub after job %d", r.Name, j.id)
		}
		if m, ok := w.mach[j.runner]; ok && !m.finished && m.offAt.IsZero() {
			m.offAt = w.now.Add(w.dur(5*time.Second, 30*time.Second))
		}
	}
	if n := j.next; n != nil && why == "done" {
		// The dependent stage queues inside the run that is now in progress.
		n.id, n.status, n.created, n.attempt = w.id(), reconcile.JobWaiting, w.now, j.attempt
		w.jobs[n.id] = n
		w.log("job %d queued in running run %d of %s %v", n.id, n.runID, n.repo, n.labels)
	}
}

func (w *World) regByName(name string) *registration {
	for _, id := range sortedKeys(w.regs) {
		if w.regs[id].Name == name {
			return w.regs[id]
		}
	}
	return nil
}

func (w *World) boot(m *machine) {
	m.started = true
	r := w.regByName(m.name)
	if r == nil || r.jit != m.jit || r.Scope != m.scope {
		// Its registration is gone or was replaced: the runner cannot start, and the
		// startup script powers the machine off.
		w.log("machine %s cannot register (registration gone); powering off", m.name)
		m.offAt = w.now.Add(10 * time.Second)
		return
	}
	r.Online = true
	w.log("runner %s online", m.name)
}

func (w *World) preempt(m *machine) {
	m.finished, m.preempted = true, w.now
	w.log("machine %s preempted", m.name)
	r := w.regByName(m.name)
	if r == nil {
		return
	}
	for _, id := range sortedKeys(w.jobs) {
		if j := w.jobs[id]; j.runner == m.name && j.status == reconcile.JobInProgress {
			// GitHub notices the runner gone a while later and fails the job; it never
			// queues it again.
			j.failAt = w.now.Add(w.dur(30*time.Second, 3*time.Minute))
			w.killed[w.lineageOf(j)]++
			w.log("job %d lost its runner %s", j.id, m.name)
		}
	}
	r.offlineAt = w.now.Add(w.dur(30*time.Second, 2*time.Minute))
}

// lineageOf is the id of the job's first attempt.
func (w *World) lineageOf(j *job) int64 {
	if j.lineage == 0 {
		j.lineage = j.id
	}
	return j.lineage
}

// runState is the run's latest attempt and whether any job of it is still queued or
// running.
func (w *World) runState(runID int64) (latest int, active bool) {
	for _, j := range w.jobs {
		if j.runID != runID {
			continue
		}
		latest = max(latest, j.attempt)
		if j.status != reconcile.JobCompleted {
			active = true
		}
	}
	return latest, active
}

// assign gives each idle online runner the oldest queued job its labels cover in its
// repository, as GitHub does, whatever job the runner was made for.
func (w *World) assign() {
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		m, ok := w.mach[r.Name]
		if !r.Online || r.Busy || !r.offlineAt.IsZero() || !ok || m.finished {
			continue
		}
		var best *job
		for _, jid := range sortedKeys(w.jobs) {
			j := w.jobs[jid]
			// A repository's runner takes its repository's jobs; an organisation's, any of
			// the organisation's.
			inScope := j.repo == r.Scope || r.Scope.Repo == "" && j.repo.Owner == r.Scope.Owner
			if j.status != reconcile.JobWaiting || j.hosted || j.unassignable || !inScope || !covers(r.Labels, j.labels) {
				continue
			}
			if best == nil || j.created.Before(best.created) {
				best = j
			}
		}
		if best == nil {
			continue
		}
		best.status, best.runner = reconcile.JobInProgress, r.Name
		best.doneAt = w.now.Add(w.dur(30*time.Second, w.P.MaxJobLength))
		if best.length > 0 {
			best.doneAt = w.now.Add(best.length)
		}
		r.Busy = true
		w.log("runner %s (made for job %d) takes job %d", r.Name, m.jobID, best.id)
	}
}

func covers(have, want []string) bool {
	for _, x := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, x) }) {
			return false
		}
	}
	return true
}
