package reconcile

import "time"

// The status tests' world: two pools in two repositories of one org, at t0.
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

func reg(id int64, r Runner, online, busy bool) Registration {
	return Registration{ID: id, Name: r.Name, Scope: r.Scope, Online: online, Busy: busy}
}
