package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/k8s"
	"github.com/reconcile-dev/reconcile/k8s/k8stest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// Two readings of what GitHub counts against its secondary limits, both with GitHub
// answering in 20 ms and enforcing what its REST documentation states ("Rate limits for
// the REST API": 900 points a minute, a read 1 and a write 5; 100 requests at once; 80
// content-creating requests a minute and 500 an hour). GitHub names no endpoint that is
// content-creating:
//
//   - points: the JIT registration is a 5-point POST and nothing more (how
//     terraform-aws-github-runner's tuning guide counts it);
//   - jit-content: it is content-creating as well.
var readings = map[string]ghpolltest.Limits{
	"points":      {PrimaryPerHour: 5000, PointsPerMinute: 900, Concurrent: 100, Latency: 20 * time.Millisecond},
	"jit-content": {PrimaryPerHour: 5000, PointsPerMinute: 900, Concurrent: 100, CreatesPerMinute: 80, CreatesPerHour: 500, ContentCreating: ghpolltest.JITOnly, Latency: 20 * time.Millisecond},
}

// A 200-job burst (4 repositories, 50 queued ARM64 jobs each, each job its own run)
// met by --once passes of the built command at its default pace, sharing a --cache, a
// minute apart as a timer starts them: with --timeout 10m, so that one pass may take
// the whole burst, or the default 50s of a pass a minute; GCE insert operations take
// 3 s or 30 s (real ones take 10–40 s).
//
//	go test -run XXX -bench BenchmarkBurst_GCE -benchtime 1x .
//
// s/burst is the wall time from the first pass's start until every runner's insert
// operation is done. Under "points", registrations go at the pace the points allow
// (800 a minute, 160 registrations); under "jit-content", GitHub refuses the 81st
// registration of the minute, the pass waits out GitHub's retry-after and goes on at
// the fallback 75 a minute. The second burst of 200 (jit-content) comes within the
// same hour, in a new process: it keeps the fallback pace from the cache, and is
// never refused.
func BenchmarkBurst_GCE(b *testing.B) {
	for _, bc := range []struct {
		reading string
		op      time.Duration
		timeout string
	}{{"points", 3 * time.Second, "10m"}, {"points", 30 * time.Second, "10m"}, {"points", 3 * time.Second, "50s"}, {"jit-content", 3 * time.Second, "10m"}} {
		b.Run(fmt.Sprintf("reading=%s/op=%v/timeout=%s", bc.reading, bc.op, bc.timeout), func(b *testing.B) {
			var total, second time.Duration
			var passes, limited int
			for range b.N {
				w := newGCEBurst(b, readings[bc.reading], bc.op, bc.timeout)
				w.queue(200)
				d, n := w.serve(b, 200)
				total, passes = total+d, passes+n
				limited += w.gh.Stats().Limited
				if bc.reading == "jit-content" {
					if limited > 1 {
						b.Fatalf("GitHub refused %d requests for a rate limit, want at most 1", limited)
					}
					before := w.gh.Stats().Limited
					w.queue(200)
					d, _ := w.serve(b, 400)
					second += d
					if n := w.gh.Stats().Limited - before; n != 0 {
						b.Fatalf("the second burst of the hour met %d rate limits, want none", n)
					}
				} else if limited != 0 {
					b.Fatalf("GitHub refused %d requests for a rate limit, want none", limited)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
			b.ReportMetric(float64(passes)/float64(b.N), "passes/burst")
			b.ReportMetric(float64(limited)/float64(b.N), "limited/burst")
			if second > 0 {
				b.ReportMetric(second.Seconds()/float64(b.N), "s/second-burst")
			}
		})
	}
}

// Two --once processes that overlap over the same 200 jobs (a timer's pass, and one
// started from a terminal a second later), sharing the --cache file: together they
// stay within the default 800 points a minute, which the fake counts, and the 200 jobs
// get one runner each.
//
//	go test -run XXX -bench BenchmarkBurst_TwoProcesses -benchtime 1x .
func BenchmarkBurst_TwoProcesses(b *testing.B) {
	var total time.Duration
	most := 0
	for range b.N {
		w := newGCEBurst(b, readings["points"], 3*time.Second, "10m")
		w.queue(200)
		start := time.Now()
		codes := make(chan int, 2)
		for i := range 2 {
			go func() {
				time.Sleep(time.Duration(i) * time.Second)
				codes <- w.pass()
			}()
		}
		for range 2 {
			if code := <-codes; code != exitOK {
				b.Fatalf("a pass exited %d", code)
			}
		}
		total += time.Since(start)
		w.served(b, 200)
		s := w.gh.Stats()
		if s.Limited != 0 || s.MaxPointsMin > reconcile.DefaultPointsPerMinute {
			b.Fatalf("%d rate limits, %d points in the busiest minute; want none and at most %d", s.Limited, s.MaxPointsMin, reconcile.DefaultPointsPerMinute)
		}
		most = max(most, s.MaxPointsMin)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
	b.ReportMetric(float64(most), "points/busiest-minute")
}

// gceBurst is a GCE pool of ARM64 runners behind fakes of GitHub and Compute Engine,
// and the --once command line that serves it.
type gceBurst struct {
	gh      *ghpolltest.Server
	compute *gcetest.Server
	args    []string
}

var burstRepos = []string{"octo-org/app", "octo-org/web", "octo-org/api", "octo-org/lib"}

func newGCEBurst(b *testing.B, limits ghpolltest.Limits, op time.Duration, timeout string) *gceBurst {
	gh := ghpolltest.NewServer(b)
	gh.SetLimits(limits)
	compute := gcetest.NewServer(b, "ci-project", "us-central1", "us-central1-a", "us-central1-b", "us-central1-c")
	compute.OperationTime(op)
	dir := b.TempDir()
	config := filepath.Join(dir, "reconcile.yaml")
	conf := `github: {repos: [octo-org/app, octo-org/web, octo-org/api, octo-org/lib]}
pools:
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 1000
    gce: {project: ci-project, region: us-central1, instance_template: gha-arm64-spot, endpoint: ` + compute.Endpoint + `}
`
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("GITHUB_TOKEN", "ghp_bench")
	b.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.bench")
	return &gceBurst{gh: gh, compute: compute, args: []string{"reconcile", "--once", "--config", config, "--github-url", gh.APIURL,
		"--cache", filepath.Join(dir, "cache.gz"), "--log-format", "json", "--log-level", "error", "--timeout", timeout}}
}

// queue queues n jobs, spread over the repositories.
func (w *gceBurst) queue(n int) {
	for i := range n {
		w.gh.QueueJob(burstRepos[i%len(burstRepos)], "self-hosted", "linux", "ARM64")
	}
}

// pass runs one --once pass and returns its exit code.
func (w *gceBurst) pass() int {
	var stdout, stderr bytes.Buffer
	return run(context.Background(), w.args, &stdout, &stderr)
}

// serve runs passes, a minute apart as a timer starts them, until want runners run
// (at most 3 passes), and returns the time from the first pass's start and the passes.
func (w *gceBurst) serve(b *testing.B, want int) (time.Duration, int) {
	start := time.Now()
	for n := 1; ; n++ {
		began := time.Now()
		if code := w.pass(); code != exitOK {
			b.Fatalf("pass %d exited %d", n, code)
		}
		if w.running() >= want {
			w.served(b, want)
			return time.Since(start), n
		}
		if n == 3 {
			b.Fatalf("%d runners after %d passes, want %d", w.running(), n, want)
		}
		time.Sleep(time.Until(began.Add(time.Minute)))
	}
}

func (w *gceBurst) running() int {
	n := 0
	for _, in := range w.compute.Instances() {
		if in.Status == "RUNNING" {
			n++
		}
	}
	return n
}

// served checks that want runners run, each registered once.
func (w *gceBurst) served(b *testing.B, want int) {
	if running, regs := w.running(), len(w.gh.Runners()); running != want || regs != want {
		b.Fatalf("%d instances done, %d registrations; want %d of each", running, regs, want)
	}
}

// The same matrix on a Kubernetes pool, against a real kube-apiserver (envtest): the
// pass's wall time until every runner's Secret and Job exist. "pace=default" is the
// default points pace under the "points" reading; "pace=unlimited" takes
// GitHub's write pace and limits out of the way, to measure the Kubernetes side: the
// client's 50 requests a second (burst 100) and --backend-concurrency.
//
//	make envtest; KUBEBUILDER_ASSETS=… go test -run XXX -bench BenchmarkBurst_Kubernetes -benchtime 1x .
func BenchmarkBurst_Kubernetes(b *testing.B) {
	for _, pace := range []string{"default", "unlimited"} {
		b.Run("pace="+pace, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += kubeBurst(b, 200, pace == "unlimited")
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
		})
	}
}

func kubeBurst(b *testing.B, jobs int, unlimited bool) time.Duration {
	cfg := k8stest.Config(b)
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ns := k8stest.Namespace(b, admin, "burst")
	gh := ghpolltest.NewServer(b)
	limits := readings["points"]
	opts := ghpoll.Options{PointsPerMinute: reconcile.DefaultPointsPerMinute}
	if unlimited {
		limits = ghpolltest.Limits{Latency: limits.Latency}
		opts = ghpoll.Options{WritesPerMinute: 60000, WritesPerHour: 100000}
	}
	gh.SetLimits(limits)
	repos := []string{"octo-org/app", "octo-org/web", "octo-org/api", "octo-org/lib"}
	for i := range jobs {
		gh.QueueJob(repos[i%len(repos)], "self-hosted", "linux", "x64")
	}
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ghp_bench"})}}, gh.APIURL, opts)
	if err != nil {
		b.Fatal(err)
	}
	conf, err := reconcile.Load([]byte(`github: {repos: [octo-org/app, octo-org/web, octo-org/api, octo-org/lib]}
pools:
  - name: x64
    labels: [self-hosted, linux, x64]
    max_runners: ` + strconv.Itoa(jobs) + `
    kubernetes: {namespace: ` + ns + `}
`))
	if err != nil {
		b.Fatal(err)
	}
	backends, err := backendsFor(conf, k8s.Kind(func() (kubernetes.Interface, error) {
		return k8s.NewClientsetFor(cfg, zerolog.Nop()) // the command's client: 50 requests a second
	}))
	if err != nil {
		b.Fatal(err)
	}
	rc := &reconcile.Reconciler{Config: conf, GitHub: client, Backends: backends, Budget: reconcile.DefaultBudget()}
	start := time.Now()
	sum, err := rc.RunOnce(context.Background())
	elapsed := time.Since(start)
	if err != nil || sum.Created != jobs {
		b.Fatalf("RunOnce() created %d, %v; want %d", sum.Created, err, jobs)
	}
	list, err := admin.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != jobs {
		b.Fatalf("%d Jobs, %v; want %d", len(list.Items), err, jobs)
	}
	if n := gh.Stats().Limited; n != 0 {
		b.Fatalf("GitHub answered %d requests with a rate limit", n)
	}
	return elapsed
}
