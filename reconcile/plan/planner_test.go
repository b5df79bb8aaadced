package plan

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t0    = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	repoA = Scope{Owner: "octo-org", Repo: "app"}
	repoB = Scope{Owner: "octo-org", Repo: "web"}
	arm   = []string{"self-hosted", "linux", "ARM64"}
	x64   = []string{"self-hosted", "linux", "x64"}
)

func testConfig() Config {
	return Config{
		NamePrefix: "gha",
		Pools: []Pool{
			{Name: "arm64", Labels: arm, MaxRunners: 3, BootTimeout: Duration(10 * time.Minute), IdleTimeout: Duration(5 * time.Minute), MaxLifetime: Duration(24 * time.Hour)},
			{Name: "x64", Labels: x64, MaxRunners: 5, BootTimeout: Duration(10 * time.Minute), IdleTimeout: Duration(5 * time.Minute), MaxLifetime: Duration(24 * time.Hour)},
		},
	}
}

func job(id int64, repo Scope, age time.Duration, labels ...string) Job {
	return Job{ID: id, RunID: id * 10, Repo: repo, Name: "build", Labels: labels, CreatedAt: t0.Add(-age)}
}

func runner(pool string, repo Scope, jobID int64, age time.Duration) Runner {
	return Runner{Name: RunnerName("gha", pool, jobID, 0), Pool: pool, Scope: repo, Repo: repo, JobID: jobID, CreatedAt: t0.Add(-age)}
}

func finished(r Runner) Runner { r.Phase = PhaseFinished; return r }

func public(j Job) Job   { j.Public = true; return j }
func fromFork(j Job) Job { j.FromFork = true; return j }

func named(r Runner, name string) Runner { r.Name = name; return r }

func reg(id int64, r Runner, online, busy bool) Registration {
	return Registration{ID: id, Name: r.Name, Scope: r.Scope, Online: online, Busy: busy}
}

func regp(g Registration) *Registration { return &g }

// registered gives a registration the label of a registration made age ago.
func registered(g Registration, age time.Duration) Registration {
	g.Labels = append(g.Labels, RegisteredLabel(t0.Add(-age)))
	return g
}

func create(pool string, repo Scope, jobID int64, name string) Create {
	labels := arm
	if pool == "x64" {
		labels = x64
	}
	return Create{RunnerSpec: RunnerSpec{Name: name, Pool: pool, Scope: repo, Repo: repo, JobID: jobID, RunID: jobID * 10, Labels: labels,
		MaxLifetime: 24 * time.Hour}, Reason: ReasonDemand}
}

// ignorePools leaves out of a plan's comparison the pools' status, the runners' states
// and the creates' QueuedAt, which TestComputePoolStatus, TestComputeQueueFacts and
// reconcile's TestStatus_ShowsThePlannersVerdict check; and the order of the creates,
// their turns and the jobs waiting for room, which TestFairShare checks.
var ignorePools = cmp.Options{cmpopts.IgnoreFields(Plan{}, "Pools", "States", "WaitingForRoom"), cmpopts.IgnoreFields(Create{}, "QueuedAt", "Turn"),
	cmpopts.SortSlices(func(a, b Create) bool { return a.Name < b.Name })} // the order of creates: fair_test.go

