package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// gceWorld runs the real binary's wiring (run) against a fake GitHub and a fake
// Compute Engine.
type gceWorld struct {
	gh      *ghpolltest.Server
	compute *gcetest.Server
	config  string
}

func newGCEWorld(t *testing.T) *gceWorld {
	t.Helper()
	w := &gceWorld{gh: ghpolltest.NewServer(t), compute: gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a", "us-central1-b", "us-central1-c")}
	w.config = filepath.Join(t.TempDir(), "reconcile.yaml")
	w.writePools(t, w.arm64Pool())
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.test")
	return w
}

// firstZone is the zone a create of the named arm64 runner tries first (the pool takes
// every zone of the world's region, in order).
func firstZone(name string) string {
	return gce.ZoneSpread([]string{"us-central1-a", "us-central1-b", "us-central1-c"}, name)[0]
}

// arm64Pool is the world's pool, in YAML: every zone of us-central1, from an ARM template.
func (w *gceWorld) arm64Pool() string {
	return `
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 10
    gce: {project: ci-project, region: us-central1, instance_template: gha-arm64-spot, endpoint: ` + w.compute.Endpoint + `}
`
}

// writePools writes the world's configuration: octo-org/app, served by the pools (YAML).
func (w *gceWorld) writePools(t *testing.T, pools string) {
	t.Helper()
	if err := os.WriteFile(w.config, []byte("github:\n  repos: [octo-org/app]\npools:"+pools), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (w *gceWorld) run(t *testing.T) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"reconcile", "--once", "--config", w.config, "--github-url", w.gh.APIURL, "--log-format", "json"}, &stdout, &stderr)
	return code, stderr.String()
}

func TestGCE_PassCreatesInstancesFromTheTemplate(t *testing.T) {
	w := newGCEWorld(t)
	j1 := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	j2 := w.gh.QueueJob("octo-org/app", "linux", "arm64")
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit code %d, want 0:\n%s", code, log)
	}
	insts := w.compute.Instances()
	regs := w.gh.Runners()
	want := []string{reconcile.RunnerName("gha", "arm64", j1, 0), reconcile.RunnerName("gha", "arm64", j2, 0)}
	var names []string
	for _, in := range insts {
		names = append(names, in.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("instances %v, want %v", names, want)
	}
	for _, in := range insts {
		reg := regs[slices.IndexFunc(regs, func(r ghpolltest.Runner) bool { return r.Name == in.Name })]
		if in.Template != "projects/ci-project/regions/us-central1/instanceTemplates/gha-arm64-spot" {
			t.Errorf("%s made from %q, want the pool's region template", in.Name, in.Template)
		}
		if z := firstZone(in.Name); in.Zone != z {
			t.Errorf("%s in %s, want %s, the zone its name picks", in.Name, in.Zone, z)
		}
		if in.Labels[gce.LabelOwner] != "gha" || in.Labels[gce.LabelPool] != "arm64" || in.Labels[gce.LabelJobID] == "" {
			t.Errorf("%s labels %v, want owner, pool and job id", in.Name, in.Labels)
		}
		for k, v := range in.Metadata {
			if k != gce.MetadataJIT && strings.Contains(v, reg.JITConfig) {
				t.Errorf("%s: metadata item %s carries the JIT configuration", in.Name, k)
			}
		}
		if in.Metadata[gce.MetadataJIT] != reg.JITConfig {
			t.Errorf("%s: metadata item %s does not hold the JIT configuration GitHub issued", in.Name, gce.MetadataJIT)
		}
		for k, v := range in.Labels {
			if strings.Contains(k+v, reg.JITConfig) {
				t.Errorf("%s: label %s carries the JIT configuration", in.Name, k)
			}
		}
	}
	for _, r := range w.compute.Requests() {
		for _, reg := range regs {
			if strings.Contains(r, reg.JITConfig) {
				t.Errorf("request %q carries a JIT configuration in its URL", r)
			}
		}
	}
}

