// Package metrics turns pass summaries into Prometheus metrics, and exposes them three
// ways, one per way of running: an HTTP endpoint (loop), a node_exporter textfile
// (systemd timer), a push to a Pushgateway (CronJob). It imports reconcile only.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Metrics holds the collectors, in a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	queued, runners       *prometheus.GaugeVec
	unservable            *prometheus.GaugeVec
	waitingForRoom        *prometheus.GaugeVec
	unreachable           *prometheus.GaugeVec
	created, deleted      *prometheus.CounterVec
	deregistered, errs    *prometheus.CounterVec
	reruns                *prometheus.CounterVec
	warmTarget            *prometheus.GaugeVec
	requests, counted     prometheus.Counter
	notModified, points   prometheus.Counter
	secondary, resources  *prometheus.CounterVec
	remaining, reset      prometheus.Gauge
	deferred              prometheus.Gauge
	repos                 *prometheus.GaugeVec
	duration              prometheus.Histogram
	queueWait             *prometheus.HistogramVec
	oldest, notServed     *prometheus.GaugeVec
	lastSuccess, lastPass prometheus.Gauge
	backoff, tmplBackoff  *prometheus.GaugeVec
	probes                *prometheus.CounterVec
	runnerSeconds, served *prometheus.CounterVec

	mu         sync.Mutex
	lastOK     time.Time
	lastFailed bool

	carry carried // what earlier processes counted (carry.go)
}

// New returns the metrics, registered.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.carry.since = time.Now()
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	m.declarePools()
	m.declarePasses()
	for _, st := range reconcile.Stages { // every stage has its series from the start, at 0
		m.errs.WithLabelValues(string(st))
	}
	m.deregistered.WithLabelValues(string(reconcile.ReasonGhost))
	for _, c := range []prometheus.Collector{m.backoff, m.tmplBackoff, m.probes, m.queueWait, m.oldest, m.notServed, m.queued, m.unservable, m.waitingForRoom, m.unreachable, m.runners, m.created, m.deleted, m.deregistered, m.reruns, m.warmTarget, m.errs, m.runnerSeconds, m.served,
		m.requests, m.counted, m.notModified, m.points, m.secondary, m.resources, m.remaining, m.reset, m.deferred, m.repos, m.duration, m.lastSuccess, m.lastPass} {
		f(c)
	}
	return m
}

// declarePools declares the metrics of the pools: jobs, runners, backoff, actions.
func (m *Metrics) declarePools() {
	m.queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_jobs_queued",
		Help: "Queued jobs a pool can serve, at the last pass."}, []string{"pool"})
	m.waitingForRoom = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_jobs_waiting_for_room",
		Help: "Queued jobs their pool has no room for (max_runners) at the last pass; the fair share gives the next runners freed to the repositories holding the fewest."}, []string{"pool"})
	m.unservable = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_jobs_unservable",
		Help: "Queued jobs a pool matches that GitHub does not give to its idle runners (a runner group that excludes the repository or workflow, runs-on naming a group), at the last pass."}, []string{"pool"})
	m.unreachable = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_repository_unreachable",
		Help: "1 for each repository GitHub answered 404 or 403 for at the last pass: deleted, renamed, or not visible to these credentials."}, []string{"repo"})
	m.runners = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_runners",
		Help: "Runners of a pool by state (booting, idle, warm, busy) and the template that made them (empty for a backend without templates), at the last pass."}, []string{"pool", "state", "template"})
	m.backoff = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_pool_backoff",
		Help: "1 while every template of the pool is in backoff for the reason (no_capacity, quota, invalid, permission): its jobs wait for capacity, one probe at a time; else 0."}, []string{"pool", "reason"})
	m.tmplBackoff = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_template_backoff",
		Help: "1 while one template of the pool is in backoff for the reason, whether or not a fallback serves its jobs; else 0."}, []string{"pool", "template", "reason"})
	m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_pool_probes_total",
		Help: "Creates that probed a template in backoff, by result (ok: the backoff ended; failed: it goes on)."}, []string{"pool", "result"})
	m.runnerSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_runner_seconds_total",
		Help: "Seconds runners spent booting, idle or busy, by pool and the repository whose job they ran or were made for: each pass credits the time since the last at the state it sees, off by at most half an interval per change of state."}, []string{"pool", "repo", "state"})
	m.served = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_jobs_served_total",
		Help: "Jobs our runners were seen running, by pool and repository."}, []string{"pool", "repo"})
	m.created = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_runners_created_total",
		Help: "Runners created."}, []string{"pool"})
	m.deleted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_runners_deleted_total",
		Help: "Runners deleted, by reason (finished, surplus, boot_timeout, gone, expired, recycled)."}, []string{"pool", "reason"})
	m.deregistered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_registrations_removed_total",
		Help: "Runner registrations removed without a runner, by reason (ghost)."}, []string{"reason"})
	m.warmTarget = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_warm_target",
		Help: "Runners the pool keeps warm in each warm scope now (min_idle, by its schedule), at the last pass."}, []string{"pool"})
	m.reruns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_jobs_rerun_total",
		Help: "Jobs re-run because the platform took their runner's machine away mid-job (reason preempted)."}, []string{"pool", "reason"})
	m.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_errors_total",
		Help: "Errors, by the stage of the pass that met them."}, []string{"stage"})
}

