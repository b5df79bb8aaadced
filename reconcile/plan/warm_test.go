package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func warmConfig(t *testing.T, pool string) *Config {
	t.Helper()
	cfg, err := Load([]byte("github: {repos: [octo-org/app]}\npools:\n" + pool))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return cfg
}

// Weekdays 08:00–19:00 Europe/Berlin keep 5 warm, Saturday mornings 2, otherwise the
// pool's 1. Times are the zone's wall clock on both sides of a daylight saving change.
func TestMinIdleAt(t *testing.T) {
	t.Parallel()
	cfg := warmConfig(t, `  - name: arm64
    labels: [self-hosted, ARM64]
    max_runners: 10
    min_idle: 1
    warm_repos: [octo-org/app]
    min_idle_schedule:
      time_zone: Europe/Berlin
      windows:
        - {days: [mon-fri], from: "08:00", to: "19:00", min_idle: 5}
        - {days: [sat], from: "09:00", to: "12:00", min_idle: 2}
`)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	pool := cfg.Pools[0]
	for _, tt := range []struct {
		when time.Time
		want int
	}{
		{at("2026-11-25 07:59"), 1}, // a Wednesday, before the window
		{at("2026-11-25 08:00"), 5}, // its start is in it
		{at("2026-11-25 18:59"), 5},
		{at("2026-11-25 19:00"), 1}, // its end is not
		{at("2026-11-28 10:00"), 2}, // Saturday's window
		{at("2026-11-29 10:00"), 1}, // Sunday: none
		// Summer time starts Sunday 29 March 2026 (02:00 → 03:00); on Monday 08:00 is
		// 06:00 UTC, a week before it was 07:00 UTC.
		{time.Date(2026, 3, 23, 7, 0, 0, 0, time.UTC), 5},
		{time.Date(2026, 3, 30, 6, 0, 0, 0, time.UTC), 5},
		{time.Date(2026, 3, 30, 5, 59, 0, 0, time.UTC), 1},
		{time.Date(2026, 3, 30, 17, 0, 0, 0, time.UTC), 1}, // 19:00 summer time
		// Winter time is back on Sunday 25 October 2026: Monday 08:00 is 07:00 UTC again.
		{time.Date(2026, 10, 26, 6, 30, 0, 0, time.UTC), 1},
		{time.Date(2026, 10, 26, 7, 0, 0, 0, time.UTC), 5},
	} {
		if got := pool.MinIdleAt(tt.when); got != tt.want {
			t.Errorf("MinIdleAt(%v) = %d, want %d", tt.when.In(berlin), got, tt.want)
		}
	}
}

