package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// The fair share through the whole command, on GCE: repository a's 200-job matrix
// fills the pool (max_runners 10); b, c, d and e then queue one job each. While the
// pool is full, status says each waits for its turn and the metrics count them; as a's
// runners finish one at a time, the next four runners go to b, c, d and e, and a keeps
// the other six.
func TestGCE_AFullPoolGivesTheNextRunnersToTheRepositoriesWaiting(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	compute := gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a", "us-central1-b", "us-central1-c")
	dir := t.TempDir()
	config, metricsFile := filepath.Join(dir, "reconcile.yaml"), filepath.Join(dir, "reconcile.prom")
	conf := `github: {repos: [octo-org/a, octo-org/b, octo-org/c, octo-org/d, octo-org/e]}
pools:
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 10
    gce: {project: ci-project, region: us-central1, instance_template: gha-arm64-spot, endpoint: ` + compute.Endpoint + `}
`
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.test")
	command := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		full := append([]string{"reconcile"}, args...)
		full = append(full, "--config", config, "--github-url", gh.APIURL, "--log-format", "json")
		if code := run(context.Background(), full, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit code %d:\n%s", args, code, stderr.String())
		}
		return stdout.String()
	}
	runner := func(job int64) string { return reconcile.RunnerName("gha", "arm64", job, 0) }
	matrix := gh.AddRun("octo-org/a", "queued")
	var a []int64
	for range 200 {
		a = append(a, gh.AddJob(matrix, "queued", "self-hosted", "linux", "ARM64"))
	}
	command("--once")
	if n := len(compute.Instances()); n != 10 {
		t.Fatalf("%d instances after the first pass, want the pool's 10", n)
	}
	for _, j := range a[:10] { // a's first ten run
		gh.SetJobStatus(j, "in_progress", runner(j))
		gh.SetRunner(runner(j), true, true)
	}
	others := map[string]int64{}
	for _, repo := range []string{"b", "c", "d", "e"} {
		others[repo] = gh.QueueJob("octo-org/"+repo, "self-hosted", "linux", "ARM64")
	}
	command("--once", "--metrics-file", metricsFile)
	prom, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := `reconcile_jobs_waiting_for_room{pool="arm64"} 194`; !strings.Contains(string(prom), want) {
		t.Errorf("metrics do not say %s:\n%s", want, prom)
	}
	status := command("status")
	for i, repo := range []string{"b", "c", "d", "e"} { // in the order they queued
		line := fmt.Sprintf("%d ", others[repo])
		if !strings.Contains(lineWith(status, line), fmt.Sprintf("waiting for room (fair share: %d ahead)", i)) {
			t.Errorf("status of %s's job: %q, want it waiting for room with %d ahead", repo, lineWith(status, line), i)
		}
	}
	// a's runners finish one at a time; each frees a slot, and a pass fills it.
	for i, repo := range []string{"b", "c", "d", "e"} {
		done := a[i]
		gh.SetJobStatus(done, "completed", runner(done))
		compute.SetStatus(runner(done), "STOPPED")
		gh.RemoveRunner(runner(done))
		command("--once")
		if !slices.ContainsFunc(compute.Instances(), func(in gcetest.Instance) bool { return in.Name == runner(others[repo]) }) {
			t.Errorf("after %d of a's runners finished, %s's job has no runner; instances: %v", i+1, repo, instanceNames(compute))
		}
	}
	held := 0
	for _, in := range compute.Instances() {
		for _, j := range a {
			if in.Name == runner(j) && in.Status != "STOPPED" {
				held++
			}
		}
	}
	if held != 6 {
		t.Errorf("a holds %d runners, want 6 of the 10: %v", held, instanceNames(compute))
	}
}

func lineWith(text, start string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, start) {
			return l
		}
	}
	return ""
}
