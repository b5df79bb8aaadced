package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// The platform's bad days, through the whole binary: a stockout or a quota in every
// zone, a fallback template, a role that lacks a permission, a hung Docker engine
// beside a healthy GCE pool. Each costs only what it must: no registration is spent on
// a machine that cannot start, a read that only refines a decision fails soft, and a
// backend that does not answer leaves only its own pools blind.

var zones = []string{"us-central1-a", "us-central1-b", "us-central1-c"}

// runWith runs one --once process of the world with more flags, and returns its exit
// code and log (JSON lines).
func (w *gceWorld) runWith(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	argv := append([]string{"reconcile", "--once", "--config", w.config, "--github-url", w.gh.APIURL, "--log-format", "json",
		"--points-per-minute", "900", "--writes-per-minute", "180"}, args...)
	code := run(context.Background(), argv, &stdout, &stderr)
	return code, stderr.String()
}

// logLines returns the log's JSON lines at level.
func logLines(t *testing.T, log, level string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

// queue queues n jobs of the arm64 pool.
func (w *gceWorld) queue(n int) []string {
	var names []string
	for range n {
		names = append(names, reconcile.RunnerName("gha", "arm64", w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), 0))
	}
	slices.Sort(names)
	return names
}

func instanceNames(s *gcetest.Server) []string {
	var names []string
	for _, in := range s.Instances() {
		names = append(names, in.Name)
	}
	slices.Sort(names)
	return names
}

// weatherPasses runs three --once processes sharing a cache while every zone refuses
// inserts as fail says, and checks that they cost at most one registration each (at
// most 3 in all), leave nothing behind, exit 0 and warn naming the pool and what is
// wrong; then capacity comes back and every job has a runner within 2 passes.
func weatherPasses(t *testing.T, fail gcetest.Failure, words string) {
	w := newGCEWorld(t)
	w.writePools(t, strings.Replace(w.arm64Pool(), "max_runners: 10", "max_runners: 30", 1))
	cache := filepath.Join(t.TempDir(), "cache.gz")
	for i, z := range zones {
		f := fail
		if fail == gcetest.FailHTTP && i == 1 {
			f = gcetest.FailOperation // a stockout arrives from the call or from the operation
		}
		w.compute.FailZone(z, f)
	}
	want := w.queue(20)
	// A constant 3 s wait (Max = Initial): on a loaded machine passes 2 and 3 may come
	// after it and probe, and the capacity-back pass below must still find the probe due.
	const backoff = "3s"
	start := time.Now()
	var took []time.Duration
	for pass := 1; pass <= 3; pass++ {
		began := time.Now()
		code, log := w.runWith(t, "--cache", cache, "--capacity-backoff", backoff, "--capacity-backoff-max", backoff)
		took = append(took, time.Since(began).Round(time.Millisecond))
		if code != exitOK {
			t.Fatalf("pass %d: exit code %d, want 0: platform weather is not the tool failing\n%s", pass, code, log)
		}
		warns := logLines(t, log, "warn")
		if len(warns) != 1 {
			t.Errorf("pass %d: %d warnings, want one:\n%s", pass, len(warns), log)
		}
		for _, l := range warns {
			if msg, _ := l["message"].(string); l["pool"] != "arm64" || !strings.Contains(msg, "pool arm64: "+words) {
				t.Errorf("pass %d: warning %q does not name pool arm64 and %q", pass, msg, words)
			}
		}
		if len(logLines(t, log, "error")) > 0 {
			t.Errorf("pass %d logged errors:\n%s", pass, log)
		}
	}
	if time.Since(start) > 3*time.Second {
		t.Logf("the three passes took %v, past the backoff: each may have probed", time.Since(start))
	}
	inserts := 0
	for _, r := range w.compute.Requests() {
		if strings.HasPrefix(r, "POST ") && strings.HasSuffix(strings.SplitN(r, "?", 2)[0], "/instances") {
			inserts++
		}
	}
	t.Logf("three passes: %d JIT registrations, %d inserts, passes took %v", w.gh.JITCount(), inserts, took)
	if n := w.gh.JITCount(); n > 3 || n == 0 {
		t.Errorf("%d JIT registrations in three passes, want 1 to 3: one probe a pass at most", n)
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left behind: %+v", regs)
	}
	if insts := w.compute.Instances(); len(insts) != 0 {
		t.Errorf("instances left behind: %+v", insts)
	}
	// Capacity comes back; once the probe is due, every job gets its runner.
	for _, z := range zones {
		w.compute.FailZone(z, 0)
	}
	time.Sleep(3 * time.Second)
	passes := 0
	for pass := 1; pass <= 2 && len(w.compute.Instances()) < len(want); pass++ {
		if code, log := w.runWith(t, "--cache", cache, "--capacity-backoff", backoff, "--capacity-backoff-max", backoff); code != exitOK {
			t.Fatalf("capacity back, pass %d: exit code %d\n%s", pass, code, log)
		}
		passes++
	}
	t.Logf("capacity back: %d instances after %d pass(es)", len(w.compute.Instances()), passes)
	if got := instanceNames(w.compute); !slices.Equal(got, want) {
		t.Errorf("capacity back: instances %v after two passes, want one for each of the 20 jobs", got)
	}
}

