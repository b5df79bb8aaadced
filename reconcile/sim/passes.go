package sim

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/internal/seam"
)

// errFault is an injected API or backend failure.
var errFault = errors.New("injected fault")

// errDead is what every call of a pass that died returns.
var errDead = errors.New("the pass's process is dead")

// outage is a pool's platform refusing creates until then, as class.
type outage struct {
	class reconcile.FailureClass
	until time.Time
}

// pass is one pass's view of the world: its calls can fail, and it can die.
type pass struct {
	w     *World
	seen  int64 // the world's last id when the pass began: what it could observe
	id    int
	dead  bool
	jits  int
	depth int
	// held holds the pools this pass knows to be in backoff: they were when it began
	// (the cache it read), or it met a refusal itself, and it has made none since.
	// heldRegs counts the registrations it made in them (invariant 9). A pass that
	// overlaps another cannot know what the other met meanwhile.
	held     map[string]bool
	heldRegs map[string]int
}

func (p *pass) call(what string) error {
	if p.dead {
		return errDead
	}
	if p.w.trouble && p.w.chance(p.w.P.Faults) {
		p.w.passFaults++
		p.w.log("pass %d: %s fails (injected)", p.id, what)
		return errFault
	}
	return nil
}

// RunPass runs one reconcile pass (a fresh process, as from cron) against the world,
// then checks the invariants that are judged per pass.
func (w *World) RunPass(ctx context.Context) {
	w.passes++
	w.passFaults = 0
	for _, pool := range w.Cfg.Pools {
		switch {
		case !w.trouble || w.now.Before(w.outage[pool.Name].until):
		case w.chance(w.P.Stockout):
			w.outage[pool.Name] = outage{reconcile.FailNoCapacity, w.now.Add(w.dur(time.Minute, 20*time.Minute))}
			w.log("pool %s: stockout until %s", pool.Name, w.outage[pool.Name].until.Format("15:04:05"))
		case w.chance(w.P.Quota):
			w.outage[pool.Name] = outage{reconcile.FailQuota, w.now.Add(w.dur(time.Minute, 20*time.Minute))}
			w.log("pool %s: quota reached until %s", pool.Name, w.outage[pool.Name].until.Format("15:04:05"))
		}
	}
	w.runPass(ctx, 0)
	w.checkAfterPass()
}

func (w *World) runPass(ctx context.Context, depth int) {
	p := &pass{w: w, id: w.passes*10 + depth, depth: depth, seen: w.nextID, heldRegs: map[string]int{}, held: maps.Clone(w.backoff)}
	rc := &reconcile.Reconciler{
		Config:             w.Cfg,
		GitHub:             ghView{p},
		Memo:               w.notes,
		Backends:           map[string]reconcile.Backend{},
		Now:                w.Now,
		Concurrency:        1, // deterministic order of calls
		BackendConcurrency: 4, // batches of four creates, started in order
	}
	seam.InOrder(rc)
	if w.planner != nil {
		seam.SetPlanner(rc, w.planner)
	}
	for _, pool := range w.Cfg.Pools {
		rc.Backends[pool.Name] = backendView{p}
	}
	sum, err := rc.RunOnce(ctx)
	for k, secs := range sum.Usage.Seconds {
		w.account(w.accounted, k.Pool, k.State, time.Duration(secs*float64(time.Second)))
	}
	w.log("pass %d done: %d created, %d deleted, %d deregistered, err=%v", p.id, sum.Created, sum.Deleted, sum.Deregistered, err != nil)
}