func TestWarmKeys_Rejected(t *testing.T) {
	t.Parallel()
	const base = "  - name: arm64\n    labels: [self-hosted, ARM64]\n    max_runners: 4\n"
	for _, tt := range []struct{ pool, scope, want string }{
		{base + "    min_idle: 5\n    warm_repos: [octo-org/app]\n", "", "pools[0].min_idle: 5 is not between 0 and max_runners"},
		{base + "    min_idle: 1\n", "", "pools[0].warm_repos"},
		{base + "    min_idle: 1\n    warm_repos: [octo-org]\n", "", "pools[0].warm_repos[0]"},
		{base + "    min_idle: 1\n    warm_repos: [octo-org/app]\n", "org", "pools[0].warm_repos: org-scoped"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {time_zone: Mars/Olympus, windows: [{days: [mon], from: '08:00', to: '09:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.time_zone"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [monday], from: '08:00', to: '09:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.windows[0].days[0]"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '22:00', to: '02:00', min_idle: 1}]}\n", "", "two windows"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '24:00', to: '24:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.windows[0].from"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '8:00', to: '09:00', min_idle: 1}]}\n", "", "HH:MM"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '08:00', to: '09:00', min_idle: 9}]}\n", "", "windows[0].min_idle"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: []}\n", "", "at least one window"},
	} {
		doc := "github: {repos: [octo-org/app]"
		if tt.scope != "" {
			doc += ", runner_scope: " + tt.scope
		}
		cfg, err := Load([]byte(doc + "}\npools:\n" + tt.pool))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%q) = %v, want an error naming %q", tt.pool, err, tt.want)
		}
	}
}

// warmTestConfig is testConfig with the arm64 pool keeping min_idle runners warm in
// repoA, 5 of them on weekdays 08:00–19:00 Europe/Berlin; max_runners 3.
func warmTestConfig(t *testing.T, minIdle int) Config {
	t.Helper()
	cfg := testConfig()
	cfg.GitHub.Repos = []string{repoA.String(), repoB.String()}
	p := &cfg.Pools[0]
	p.MinIdle, p.WarmRepos = minIdle, []string{repoA.String()}
	p.MinIdleSchedule = &WarmSchedule{TimeZone: "Europe/Berlin", Windows: []WarmWindow{{Days: []string{"mon-fri"}, From: "08:00", To: "19:00", MinIdle: 3}}}
	if err := validateWarm(p, "pools[0]", RunnerScopeRepo); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func warmRunner(slot int, age time.Duration) Runner {
	return Runner{Name: WarmRunnerName("gha", "arm64", repoA, slot, 0), Pool: "arm64", Scope: repoA, Repo: repoA, CreatedAt: t0.Add(-age)}
}

func warmCreate(slot, retry int) Create {
	return Create{RunnerSpec: RunnerSpec{Name: WarmRunnerName("gha", "arm64", repoA, slot, retry), Pool: "arm64", Scope: repoA, Repo: repoA,
		Labels: arm, MaxLifetime: 24 * time.Hour}, Reason: ReasonWarm}
}

func TestComputeWarm(t *testing.T) {
	t.Parallel()
	sunday := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)  // outside the window: min_idle 1
	monday := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)   // 08:00 in Berlin: the window's 3
	evening := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC) // 19:00 in Berlin: the window ended
	at := func(now time.Time, r Runner) Runner { r.CreatedAt = now.Add(t0.Sub(r.CreatedAt) * -1); return r }
	tests := []struct {
		name    string
		now     time.Time
		minIdle int
		obs     Observed
		want    Plan
	}{{
		name: "no jobs: min_idle warm runners are made", now: sunday, minIdle: 1,
		want: Plan{Create: []Create{warmCreate(1, 0)}},
	}, {
		name: "the schedule's window starts: up to its min_idle", now: monday, minIdle: 1,
		obs:  Observed{Runners: []Runner{at(monday, warmRunner(1, time.Hour))}, Regs: []Registration{reg(1, warmRunner(1, 0), true, false)}},
		want: Plan{Create: []Create{warmCreate(2, 0), warmCreate(3, 0)}},
	}, {
		// Summer time: 08:00 in Berlin is 06:00 UTC on Monday 30 March 2026.
		name: "the window starts at 08:00 local time after the change to summer time", now: time.Date(2026, 3, 30, 6, 0, 0, 0, time.UTC), minIdle: 0,
		want: Plan{Create: []Create{warmCreate(1, 0), warmCreate(2, 0), warmCreate(3, 0)}},
	}, {
		name: "an hour before it, nothing (min_idle 0)", now: time.Date(2026, 3, 30, 5, 0, 0, 0, time.UTC), minIdle: 0,
		want: Plan{},
	}, {
		name: "the window ends: back to min_idle, the surplus trimmed past idle_timeout", now: evening, minIdle: 1,
		obs: Observed{Runners: []Runner{at(evening, warmRunner(1, time.Hour)), at(evening, warmRunner(2, time.Hour)), at(evening, warmRunner(3, time.Minute))},
			Regs: []Registration{reg(1, warmRunner(1, 0), true, false), reg(2, warmRunner(2, 0), true, false), reg(3, warmRunner(3, 0), true, false)}},
		want: Plan{Delete: []Delete{ // the two past idle_timeout, the oldest first: the young one stays
			{Runner: at(evening, warmRunner(1, time.Hour)), Reg: regp(reg(1, warmRunner(1, 0), true, false)), Reason: ReasonSurplus},
			{Runner: at(evening, warmRunner(2, time.Hour)), Reg: regp(reg(2, warmRunner(2, 0), true, false)), Reason: ReasonSurplus},
		}},
	}, {
		name: "a queued job is demand on top of min_idle, and gets its runner first under max_runners", now: monday, minIdle: 1,
		obs:  Observed{Jobs: []Job{job(10, repoA, time.Minute, arm...)}},
		want: Plan{Create: []Create{create("arm64", repoA, 10, "gha-arm64-10"), warmCreate(1, 0), warmCreate(2, 0)}},
	}, {
		name: "a warm runner takes a job: its slot is held, the next slot is made", now: sunday, minIdle: 1,
		obs:  Observed{Runners: []Runner{at(sunday, warmRunner(1, time.Hour))}, Regs: []Registration{reg(1, warmRunner(1, 0), true, true)}},
		want: Plan{Create: []Create{warmCreate(2, 0)}},
	}, {
		name: "a warm runner idle past max_idle_age is replaced", now: sunday, minIdle: 1,
		obs: Observed{Runners: []Runner{at(sunday, warmRunner(1, 5*time.Hour))}, Regs: []Registration{reg(1, warmRunner(1, 0), true, false)}},
		want: Plan{Delete: []Delete{{Runner: at(sunday, warmRunner(1, 5*time.Hour)), Reg: regp(reg(1, warmRunner(1, 0), true, false)), Reason: ReasonRecycled}},
			Create: []Create{warmCreate(1, 1)}},
	}, {
		name: "a repository without warm_repos gets none", now: sunday, minIdle: 1,
		obs:  Observed{Jobs: []Job{job(11, repoB, time.Minute, arm...)}},
		want: Plan{Create: []Create{create("arm64", repoB, 11, "gha-arm64-11"), warmCreate(1, 0)}},
	}, {
		name: "a fresh warm registration of another pass counts as that runner", now: sunday, minIdle: 1,
		obs:  Observed{Regs: []Registration{{ID: 7, Name: WarmRunnerName("gha", "arm64", repoA, 1, 0), Scope: repoA, Labels: []string{RegisteredLabel(sunday.Add(-time.Minute))}}}},
		want: Plan{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Compute(tt.obs, warmTestConfig(t, tt.minIdle), tt.now)
			if diff := cmp.Diff(tt.want, got, ignorePools, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Compute() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