// declarePasses declares the metrics of the passes: GitHub's cost, timings, waits.
func (m *Metrics) declarePasses() {
	m.requests = prometheus.NewCounter(prometheus.CounterOpts{Name: "reconcile_github_requests_total",
		Help: "Requests sent to GitHub."})
	m.counted = prometheus.NewCounter(prometheus.CounterOpts{Name: "reconcile_github_requests_counted_total",
		Help: "Requests counted against GitHub's primary rate limit (all but 304s)."})
	m.notModified = prometheus.NewCounter(prometheus.CounterOpts{Name: "reconcile_github_not_modified_total",
		Help: "304 answers to conditional requests."})
	m.secondary = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_github_secondary_limited_total",
		Help: "Requests GitHub's secondary rate limit answered (403 or 429), by endpoint (generate-jitconfig, runs, ...): from each, no request goes until GitHub's wait is over."}, []string{"endpoint"})
	m.resources = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_github_requests_by_resource_total",
		Help: "GitHub's answers by the primary bucket it charged them to (its x-ratelimit-resource header: core, ...)."}, []string{"resource"})
	m.points = prometheus.NewCounter(prometheus.CounterOpts{Name: "reconcile_github_points_total",
		Help: "Secondary rate limit points spent (a read 1, a write 5)."})
	m.deferred = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reconcile_creates_deferred",
		Help: "Creates the last pass left to the next one: its deadline came while it registered runners at the write pace, or the hour's registrations were spent."})
	m.remaining = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reconcile_github_rate_limit_remaining",
		Help: "Requests left of the primary rate limit, as GitHub last said."})
	m.reset = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reconcile_github_rate_limit_reset_timestamp_seconds",
		Help: "When the primary rate limit resets."})
	m.repos = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_repositories",
		Help: "Repositories polled and left for a later pass by the budget, at the last pass."}, []string{"state"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reconcile_pass_duration_seconds",
		Help: "How long passes take.", Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reconcile_last_success_timestamp_seconds",
		Help: "When a pass last succeeded wholly."})
	m.lastPass = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reconcile_last_pass_timestamp_seconds",
		Help: "When a pass last ended, successful or not."})
	m.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reconcile_job_queue_wait_seconds",
		Help:    "How long each job waited for a runner: from its created_at to the create of the runner made for it.",
		Buckets: QueueWaitBuckets}, []string{"pool"})
	m.oldest = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_oldest_queued_job_age_seconds",
		Help: "How long the oldest queued job a pool serves has waited, at the last pass (0: none waits)."}, []string{"pool"})
	m.notServed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reconcile_jobs_not_served",
		Help: "Queued self-hosted jobs that get no runner, by reason (no_pool, public_repo, fork_pull_request, unservable), at the last pass."}, []string{"reason"})
}

