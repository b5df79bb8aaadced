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

// A 200-job matrix (4 repositories, 50 queued ARM64 jobs each) met by one --once pass,
// as the built command runs it: GitHub answering in 20 ms and enforcing its documented
// limits (900 points and 80 content-creating requests a minute, 500 an hour), and GCE
// insert operations taking 3 s or 30 s (real ones take 10–40 s).
//
//	go test -run XXX -bench BenchmarkBurst -benchtime 1x .
//
// The figure is the pass's wall time until every runner's insert operation is done.
// At the default write pace (75 a minute) registering 200 runners takes 199 × 0.8 s =
// 159 s: that, plus one operation, is the bound. "pace=max" spends all of GitHub's
// 900 points a minute and writes up to 150 a minute (750 points), with the fake's
// 80-a-minute content limit lifted: the most GitHub's points allow.
func BenchmarkBurst_GCE(b *testing.B) {
	for _, bc := range []struct {
		op   time.Duration
		pace string
	}{{3 * time.Second, "default"}, {30 * time.Second, "default"}, {3 * time.Second, "max"}, {30 * time.Second, "max"}} {
		b.Run(fmt.Sprintf("op=%v/pace=%s", bc.op, bc.pace), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += gceBurst(b, 200, bc.op, bc.pace == "max")
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
		})
	}
}

func gceBurst(b *testing.B, jobs int, op time.Duration, lifted bool) time.Duration {
	gh := ghpolltest.NewServer(b)
	limits := ghpolltest.GitHubLimits
	limits.Latency = 20 * time.Millisecond
	if lifted {
		limits.CreatesPerMinute, limits.CreatesPerHour = 0, 0
	}
	gh.SetLimits(limits)
	compute := gcetest.NewServer(b, "ci-project", "us-central1", "us-central1-a", "us-central1-b", "us-central1-c")
	compute.OperationTime(op)
	repos := []string{"octo-org/app", "octo-org/web", "octo-org/api", "octo-org/lib"}
	for i := range jobs {
		gh.QueueJob(repos[i%len(repos)], "self-hosted", "linux", "ARM64")
	}
	config := filepath.Join(b.TempDir(), "reconcile.yaml")
	conf := `github: {repos: [octo-org/app, octo-org/web, octo-org/api, octo-org/lib]}
pools:
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: ` + strconv.Itoa(jobs) + `
    gce: {project: ci-project, region: us-central1, instance_template: gha-arm64-spot, endpoint: ` + compute.Endpoint + `}
`
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("GITHUB_TOKEN", "ghp_bench")
	b.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.bench")
	args := []string{"reconcile", "--once", "--config", config, "--github-url", gh.APIURL, "--log-format", "json", "--log-level", "warn", "--timeout", "10m"}
	if lifted {
		args = append(args, "--points-per-minute", "900", "--writes-per-minute", "150", "--writes-per-hour", "100000")
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), args, &stdout, &stderr)
	elapsed := time.Since(start)
	if code != exitOK {
		b.Fatalf("exit code %d:\n%s", code, stderr.String())
	}
	running := 0
	for _, in := range compute.Instances() {
		if in.Status == "RUNNING" {
			running++
		}
	}
	if running != jobs || len(gh.Runners()) != jobs {
		b.Fatalf("%d instances done, %d registrations; want %d of each", running, len(gh.Runners()), jobs)
	}
	if n := gh.Stats().Limited; n != 0 {
		b.Fatalf("GitHub answered %d requests with a rate limit", n)
	}
	return elapsed
}

// The same matrix on a Kubernetes pool, against a real kube-apiserver (envtest): the
// pass's wall time until every runner's Secret and Job exist. "pace=unlimited" takes
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
	limits := ghpolltest.GitHubLimits
	limits.Latency = 20 * time.Millisecond
	opts := ghpoll.Options{WritesPerMinute: reconcile.DefaultWritesPerMinute, PointsPerMinute: 600}
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
