package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/reconcile"
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