func TestCompute(t *testing.T) {
	t.Parallel()
	idleA := runner("arm64", repoA, 1, 10*time.Minute)
	busyA := runner("arm64", repoA, 2, time.Hour)
	young := runner("arm64", repoA, 3, time.Minute)
	old := runner("arm64", repoA, 4, 11*time.Minute)
	tests := []struct {
		name string
		obs  Observed
		want Plan
	}{
		{
			name: "queued job gets a runner named after it",
			obs:  Observed{Jobs: []Job{job(7, repoA, time.Minute, arm...)}},
			want: Plan{Create: []Create{create("arm64", repoA, 7, "gha-arm64-7")}},
		},
		{
			name: "busy runner is never deleted",
			obs:  Observed{Runners: []Runner{busyA}, Regs: []Registration{reg(1, busyA, true, true)}},
			want: Plan{},
		},
		{
			name: "busy runner past max_lifetime is deleted, its registration left to GitHub",
			obs: Observed{Runners: []Runner{runner("arm64", repoA, 2, 25*time.Hour)},
				Regs: []Registration{reg(1, runner("arm64", repoA, 2, 0), true, true)}},
			want: Plan{Delete: []Delete{{Runner: runner("arm64", repoA, 2, 25*time.Hour), Reason: ReasonExpired}}},
		},
		{
			name: "runner for job A serving job B leaves no job waiting",
			// Runner 2 was made for job 2, but GitHub gave it job 9: job 2 still waits.
			obs: Observed{Jobs: []Job{job(2, repoA, 3*time.Minute, arm...)}, Runners: []Runner{busyA},
				Regs: []Registration{reg(1, busyA, true, true)}},
			want: Plan{Create: []Create{create("arm64", repoA, 2, "gha-arm64-2-r1")}},
		},
		{
			name: "booting runner counts as supply",
			obs: Observed{Jobs: []Job{job(3, repoA, 2*time.Minute, arm...)}, Runners: []Runner{young},
				Regs: []Registration{reg(1, young, false, false)}},
			want: Plan{},
		},
		{
			name: "idle runner made for another job serves the queued one",
			obs: Observed{Jobs: []Job{job(8, repoA, time.Minute, arm...)}, Runners: []Runner{idleA},
				Regs: []Registration{reg(1, idleA, true, false)}},
			want: Plan{},
		},
		{
			name: "surplus idle runner deleted after idle_timeout",
			obs:  Observed{Runners: []Runner{idleA}, Regs: []Registration{reg(1, idleA, true, false)}},
			want: Plan{Delete: []Delete{{Runner: idleA, Reg: regp(reg(1, idleA, true, false)), Reason: ReasonSurplus}}},
		},
		{
			name: "surplus idle runner younger than idle_timeout is kept",
			obs:  Observed{Runners: []Runner{young}, Regs: []Registration{reg(1, young, true, false)}},
			want: Plan{},
		},
		{
			name: "surplus deletes idle runners before booting ones, only as many as the surplus",
			obs: Observed{
				Jobs:    []Job{job(20, repoA, time.Minute, arm...)},
				Runners: []Runner{idleA, runner("arm64", repoA, 5, 8*time.Minute)},
				Regs:    []Registration{reg(1, idleA, true, false), reg(2, runner("arm64", repoA, 5, 0), false, false)},
			},
			want: Plan{Delete: []Delete{{Runner: idleA, Reg: regp(reg(1, idleA, true, false)), Reason: ReasonSurplus}}},
		},
		{
			name: "boot timeout deletes and deregisters",
			obs:  Observed{Runners: []Runner{old}, Regs: []Registration{reg(1, old, false, false)}},
			want: Plan{Delete: []Delete{{Runner: old, Reg: regp(reg(1, old, false, false)), Reason: ReasonBootTimeout}}},
		},
		{
			name: "boot timeout is replaced when its job still waits",
			obs: Observed{Jobs: []Job{job(4, repoA, 12*time.Minute, arm...)}, Runners: []Runner{old},
				Regs: []Registration{reg(1, old, false, false)}},
			want: Plan{
				Create: []Create{create("arm64", repoA, 4, "gha-arm64-4-r1")},
				Delete: []Delete{{Runner: old, Reg: regp(reg(1, old, false, false)), Reason: ReasonBootTimeout}},
			},
		},
		{
			name: "finished runner is deleted and its registration removed",
			obs:  Observed{Runners: []Runner{finished(idleA)}, Regs: []Registration{reg(1, idleA, false, false)}},
			want: Plan{Delete: []Delete{{Runner: finished(idleA), Reg: regp(reg(1, idleA, false, false)), Reason: ReasonFinished}}},
		},
		{
			name: "preempted runner is deleted and its job gets a new runner",
			obs: Observed{Jobs: []Job{job(1, repoA, 11*time.Minute, arm...)}, Runners: []Runner{finished(idleA)},
				Regs: []Registration{reg(1, idleA, false, false)}},
			want: Plan{
				Create: []Create{create("arm64", repoA, 1, "gha-arm64-1-r1")},
				Delete: []Delete{{Runner: finished(idleA), Reg: regp(reg(1, idleA, false, false)), Reason: ReasonFinished}},
			},
		},
		{
			name: "runner whose registration GitHub removed is deleted after the grace",
			obs:  Observed{Runners: []Runner{idleA}},
			want: Plan{Delete: []Delete{{Runner: idleA, Reason: ReasonGone}}},
		},
		{
			name: "runner without a registration within the grace is kept",
			obs:  Observed{Runners: []Runner{runner("arm64", repoA, 3, 30*time.Second)}},
			want: Plan{},
		},
		{
			name: "ghost registration is removed",
			obs:  Observed{Regs: []Registration{reg(9, idleA, false, false)}},
			want: Plan{Deregister: []Deregister{{Reg: reg(9, idleA, false, false), Reason: ReasonGhost}}},
		},
		{
			// A pass died between registering and creating: the registration is kept
			// while its job waits, and holds its name.
			name: "registration whose job still waits is not a ghost, and keeps its name",
			obs:  Observed{Jobs: []Job{job(1, repoA, time.Minute, arm...)}, Regs: []Registration{reg(9, idleA, false, false)}},
			want: Plan{Create: []Create{create("arm64", repoA, 1, "gha-arm64-1-r1")}},
		},
		{
			name: "online or busy registration without a runner is never removed",
			obs:  Observed{Regs: []Registration{reg(9, idleA, true, false), reg(10, busyA, false, true)}},
			want: Plan{},
		},
		{
			name: "registrations not named by this tool are left alone",
			obs: Observed{Regs: []Registration{{ID: 3, Name: "gha-x", Scope: repoA}, {ID: 4, Name: "build-box-1", Scope: repoA},
				{ID: 5, Name: "ghb-arm64-1", Scope: repoA}}},
			want: Plan{},
		},
		{
			name: "first matching pool wins, labels compared case-insensitively",
			obs: Observed{Jobs: []Job{
				job(1, repoA, time.Minute, "SELF-HOSTED", "arm64"),
				job(2, repoA, time.Minute, "self-hosted"), // both pools match: arm64 comes first
				job(3, repoA, time.Minute, "Linux", "X64"),
			}},
			want: Plan{Create: []Create{
				create("arm64", repoA, 1, "gha-arm64-1"),
				create("arm64", repoA, 2, "gha-arm64-2"),
				create("x64", repoA, 3, "gha-x64-3"),
			}},
		},
		{
			name: "job no pool can serve gets no runner; a self-hosted one is listed as such",
			obs:  Observed{Jobs: []Job{job(1, repoA, time.Minute, "ubuntu-latest"), job(2, repoA, time.Minute, "self-hosted", "gpu")}},
			want: Plan{NoPool: []Job{job(2, repoA, time.Minute, "self-hosted", "gpu")}},
		},
		{
			name: "max_runners caps creates, oldest jobs first",
			obs: Observed{Jobs: []Job{
				job(11, repoA, 1*time.Minute, arm...), job(12, repoB, 5*time.Minute, arm...),
				job(13, repoA, 3*time.Minute, arm...), job(14, repoB, 4*time.Minute, arm...),
				job(15, repoA, 2*time.Minute, arm...),
			}},
			want: Plan{Create: []Create{
				create("arm64", repoB, 12, "gha-arm64-12"),
				create("arm64", repoA, 13, "gha-arm64-13"),
				create("arm64", repoB, 14, "gha-arm64-14"),
			}},
		},
		{
			name: "max_runners counts busy runners",
			obs: Observed{
				Jobs:    []Job{job(21, repoA, time.Minute, arm...), job(22, repoA, time.Minute, arm...)},
				Runners: []Runner{busyA, runner("arm64", repoB, 30, time.Hour)},
				Regs:    []Registration{reg(1, busyA, true, true), reg(2, runner("arm64", repoB, 30, 0), true, true)},
			},
			want: Plan{Create: []Create{create("arm64", repoA, 21, "gha-arm64-21")}},
		},
		{
			name: "a runner registered in one repository does not serve another",
			obs: Observed{Jobs: []Job{job(40, repoB, time.Minute, arm...)}, Runners: []Runner{young},
				Regs: []Registration{reg(1, young, true, false)}},
			want: Plan{Create: []Create{create("arm64", repoB, 40, "gha-arm64-40")}},
		},
		{
			name: "runner whose registrations could not be listed is kept and counts as supply",
			obs: Observed{Jobs: []Job{job(5, repoA, time.Minute, arm...)}, Runners: []Runner{old},
				Blind: Blind{Regs: map[Scope]bool{repoA: true}}},
			want: Plan{},
		},
		{
			name: "no surplus deletion or ghost sweep where jobs could not be listed",
			obs: Observed{Runners: []Runner{idleA}, Regs: []Registration{reg(1, idleA, true, false), reg(2, old, false, false)},
				Blind: Blind{Jobs: map[Scope]bool{repoA: true}}},
			want: Plan{},
		},
		{
			name: "no creates for a pool whose backend could not list its runners",
			obs: Observed{Jobs: []Job{job(1, repoA, time.Minute, arm...), job(2, repoA, time.Minute, x64...)},
				Blind: Blind{Pools: map[string]bool{"arm64": true}}},
			want: Plan{Create: []Create{create("x64", repoA, 2, "gha-x64-2")}},
		},
		{
			name: "no ghost sweep while any backend is blind",
			obs:  Observed{Regs: []Registration{reg(9, idleA, false, false)}, Blind: Blind{Pools: map[string]bool{"x64": true}}},
			want: Plan{},
		},
		{
			name: "idle runner of a pool no longer configured is removed",
			obs: Observed{Runners: []Runner{runner("gpu", repoA, 50, 10*time.Minute)},
				Regs: []Registration{reg(1, runner("gpu", repoA, 50, 0), true, false)}},
			want: Plan{Delete: []Delete{{Runner: runner("gpu", repoA, 50, 10*time.Minute),
				Reg: regp(reg(1, runner("gpu", repoA, 50, 0), true, false)), Reason: ReasonSurplus}}},
		},
		{
			// GitHub gives a queued job to an idle runner whose labels cover it in
			// seconds: one that waited idle_timeout beside it is not given to us
			// (runs-on names a runner group, a group excludes the repository).
			name: "a job GitHub will not assign to the idle runner stops holding it",
			obs: Observed{Jobs: []Job{job(1, repoA, 30*time.Minute, arm...)}, Runners: []Runner{idleA},
				Regs: []Registration{reg(1, idleA, true, false)}},
			want: Plan{Delete: []Delete{{Runner: idleA, Reg: regp(reg(1, idleA, true, false)), Reason: ReasonSurplus}},
				Unservable: []Unservable{{Job: job(1, repoA, 30*time.Minute, arm...), Pool: "arm64", Runner: idleA.Name}}},
		},
		{
			name: "a job newer than the idle runner is judged only after idle_timeout of its own",
			obs: Observed{Jobs: []Job{job(8, repoA, 4*time.Minute, arm...)}, Runners: []Runner{idleA},
				Regs: []Registration{reg(1, idleA, true, false)}},
			want: Plan{},
		},
		{
			name: "an unservable job beside a servable one: the servable one keeps the runner",
			obs: Observed{Jobs: []Job{job(1, repoA, 30*time.Minute, arm...), job(8, repoA, time.Minute, arm...)},
				Runners: []Runner{idleA}, Regs: []Registration{reg(1, idleA, true, false)}},
			want: Plan{Unservable: []Unservable{{Job: job(1, repoA, 30*time.Minute, arm...), Pool: "arm64", Runner: idleA.Name}}},
		},
		{
			name: "a booting runner is no evidence: the job keeps it",
			obs: Observed{Jobs: []Job{job(3, repoA, 30*time.Minute, arm...)}, Runners: []Runner{runner("arm64", repoA, 3, 8*time.Minute)},
				Regs: []Registration{reg(1, runner("arm64", repoA, 3, 0), false, false)}},
			want: Plan{},
		},
		{
			name: "a job an earlier pass found unservable gets no runner",
			obs:  Observed{Jobs: []Job{job(1, repoA, 40*time.Minute, arm...)}, Unservable: map[int64]bool{1: true}},
			want: Plan{},
		},
		{
			// Another pass registered it a moment ago and is creating its machine.
			name: "a fresh registration without a runner counts as its job's booting runner",
			obs: Observed{Jobs: []Job{job(7, repoA, time.Minute, arm...)},
				Regs: []Registration{registered(reg(5, runner("arm64", repoA, 7, 0), false, false), 30*time.Second)}},
			want: Plan{},
		},
		{
			// A pass died between registering and creating: past the grace, another name.
			name: "a registration without a runner past the grace does not",
			obs: Observed{Jobs: []Job{job(7, repoA, 5*time.Minute, arm...)},
				Regs: []Registration{registered(reg(5, runner("arm64", repoA, 7, 0), false, false), RegistrationGrace)}},
			want: Plan{Create: []Create{create("arm64", repoA, 7, "gha-arm64-7-r1")}},
		},
		{
			name: "a fresh registration without a runner whose job is gone is a ghost",
			obs:  Observed{Regs: []Registration{registered(reg(5, runner("arm64", repoA, 7, 0), false, false), 30*time.Second)}},
			want: Plan{Deregister: []Deregister{{Reg: registered(reg(5, runner("arm64", repoA, 7, 0), false, false), 30*time.Second), Reason: ReasonGhost}}},
		},
		{
			// A registration it cannot see may be another pass's create under way.
			name: "no creates where registrations could not be listed",
			obs: Observed{Jobs: []Job{job(7, repoA, time.Minute, arm...), job(8, repoB, time.Minute, arm...)},
				Blind: Blind{Regs: map[Scope]bool{repoA: true}}},
			want: Plan{Create: []Create{create("arm64", repoB, 8, "gha-arm64-8")}},
		},
		{
			// Self-hosted runners on a public repository, or for a pull request from a
			// fork, run code anyone can propose: skipped, with the reason in the plan.
			name: "jobs of public repositories and fork pull requests are refused",
			obs: Observed{Jobs: []Job{public(job(1, repoA, time.Minute, arm...)), fromFork(job(2, repoA, time.Minute, arm...)),
				public(job(3, repoA, time.Minute, "ubuntu-latest")), job(4, repoA, time.Minute, arm...)}},
			want: Plan{Create: []Create{create("arm64", repoA, 4, "gha-arm64-4")}, Refused: []Refused{
				{Job: public(job(1, repoA, time.Minute, arm...)), Pool: "arm64", Reason: ReasonPublicRepo},
				{Job: fromFork(job(2, repoA, time.Minute, arm...)), Pool: "arm64", Reason: ReasonForkPullRequest}}},
		},
		{
			name: "a job listed twice is counted once",
			obs:  Observed{Jobs: []Job{job(1, repoA, time.Minute, arm...), job(1, repoA, time.Minute, arm...)}},
			want: Plan{Create: []Create{create("arm64", repoA, 1, "gha-arm64-1")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Compute(tt.obs, testConfig(), t0)
			if diff := cmp.Diff(tt.want, got, ignorePools, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Compute() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Two passes that overlap see the same world in whatever order the APIs list it, and
// must plan the same names: the second create then meets "already exists".
func TestComputeOverlappingPassesPlanTheSameNames(t *testing.T) {
	t.Parallel()
	idle := runner("x64", repoA, 100, 20*time.Minute)
	obs := Observed{
		Jobs: []Job{
			job(1, repoA, 1*time.Minute, arm...), job(2, repoB, 2*time.Minute, arm...), job(3, repoA, 3*time.Minute, x64...),
			job(4, repoB, 4*time.Minute, x64...), job(5, repoA, 5*time.Minute, arm...), job(6, repoA, 5*time.Minute, arm...),
		},
		Runners: []Runner{idle, runner("arm64", repoA, 5, time.Minute), finished(runner("x64", repoB, 4, time.Hour))},
		Regs:    []Registration{reg(1, idle, true, false), reg(2, runner("arm64", repoA, 5, 0), false, false)},
	}
	want := Compute(obs, testConfig(), t0)
	if len(want.Create) == 0 {
		t.Fatal("Compute() planned no creates; the test needs some")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := Observed{Jobs: append([]Job(nil), obs.Jobs...), Runners: append([]Runner(nil), obs.Runners...), Regs: append([]Registration(nil), obs.Regs...)}
		rng.Shuffle(len(shuffled.Jobs), func(i, j int) { shuffled.Jobs[i], shuffled.Jobs[j] = shuffled.Jobs[j], shuffled.Jobs[i] })
		rng.Shuffle(len(shuffled.Runners), func(i, j int) { shuffled.Runners[i], shuffled.Runners[j] = shuffled.Runners[j], shuffled.Runners[i] })
		rng.Shuffle(len(shuffled.Regs), func(i, j int) { shuffled.Regs[i], shuffled.Regs[j] = shuffled.Regs[j], shuffled.Regs[i] })
		if diff := cmp.Diff(want, Compute(shuffled, testConfig(), t0)); diff != "" {
			t.Fatalf("Compute() differs with the input reordered (-first +again):\n%s", diff)
		}
	}
}

// Org runners register with the organisation: a runner serves any of its repositories.
func TestComputeOrgRunners(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.GitHub.RunnerScope = RunnerScopeOrg
	org := Scope{Owner: "octo-org"}
	idle := Runner{Name: "gha-arm64-1", Pool: "arm64", Scope: org, Repo: repoA, JobID: 1, CreatedAt: t0.Add(-time.Minute)}
	obs := Observed{
		Jobs:    []Job{job(5, repoB, time.Minute, arm...), job(6, repoA, time.Minute, arm...)},
		Runners: []Runner{idle},
		Regs:    []Registration{{ID: 1, Name: idle.Name, Scope: org, Online: true}},
	}
	got := Compute(obs, cfg, t0)
	// The idle runner counts for the whole org: one more for two jobs, named after the oldest.
	want := Plan{Create: []Create{{RunnerSpec: RunnerSpec{Name: "gha-arm64-5", Pool: "arm64", Scope: org, Repo: repoB, JobID: 5, RunID: 50, Labels: arm,
		MaxLifetime: 24 * time.Hour}, Reason: ReasonDemand}}}
	if diff := cmp.Diff(want, got, ignorePools, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Compute() mismatch (-want +got):\n%s", diff)
	}
}

// What the queue-wait metrics and the status command read from a plan: when each
// create's job was queued, the oldest waiting job per pool, and the self-hosted jobs
// no pool matches.
func TestComputeQueueFacts(t *testing.T) {
	t.Parallel()
	old, young := job(10, repoA, 7*time.Minute, arm...), job(11, repoA, time.Minute, arm...)
	gpu := job(12, repoA, 3*time.Minute, "self-hosted", "gpu")
	hosted := job(13, repoA, 3*time.Minute, "ubuntu-latest")
	plan := Compute(Observed{Jobs: []Job{young, gpu, old, hosted}}, testConfig(), t0)
	queued := map[int64]time.Time{}
	for _, c := range plan.Create {
		queued[c.JobID] = c.QueuedAt
	}
	if !queued[10].Equal(old.CreatedAt) || !queued[11].Equal(young.CreatedAt) {
		t.Errorf("creates' QueuedAt %v, want the jobs' created_at (%v, %v)", queued, old.CreatedAt, young.CreatedAt)
	}
	if p := plan.Pools[0]; p.Pool != "arm64" || p.OldestQueued != 7*time.Minute {
		t.Errorf("pool %s: oldest queued %v, want 7m", p.Pool, p.OldestQueued)
	}
	if len(plan.NoPool) != 1 || plan.NoPool[0].ID != 12 {
		t.Errorf("no pool: %v, want job 12 alone (13 wants a GitHub-hosted runner)", plan.NoPool)
	}
}

func TestComputePoolStatus(t *testing.T) {
	t.Parallel()
	busy := runner("arm64", repoA, 1, time.Hour)
	boot := runner("arm64", repoA, 2, time.Minute)
	idle := runner("arm64", repoA, 3, time.Minute)
	// Each runner says which of the pool's templates made it: the counts split by it.
	busy.Option, boot.Option, idle.Option = "gha-spot", "gha-standard", "gha-standard"
	obs := Observed{
		Jobs:    []Job{job(10, repoA, time.Minute, arm...), job(11, repoA, time.Minute, arm...), job(12, repoA, time.Minute, arm...)},
		Runners: []Runner{busy, boot, idle, finished(runner("arm64", repoA, 4, time.Hour))},
		Regs:    []Registration{reg(1, busy, true, true), reg(2, boot, false, false), reg(3, idle, true, false)},
	}
	got := Compute(obs, testConfig(), t0).Pools
	want := []PoolStatus{
		// max_runners 3 with 3 active runners: the third job waits for room.
		{Pool: "arm64", Queued: 3, Booting: 1, Idle: 1, Busy: 1, Create: 0, WaitingForRoom: 1, Delete: 1, OldestQueued: time.Minute,
			ByOption: map[string]map[string]int{"gha-spot": {string(StateBusy): 1}, "gha-standard": {string(StateBooting): 1, string(StateIdle): 1}}},
		{Pool: "x64"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Compute().Pools mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRunnerName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		wantID int64
		wantOK bool
	}{
		{"gha-arm64-123", 123, true},
		{"gha-arm64-123-r2", 123, true},
		{"gha-x-r1-77", 77, true},
		{"gha-arm64", 0, false},
		{"gha-arm64-12a", 0, false},
		{"ghb-arm64-1", 0, false},
		{"gha--1", 0, false},
		{"GHA-arm64-1", 0, false},
	}
	for _, tt := range tests {
		id, ok := ParseRunnerName("gha", tt.name)
		if id != tt.wantID || ok != tt.wantOK {
			t.Errorf("ParseRunnerName(%q) = %d, %v; want %d, %v", tt.name, id, ok, tt.wantID, tt.wantOK)
		}
	}
}

// A pool in backoff (every option: Observed.Held): its creates wait for capacity, but
// for one probe, the oldest job's, when a probe is due; other pools are untouched.
func TestComputeHeldPool(t *testing.T) {
	t.Parallel()
	jobs := []Job{job(10, repoA, time.Minute, arm...), job(11, repoA, 5*time.Minute, arm...), job(12, repoA, 3*time.Minute, arm...),
		job(20, repoA, time.Minute, x64...)}
	for _, tc := range []struct {
		name         string
		hold         Hold
		wantCreate   []int64 // job ids, arm64's probe first
		wantWaiting  []int64
		wantStatusWt int
	}{
		{"a probe is due: the oldest job's create probes, the others wait", Hold{Class: FailNoCapacity, Probe: true}, []int64{11, 20}, []int64{10, 12}, 2},
		{"no probe is due: every create waits", Hold{Class: FailQuota, Next: t0.Add(time.Minute)}, []int64{20}, []int64{10, 11, 12}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Compute(Observed{Jobs: jobs, Held: map[string]Hold{"arm64": tc.hold}}, testConfig(), t0)
			var created, waiting []int64
			for _, c := range plan.Create {
				created = append(created, c.JobID)
				if c.Probe != (c.Pool == "arm64") {
					t.Errorf("create %s: probe %v, want it only for the held pool", c.Name, c.Probe)
				}
			}
			for _, w := range plan.Waiting {
				waiting = append(waiting, w.Create.JobID)
				if w.Class != tc.hold.Class {
					t.Errorf("waiting %s for %q, want %q", w.Create.Name, w.Class, tc.hold.Class)
				}
			}
			slices.Sort(waiting)
			if diff := cmp.Diff(tc.wantCreate, created); diff != "" {
				t.Errorf("creates (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWaiting, waiting); diff != "" {
				t.Errorf("waiting (-want +got):\n%s", diff)
			}
			if plan.Pools[0].Waiting != tc.wantStatusWt {
				t.Errorf("pool status waiting %d, want %d", plan.Pools[0].Waiting, tc.wantStatusWt)
			}
		})
	}
}