func TestGCE_StockoutInEveryZoneCostsAProbeAPassAndServesAllWhenCapacityReturns(t *testing.T) {
	weatherPasses(t, gcetest.FailHTTP, "no capacity (stockout)")
}

func TestGCE_QuotaExceededCostsAProbeAPassAndServesAllWhenQuotaReturns(t *testing.T) {
	weatherPasses(t, gcetest.FailQuota, "quota exceeded")
}

// A Spot template stocked out everywhere, a standard one as fallback: every job is
// served in the first pass (the probe's registration moves on to the standard
// template), each instance says which template made it, and once the Spot template's
// backoff is over and it has capacity again, new jobs go to it.
func TestGCE_FallbackTemplateServesEveryJobWhileSpotIsStockedOut(t *testing.T) {
	w := newGCEWorld(t)
	w.writePools(t, `
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 40
    gce: {project: ci-project, region: us-central1, instance_templates: [gha-arm64-spot, gha-arm64-standard], endpoint: `+w.compute.Endpoint+`}
`)
	const spot, standard = "projects/ci-project/regions/us-central1/instanceTemplates/gha-arm64-spot", "projects/ci-project/regions/us-central1/instanceTemplates/gha-arm64-standard"
	w.compute.FailTemplate(spot, gcetest.FailHTTP)
	cache := filepath.Join(t.TempDir(), "cache.gz")
	want := w.queue(20)
	if code, log := w.runWith(t, "--cache", cache, "--capacity-backoff", "2s", "--capacity-backoff-max", "2s"); code != exitOK {
		t.Fatalf("exit code %d, want 0\n%s", code, log)
	}
	if got := instanceNames(w.compute); !slices.Equal(got, want) {
		t.Fatalf("instances %v, want all 20 jobs served in the first pass", got)
	}
	for _, in := range w.compute.Instances() {
		if in.Template != standard || in.Labels[gce.LabelTemplate] != "gha-arm64-standard" {
			t.Errorf("%s made from %s (label %q), want the standard fallback", in.Name, in.Template, in.Labels[gce.LabelTemplate])
		}
	}
	if n := w.gh.JITCount(); n != 20 {
		t.Errorf("%d JIT registrations, want 20: the probe's moved on to the fallback", n)
	}
	// Spot is back; within its backoff, new jobs go to Spot again.
	w.compute.FailTemplate(spot, 0)
	more := w.queue(5)
	time.Sleep(2 * time.Second)
	if code, log := w.runWith(t, "--cache", cache, "--capacity-backoff", "2s", "--capacity-backoff-max", "2s"); code != exitOK {
		t.Fatalf("Spot back: exit code %d\n%s", code, log)
	}
	for _, in := range w.compute.Instances() {
		if slices.Contains(more, in.Name) && in.Template != spot {
			t.Errorf("%s made from %s after Spot came back, want Spot", in.Name, in.Template)
		}
	}
	if n := len(w.compute.Instances()); n != 25 {
		t.Errorf("%d instances, want 25", n)
	}
}

// A role without compute.globalOperations.list: a pass that sees a stopped instance
// cannot list preemptions. That read only refines what happens to the finished
// instance, so the pass goes on: the new jobs are served, the finished instance is
// deleted as finished, one warning names the permission, and the pass exits 0.
func TestGCE_MissingPreemptionPermissionFailsSoft(t *testing.T) {
	w := newGCEWorld(t)
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	first := reconcile.RunnerName("gha", "arm64", job, 0)
	if code, log := w.runWith(t); code != exitOK {
		t.Fatalf("first pass: exit code %d\n%s", code, log)
	}
	// The runner ran its job and powered its VM off; GitHub removed its registration.
	w.gh.SetJobStatus(job, "completed", first)
	w.gh.RemoveRunner(first)
	w.compute.SetStatus(first, "TERMINATED")
	w.compute.Deny("compute.globalOperations.list", true)
	more := w.queue(2)
	code, log := w.runWith(t)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0\n%s", code, log)
	}
	if got := instanceNames(w.compute); !slices.Equal(got, more) {
		t.Errorf("instances %v, want the two new jobs' and not the finished one", got)
	}
	var warned int
	for _, l := range logLines(t, log, "warn") {
		if l["permission"] == "compute.globalOperations.list" {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings name compute.globalOperations.list, want 1:\n%s", warned, log)
	}
	if w.compute.Methods()["compute.globalOperations.aggregatedList"] == 0 {
		t.Error("the preemption listing was never asked for: the fault was not served")
	}
}

