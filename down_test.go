package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/docker/dockertest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/k8s/k8stest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/command"
)

// reconcile down, on each backend: three runners (idle, busy, booting), a ghost
// registration of ours and someone else's runner. A dry run changes nothing. Down
// removes the idle and booting runners and the ghost at once, waits while the busy
// runner's job runs, removes it when its job ends, and exits 0 with nothing of the
// installation left on GitHub or the platform; the other's runner stays.
type downWorld struct {
	gh           *ghpolltest.Server
	prefix, pool string
	labels       []string
	pass         func(t *testing.T)
	down         func(args ...string) (code int, out string)
	runners      func(t *testing.T) []string     // ours on the platform
	finish       func(t *testing.T, name string) // the platform's side of a runner whose job ended
}

func (w downWorld) registrations() []string {
	var out []string
	for _, r := range w.gh.Runners() {
		out = append(out, r.Name)
	}
	return out
}

func takeDown(t *testing.T, w downWorld) {
	t.Helper()
	var jobs []int64
	var names []string
	for range 3 {
		j := w.gh.QueueJob("octo-org/app", w.labels...)
		jobs, names = append(jobs, j), append(names, reconcile.RunnerName(w.prefix, w.pool, j, 0))
	}
	w.pass(t)
	if got := w.runners(t); len(got) != 3 {
		t.Fatalf("runners %v after the pass, want 3", got)
	}
	idle, busy := names[0], names[1] // names[2] stays booting
	w.gh.SetRunner(idle, true, false)
	w.gh.SetRunner(busy, true, true)
	w.gh.SetJobStatus(jobs[1], "in_progress", busy)
	ghost := reconcile.RunnerName(w.prefix, w.pool, 424242, 0)
	w.gh.AddRunner("octo-org/app", ghost, false, false, w.labels...)
	w.gh.AddRunner("octo-org/app", "someone-elses-runner", true, false, "self-hosted")

	code, out := w.down("--dry-run")
	if code != 0 || !strings.Contains(out, "would remove 2 runners now, 1 busy runner when its job ends") ||
		!strings.Contains(out, "and 1 registration without a runner; nothing was changed") {
		t.Errorf("down --dry-run: exit %d:\n%s", code, out)
	}
	if got, regs := w.runners(t), w.registrations(); len(got) != 3 || len(regs) != 5 {
		t.Fatalf("the dry run changed something: runners %v, registrations %v", got, regs)
	}

	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := w.down("--interval", "1s", "--wait", "2m")
		done <- result{code, out}
	}()
	waitFor(t, "down to remove all but the busy runner", func() bool {
		return slices.Equal(w.runners(t), []string{busy}) && slices.Equal(w.registrations(), []string{busy, "someone-elses-runner"})
	})
	time.Sleep(3 * time.Second) // passes go on: the busy runner is waited for
	if got := w.runners(t); !slices.Equal(got, []string{busy}) {
		t.Fatalf("runners %v while the busy runner's job runs, want it alone", got)
	}
	select {
	case r := <-done:
		t.Fatalf("down ended while a runner was busy: exit %d\n%s", r.code, r.out)
	default:
	}
	// Its job ends: its machine stops (first: a pass may remove the runner as soon as
	// either side says so), and GitHub drops the ephemeral registration.
	w.finish(t, busy)
	w.gh.SetJobStatus(jobs[1], "completed", busy)
	w.gh.RemoveRunner(busy)
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("down did not end within a minute of the last job's end")
	}
	if r.code != 0 || !strings.Contains(r.out, "down: removed 3 runners") || !strings.Contains(r.out, "nothing of this installation is left") {
		t.Errorf("down: exit %d:\n%s", r.code, r.out)
	}
	if got, regs := w.runners(t), w.registrations(); len(got) != 0 || !slices.Equal(regs, []string{"someone-elses-runner"}) {
		t.Errorf("after down: runners %v, registrations %v; want none of ours, the other's kept", got, regs)
	}
}

func TestDown_GCE(t *testing.T) {
	w := newGCEWorld(t)
	takeDown(t, downWorld{gh: w.gh, prefix: "gha", pool: "arm64", labels: []string{"self-hosted", "ARM64"},
		pass: func(t *testing.T) {
			if code, log := w.run(t); code != exitOK {
				t.Fatalf("pass: exit %d\n%s", code, log)
			}
		},
		down: func(args ...string) (int, string) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"reconcile", "down", "--config", w.config, "--github-url", w.gh.APIURL,
				"--log-format", "json"}, args...), &stdout, &stderr)
			return code, stdout.String() + stderr.String()
		},
		runners: func(*testing.T) []string {
			var out []string
			for _, in := range w.compute.Instances() {
				out = append(out, in.Name)
			}
			slices.Sort(out)
			return out
		},
		finish: func(t *testing.T, name string) {
			if !w.compute.SetStatus(name, "TERMINATED") {
				t.Fatalf("no instance %s", name)
			}
		},
	})
}

