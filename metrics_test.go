package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
)

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, text)
	}
	return fams
}

// value returns the value of the metric of that family whose labels include labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func metricsWorld(t *testing.T) *ghpolltest.Server {
	t.Helper()
	gh := ghpolltest.NewServer(t)
	gh.QueueJob("octo-org/app", "self-hosted", "linux")
	gh.QueueJob("octo-org/app", "self-hosted")
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	return gh
}

func checkPassMetrics(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"reconcile_jobs_queued", map[string]string{"pool": "default"}, 2},
		{"reconcile_runners", map[string]string{"pool": "default", "state": "busy"}, 0},
		{"reconcile_github_requests_total", nil, 3},
		{"reconcile_github_requests_counted_total", nil, 1},
		{"reconcile_github_points_total", nil, 3},
		{"reconcile_repositories", map[string]string{"state": "polled"}, 1},
		{"reconcile_pass_duration_seconds", nil, 1},
		{"reconcile_last_success_timestamp_seconds", nil, 1},
		{"reconcile_last_pass_timestamp_seconds", nil, 1},
		{"reconcile_creates_deferred", nil, 0},
		{"reconcile_runners", map[string]string{"pool": "default", "state": "warm"}, 0},
		{"reconcile_warm_target", map[string]string{"pool": "default"}, 0},
	} {
		v, ok := value(fams, c.name, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", c.name, c.labels, v, ok, c.min)
		}
	}
}

func TestMetrics_ServedInLoopMode(t *testing.T) {
	gh := metricsWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		runQuiet(ctx, "--dry-run", "--interval", "50ms", "--idle-poll-interval", "50ms", "--repo", "octo-org/app",
			"--github-url", gh.APIURL, "--metrics-addr", addr)
	})
	defer func() { cancel(); wg.Wait() }()
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The gauges exist from the start, at 0: wait for a pass to have been recorded.
		if body = string(b); strings.Contains(body, "reconcile_last_success_timestamp_seconds ") &&
			!strings.Contains(body, "reconcile_last_success_timestamp_seconds 0\n") {
			break
		}
	}
	checkPassMetrics(t, parseMetrics(t, body))
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %v, %v; want 200", resp, err)
	}
}

// runQuiet runs the CLI with output discarded.
func runQuiet(ctx context.Context, args ...string) int {
	return run(ctx, append([]string{"reconcile"}, args...), io.Discard, io.Discard)
}

func TestMetrics_TextfileAfterAOncePass(t *testing.T) {
	gh := metricsWorld(t)
	path := filepath.Join(t.TempDir(), "reconcile.prom")
	if code := runQuiet(context.Background(), "--once", "--dry-run", "--repo", "octo-org/app", "--github-url", gh.APIURL, "--metrics-file", path); code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkPassMetrics(t, parseMetrics(t, string(b)))
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestMetrics_PushedAfterAOncePass(t *testing.T) {
	gh := metricsWorld(t)
	var mu sync.Mutex
	var pushed, method, path string
	pgw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushed, method, path = string(b), r.Method, r.URL.Path
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer pgw.Close()
	if code := runQuiet(context.Background(), "--once", "--dry-run", "--repo", "octo-org/app", "--github-url", gh.APIURL, "--pushgateway-url", pgw.URL); code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if method != http.MethodPut || path != "/metrics/job/reconcile" {
		t.Errorf("push %s %s, want PUT /metrics/job/reconcile", method, path)
	}
	// The push is in the protobuf exposition format; the names are in it as text.
	for _, name := range []string{"reconcile_jobs_queued", "reconcile_github_requests_total", "reconcile_last_success_timestamp_seconds"} {
		if !strings.Contains(pushed, name) {
			t.Errorf("the push lacks %s", name)
		}
	}
}

func TestMetrics_FlagsForTheWrongMode(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	for _, args := range [][]string{
		{"--once", "--dry-run", "--repo", "o/r", "--metrics-addr", "127.0.0.1:0"},
		{"--dry-run", "--repo", "o/r", "--pushgateway-url", "http://127.0.0.1:9091"},
		{"--once", "--dry-run", "--repo", "o/r", "--pushgateway-url", "pushgateway:9091"},
	} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit code %d (%s), want 2", args, code, stderr)
		}
	}
}

// A repository GitHub answers 404 for (deleted, renamed, hidden from the token) is
// reported by name and does not stop the pass from counting as a success: exit 0, and
// the last-success time that /healthz and the alerts read moves on.
func TestMetrics_UnreachableRepositoryIsAGaugeNotAFailure(t *testing.T) {
	gh := metricsWorld(t)
	gh.SetRepoGone("octo-org/gone")
	path := filepath.Join(t.TempDir(), "reconcile.prom")
	if code := runQuiet(context.Background(), "--once", "--dry-run", "--repo", "octo-org/app", "--repo", "octo-org/gone",
		"--github-url", gh.APIURL, "--metrics-file", path); code != exitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fams := parseMetrics(t, string(b))
	checkPassMetrics(t, fams)
	if v, ok := value(fams, "reconcile_repository_unreachable", map[string]string{"repo": "octo-org/gone"}); !ok || v != 1 {
		t.Errorf("reconcile_repository_unreachable{repo=octo-org/gone} = %v (present %v), want 1", v, ok)
	}
	if _, ok := value(fams, "reconcile_repository_unreachable", map[string]string{"repo": "octo-org/app"}); ok {
		t.Error("the reachable repository is reported unreachable")
	}
}
