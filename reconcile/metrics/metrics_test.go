package metrics_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// A pass against the in-memory GitHub and backend, its summary recorded: the
// queue-wait histogram holds, per pool, how long each job that got a runner had
// waited; the oldest job's age and the jobs no runner will serve are gauges.
func TestRecord_QueueWaitOfAPass(t *testing.T) {
	clock := reconciletest.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	gh := reconciletest.NewGitHub()
	cfg, err := reconcile.Load([]byte(`github: {repos: [octo-org/app]}
pools:
  - {name: arm64, labels: [self-hosted, linux, ARM64], max_runners: 2}
  - {name: x64, labels: [self-hosted, linux, x64], max_runners: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	app := reconcile.Scope{Owner: "octo-org", Repo: "app"}
	queue := func(id int64, age time.Duration, labels ...string) {
		gh.Queue(reconcile.Job{ID: id, RunID: id * 10, Repo: app, Name: "build", Labels: labels, CreatedAt: clock.Now().Add(-age)})
	}
	queue(1, 8*time.Second, "self-hosted", "ARM64")
	queue(2, 75*time.Second, "self-hosted", "ARM64")
	queue(3, 40*time.Minute, "self-hosted", "ARM64") // max_runners 2: waits for room
	queue(4, 3*time.Second, "self-hosted", "gpu")    // no pool has gpu
	queue(5, 3*time.Second, "ubuntu-latest")         // GitHub's
	backend := reconciletest.NewBackend(clock.Now)
	rc := &reconcile.Reconciler{Config: cfg, GitHub: gh, Now: clock.Now,
		Backends: map[string]reconcile.Backend{"arm64": backend, "x64": backend}}
	sum, err := rc.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.Record(sum, false)

	// Jobs 3 and 2 (oldest first) got the two runners: 40 minutes and 75 s.
	want := `
# HELP reconcile_job_queue_wait_seconds How long each job waited for a runner: from its created_at to the create of the runner made for it.
# TYPE reconcile_job_queue_wait_seconds histogram
` + histogram("arm64", 2, 75+2400, map[string]int{"60": 0, "90": 1, "1800": 1, "3600": 2}) + histogram("x64", 0, 0, nil)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "reconcile_job_queue_wait_seconds"); err != nil {
		t.Error(err)
	}
	want = `
# HELP reconcile_oldest_queued_job_age_seconds How long the oldest queued job a pool serves has waited, at the last pass (0: none waits).
# TYPE reconcile_oldest_queued_job_age_seconds gauge
reconcile_oldest_queued_job_age_seconds{pool="arm64"} 2400
reconcile_oldest_queued_job_age_seconds{pool="x64"} 0
# HELP reconcile_jobs_not_served Queued self-hosted jobs that get no runner, by reason (no_pool, public_repo, fork_pull_request, unservable), at the last pass.
# TYPE reconcile_jobs_not_served gauge
reconcile_jobs_not_served{reason="fork_pull_request"} 0
reconcile_jobs_not_served{reason="no_pool"} 1
reconcile_jobs_not_served{reason="public_repo"} 0
reconcile_jobs_not_served{reason="unservable"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "reconcile_oldest_queued_job_age_seconds", "reconcile_jobs_not_served"); err != nil {
		t.Error(err)
	}
}

// histogram writes a pool's histogram in the text format: count observations adding
// up to sum, and the cumulative count at each bucket bound that changes (the bounds
// in between carry the count below them).
func histogram(pool string, count int, sum float64, at map[string]int) string {
	var b strings.Builder
	n := 0
	for _, le := range metrics.QueueWaitBuckets {
		s := strings.TrimSuffix(strings.TrimSuffix(formatFloat(le), ".0"), ".")
		if v, ok := at[s]; ok {
			n = v
		}
		b.WriteString(`reconcile_job_queue_wait_seconds_bucket{pool="` + pool + `",le="` + s + `"} ` + itoa(n) + "\n")
	}
	b.WriteString(`reconcile_job_queue_wait_seconds_bucket{pool="` + pool + `",le="+Inf"} ` + itoa(count) + "\n")
	b.WriteString(`reconcile_job_queue_wait_seconds_sum{pool="` + pool + `"} ` + formatFloat(sum) + "\n")
	b.WriteString(`reconcile_job_queue_wait_seconds_count{pool="` + pool + `"} ` + itoa(count) + "\n")
	return b.String()
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
func itoa(n int) string            { return strconv.Itoa(n) }