// QueueWaitBuckets are the queue-wait histogram's buckets, in seconds: a runner in
// seconds (a webhook's), within a pass or two, within the idle-poll interval, and the
// long tail.
var QueueWaitBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600, 7200}

// runnerStates are reconcile_runners' states.
var runnerStates = []string{string(reconcile.StateBooting), string(reconcile.StateIdle), "warm", string(reconcile.StateBusy)}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// deleteReasons are the reasons a runner is deleted for.
var deleteReasons = []reconcile.Reason{reconcile.ReasonFinished, reconcile.ReasonSurplus, reconcile.ReasonBootTimeout,
	reconcile.ReasonGone, reconcile.ReasonExpired, reconcile.ReasonRecycled, reconcile.ReasonDown}

// Record takes in a pass's summary; failed says whether it ended with errors.
func (m *Metrics) Record(s reconcile.Summary, failed bool) {
	for _, w := range s.QueueWaits {
		m.queueWait.WithLabelValues(w.Pool).Observe(w.Wait.Seconds())
	}
	m.recordQueue(s.Plan)
	m.recordRunners(s)
	m.recordHealth(s.Health)
	m.unreachable.Reset() // a repository that answers again leaves the gauge
	for _, r := range s.Unreachable {
		m.unreachable.WithLabelValues(r).Set(1)
	}
	m.recordDone(s)
	m.recordAPI(s.API)
	m.duration.Observe(s.Duration.Seconds())
	end := s.Started.Add(s.Duration)
	m.lastPass.Set(float64(end.Unix()))
	m.mu.Lock()
	m.lastFailed = failed
	if !failed {
		m.lastOK = time.Now()
		m.lastSuccess.Set(float64(end.Unix()))
	}
	m.mu.Unlock()
}

// recordQueue records the queued jobs: those not served and why, the oldest's wait,
// and every pool's series from its first pass, whether anything happened or not, so
// that rates and alerts see a zero rather than nothing.
func (m *Metrics) recordQueue(plan reconcile.Plan) {
	notServed := map[reconcile.Reason]int{reconcile.ReasonNoPool: len(plan.NoPool),
		reconcile.ReasonPublicRepo: 0, reconcile.ReasonForkPullRequest: 0, reconcile.ReasonUnservable: 0}
	for _, r := range plan.Refused {
		notServed[r.Reason]++
	}
	for _, p := range plan.Pools {
		notServed[reconcile.ReasonUnservable] += p.Unservable
		m.oldest.WithLabelValues(p.Pool).Set(p.OldestQueued.Seconds())
		m.queueWait.WithLabelValues(p.Pool)
		for _, r := range deleteReasons {
			m.deleted.WithLabelValues(p.Pool, string(r))
		}
		m.reruns.WithLabelValues(p.Pool, string(reconcile.ReasonPreempted))
		m.queued.WithLabelValues(p.Pool).Set(float64(p.Queued))
		m.unservable.WithLabelValues(p.Pool).Set(float64(p.Unservable))
		m.waitingForRoom.WithLabelValues(p.Pool).Set(float64(p.WaitingForRoom))
		m.warmTarget.WithLabelValues(p.Pool).Set(float64(p.WarmTarget))
		m.created.WithLabelValues(p.Pool)
	}
	for reason, n := range notServed {
		m.notServed.WithLabelValues(string(reason)).Set(float64(n))
	}
}

// recordRunners records the runners by pool, state and template: every template has
// its series, at 0 without runners.
func (m *Metrics) recordRunners(s reconcile.Summary) {
	options := map[string][]string{}
	for _, h := range s.Health {
		options[h.Pool] = h.Options
	}
	m.runners.Reset() // a template no longer configured, and without runners, leaves
	for _, p := range s.Plan.Pools {
		for _, t := range options[p.Pool] {
			for _, st := range runnerStates {
				m.runners.WithLabelValues(p.Pool, st, t)
			}
		}
		if len(options[p.Pool]) == 0 && len(p.ByOption) == 0 {
			for _, st := range runnerStates {
				m.runners.WithLabelValues(p.Pool, st, "")
			}
		}
		for t, byState := range p.ByOption {
			for _, st := range runnerStates {
				m.runners.WithLabelValues(p.Pool, st, t).Set(float64(byState[st]))
			}
		}
	}
}