func TestDown_Kubernetes(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	w := newKubeWorld(t, admin, newNamespace(t, cs, "down"))
	ns := w.ns
	takeDown(t, downWorld{gh: w.gh, prefix: "gha", pool: "x64", labels: []string{"self-hosted", "x64"},
		pass: func(t *testing.T) {
			if err := w.pass(t); err != nil {
				t.Fatal(err)
			}
		},
		down: func(args ...string) (int, string) {
			rc := *w.rc
			rc.DryRun = slices.Contains(args, "--dry-run")
			var out bytes.Buffer
			rep, err := rc.Down(context.Background(), reconcile.DownOptions{Wait: 2 * time.Minute, Grace: time.Minute,
				Interval: time.Second, Timeout: 30 * time.Second})
			command.WriteDown(&out, rep, 2*time.Minute, rc.DryRun)
			if err != nil || !rc.DryRun && !rep.Done() {
				return 1, out.String()
			}
			return 0, out.String()
		},
		runners: func(t *testing.T) []string {
			jobs, err := w.cs.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, j := range jobs.Items {
				if j.DeletionTimestamp == nil {
					out = append(out, j.Name)
				}
			}
			slices.Sort(out)
			return out
		},
		finish: func(t *testing.T, name string) { finishJob(t, w.cs, ns, name) },
	})
}

func TestDown_Docker(t *testing.T) {
	w := newDockerWorld(t, "dkdown", dockertest.Host(t))
	takeDown(t, downWorld{gh: w.gh, prefix: "dkdown", pool: "x64", labels: []string{"self-hosted", "x64"},
		pass: func(t *testing.T) {
			if code, out := w.pass(t); code != 0 {
				t.Fatalf("pass: exit %d\n%s", code, out)
			}
		},
		down: func(args ...string) (int, string) {
			code, stdout, stderr := runBinary(t, w.env, append([]string{"down", "--config", w.config, "--log-format", "json"}, args...)...)
			return code, stdout + stderr
		},
		runners: func(t *testing.T) []string {
			var out []string
			for name := range w.containers(t) {
				if strings.HasPrefix(name, "dkdown-") {
					out = append(out, name)
				}
			}
			slices.Sort(out)
			return out
		},
		finish: func(t *testing.T, name string) {
			if _, err := w.cli.ContainerStop(context.Background(), name, client.ContainerStopOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// Down with the scheduler's --cache pauses the passes that share it: a pass then
// creates nothing for a queued job, and says why, until `reconcile up` lifts the pause.
func TestDown_PausesThePassesThatShareItsCacheUntilUp(t *testing.T) {
	w := newGCEWorld(t)
	cache := filepath.Join(t.TempDir(), "cache.gz")
	reconcileWith := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"reconcile"}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	pass := func() (int, string) {
		return reconcileWith("--once", "--config", w.config, "--github-url", w.gh.APIURL, "--log-format", "json", "--cache", cache)
	}
	code, out := reconcileWith("down", "--config", w.config, "--github-url", w.gh.APIURL, "--log-format", "json", "--cache", cache, "--interval", "1s")
	if code != 0 || !strings.Contains(out, "passes that share --cache "+cache+" create nothing until `reconcile up --cache "+cache+"`") {
		t.Fatalf("down: exit %d:\n%s", code, out)
	}
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	if code, out := pass(); code != 0 || len(w.compute.Instances()) != 0 || !strings.Contains(out, "the installation is paused by reconcile down since") {
		t.Fatalf("a pass while paused: exit %d, %d instances:\n%s", code, len(w.compute.Instances()), out)
	}
	if code, out := reconcileWith("status", "--config", w.config, "--github-url", w.gh.APIURL, "--cache", cache); code != 0 ||
		!strings.Contains(out, "paused by reconcile down since ") {
		t.Errorf("status while paused: exit %d:\n%s", code, out)
	}
	if code, out := reconcileWith("up", "--cache", cache); code != 0 || !strings.Contains(out, "up: lifted the pause reconcile down set at") {
		t.Fatalf("up: exit %d:\n%s", code, out)
	}
	if code, out := pass(); code != 0 || len(w.compute.Instances()) != 1 {
		t.Fatalf("a pass after up: exit %d, %d instances, want 1:\n%s", code, len(w.compute.Instances()), out)
	}
	if code, out := reconcileWith("up", "--cache", cache); code != 0 || !strings.Contains(out, "were not paused") {
		t.Errorf("up again: exit %d:\n%s", code, out)
	}
	if code, out := reconcileWith("up"); code != 2 || !strings.Contains(out, "give it as --cache") {
		t.Errorf("up without --cache: exit %d:\n%s", code, out)
	}
}
