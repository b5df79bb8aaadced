package sim

import (
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// A scripted world: no random arrivals and no trouble; the test queues the jobs.

// Quiet stops random arrivals and every kind of trouble (faults, crashes, overlaps,
// preemption, cancellations, outages).
func (w *World) Quiet() { w.arrive, w.trouble = false, false }

// Queue queues a job of one self-hosted stage in repo, with labels, that runs for
// length once a runner takes it, and returns its id.
func (w *World) Queue(repo reconcile.Scope, labels []string, length time.Duration) int64 {
	runID := w.id()
	j := &job{id: w.id(), runID: runID, repo: repo, labels: labels, status: reconcile.JobWaiting, created: w.now, attempt: 1, length: length}
	w.jobs[j.id] = j
	w.log("job %d queued in %s %v (scripted)", j.id, repo, labels)
	return j.id
}

// Made is a runner the reconciler created: in which pool, for which repository's job,
// when.
type Made struct {
	Pool  string
	Repo  reconcile.Scope
	JobID int64
	At    time.Time
}

// Created returns the runners made so far, in order.
func (w *World) Created() []Made { return append([]Made(nil), w.created...) }

// Active counts the pool's runners that hold a slot (not powered off), by the
// repository they were made for.
func (w *World) Active(pool string) map[reconcile.Scope]int {
	out := map[reconcile.Scope]int{}
	for _, m := range w.mach {
		if m.pool == pool && !m.finished {
			out[m.repo]++
		}
	}
	return out
}

// Started reports when a runner took the job; zero while it waits.
func (w *World) Started(id int64) bool {
	j, ok := w.jobs[id]
	return ok && j.status != reconcile.JobWaiting
}

// Calm stops the trouble (faults, crashes, overlaps, preemption, cancellations,
// outages) and keeps the random arrivals.
func (w *World) Calm() { w.trouble = false }

// recordSpent adds a step of each machine's time to the world's own record: booting
// until it starts (a machine that never boots stays there), then idle or busy as GitHub
// sees its registration; a started machine whose runner is gone is powering off.
func (w *World) recordSpent() {
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		if m.finished {
			continue
		}
		st := reconcile.StateBooting
		switch r := w.regByName(m.name); {
		case r != nil && r.Online && r.Busy:
			st = reconcile.StateBusy
		case r != nil && r.Online:
			st = reconcile.StateIdle
		case m.started:
			continue // its runner is done or cannot register: the machine powers off
		}
		w.account(w.spent, m.pool, st, w.P.Step)
	}
}

func (w *World) account(into map[string]map[reconcile.State]time.Duration, pool string, st reconcile.State, d time.Duration) {
	if into[pool] == nil {
		into[pool] = map[reconcile.State]time.Duration{}
	}
	into[pool][st] += d
}

// Spent returns the world's own record of a pool's runner time, by state, and what
// the reconciler's passes credited (reconcile.Usage).
func (w *World) Spent(pool string) (record, accounted map[reconcile.State]time.Duration) {
	return w.spent[pool], w.accounted[pool]
}