// No capacity in any zone is platform weather, not the tool failing: the pass exits 0
// with a warning that names every zone tried, and leaves no registration behind.
func TestGCE_NoCapacityInAnyZoneWarnsAndLeavesNoRegistration(t *testing.T) {
	w := newGCEWorld(t)
	w.compute.FailZone("us-central1-a", gcetest.FailHTTP)
	w.compute.FailZone("us-central1-b", gcetest.FailOperation)
	w.compute.FailZone("us-central1-c", gcetest.FailHTTP)
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	code, log := w.run(t)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0:\n%s", code, log)
	}
	for _, z := range []string{"us-central1-a", "us-central1-b", "us-central1-c"} {
		if !strings.Contains(log, z) {
			t.Errorf("the log does not name zone %s:\n%s", z, log)
		}
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left: %+v", regs)
	}
	if w.gh.JITCount() != 1 {
		t.Errorf("%d JIT configurations, want 1", w.gh.JITCount())
	}
	if strings.Contains(log, "jit-secret-") {
		t.Error("the log carries the JIT configuration")
	}
}

func TestGCE_StoppedInstancesAreDeletedBusyOnesKept(t *testing.T) {
	w := newGCEWorld(t)
	jobs := []int64{w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"),
		w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")}
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("first pass: exit code %d:\n%s", code, log)
	}
	var names []string
	for _, j := range jobs {
		names = append(names, reconcile.RunnerName("gha", "arm64", j, 0))
		w.gh.SetJobStatus(j, "in_progress", "")
	}
	// One was preempted, one powered itself off after its job, one runs a job.
	w.compute.SetStatus(names[0], "TERMINATED")
	w.compute.SetStatus(names[1], "STOPPED")
	w.gh.RemoveRunner(names[1])
	w.gh.SetRunner(names[2], true, true)
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("second pass: exit code %d:\n%s", code, log)
	}
	var left []string
	for _, in := range w.compute.Instances() {
		left = append(left, in.Name)
	}
	if !slices.Equal(left, names[2:]) {
		t.Errorf("instances left %v, want only the busy %s", left, names[2])
	}
	var regsLeft []string
	for _, r := range w.gh.Runners() {
		regsLeft = append(regsLeft, r.Name)
	}
	if !slices.Equal(regsLeft, names[2:]) {
		t.Errorf("registrations left %v, want only the busy runner's", regsLeft)
	}
}

// ARM (T2A, C4A), GPU and new machine families exist in some zones of a region only;
// an insert elsewhere answers 400 "Machine type … does not exist in zone …". With
// zones unset (every zone of the region), an ARM pool where a third of the zones lack
// T2A serves every job on its first pass; with a --cache, the next process never tries
// that zone again.
func TestGCE_ZoneWithoutTheMachineTypeDoesNotBlockJobs(t *testing.T) {
	w := newGCEWorld(t)
	const lacking = "us-central1-b"
	w.compute.FailZone(lacking, gcetest.FailNoMachineType)
	var want []string
	for range 6 {
		want = append(want, reconcile.RunnerName("gha", "arm64", w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), 0))
	}
	slices.Sort(want)
	// Where each name's zone order starts, without knowing what any zone lacks.
	startsThere := func(names []string) (n int) {
		for _, name := range names {
			if firstZone(name) == lacking {
				n++
			}
		}
		return n
	}
	if startsThere(want) < 2 {
		t.Fatalf("the test needs names that start in %s", lacking)
	}
	cache := filepath.Join(t.TempDir(), "cache.gz")
	pass := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"reconcile", "--once", "--config", w.config, "--github-url", w.gh.APIURL,
			"--log-format", "json", "--cache", cache}, &stdout, &stderr)
		return code, stderr.String()
	}
	if code, log := pass(); code != exitOK {
		t.Fatalf("exit code %d, want 0:\n%s", code, log)
	}
	var names []string
	for _, in := range w.compute.Instances() {
		names = append(names, in.Name)
		if in.Zone == lacking {
			t.Errorf("%s in %s, which lacks the machine type", in.Name, lacking)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("instances %v, want one for each job %v", names, want)
	}
	inserts := func() (n int) {
		for _, r := range w.compute.Requests() {
			if strings.HasPrefix(r, "POST ") && strings.Contains(r, "/zones/"+lacking+"/instances") {
				n++
			}
		}
		return n
	}
	if n := inserts(); n != 1 {
		t.Errorf("%d inserts into %s in the first pass, want 1: the one that found it lacking", n, lacking)
	}
	var more []string
	for range 4 {
		more = append(more, reconcile.RunnerName("gha", "arm64", w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), 0))
	}
	if startsThere(more) == 0 {
		t.Fatalf("the test needs a new name that starts in %s", lacking)
	}
	if code, log := pass(); code != exitOK {
		t.Fatalf("second process: exit code %d:\n%s", code, log)
	}
	if n := len(w.compute.Instances()); n != 10 {
		t.Errorf("%d instances after the second process, want 10", n)
	}
	if n := inserts(); n != 1 {
		t.Errorf("%d inserts into %s after the second process, want still 1: the cache remembers", n, lacking)
	}
}

