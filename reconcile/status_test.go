package reconcile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of the status tests")

// statusWorld has a runner in every state and a queued job for every way a job is
// served or not.
func statusWorld() (Config, Observed) {
	cfg := testConfig()
	cfg.GitHub.AllowPublicRepos, cfg.GitHub.AllowForkPullRequests = false, false
	cfg.Pools[1].MinIdle = 1
	cfg.Pools[1].WarmRepos = []string{"octo-org/web"}
	booting := runner("arm64", repoA, 101, 3*time.Minute)
	starting := runner("arm64", repoA, 102, 30*time.Second) // no registration yet
	idle := runner("arm64", repoA, 103, 7*time.Minute)
	busy := runner("arm64", repoB, 104, 2*time.Hour+5*time.Minute)
	failed := runner("arm64", repoA, 105, 12*time.Minute)
	done := finished(runner("x64", repoB, 106, 40*time.Minute))
	gone := runner("x64", repoB, 107, 50*time.Minute) // its registration went with its job
	expired := runner("x64", repoB, 108, 25*time.Hour)
	expired.Location = "us-central1-a"
	warm := Runner{Name: WarmRunnerName("gha", "x64", repoB, 0, 0), Pool: "x64", Scope: repoB, CreatedAt: t0.Add(-20 * time.Minute)}
	ghost := Registration{ID: 9, Name: RunnerName("gha", "arm64", 99, 0), Scope: repoA}
	unservable := job(205, repoA, 40*time.Minute, arm...)
	public := job(203, repoB, 5*time.Minute, arm...)
	public.Public = true
	fork := job(204, repoB, 4*time.Minute, arm...)
	fork.FromFork = true
	obs := Observed{
		Runners: []Runner{booting, starting, idle, busy, failed, done, gone, expired, warm},
		Regs: []Registration{reg(1, booting, false, false), reg(3, idle, true, false), reg(4, busy, true, true),
			reg(5, failed, false, false), reg(8, expired, true, true), reg(10, warm, true, false), ghost},
		Jobs: []Job{
			job(101, repoA, 4*time.Minute, arm...),                           // its runner boots
			job(201, repoA, 90*time.Second, arm...),                          // the idle runner takes it
			job(202, repoA, 20*time.Second, "self-hosted", "gpu"),            // no pool has gpu
			job(206, repoA, 10*time.Second, "ubuntu-latest"),                 // GitHub-hosted: not listed
			job(207, repoA, time.Second, arm...), job(208, repoA, 0, arm...), // past max_runners
			public, fork, unservable,
		},
		Unservable: map[int64]bool{205: true},
		// The busy runner took another job than its own; the expired one, its own.
		Running: map[string]Job{busy.Name: {ID: 301, Repo: repoB, RunnerName: busy.Name}, expired.Name: {ID: 108, Repo: repoB, RunnerName: expired.Name}},
	}
	return cfg, obs
}

func TestStatus_GoldenTableWideAndJSON(t *testing.T) {
	cfg, obs := statusWorld()
	st := BuildStatus(cfg, obs, Compute(obs, cfg, t0), t0)
	st.Errors = []string{"listing queued jobs of octo-org/infra: GET https://api.github.com/repos/octo-org/infra/actions/runs: 502 Bad Gateway"}
	for _, format := range []string{FormatTable, FormatWide, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteStatus(&buf, st, cfg, format, false); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "status", format+".golden"), buf.Bytes())
		})
	}
}

func TestStatus_EveryStateAndEveryReason(t *testing.T) {
	cfg, obs := statusWorld()
	st := BuildStatus(cfg, obs, Compute(obs, cfg, t0), t0)
	states := map[string]State{}
	for _, r := range st.Runners {
		states[r.Name] = r.State
	}
	want := map[string]State{
		"gha-arm64-101": StateBooting, "gha-arm64-102": StateBooting, "gha-arm64-103": StateIdle, "gha-arm64-104": StateBusy,
		"gha-arm64-105": StateBootFailed, "gha-x64-106": StateFinished, "gha-x64-107": StateFinished, "gha-x64-108": StateExpired,
		WarmRunnerName("gha", "x64", repoB, 0, 0): StateIdle, "gha-arm64-99": StateGhost,
	}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	for _, r := range st.Runners {
		if r.Name == "gha-arm64-104" && (r.RunsJob != 301 || r.RunsRepo != "octo-org/web") {
			t.Errorf("the busy runner runs job %d of %s, want 301 of octo-org/web", r.RunsJob, r.RunsRepo)
		}
	}
	why := map[int64]Reason{}
	for _, q := range st.Queue {
		why[q.JobID] = q.NotServed
	}
	wantWhy := map[int64]Reason{101: "", 201: "", 202: ReasonNoPool, 203: ReasonPublicRepo, 204: ReasonForkPullRequest,
		205: ReasonUnservable, 207: "", 208: ""}
	if diff := cmp.Diff(wantWhy, why); diff != "" {
		t.Errorf("why not served (-want +got; 206 is GitHub-hosted):\n%s", diff)
	}
	// Registrations that could not be listed: their runners are unknown, not booting.
	obs.Blind.Regs = map[Scope]bool{repoA: true}
	for _, r := range BuildStatus(cfg, obs, Compute(obs, cfg, t0), t0).Runners {
		if r.Scope == repoA.String() && r.State != StateUnknown && r.State != StateGhost {
			t.Errorf("%s: %s, want unknown", r.Name, r.State)
		}
	}
}

