package sim

import (
	"context"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

var (
	seedFlag     = flag.Uint64("sim.seed", 0, "run only this seed (0: the usual range)")
	seedsFlag    = flag.Int("sim.seeds", 60, "how many seeds to run")
	passesFlag   = flag.Int("sim.passes", 150, "passes per seed before the drain")
	durationFlag = flag.Duration("sim.duration", 0, "soak: keep running new seeds for this long")
	traceFlag    = flag.Bool("sim.trace", false, "print every event (with -sim.seed)")
)

// report fails the test with the seed, the violations, the trace that led to the first
// one, and the command that replays it.
func report(t *testing.T, seed uint64, w *World) {
	t.Helper()
	if len(w.Violations) == 0 {
		return
	}
	t.Errorf("seed %d: %d invariant violations, first: %s\nlast events:\n  %s\nreplay: go test ./reconcile/sim -run 'TestSimulation$' -sim.seed=%d -sim.trace -v",
		seed, len(w.Violations), w.Violations[0], strings.Join(w.Trace(), "\n  "), seed)
}

func simulate(seed uint64, passes int, planner func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan, verbose func(string)) *World {
	return simulateWith(seed, passes, DefaultParams(), planner, verbose)
}

func simulateWith(seed uint64, passes int, p Params, planner func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan, verbose func(string)) *World {
	w := New(seed, p)
	w.SetPlanner(planner)
	w.Verbose = verbose
	w.Run(context.Background(), passes)
	return w
}

// TestSimulation drives the real pass through thousands of simulated passes over many
// seeds and checks the lifecycle invariants after every step.
func TestSimulation(t *testing.T) {
	seeds := []uint64{}
	if *seedFlag != 0 {
		seeds = append(seeds, *seedFlag)
	} else {
		for s := range *seedsFlag {
			seeds = append(seeds, uint64(s+1))
		}
	}
	var verbose func(string)
	if *traceFlag {
		verbose = func(s string) { t.Log(s) }
	}
	total := 0
	start := time.Now()
	for i := 0; i < len(seeds) || (*durationFlag > 0 && time.Since(start) < *durationFlag); i++ {
		seed := uint64(i + 1)
		if i < len(seeds) {
			seed = seeds[i]
		}
		w := simulate(seed, *passesFlag, nil, verbose)
		total += w.passes
		report(t, seed, w)
		if t.Failed() {
			break
		}
	}
	t.Logf("%d simulated passes in %v", total, time.Since(start).Round(time.Millisecond))
}

// TestSimulationIsDeterministic: a seed replays exactly.
func TestSimulationIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := simulate(7, 60, nil, nil), simulate(7, 60, nil, nil)
	if !slices.Equal(a.Trace(), b.Trace()) {
		t.Error("two runs of seed 7 differ")
	}
}

