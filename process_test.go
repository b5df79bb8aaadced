package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// These tests run the command as a process, stop it (SIGTERM) or kill it (SIGKILL) at
// the worst moments, and run the next pass: it must converge, with no duplicate, no
// leaked registration and no leaked instance.

type procWorld struct {
	gh      *ghpolltest.Server
	compute *gcetest.Server
	config  string
	env     []string
}

func newProcWorld(t *testing.T) *procWorld {
	t.Helper()
	w := &procWorld{gh: ghpolltest.NewServer(t), compute: gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a", "us-central1-b")}
	w.config = filepath.Join(t.TempDir(), "reconcile.yaml")
	conf := "github: {repos: [octo-org/app]}\npools:\n  - name: arm64\n    labels: [self-hosted, ARM64]\n    max_runners: 10\n" +
		"    gce: {project: ci-project, region: us-central1, instance_template: t, endpoint: " + w.compute.Endpoint + "}\n"
	if err := os.WriteFile(w.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(os.Environ(), "GITHUB_TOKEN=ghp_proc", "GOOGLE_OAUTH_ACCESS_TOKEN=ya29.proc", "GITHUB_API_URL="+w.gh.APIURL)
	return w
}

func (w *procWorld) start(t *testing.T) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary(t), "--once", "--config", w.config, "--log-format", "json", "--concurrency", "1")
	cmd.Env = w.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// pass runs one whole pass as a process and returns its exit code.
func (w *procWorld) pass(t *testing.T) int {
	t.Helper()
	cmd, stderr := w.start(t)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Logf("pass exited %d:\n%s", ee.ExitCode(), stderr)
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// runBinary runs the built command with env and args to its end, and returns its exit
// code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// waitFor polls until cond holds, or fails.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (w *procWorld) posted(path string) func() bool {
	return func() bool {
		return slices.ContainsFunc(w.gh.Requests(), func(r ghpolltest.Request) bool {
			return r.Method == http.MethodPost && strings.Contains(r.Path, path)
		})
	}
}

// ageRegistration makes a registration look d older, as if it had been made d ago.
func (w *procWorld) ageRegistration(t *testing.T, name string, d time.Duration) {
	t.Helper()
	for _, r := range w.gh.Runners() {
		if r.Name != name {
			continue
		}
		labels := slices.DeleteFunc(slices.Clone(r.Labels), func(l string) bool { return strings.HasPrefix(l, "reconcile-registered-") })
		at, ok := reconcile.Registration{Labels: r.Labels}.Registered()
		if !ok {
			t.Fatalf("registration %s has no registration time: %v", name, r.Labels)
		}
		w.gh.SetRunnerLabels(name, append(labels, reconcile.RegisteredLabel(at.Add(-d))))
		return
	}
	t.Fatalf("no registration %s", name)
}

func (w *procWorld) inserted() bool {
	return slices.ContainsFunc(w.compute.Requests(), func(r string) bool { return strings.HasPrefix(r, "POST ") })
}

func (w *procWorld) state() (instances, registrations []string) {
	for _, in := range w.compute.Instances() {
		instances = append(instances, in.Name)
	}
	for _, r := range w.gh.Runners() {
		registrations = append(registrations, r.Name)
	}
	return instances, registrations
}

func TestProcess_SIGTERMFinishesTheCreateUnderWayAndSaysWhatWasLeft(t *testing.T) {
	w := newProcWorld(t)
	for range 3 {
		w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	}
	w.compute.SlowInserts(1500 * time.Millisecond)
	cmd, stderr := w.start(t)
	// The signal comes while the next registration waits its turn (writes are 800 ms
	// apart): the one registered is under way.
	waitFor(t, "the first registration", func() bool { return len(w.gh.Runners()) == 1 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("exit: %v, want code 1\n%s", err, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if !strings.Contains(stderr.String(), "2 creates not started") {
		t.Errorf("no line saying what was left:\n%s", stderr)
	}
	instances, regs := w.state()
	if len(instances) != 1 || !slices.Equal(instances, regs) {
		t.Fatalf("after SIGTERM: instances %v, registrations %v; want the one create under way finished, nothing else registered", instances, regs)
	}
	w.compute.SlowInserts(0)
	if code := w.pass(t); code != exitOK {
		t.Fatalf("next pass: exit %d", code)
	}
	instances, regs = w.state()
	if len(instances) != 3 || !slices.Equal(instances, regs) {
		t.Errorf("after the next pass: instances %v, registrations %v; want three, the same", instances, regs)
	}
}

func TestProcess_KilledBetweenRegistrationAndCreate(t *testing.T) {
	w := newProcWorld(t)
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	name := reconcile.RunnerName("gha", "arm64", job, 0)
	// GitHub registers the runner; the process dies before it creates the instance.
	w.gh.Delay(http.MethodPost, "generate-jitconfig", 500*time.Millisecond, 1)
	cmd, _ := w.start(t)
	waitFor(t, "the registration request", w.posted("generate-jitconfig"))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "GitHub to register it", func() bool { _, regs := w.state(); return len(regs) == 1 })
	if instances, _ := w.state(); len(instances) != 0 {
		t.Fatalf("instances %v before the next pass, want none", instances)
	}

	// A registration this fresh may be another pass's create under way: the next pass
	// counts it as the job's booting runner and makes no second one.
	if code := w.pass(t); code != exitOK {
		t.Fatalf("next pass: exit %d", code)
	}
	if instances, regs := w.state(); len(instances) != 0 || !slices.Equal(regs, []string{name}) {
		t.Fatalf("within reconcile.RegistrationGrace: instances %v, registrations %v; want none and %s alone", instances, regs, name)
	}
	// Past the grace, it is a dead pass's leftover. (GitHub keeps a JIT registration's
	// labels as given: the test moves its registration time back.)
	w.ageRegistration(t, name, reconcile.RegistrationGrace+time.Minute)
	if code := w.pass(t); code != exitOK {
		t.Fatalf("pass after the grace: exit %d", code)
	}
	instances, regs := w.state()
	if !slices.Equal(instances, []string{name + "-r1"}) {
		t.Fatalf("instances %v, want one runner for the job, %s-r1 (the stale registration holds the plain name)", instances, name)
	}
	// The new runner takes the job; the stale registration is then removed.
	w.gh.SetJobStatus(job, "in_progress", name+"-r1")
	w.gh.SetRunner(name+"-r1", true, true)
	if code := w.pass(t); code != exitOK {
		t.Fatalf("third pass: exit %d", code)
	}
	instances, regs = w.state()
	if !slices.Equal(instances, []string{name + "-r1"}) || !slices.Equal(regs, []string{name + "-r1"}) {
		t.Errorf("instances %v, registrations %v; want only %s-r1", instances, regs, name)
	}
}

func TestProcess_KilledBetweenCreateAndTheEndOfThePass(t *testing.T) {
	w := newProcWorld(t)
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	name := reconcile.RunnerName("gha", "arm64", job, 0)
	// The insert reaches Compute Engine; the process dies while it waits for it.
	w.compute.SlowInserts(time.Second)
	cmd, _ := w.start(t)
	waitFor(t, "the insert", w.inserted)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the instance", func() bool { in, _ := w.state(); return len(in) == 1 })
	w.compute.SlowInserts(0)
	if code := w.pass(t); code != exitOK {
		t.Fatalf("next pass: exit %d", code)
	}
	instances, regs := w.state()
	if !slices.Equal(instances, []string{name}) || !slices.Equal(regs, []string{name}) {
		t.Errorf("instances %v, registrations %v; want only %s: the booting runner counts, no duplicate", instances, regs, name)
	}
}

// The pass's deadline comes while it registers a burst's runners at the write pace
// (800 ms apart, --writes-per-minute 75): it starts what it registered, leaves nothing half-made, says how many
// creates it left, and does not fail, for it went as fast as GitHub allows; the next
// pass makes the rest.
func TestProcess_TimeoutMidBurstDefersTheRestSayingHowMany(t *testing.T) {
	w := newProcWorld(t)
	for range 3 {
		w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	}
	w.compute.SlowInserts(time.Second)
	cmd := exec.Command(binary(t), "--once", "--config", w.config, "--log-format", "json", "--concurrency", "1", "--timeout", "1500ms", "--writes-per-minute", "75")
	cmd.Env = w.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit: %v, want 0\n%s", err, stderr.String())
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v", d)
	}
	instances, regs := w.state()
	if len(instances) == 0 || len(instances) == 3 || !slices.Equal(instances, regs) {
		t.Fatalf("instances %v, registrations %v; want those registered before the deadline (not all three), each with its instance", instances, regs)
	}
	line := fmt.Sprintf(`"creates_left":%d,"why":"its deadline (--timeout 1.5s) came while registering runners at the write pace"`, 3-len(instances))
	if !strings.Contains(stderr.String(), line) {
		t.Errorf("no line saying what the deadline left (%s):\n%s", line, stderr.String())
	}
	w.compute.SlowInserts(0)
	if code := w.pass(t); code != exitOK {
		t.Fatalf("next pass: exit %d", code)
	}
	if instances, regs := w.state(); len(instances) != 3 || !slices.Equal(instances, regs) {
		t.Errorf("after the next pass: instances %v, registrations %v; want three, the same", instances, regs)
	}
}

// Two --once processes started at the same moment (a CronJob's pass and a terminal, a
// timer that fires as a pass runs long) over three queued jobs: each job gets exactly
// one runner. A process that finds another's registration with no instance yet counts
// it as that job's booting runner; one whose JIT call meets 409 looks for the other's
// instance. With slow inserts, each sees the other's registrations long before their
// instances.
func TestProcess_TwoPassesStartedTogetherMakeOneRunnerPerJob(t *testing.T) {
	for _, slow := range []time.Duration{0, 1500 * time.Millisecond} {
		t.Run("inserts taking "+slow.String(), func(t *testing.T) {
			w := newProcWorld(t)
			var names []string
			for range 3 {
				names = append(names, reconcile.RunnerName("gha", "arm64", w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64"), 0))
			}
			w.compute.SlowInserts(slow)
			a, aErr := w.start(t)
			b, bErr := w.start(t)
			for _, p := range []struct {
				cmd    *exec.Cmd
				stderr *bytes.Buffer
			}{{a, aErr}, {b, bErr}} {
				if err := p.cmd.Wait(); err != nil {
					t.Errorf("a pass: %v\n%s", err, p.stderr)
				}
			}
			instances, regs := w.state()
			if !slices.Equal(instances, names) || !slices.Equal(regs, names) {
				t.Errorf("instances %v, registrations %v; want exactly %v", instances, regs, names)
			}
		})
	}
}

// A repository that always has runs (GitHub-hosted jobs keep it busy) is polled every
// pass; a ghost registration there is still removed within --idle-poll-interval of
// --once passes that share a --cache.
func TestProcess_GhostInABusyRepositoryIsSweptWithinTheIdleInterval(t *testing.T) {
	w := newProcWorld(t)
	run := w.gh.AddRun("octo-org/app", "in_progress")
	w.gh.AddJob(run, "in_progress", "ubuntu-latest")
	cache := filepath.Join(t.TempDir(), "cache.gz")
	pass := func() {
		t.Helper()
		cmd := exec.Command(binary(t), "--once", "--config", w.config, "--log-format", "json",
			"--interval", "1s", "--idle-poll-interval", "3s", "--cache", cache)
		cmd.Env = w.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pass: %v\n%s", err, out)
		}
	}
	// A warm cache: the repository's registrations were listed a moment ago, and it
	// has runs, so it is polled every pass without its registrations.
	pass()
	w.gh.AddRunner("octo-org/app", "gha-arm64-4242", false, false) // a dead pass's leftover; its job ran elsewhere
	start := time.Now()
	for time.Since(start) < 4*time.Second {
		pass()
		if _, regs := w.state(); len(regs) == 0 {
			t.Logf("ghost removed %v after it appeared", time.Since(start).Round(100*time.Millisecond))
			return
		}
		time.Sleep(time.Second)
	}
	_, regs := w.state()
	t.Errorf("registrations %v after %v of passes, want the ghost gone within --idle-poll-interval 3s and one --interval", regs, time.Since(start).Round(time.Second))
}