// The startup script, run with the commands it calls stubbed: the JIT configuration
// reaches the runner through its environment and nothing else: no command line, no
// other child of the script (the logger, the power-off); and the VM powers off when
// the runner exits.
func TestGCE_StartupScriptGivesTheJITConfigToTheRunnerAlone(t *testing.T) {
	const jit = "jit-s3cr3t-value"
	dir := t.TempDir()
	stubs, out, runnerDir := filepath.Join(dir, "bin"), filepath.Join(dir, "out"), filepath.Join(dir, "runner")
	for _, d := range []string{stubs, out, runnerDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Each stub records its arguments and environment; curl answers as the metadata
	// server does for the instance's attributes.
	record := `n=$(date +%s%N); { echo "$0 $*"; env; } > "` + out + `/$(basename "$0").$n"` + "\n"
	scripts := map[string]string{
		"curl": record + `case "$*" in
*reconcile-jit-config*) printf %s '` + jit + `' ;;
*instance/name*) printf gha-arm64-42 ;;
*reconcile-repo*) printf octo-org/app ;;
*) exit 22 ;;
esac`,
		"runuser":     record + `shift 3; exec "$@"`,
		"systemctl":   record,
		"shutdown":    record,
		"systemd-cat": record + "cat >/dev/null",
		"id":          "exit 0",
		"getent":      "exit 2",
		"chown":       record,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(stubs, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runSh := "#!/bin/bash\n" + `{ echo "run.sh $*"; env; } > "` + out + `/run.sh"` + "\n"
	if err := os.WriteFile(filepath.Join(runnerDir, "run.sh"), []byte(runSh), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "manifests/gce/startup.sh")
	cmd.Env = []string{"PATH=" + stubs + ":/usr/bin:/bin", "RUNNER_DIR=" + runnerDir, "RUNNER_USER=runner", "HOME=" + dir}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("startup.sh: %v\n%s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	var poweredOff bool
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		argv, env, _ := strings.Cut(string(b), "\n")
		base := filepath.Base(f)
		poweredOff = poweredOff || strings.HasPrefix(base, "systemctl.") && strings.Contains(argv, "poweroff")
		if strings.Contains(argv, jit) {
			t.Errorf("%s ran with the JIT configuration on its command line: %s", base, argv)
		}
		switch hasJIT := strings.Contains(env, "ACTIONS_RUNNER_INPUT_JITCONFIG="+jit); {
		case base == "run.sh" && !hasJIT:
			t.Errorf("the runner did not get ACTIONS_RUNNER_INPUT_JITCONFIG in its environment")
		case base != "run.sh" && !strings.HasPrefix(base, "runuser.") && strings.Contains(env, jit):
			t.Errorf("%s (%s) inherited the JIT configuration", base, argv)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "run.sh")); err != nil {
		t.Fatal("the runner never ran")
	}
	if !poweredOff {
		t.Error("the VM was not powered off after the runner exited")
	}
}

// Two pools in one project, each with its template: one backend serves both, so a pass
// lists the project's instances once, and each runner comes from its pool's template.
func TestGCE_PoolsOfOneProjectShareOneListing(t *testing.T) {
	w := newGCEWorld(t)
	w.writePools(t, w.arm64Pool()+`  - name: x64
    labels: [self-hosted, linux, x64]
    max_runners: 10
    gce: {project: ci-project, region: us-central1, zones: [us-central1-c], instance_template: gha-x64-spot, endpoint: `+w.compute.Endpoint+`}
`)
	arm := reconcile.RunnerName("gha", "arm64", w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), 0)
	x := reconcile.RunnerName("gha", "x64", w.gh.QueueJob("octo-org/app", "self-hosted", "x64"), 0)
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit code %d:\n%s", code, log)
	}
	templates := map[string]string{}
	for _, in := range w.compute.Instances() {
		templates[in.Name] = in.Template + " " + in.Zone
	}
	want := map[string]string{arm: "projects/ci-project/regions/us-central1/instanceTemplates/gha-arm64-spot " + firstZone(arm),
		x: "projects/ci-project/regions/us-central1/instanceTemplates/gha-x64-spot us-central1-c"}
	if diff := cmp.Diff(want, templates); diff != "" {
		t.Errorf("instances' templates and zones mismatch (-want +got):\n%s", diff)
	}
	// One listing to observe; for the batch of creates, one to claim room before
	// registering and one after, to count runners another pass made meanwhile.
	lists := 0
	for _, r := range w.compute.Requests() {
		if strings.Contains(r, "/aggregated/instances") {
			lists++
		}
	}
	if lists != 1+2 {
		t.Errorf("%d aggregated listings, want 3: one to observe the project's two pools, two for the batch of creates", lists)
	}
}

// A Spot VM is preempted mid-job: Compute records a compute.instances.preempted
// operation and stops the instance (instanceTerminationAction STOP); GitHub fails the
// job ("lost communication with the server") and drops the runner. Once the job's run
// has completed, the next pass re-runs the job (a second attempt of the run, the job
// queued again), deletes the stopped instance, and the pass after serves the re-run
// job. Preempted once more, that job is past rerun_preempted (1): not re-run again.
func TestGCE_PreemptedJobIsRerunOnce(t *testing.T) {
	w := newGCEWorld(t)
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	run, _ := w.gh.Job(job)
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	preempt := func(job int64, name string) {
		t.Helper()
		w.gh.SetJobStatus(job, "in_progress", name)
		w.gh.SetRunner(name, true, true)
		if !w.compute.Preempt(name, false) {
			t.Fatalf("no instance %s to preempt", name)
		}
		w.gh.LoseRunner(job)
		w.gh.RemoveRunner(name)
	}
	first := reconcile.RunnerName("gha", "arm64", job, 0)
	preempt(job, first)
	code, log := w.run(t)
	if code != exitOK || !strings.Contains(log, `"action":"rerun","runner":"`+first+`"`) {
		t.Fatalf("exit %d, want a rerun line for %s:\n%s", code, first, log)
	}
	jobs := w.gh.Jobs(run.RunID)
	if len(jobs) != 2 || jobs[1].Attempt != 2 || jobs[1].Status != "queued" {
		t.Fatalf("jobs of the run %+v; want the job queued again in attempt 2", jobs)
	}
	if n := len(w.compute.Instances()); n != 0 {
		t.Errorf("%d instances after the re-run; want the preempted one deleted", n)
	}
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	second := reconcile.RunnerName("gha", "arm64", jobs[1].ID, 0)
	if in := w.compute.Instances(); len(in) != 1 || in[0].Name != second {
		t.Fatalf("instances %+v; want one for the re-run job, %s", in, second)
	}
	preempt(jobs[1].ID, second)
	code, log = w.run(t)
	if code != exitOK || strings.Contains(log, `"action":"rerun"`) || !strings.Contains(log, "re-run as often as rerun_preempted allows") {
		t.Errorf("exit %d; want the job not re-run a second time, saying why:\n%s", code, log)
	}
	if n := len(w.gh.Jobs(run.RunID)); n != 2 {
		t.Errorf("%d jobs in the run, want still 2", n)
	}
}

// A job that failed on its own, or that a person cancelled, is not re-run, even when
// its runner's VM is preempted afterwards.
func TestGCE_JobThatEndedOnItsOwnIsNotRerun(t *testing.T) {
	for _, end := range []string{"failed step", "cancelled"} {
		t.Run(end, func(t *testing.T) {
			w := newGCEWorld(t)
			clock := reconciletest.NewClock(time.Now())
			w.gh.SetClock(clock.Now)
			job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
			if code, log := w.run(t); code != exitOK {
				t.Fatalf("exit %d:\n%s", code, log)
			}
			name := reconcile.RunnerName("gha", "arm64", job, 0)
			w.gh.SetJobStatus(job, "in_progress", name)
			clock.Advance(-10 * time.Minute) // the job ended ten minutes before the preemption
			if end == "cancelled" {
				w.gh.CancelJob(job)
			} else {
				w.gh.FailStep(job)
			}
			w.compute.Preempt(name, false)
			code, log := w.run(t)
			if code != exitOK || strings.Contains(log, `"action":"rerun"`) || !strings.Contains(log, "job of a preempted runner not re-run") {
				t.Errorf("exit %d; want the job left as it ended:\n%s", code, log)
			}
		})
	}
}

// With instanceTerminationAction DELETE, Compute deletes a preempted VM: the instance,
// and with it the repository and job it served, are gone, so the job is not re-run
// (the README says to keep STOP); nothing is left behind either.
func TestGCE_PreemptionThatDeletesTheInstanceLeavesNothing(t *testing.T) {
	w := newGCEWorld(t)
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	name := reconcile.RunnerName("gha", "arm64", job, 0)
	w.gh.SetJobStatus(job, "in_progress", name)
	w.gh.SetRunner(name, true, true)
	w.compute.Preempt(name, true)
	w.gh.LoseRunner(job)
	w.gh.SetRunner(name, false, false) // GitHub shows it offline; the ephemeral registration stays
	code, log := w.run(t)
	if code != exitOK || strings.Contains(log, `"action":"rerun"`) {
		t.Fatalf("exit %d; want no re-run without the instance:\n%s", code, log)
	}
	if n, regs := len(w.compute.Instances()), w.gh.Runners(); n != 0 || len(regs) != 0 {
		t.Errorf("%d instances, registrations %v; want nothing left", n, regs)
	}
}

// A pool with min_idle 2 and no jobs ends a pass with 2 runners; once online they are
// the 2 idle runners it keeps. A job arrives and one of them takes it: the next pass
// makes another, so that 2 are idle again.
func TestGCE_WarmPoolKeepsTwoIdle(t *testing.T) {
	w := newGCEWorld(t)
	w.writePools(t, `
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 10
    min_idle: 2
    warm_repos: [octo-org/app]
    gce: {project: ci-project, region: us-central1, instance_template: gha-arm64-spot, endpoint: `+w.compute.Endpoint+`}
`)
	names := func() (out []string) {
		for _, in := range w.compute.Instances() {
			out = append(out, in.Name)
		}
		return out
	}
	if code, log := w.run(t); code != exitOK || !strings.Contains(log, `"reason":"warm"`) {
		t.Fatalf("exit %d, want warm creates:\n%s", code, log)
	}
	warm := names()
	if len(warm) != 2 || !reconcile.IsWarmName("gha", warm[0]) || !reconcile.IsWarmName("gha", warm[1]) {
		t.Fatalf("instances %v, want 2 warm runners", warm)
	}
	for _, n := range warm {
		w.gh.SetRunner(n, true, false)
	}
	if code, log := w.run(t); code != exitOK || len(names()) != 2 {
		t.Fatalf("exit %d, instances %v; want the 2 idle ones kept:\n%s", code, names(), log)
	}
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	w.gh.SetJobStatus(job, "in_progress", warm[0])
	w.gh.SetRunner(warm[0], true, true)
	if code, log := w.run(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	now := names()
	if len(now) != 3 {
		t.Fatalf("instances %v, want a third: 2 idle beside the busy one", now)
	}
	for _, n := range now {
		if n != warm[0] {
			w.gh.SetRunner(n, true, false)
		}
	}
	if code, log := w.run(t); code != exitOK || len(names()) != 3 {
		t.Errorf("exit %d, instances %v; want nothing more to do:\n%s", code, names(), log)
	}
}

// Under a timer, each pass is a new --once process. Ten of them, with --metrics-file and
// --cache, each creating one runner: the textfile's counters are the ten passes' sum,
// a true counter for node_exporter and Prometheus' increase(), not the last pass's.
func TestGCE_CountersAddUpAcrossOncePasses(t *testing.T) {
	w := newGCEWorld(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "reconcile.prom")
	for i := range 10 {
		w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
		code := runQuiet(context.Background(), "--once", "--config", w.config, "--github-url", w.gh.APIURL,
			"--cache", filepath.Join(dir, "cache.gz"), "--metrics-file", path)
		if code != exitOK {
			t.Fatalf("pass %d: exit code %d", i+1, code)
		}
	}
	if n := len(w.compute.Instances()); n != 10 {
		t.Fatalf("%d instances after ten passes, want 10", n)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fams := parseMetrics(t, string(b))
	if v, ok := value(fams, "reconcile_runners_created_total", map[string]string{"pool": "arm64"}); !ok || v != 10 {
		t.Errorf("reconcile_runners_created_total{pool=arm64} = %v (present %v), want the ten passes' 10", v, ok)
	}
	if f, ok := fams["reconcile_pass_duration_seconds"]; !ok || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetHistogram().GetSampleCount() != 10 {
		t.Errorf("reconcile_pass_duration_seconds: %v, want a count of 10 passes", f)
	}
}