// TestStatus_ShowsThePlannersVerdict: status shows each runner in the state the
// planner gave it, one verdict, and every state the planner can give appears.
func TestStatus_ShowsThePlannersVerdict(t *testing.T) {
	cfg, obs := statusWorld()
	// The states the world lacks: a preempted runner kept as evidence, a warm runner
	// idle past max_idle_age, and one whose registrations could not be listed.
	cfg.Pools[1].MaxIdleAge = Duration(time.Hour)
	held := finished(runner("x64", repoB, 109, 10*time.Minute))
	held.PreemptedAt = t0.Add(-5 * time.Minute)
	stale := Runner{Name: WarmRunnerName("gha", "x64", repoB, 2, 0), Pool: "x64", Scope: repoB, CreatedAt: t0.Add(-2 * time.Hour)}
	repoC := Scope{Owner: "octo-org", Repo: "docs"}
	obs.Runners = append(obs.Runners, held, stale, runner("x64", repoC, 110, time.Minute))
	obs.Blind.Regs = map[Scope]bool{repoC: true}
	obs.Regs = append(obs.Regs, reg(11, stale, true, false))
	obs.Preempted = map[string]Lookup{held.Name: {Failed: true}}
	p := Compute(obs, cfg, t0)
	seen := map[State]bool{}
	for _, r := range BuildStatus(cfg, obs, p, t0).Runners {
		seen[r.State] = true
		if r.State == StateGhost {
			continue
		}
		if verdict := p.States[r.Name]; r.State != verdict {
			t.Errorf("%s: status shows %q, the planner decided %q", r.Name, r.State, verdict)
		}
	}
	for _, s := range States {
		if !seen[s] {
			t.Errorf("state %q, which the planner can give, is not shown by status in this world", s)
		}
	}
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", path, diff)
	}
}

// With colour, the states are painted and the columns still line up: the text
// without its escapes is the text without colour.
func TestStatus_ColourKeepsTheColumns(t *testing.T) {
	cfg, obs := statusWorld()
	st := BuildStatus(cfg, obs, Compute(obs, cfg, t0), t0)
	var plain, coloured bytes.Buffer
	if err := WriteStatus(&plain, st, cfg, FormatTable, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(&coloured, st, cfg, FormatTable, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(coloured.Bytes(), []byte("\x1b[31mboot-failed\x1b[0m")) {
		t.Fatal("boot-failed is not red")
	}
	stripped := regexp.MustCompile("\x1b\\[[0-9]+m").ReplaceAll(coloured.Bytes(), nil)
	if diff := cmp.Diff(plain.String(), string(stripped)); diff != "" {
		t.Errorf("coloured table, escapes removed, differs from the plain one (-plain +coloured):\n%s", diff)
	}
}

// A pool in backoff: status says so first, with why, since when and the next probe, and
// its jobs wait for capacity (the one that probes has its runner to create).
func TestStatus_PoolInBackoff(t *testing.T) {
	cfg := testConfig()
	obs := Observed{
		Jobs: []Job{job(10, repoA, 5*time.Minute, arm...), job(11, repoA, time.Minute, arm...), job(20, repoA, time.Minute, x64...)},
		Held: map[string]Hold{"arm64": {Class: FailNoCapacity, Since: t0.Add(-20 * time.Minute), Next: t0.Add(3 * time.Minute),
			Message: "no zone could take it (tried us-central1-a, us-central1-b)"}},
	}
	st := BuildStatus(cfg, obs, Compute(obs, cfg, t0), t0)
	waiting := map[int64]string{}
	for _, q := range st.Queue {
		waiting[q.JobID] = q.Waiting
	}
	if diff := cmp.Diff(map[int64]string{10: WaitingCapacity, 11: WaitingCapacity, 20: ""}, waiting); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := WriteStatus(&buf, st, cfg, FormatTable, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	next := t0.Add(3 * time.Minute).Local().Format(time.TimeOnly)
	for _, want := range []string{"pool arm64 in backoff: no capacity (stockout) since", "next probe at " + next,
		"no zone could take it", "waiting for capacity (the pool is in backoff)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pool x64 in backoff") {
		t.Errorf("status puts pool x64 in backoff:\n%s", out)
	}
}
