package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
)

// statusOf runs `reconcile status` as a process and returns its exit code, stdout
// and stderr.
func (w *procWorld) statusOf(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinary(t, w.env, append([]string{"status", "--config", w.config}, args...)...)
}

// reconcile status against the fake GitHub and Compute: what a pass made, seen as it
// is; the queue with why each job is or is not served; and nothing changed.
func TestStatus_ShowsRunnersAndQueueAndChangesNothing(t *testing.T) {
	w := newProcWorld(t)
	served := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	if code := w.pass(t); code != 0 {
		t.Fatalf("pass exited %d", code)
	}
	name := reconcile.RunnerName("gha", "arm64", served, 0)
	w.gh.SetRunner(name, true, true) // it came up and took its job
	w.gh.SetJobStatus(served, "in_progress", name)
	gpu := w.gh.QueueJob("octo-org/app", "self-hosted", "gpu")
	waiting := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	w.gh.AddRunner("octo-org/app", "gha-arm64-424242", false, false, "self-hosted", "ARM64") // a ghost
	w.gh.ResetStats()
	mutations, inserts := len(w.gh.Mutations()), len(w.compute.Requests())

	code, out, stderr := w.statusOf(t, "--output", "json")
	if code != 0 {
		t.Fatalf("status exited %d:\n%s", code, stderr)
	}
	var st reconcile.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	states := map[string]reconcile.State{}
	for _, r := range st.Runners {
		states[r.Name] = r.State
		if r.Name == name && r.RunsJob != served {
			t.Errorf("%s runs job %d, want %d (GitHub's runner_name)", name, r.RunsJob, served)
		}
	}
	if states[name] != reconcile.StateBusy || states["gha-arm64-424242"] != reconcile.StateGhost {
		t.Errorf("states %v, want %s busy and the ghost", states, name)
	}
	why := map[int64]string{}
	for _, q := range st.Queue {
		why[q.JobID] = string(q.NotServed) + q.Runner
	}
	if why[gpu] != string(reconcile.ReasonNoPool) || !strings.HasPrefix(why[waiting], reconcile.RunnerName("gha", "arm64", waiting, 0)) {
		t.Errorf("queue %v: want job %d without a pool and job %d with a runner to create", why, gpu, waiting)
	}
	if len(w.gh.Mutations()) != mutations || w.gh.JITCount() != 1 {
		t.Errorf("status changed GitHub: %v (JIT configurations %d, want the pass's 1)", w.gh.Mutations(), w.gh.JITCount())
	}
	for _, r := range w.compute.Requests()[inserts:] {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("status changed Compute: %s", r)
		}
	}

	// The table: one line per runner and job, no log lines on stdout.
	code, out, _ = w.statusOf(t)
	if code != 0 || !strings.Contains(out, "pool arm64: 1 runners of max 10") || !strings.Contains(out, "no pool has all its labels") ||
		strings.Contains(out, "\x1b[") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	if code, _, stderr := w.statusOf(t, "--output", "yaml"); code != 2 || !strings.Contains(stderr, `--output: "yaml" is not table, wide or json`) {
		t.Errorf("--output yaml: exit %d, %s", code, stderr)
	}
}

// What could not be seen is said first, and the exit code says so; the rest is shown.
func TestStatus_WhatCouldNotBeSeenComesFirstAndExitsOne(t *testing.T) {
	w := newProcWorld(t)
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	w.gh.Fail("GET", "/actions/runs", 502, 100)
	code, out, _ := w.statusOf(t)
	if code != 1 || !strings.HasPrefix(out, "not seen: ") || !strings.Contains(out, "pool arm64: 0 runners of max 10") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// reconcile status --usage reads the runner time the passes counted in their cache:
// a runner that booted, then ran its job, is shown under its pool and repository with
// its booting and busy time and the job served. It needs no configuration and no
// credentials, and calls neither GitHub nor the platform.
func TestStatus_UsageShowsTheRunnerTimeTheCacheCountedAndCallsNothing(t *testing.T) {
	w := newProcWorld(t)
	cache := filepath.Join(t.TempDir(), "cache.json")
	pass := func() {
		t.Helper()
		if code, _, stderr := runBinary(t, w.env, "--once", "--config", w.config, "--cache", cache); code != 0 {
			t.Fatalf("pass exited %d:\n%s", code, stderr)
		}
	}
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	pass() // creates the runner: booting
	name := reconcile.RunnerName("gha", "arm64", job, 0)
	time.Sleep(2 * time.Second)
	w.gh.SetRunner(name, true, true) // it came up and took its job
	w.gh.SetJobStatus(job, "in_progress", name)
	pass() // sees it busy: the interval's time half booting, half busy
	time.Sleep(2 * time.Second)
	pass() // busy all along

	gh, compute := len(w.gh.Requests()), len(w.compute.Requests())
	bare := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()} // no token, no key, no GitHub URL
	code, out, stderr := runBinary(t, bare, "status", "--usage", "--cache", cache, "-o", "json")
	if code != 0 {
		t.Fatalf("status --usage exited %d:\n%s", code, stderr)
	}
	var u metrics.Usage
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(u.Rows) == 0 || u.Rows[0].Pool != "arm64" || u.Rows[0].Repo != "octo-org/app" {
		t.Fatalf("rows %+v: want arm64's octo-org/app first", u.Rows)
	}
	r := u.Rows[0]
	if r.Booting < 1 || r.Busy < 2 || r.Idle != 0 || r.Jobs != 1 || u.Since.IsZero() || u.Since.After(time.Now()) {
		t.Errorf("arm64 octo-org/app: %+v since %v: want about 3 s booting, 3 s busy, the one job served", r, u.Since)
	}
	if len(w.gh.Requests()) != gh || len(w.compute.Requests()) != compute {
		t.Errorf("status --usage called GitHub (%d requests) or Compute (%d)", len(w.gh.Requests())-gh, len(w.compute.Requests())-compute)
	}

	code, out, _ = runBinary(t, bare, "status", "--usage", "--cache", cache)
	if code != 0 || !strings.Contains(out, "runner time counted in "+cache+" since ") ||
		!regexp.MustCompile(`(?m)^arm64 +octo-org/app +0\.00 +0\.00 +0\.00 +0\.00 +\d+ % +1$`).MatchString(out) {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	code, _, stderr = runBinary(t, bare, "status", "--usage")
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); code != 2 || len(lines) != 1 || !strings.Contains(stderr, "--usage reads the counters") {
		t.Errorf("without --cache: exit %d, %q: want 2 and one line", code, stderr)
	}
}

// The flags of a pass work before the subcommand as after it, and status never needs
// --dry-run: `reconcile --config F status` shows the file's pools, and `reconcile
// status --repo o/n` with no file shows the default pool.
func TestStatus_FlagsBeforeTheSubcommandAndNoDryRun(t *testing.T) {
	w := newProcWorld(t)
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	code, out, stderr := runBinary(t, w.env, "--config", w.config, "--log-level", "error", "status", "--output", "wide")
	if code != 0 || !strings.Contains(out, "pool arm64: 0 runners of max 10") || stderr != "" {
		t.Errorf("--config F status: exit %d:\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runBinary(t, w.env, "status", "--repo", "octo-org/app")
	if code != 0 || !strings.Contains(out, "pool default: 0 runners of max") || !strings.Contains(out, "octo-org/app") {
		t.Errorf("status --repo without --dry-run: exit %d:\n%s\n%s", code, out, stderr)
	}
	if len(w.gh.Mutations()) != 0 || w.inserted() {
		t.Errorf("status changed something: %v", w.gh.Mutations())
	}
}
