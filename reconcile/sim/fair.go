package sim

import (
	"slices"
	"strings"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// poolRepo is a repository's share of a pool.
type poolRepo struct {
	pool string
	repo reconcile.Scope
}

// checkFairShare judges invariant 10 at each runner the pass creates in a pool: a
// repository that holds no runner of the pool and has a job the pass could see waiting,
// with no runner being made for it, gets a runner within as many of the pool's creates as there are repositories with
// jobs waiting in it. A pass that met a fault (a listing, a create) is not judged: it
// may not have seen the repository's job at all.
func (w *World) checkFairShare(p *pass, made reconcile.RunnerSpec) {
	if w.passFaults > 0 {
		return
	}
	// A job with a registration or a machine named for it is being served (a pass's
	// create under way, or one that died after registering: the planner waits for it).
	covered := map[int64]bool{}
	for _, r := range w.regs {
		if id, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name); ours {
			covered[id] = true
		}
	}
	for _, m := range w.mach {
		covered[m.jobID] = true
	}
	// waiting: the repositories with a job that no runner is being made for; demand:
	// those with any job waiting in the pool, and the one this create serves.
	waiting, demand, holds := map[reconcile.Scope]bool{}, map[reconcile.Scope]bool{made.Repo: true}, map[reconcile.Scope]bool{}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		if id > p.seen || j.status != reconcile.JobWaiting || j.hosted || j.unassignable {
			continue
		}
		if pool := reconcile.MatchPool(w.Cfg.Pools, j.labels); pool != nil && pool.Name == made.Pool {
			demand[j.repo] = true
			if !covered[id] {
				waiting[j.repo] = true
			}
		}
	}
	for _, m := range w.mach {
		if m.pool == made.Pool && !m.finished && m.name != made.Name {
			holds[m.repo] = true
		}
	}
	repos := make([]reconcile.Scope, 0, len(waiting))
	for r := range waiting {
		repos = append(repos, r)
	}
	slices.SortFunc(repos, func(a, b reconcile.Scope) int { return strings.Compare(a.String(), b.String()) })
	for _, repo := range repos {
		k := poolRepo{made.Pool, repo}
		switch {
		case repo == made.Repo || holds[repo]:
			delete(w.skipped, k)
		default:
			w.skipped[k]++
			if w.skipped[k] > len(demand) {
				w.violate("invariant 10: %s has waited through %d of pool %s's creates holding none of its runners; %d repositories have jobs in it", repo, w.skipped[k], made.Pool, len(demand))
			}
		}
	}
	for k := range w.skipped {
		if k.pool == made.Pool && !waiting[k.repo] {
			delete(w.skipped, k)
		}
	}
}

// restartShare forgets the creates a pool's waiting repositories saw go to others: the
// platform refused the pool's create, and its backoff delays every repository alike;
// the share starts again when it creates again.
func (w *World) restartShare(pool string) {
	for k := range w.skipped {
		if k.pool == pool {
			delete(w.skipped, k)
		}
	}
}