// recordHealth records the pools' and templates' backoff, and the probes.
func (m *Metrics) recordHealth(health []reconcile.PoolHealth) {
	for _, h := range health {
		for _, c := range reconcile.FailureClasses {
			m.backoff.WithLabelValues(h.Pool, string(c)).Set(b2f(h.Held && h.Class == c))
			for _, t := range h.Options {
				m.tmplBackoff.WithLabelValues(h.Pool, t, string(c)).Set(0)
			}
		}
		for _, b := range h.Backoff {
			m.tmplBackoff.WithLabelValues(h.Pool, b.Option, string(b.Class)).Set(1)
		}
		m.probes.WithLabelValues(h.Pool, "ok").Add(float64(h.ProbesOK))
		m.probes.WithLabelValues(h.Pool, "failed").Add(float64(h.ProbesFailed))
	}
}

// recordDone counts the actions carried out and the errors, by stage.
func (m *Metrics) recordDone(s reconcile.Summary) {
	for a, n := range s.Done {
		switch a.Kind {
		case reconcile.ActionCreate:
			m.created.WithLabelValues(a.Pool).Add(float64(n))
		case reconcile.ActionDelete:
			m.deleted.WithLabelValues(a.Pool, string(a.Reason)).Add(float64(n))
		case reconcile.ActionDeregister:
			m.deregistered.WithLabelValues(string(a.Reason)).Add(float64(n))
		case reconcile.ActionRerun:
			m.reruns.WithLabelValues(a.Pool, string(a.Reason)).Add(float64(n))
		}
	}
	for stage, n := range s.ErrorsByStage {
		m.errs.WithLabelValues(string(stage)).Add(float64(n))
	}
	for k, secs := range s.Usage.Seconds {
		m.runnerSeconds.WithLabelValues(k.Pool, k.Repo.String(), string(k.State)).Add(secs)
	}
	for k, n := range s.Usage.Served {
		m.served.WithLabelValues(k.Pool, k.Repo.String()).Add(float64(n))
	}
	m.deferred.Set(float64(s.Deferred))
}

// recordAPI records what the pass cost at GitHub.
func (m *Metrics) recordAPI(a reconcile.APIStats) {
	m.requests.Add(float64(a.Requests))
	m.counted.Add(float64(a.Primary))
	m.notModified.Add(float64(a.NotModified))
	m.points.Add(float64(a.Points))
	if !a.Reset.IsZero() {
		m.remaining.Set(float64(a.Remaining))
		m.reset.Set(float64(a.Reset.Unix()))
	}
	for e, n := range a.SecondaryLimited {
		m.secondary.WithLabelValues(e).Add(float64(n))
	}
	for r, n := range a.Resources {
		m.resources.WithLabelValues(r).Add(float64(n))
	}
	m.repos.WithLabelValues("polled").Set(float64(a.Polled))
	m.repos.WithLabelValues("skipped").Set(float64(a.Skipped))
}

// WriteTextfile writes the metrics for node_exporter's textfile collector, atomically.
func (m *Metrics) WriteTextfile(path string) error {
	return prometheus.WriteToTextfile(path, m)
}

// Push sends the metrics to a Pushgateway, under job "reconcile".
func (m *Metrics) Push(ctx context.Context, url string) error {
	return push.New(url, "reconcile").Gatherer(m).Client(&http.Client{Timeout: 15 * time.Second}).PushContext(ctx)
}

// Serve serves /metrics and /healthz on ln until ctx ends. /healthz answers 200 while
// a pass has succeeded within stale, 503 after.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, stale time.Duration) error {
	started := time.Now()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		ok := m.lastOK
		m.mu.Unlock()
		since := ok
		if since.IsZero() {
			since = started // give the first pass its time
		}
		if time.Since(since) > stale {
			http.Error(w, fmt.Sprintf("no successful pass for %v", time.Since(since).Round(time.Second)), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
