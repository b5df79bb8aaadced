package reconcile_test

import (
	"math"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// A runner's life, seen by passes 10 s apart: it boots for 60 s, waits idle for 30 s,
// runs its job for 120 s, and ends. Each state's seconds are counted within one
// interval of the truth, and the job is counted served once.
func TestUsage_ARunnersTimeIsCountedByStateWithinAnInterval(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	j := w.queue(0, arm64...)
	const every = 10 * time.Second
	total := map[reconcile.State]float64{}
	served := 0
	name := reconcile.RunnerName("gha", "arm64", j.ID, 0)
	for tick := time.Duration(0); tick <= 240*time.Second; tick += every {
		switch tick {
		case 60 * time.Second: // online
			w.gh.SetRunner(name, true, false)
		case 90 * time.Second: // takes its job
			w.gh.Dequeue(j.ID)
			w.gh.SetRunner(name, true, true)
			w.gh.Ran(reconcile.JobOutcome{ID: j.ID, RunID: j.RunID, Repo: j.Repo, Labels: j.Labels, Status: reconcile.JobInProgress, RunnerName: name, RunAttempt: 1})
		case 210 * time.Second: // done: the ephemeral runner deregisters and its machine stops
			w.gh.Ran(reconcile.JobOutcome{ID: j.ID, RunID: j.RunID, Repo: j.Repo, Labels: j.Labels, Status: reconcile.JobCompleted,
				Conclusion: reconcile.ConclusionOther, RunnerName: name, RunAttempt: 1, CompletedAt: w.Now()})
			for _, r := range w.gh.Regs() {
				_ = w.gh.RemoveRegistration(t.Context(), r.Scope, r.ID)
			}
			w.backend.SetPhase(name, reconcile.PhaseFinished)
		}
		sum := w.mustPass(t)
		for k, v := range sum.Usage.Seconds {
			total[k.State] += v
		}
		for _, n := range sum.Usage.Served {
			served += n
		}
		w.Advance(every)
	}
	for st, want := range map[reconcile.State]float64{reconcile.StateBooting: 60, reconcile.StateIdle: 30, reconcile.StateBusy: 120} {
		if got := total[st]; math.Abs(got-want) > every.Seconds() {
			t.Errorf("%s: %.0f s counted, want %.0f within %v; all: %v", st, got, want, every, total)
		}
	}
	t.Logf("counted: %v", total)
	if served != 1 {
		t.Errorf("%d jobs counted served, want 1", served)
	}
}
