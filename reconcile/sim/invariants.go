package sim

import (
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// checkSupply judges invariant 3: per pool and repository, at least as many booting or
// idle runners as queued jobs that have waited two clean passes, while the pool has room.
func (w *World) checkSupply(clean bool) {
	// Invariant 3: per pool and repository, at least as many booting or idle runners
	// as queued jobs that have waited two clean passes, while the pool has room.
	type key struct {
		pool string
		repo reconcile.Scope
	}
	waiting := map[key][]int64{}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		if j.status != reconcile.JobWaiting || j.hosted {
			continue
		}
		if clean {
			j.cleanRuns++
		}
		pool := reconcile.MatchPool(w.Cfg.Pools, j.labels)
		if pool == nil || j.cleanRuns < 2 || j.unassignable || w.backoff[pool.Name] {
			continue // a pool in backoff serves its jobs once its probe works (invariant 9)
		}
		k := key{pool.Name, j.repo}
		waiting[k] = append(waiting[k], j.id)
	}
	keys := make([]key, 0, len(waiting))
	for k := range waiting {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.pool+a.repo.String(), b.pool+b.repo.String()) })
	if !clean {
		return
	}
	for _, k := range keys {
		if supply, active := w.supplyFor(k.pool, k.repo, waiting[k]); active < w.Cfg.Pool(k.pool).MaxRunners && supply < len(waiting[k]) {
			w.violate("invariant 3: jobs %v of %s in pool %s waited two passes; %d runners booting or idle for them, pool has room (%d active)", waiting[k], k.repo, k.pool, supply, active)
		}
	}
}

// supplyFor counts the pool's runners booting or idle for repo's jobs ids, and the
// pool's active runners.
func (w *World) supplyFor(pool string, repo reconcile.Scope, ids []int64) (supply, active int) {
	for _, m := range w.mach {
		if m.pool != pool || m.finished {
			continue
		}
		active++
		if m.repo != repo && m.scope != repo {
			continue
		}
		r := w.regByName(m.name)
		booting := r != nil && !r.Online && w.now.Sub(m.created) < time.Duration(w.Cfg.Pool(pool).BootTimeout)
		idle := r != nil && r.Online && !r.Busy
		if booting || idle {
			supply++
		}
	}
	// A registration with no machine yet, younger than the grace, is a create
	// under way (or, for that long, a dead pass's leftover): it counts.
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		jobID, _ := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
		at, known := r.Registered()
		if _, hasMachine := w.mach[r.Name]; !hasMachine && known && w.now.Sub(at) < reconcile.RegistrationGrace &&
			r.Scope == repo && slices.Contains(ids, jobID) {
			supply++
		}
	}
	return supply, active
}

// checkAfterPass judges invariants 3 and 5, counting only passes in which nothing was
// injected: a fault may rightly delay what a pass does.
func (w *World) checkAfterPass() {
	clean := w.passFaults == 0
	w.checkSupply(clean)
	w.checkHeldIdle(clean)
	// Invariant 5: a registration of ours without a runner, offline and idle, whose job
	// no longer waits (a warm runner's: past RegistrationGrace), lasts at most one clean
	// pass.
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		jobID, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
		_, hasMachine := w.mach[r.Name]
		j, known := w.jobs[jobID]
		queued := known && j.status == reconcile.JobWaiting
		// A warm runner has no job: its registration is a create under way (another
		// pass's, or a dead pass's) until RegistrationGrace has passed.
		at, stamped := r.Registered()
		fresh := reconcile.IsWarmName(w.Cfg.NamePrefix, r.Name) && stamped && w.now.Sub(at) < reconcile.RegistrationGrace
		if !ours || hasMachine || r.Online || r.Busy || queued || fresh {
			r.cleanRuns = 0
			continue
		}
		if clean {
			r.cleanRuns++
		}
		if r.cleanRuns >= 2 {
			w.violate("invariant 5: registration %s has had no runner for %d clean passes", r.Name, r.cleanRuns)
			r.cleanRuns = 0
		}
	}
}

// warmSlot is a warm runner's name without its retry suffix.
func warmSlot(name string) string {
	if i := strings.LastIndex(name, "-r"); i > 0 && i > strings.LastIndex(name, "-w") {
		return name[:i]
	}
	return name
}

// warmScope reports whether the pool keeps runners warm in the scope.
func (w *World) warmScope(p *reconcile.Pool, scope reconcile.Scope) bool {
	return slices.Contains(w.Cfg.WarmScopes(*p), scope)
}

// idleIn counts the idle runners of a pool in a scope.
func (w *World) idleIn(pool string, scope reconcile.Scope) int {
	n := 0
	for _, m := range w.mach {
		if r := w.regByName(m.name); m.pool == pool && m.scope == scope && !m.finished && r != nil && r.Online && !r.Busy {
			n++
		}
	}
	return n
}

// checkHeldIdle judges invariant 7: a runner is never held idle past idle_timeout and
// one pass for a job GitHub will not give it. A runner is held from when it is idle
// and, if unassignable jobs of its pool and repository wait, from when the newest of
// them queued: that job's wait is the only evidence there is.
func (w *World) checkHeldIdle(clean bool) {
	bound := w.P.Step*time.Duration(w.P.PassEvery) + w.P.Step
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		m, ok := w.mach[r.Name]
		if !ok || m.finished || r.idleSince.IsZero() || w.Cfg.Pool(m.pool) == nil {
			r.heldRuns = 0
			continue
		}
		pool := w.Cfg.Pool(m.pool)
		if w.warmScope(pool, m.scope) && w.idleIn(m.pool, m.scope) <= pool.MinIdleAt(w.now) {
			r.heldRuns = 0 // kept idle on purpose: one of min_idle (a job's runner counts too)
			continue
		}
		since := r.idleSince
		for _, jid := range sortedKeys(w.jobs) {
			j := w.jobs[jid]
			if jp := reconcile.MatchPool(w.Cfg.Pools, j.labels); j.status == reconcile.JobWaiting && j.unassignable && jp != nil &&
				jp.Name == m.pool && j.repo == m.scope && j.created.After(since) {
				since = j.created
			}
		}
		if w.now.Sub(since) <= time.Duration(pool.IdleTimeout)+bound {
			r.heldRuns = 0
			continue
		}
		if clean {
			r.heldRuns++
		}
		if r.heldRuns >= 2 {
			w.violate("invariant 7: runner %s held idle %v (idle_timeout %v)", r.Name, w.now.Sub(since), time.Duration(pool.IdleTimeout))
			r.heldRuns = 0
		}
	}
}