// A template that does not exist fails loudly (exit 1) and is probed once a pass, not
// once a job.
func TestGCE_MissingTemplateFailsThePassAndProbesOnceAPass(t *testing.T) {
	w := newGCEWorld(t)
	w.compute.FailTemplate("projects/ci-project/regions/us-central1/instanceTemplates/gha-arm64-spot", gcetest.FailNoTemplate)
	w.queue(10)
	cache := filepath.Join(t.TempDir(), "cache.gz")
	for pass := 1; pass <= 2; pass++ {
		code, log := w.runWith(t, "--cache", cache)
		if code != exitFailed {
			t.Fatalf("pass %d: exit code %d, want 1\n%s", pass, code, log)
		}
		if !strings.Contains(log, "gha-arm64-spot") {
			t.Errorf("pass %d: the log does not name the template:\n%s", pass, log)
		}
	}
	if n := w.gh.JITCount(); n != 2 {
		t.Errorf("%d JIT registrations in two passes, want 2: one probe a pass", n)
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left behind: %+v", regs)
	}
}

// engine listens on a Unix socket as a Docker engine would, and treats each connection
// as serve says; it returns the socket's path.
func engine(t *testing.T, serve func(net.Conn, <-chan struct{})) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "engine") // short: a socket's path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); os.RemoveAll(dir) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c, done)
		}
	}()
	return sock
}

// hungEngine accepts connections and never answers.
func hungEngine(t *testing.T) string {
	return engine(t, func(c net.Conn, done <-chan struct{}) { <-done; c.Close() })
}

// resettingEngine accepts connections and drops them at once, unanswered.
func resettingEngine(t *testing.T) string {
	return engine(t, func(c net.Conn, _ <-chan struct{}) { c.Close() })
}

// A Docker engine that accepts and never answers, beside a GCE pool: the GCE pool's
// job is served in the same pass, the output names the engine, and the pass ends well
// before --timeout. Neither that nor an engine that resets the connection gets a
// hint about GitHub's settings.
func TestBadDay_HungDockerEngineBlindsOnlyItsOwnPool(t *testing.T) {
	for _, tc := range []struct {
		name   string
		engine func(*testing.T) string
	}{{"hung", hungEngine}, {"reset", resettingEngine}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newGCEWorld(t)
			addr := tc.engine(t)
			w.writePools(t, w.arm64Pool()+`
  - name: docker
    labels: [self-hosted, linux, x64]
    max_runners: 2
    docker: {host: "unix://`+addr+`", image: runner:test, pull: never}
`)
			want := w.queue(1)
			start := time.Now()
			code, log := w.runWith(t, "--timeout", "30s", "--backend-timeout", "2s")
			took := time.Since(start)
			if code != exitFailed {
				t.Errorf("exit code %d, want 1: a pool was blind\n%s", code, log)
			}
			if got := instanceNames(w.compute); !slices.Equal(got, want) {
				t.Errorf("instances %v, want the GCE pool's job served in the same pass", got)
			}
			if !strings.Contains(log, "Docker engine at unix://"+addr) {
				t.Errorf("the output does not name the engine unix://%s:\n%s", addr, log)
			}
			if strings.Contains(log, "github-url") || strings.Contains(log, "GITHUB_API_URL") {
				t.Errorf("a Docker failure got a hint about GitHub's settings:\n%s", log)
			}
			t.Logf("%s engine beside a GCE pool: the pass took %v (--backend-timeout 2s, --timeout 30s)", tc.name, took.Round(time.Millisecond))
			for _, l := range logLines(t, log, "error") {
				if l["problem"] != nil {
					t.Logf("problem: %s", l["problem"])
				}
			}
			if took > 15*time.Second {
				t.Errorf("the pass took %v, want well before --timeout 30s", took)
			}
		})
	}
}