// Each invariant bites: a planner (or, for invariant 2, which the pass itself guards, a
// platform listing) broken on purpose is caught.
func TestInvariantsBite(t *testing.T) {
	t.Parallel()
	without := func(why reconcile.Reason) func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan {
		return func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
			p := reconcile.Compute(obs, cfg, now)
			p.Delete = slices.DeleteFunc(p.Delete, func(d reconcile.Delete) bool { return d.Reason == why })
			p.Deregister = slices.DeleteFunc(p.Deregister, func(d reconcile.Deregister) bool { return d.Reason == why })
			return p
		}
	}
	tests := []struct {
		name      string
		invariant string
		planner   func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan
		broken    func(*Params)
	}{
		{
			// The peers' bug: a runner is "orphaned" once the job it was made for is no
			// longer queued, though it may be running another job.
			name: "deletes runners whose job is no longer queued", invariant: "invariant 1",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				p := reconcile.Compute(obs, cfg, now)
				queued := map[int64]bool{}
				for _, j := range obs.Jobs {
					queued[j.ID] = true
				}
				planned := map[string]bool{}
				for _, d := range p.Delete {
					planned[d.Runner.Name] = true
				}
				for _, r := range obs.Runners {
					if !queued[r.JobID] && !planned[r.Name] && now.Sub(r.CreatedAt) > time.Minute {
						p.Delete = append(p.Delete, reconcile.Delete{Runner: r, Reason: "orphaned"})
					}
				}
				return p
			},
		},
		{
			// The pass checks max_runners again before each create, whatever the
			// planner says; a listing that misses booting machines defeats both.
			name: "lists only machines that are up", invariant: "invariant 2",
			broken: func(p *Params) { p.HideBooting = true },
		},
		{
			// The other peers' bug: one runner per job, by name, so a job whose runner
			// took another job waits for a runner that will not come.
			name: "ties runners to jobs", invariant: "invariant 3",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				p := reconcile.Compute(obs, cfg, now)
				p.Create = slices.DeleteFunc(p.Create, func(c reconcile.Create) bool { return strings.Contains(c.Name, "-r") })
				return p
			},
		},
		{name: "never deletes finished runners", invariant: "invariant 4", planner: without(reconcile.ReasonFinished)},
		{
			// A registration with no machine yet is taken for a dead pass's leftover at
			// once, as before RegistrationGrace: a second runner beside a create under way.
			name: "ignores registration times", invariant: "invariant 6",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				regs := slices.Clone(obs.Regs)
				for i := range regs {
					regs[i].Labels = slices.DeleteFunc(slices.Clone(regs[i].Labels), func(l string) bool {
						return strings.HasPrefix(l, "reconcile-registered-")
					})
				}
				obs.Regs = regs
				return reconcile.Compute(obs, cfg, now)
			},
		},
		{
			// The old rule: a job GitHub will not assign still holds the idle runner.
			name: "lets unservable jobs hold runners", invariant: "invariant 7",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				p := reconcile.Compute(obs, cfg, now)
				if len(p.Unservable)+len(obs.Unservable) > 0 {
					p.Delete = slices.DeleteFunc(p.Delete, func(d reconcile.Delete) bool { return d.Reason == reconcile.ReasonSurplus })
				}
				return p
			},
		},
		{name: "never sweeps ghosts", invariant: "invariant 5", planner: without(reconcile.ReasonGhost)},
		{
			// Warm pools (one seed in three): a planner that makes no warm runner leaves
			// fewer than min_idle after the drain.
			name: "never keeps runners warm", invariant: "invariant 4",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				p := reconcile.Compute(obs, cfg, now)
				p.Create = slices.DeleteFunc(p.Create, func(c reconcile.Create) bool { return c.Reason == reconcile.ReasonWarm })
				return p
			},
		},
		{
			// A pool in backoff whose every waiting job is sent as a probe: the
			// registrations the backoff saves are spent again.
			name: "probes with every waiting job", invariant: "invariant 9",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				held := obs.Held
				obs.Held = nil
				p := reconcile.Compute(obs, cfg, now)
				for i := range p.Create {
					_, p.Create[i].Probe = held[p.Create[i].Pool]
				}
				return p
			},
		},
		{
			// A preempted runner deleted before GitHub ends its job takes the evidence
			// with it: the job is never re-run.
			name: "deletes preempted runners at once", invariant: "invariant 8",
			planner: func(obs reconcile.Observed, cfg reconcile.Config, now time.Time) reconcile.Plan {
				p := reconcile.Compute(obs, cfg, now)
				for _, r := range obs.Runners {
					if p.States[r.Name] == reconcile.StateHolding {
						p.Delete = append(p.Delete, reconcile.Delete{Runner: r, Reason: reconcile.ReasonFinished})
					}
				}
				return p
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := DefaultParams()
			if tt.broken != nil {
				tt.broken(&p)
			}
			for seed := uint64(1); seed <= 30; seed++ {
				w := simulateWith(seed, 150, p, tt.planner, nil)
				for _, v := range w.Violations {
					if strings.Contains(v, tt.invariant+":") {
						t.Logf("seed %d caught it: %s", seed, v)
						return
					}
				}
			}
			t.Errorf("a world that %s broke no %s in 30 seeds", tt.name, tt.invariant)
		})
	}
}
