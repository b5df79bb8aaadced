package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reconcile down's plan, a rule per case: nothing created (a queued job, a warm pool),
// every runner removed but a busy one until the wait is over and one whose state is
// unknown, every registration of ours without a runner removed but a busy one, and
// nothing removed on evidence the pass lacks.
func TestTeardown(t *testing.T) {
	t.Parallel()
	idle := runner("arm64", repoA, 1, 10*time.Minute)
	booting := runner("arm64", repoA, 2, time.Minute)
	busy := runner("arm64", repoA, 3, time.Hour)
	done := finished(runner("x64", repoB, 4, time.Hour))
	unknown := runner("x64", repoB, 5, time.Minute)
	ghost := Registration{ID: 16, Name: RunnerName("gha", "arm64", 6, 0), Scope: repoA}
	pending := registered(Registration{ID: 17, Name: RunnerName("gha", "arm64", 7, 0), Scope: repoA}, time.Second) // another pass's create
	busyGhost := Registration{ID: 18, Name: RunnerName("gha", "arm64", 8, 0), Scope: repoA, Busy: true}
	foreign := Registration{ID: 19, Name: "someone-elses", Scope: repoA}
	obs := Observed{
		Jobs:    []Job{job(7, repoA, time.Minute, arm...), job(9, repoA, time.Minute, arm...)},
		Runners: []Runner{idle, booting, busy, done, unknown},
		Regs:    []Registration{reg(11, idle, true, false), reg(13, busy, true, true), ghost, pending, busyGhost, foreign},
		Blind:   Blind{Regs: map[Scope]bool{repoB: true}},
	}
	cfg := testConfig()
	cfg.Pools[0].MinIdle = 2
	want := Plan{
		Delete: []Delete{
			{Runner: idle, Reg: regp(reg(11, idle, true, false)), Reason: ReasonDown},
			{Runner: booting, Reason: ReasonDown},
			{Runner: done, Reason: ReasonFinished},
		},
		Deregister: []Deregister{{Reg: ghost, Reason: ReasonGhost}, {Reg: pending, Reason: ReasonDown}},
	}
	got := Teardown(obs, cfg, t0, false)
	if diff := cmp.Diff(want, got, ignorePools); diff != "" {
		t.Errorf("waiting for the busy runner (-want +got):\n%s", diff)
	}
	for _, p := range got.Pools {
		if p.Create != 0 {
			t.Errorf("pool %s plans %d creates", p.Pool, p.Create)
		}
	}

	// The wait is over: the busy runner goes too, its registration with it (GitHub
	// refuses to remove a busy registration first).
	want.Delete = []Delete{want.Delete[0], want.Delete[1], {Runner: busy, Reason: ReasonDown}, want.Delete[2]}
	if diff := cmp.Diff(want, Teardown(obs, cfg, t0, true), ignorePools); diff != "" {
		t.Errorf("the wait over (-want +got):\n%s", diff)
	}

	// A pool whose runners could not be listed: no registration is removed, since a
	// runner not seen may own it.
	obs.Blind.Pools = map[string]bool{"x64": true}
	if got := Teardown(obs, cfg, t0, false); len(got.Deregister) != 0 {
		t.Errorf("deregisters %v while a pool is blind", got.Deregister)
	}
}
