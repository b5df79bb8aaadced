package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// Jobs in quiet repositories, measured from outside as a user would: the built binary
// in loop mode, passes 5 s apart, an organisation of 200 repositories with nothing
// queued, a --cache; then a job queued in one quiet repository after another, with no
// push before it (a schedule, a dispatch: the rotation must find it). Each must get its
// runner within 40 s: 200 repositories at 450 read points a minute (a pass a minute's
// share; passes 5 s apart that make few runners read with up to 552) are all looked at
// every 27 s or sooner.
func TestLatency_QuietRepositoriesGetARunnerWithin40s(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the loop for a few minutes of real time")
	}
	gh := ghpolltest.NewServer(t)
	gh.SetLimits(ghpolltest.GitHubLimits)
	var repos []string
	for i := range 200 {
		name := fmt.Sprintf("quiet-org/repo%03d", i)
		gh.AddRepo(name, false, false)
		repos = append(repos, name)
	}
	compute := gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a")
	dir := t.TempDir()
	config := filepath.Join(dir, "reconcile.yaml")
	conf := "github: {orgs: [quiet-org]}\npools:\n  - name: x64\n    labels: [self-hosted, x64]\n    max_runners: 20\n" +
		"    gce: {project: ci-project, region: us-central1, instance_template: t, endpoint: " + compute.Endpoint + "}\n"
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "--config", config, "--interval", "5s", "--timeout", "4s", "--log-format", "json",
		"--cache", filepath.Join(dir, "cache.gz"))
	cmd.Env = append(os.Environ(), "GITHUB_TOKEN=ghp_latency", "GOOGLE_OAUTH_ACCESS_TOKEN=ya29.latency", "GITHUB_API_URL="+gh.APIURL)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })

	// A minute of passes first: every repository looked at once, as a loop that has
	// been running a while.
	time.Sleep(time.Minute)
	var waits []time.Duration
	for i, repo := range []string{repos[17], repos[83], repos[140], repos[199], repos[5], repos[111]} {
		run := gh.AddRun(repo, "queued")
		gh.SetRunEvent(run, "schedule")
		job := gh.AddJob(run, "queued", "self-hosted", "x64")
		name := reconcile.RunnerName("gha", "x64", job, 0)
		queued := time.Now()
		for !slices.ContainsFunc(compute.Instances(), func(in gcetest.Instance) bool { return in.Name == name }) {
			if time.Since(queued) > 40*time.Second {
				t.Fatalf("job %d in %s has no runner after 40 s (earlier waits %v)", i+1, repo, waits)
			}
			time.Sleep(100 * time.Millisecond)
		}
		waits = append(waits, time.Since(queued).Round(100*time.Millisecond))
		// Its runner takes it and it ends, as jobs do.
		gh.SetJobStatus(job, "completed", name)
		gh.SetRunStatus(run, "completed")
	}
	t.Logf("queued → runner created: %v", waits)
}
