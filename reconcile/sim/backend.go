package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// backendView is the world as a runner platform, for one pass.
type backendView struct{ p *pass }

// Options implements reconcile.Backend: one way to make a runner.
func (b backendView) Options(string) []string { return nil }

// Describe implements reconcile.Backend: the world's errors stand as they are.
func (b backendView) Describe() (string, string) { return "", "" }

func (b backendView) List(context.Context) ([]reconcile.Runner, error) {
	w := b.p.w
	if err := b.p.call("listing runners"); err != nil {
		return nil, err
	}
	var out []reconcile.Runner
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		if w.P.HideBooting && !m.started && !m.finished {
			continue
		}
		ph := reconcile.PhaseActive
		if m.finished {
			ph = reconcile.PhaseFinished
		}
		out = append(out, reconcile.Runner{Name: m.name, Pool: m.pool, Scope: m.scope, Repo: m.repo, JobID: m.jobID, CreatedAt: m.created, Phase: ph,
			PreemptedAt: m.preempted})
	}
	return out, nil
}

func (b backendView) Create(_ context.Context, spec reconcile.RunnerSpec) error {
	w := b.p.w
	if err := b.p.call("creating " + spec.Name); err != nil {
		return err
	}
	if _, ok := w.mach[spec.Name]; ok {
		return nil
	}
	if o := w.outage[spec.Pool]; w.trouble && w.now.Before(o.until) {
		w.passFaults++ // the platform's weather rightly delays the pool's jobs
		w.backoff[spec.Pool], b.p.held[spec.Pool] = true, true
		w.restartShare(spec.Pool)
		w.log("pass %d: create %s refused: %s", b.p.id, spec.Name, o.class)
		return reconcile.Classify(o.class, fmt.Errorf("creating %s: %s until %s", spec.Name, o.class, o.until.Format("15:04:05")))
	}
	w.backoff[spec.Pool], b.p.held[spec.Pool] = false, false
	// Invariant 6: no second runner for a job beside a create under way that the pass
	// could see: a fresh registration of ours for the same job, made before this pass
	// began, whose machine does not exist yet. (One made after the pass looked is a
	// race no listing can close; the surplus rule removes the spare runner.)
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		if id > b.p.seen {
			continue
		}
		jobID, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
		at, known := r.Registered()
		// The same job, or, for a warm runner (which has none), the same slot.
		same := jobID == spec.JobID && !reconcile.IsWarmName(w.Cfg.NamePrefix, spec.Name) && !reconcile.IsWarmName(w.Cfg.NamePrefix, r.Name) ||
			reconcile.IsWarmName(w.Cfg.NamePrefix, spec.Name) && warmSlot(r.Name) == warmSlot(spec.Name)
		if ours && !r.made && r.Name != spec.Name && same && known && w.now.Sub(at) < reconcile.RegistrationGrace {
			w.violate("invariant 6: created %s beside %s, registered %v ago and still being created", spec.Name, r.Name, w.now.Sub(at))
		}
	}
	m := &machine{name: spec.Name, pool: spec.Pool, scope: spec.Scope, repo: spec.Repo, jobID: spec.JobID, created: w.now, jit: spec.JITConfig.Reveal()}
	if !w.chance(w.P.NeverBoot) {
		m.bootAt = w.now.Add(w.dur(20*time.Second, 3*time.Minute))
	}
	w.mach[spec.Name] = m
	if r := w.regByName(spec.Name); r != nil && r.jit == m.jit {
		r.made = true
	}
	w.log("pass %d: created machine %s (boots: %v)", b.p.id, spec.Name, !m.bootAt.IsZero())
	w.created = append(w.created, Made{Pool: spec.Pool, Repo: spec.Repo, JobID: spec.JobID, At: w.now})
	w.checkFairShare(b.p, spec)
	active := 0
	for _, o := range w.mach {
		if o.pool == m.pool && !o.finished {
			active++
		}
	}
	if p := w.Cfg.Pool(m.pool); p != nil && active > p.MaxRunners {
		w.violate("invariant 2: pool %s has %d active runners, max_runners is %d", m.pool, active, p.MaxRunners)
	}
	return nil
}

func (b backendView) Delete(_ context.Context, r reconcile.Runner) error {
	w := b.p.w
	if err := b.p.call("deleting " + r.Name); err != nil {
		return err
	}
	m, ok := w.mach[r.Name]
	if !ok {
		return nil
	}
	if reg := w.regByName(m.name); reg != nil && reg.Busy && reg.offlineAt.IsZero() && !m.finished {
		if p := w.Cfg.Pool(m.pool); p == nil || w.now.Sub(m.created) < time.Duration(p.MaxLifetime) {
			w.violate("invariant 1: deleted runner %s while it runs a job", m.name)
		}
		for _, id := range sortedKeys(w.jobs) {
			if j := w.jobs[id]; j.runner == m.name && j.status == reconcile.JobInProgress {
				j.status = reconcile.JobCompleted
				w.log("job %d killed with its runner", j.id)
			}
		}
		reg.offlineAt = w.now.Add(time.Minute)
	}
	delete(w.mach, r.Name)
	w.log("pass %d: deleted machine %s", b.p.id, r.Name)
	return nil
}
