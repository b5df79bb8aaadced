// Command reconcile runs ephemeral, JIT-configured self-hosted GitHub Actions runners
// without webhooks: each pass lists queued jobs through the GitHub REST API, compares
// them with the runners it owns, creates what is missing and removes what is finished.
//
// This file is wiring only: flags, configuration, clients, exit codes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/mattn/go-isatty"
	dockerclient "github.com/moby/moby/client"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/k8s"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the pass failed, wholly or partly
	exitUsage  = 2 // bad flags, environment or configuration; nothing was called
)

// Set at build time: -ldflags "-X main.version=… -X main.commit=…". The only
// package-level variables, because the linker can set nothing else.
var (
	version = "dev"
	commit  = "unknown"
)

// usageError is a mistake in flags, environment or configuration: exit 2, one line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		// One line, whatever the message: a parser's error may span several.
		fmt.Fprintf(stderr, "reconcile: %s\n", strings.Join(strings.Fields(ue.err.Error()), " "))
		return exitUsage
	case errors.Is(err, errPassFailed):
		return exitFailed
	default:
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return exitFailed
	}
}

// errPassFailed: the pass logged its own errors; only the exit code is left to set.
var errPassFailed = errors.New("pass failed")

func init() {
	// `reconcile --version` prints what `reconcile version` does.
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "reconcile %s\n", c.App.Version)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "reconcile",
		Usage: "run ephemeral self-hosted GitHub Actions runners without webhooks",
		Description: "Each pass lists queued workflow jobs through the GitHub REST API, compares them with the\n" +
			"runners this tool owns, creates JIT-configured runners for missing capacity and removes\n" +
			"finished ones.\n\n" +
			"Credentials come from the environment only, never a flag: GITHUB_TOKEN, or a GitHub App's\n" +
			"GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY (the PEM) or\n" +
			"GITHUB_APP_PRIVATE_KEY_FILE. GCE pools use Application Default Credentials; Kubernetes\n" +
			"pools the cluster's service account or KUBECONFIG; Docker pools DOCKER_HOST or the socket.\n\n" +
			"Start with: reconcile --once --dry-run --repo OWNER/NAME",
		Version:         version + " (commit " + commit + ", " + runtime.Version() + ")",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: false, // `reconcile help` and `reconcile help status` work
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run maps errors to exit codes
		Flags:          passFlags(),
		Commands: []*cli.Command{{
			Name:  "status",
			Usage: "show the runners this installation owns and the queued jobs, changing nothing",
			Description: "Observes as a pass does (same configuration, flags and credentials) and plans as a dry\n" +
				"run does: it makes no JIT configuration, creates, deletes and saves nothing. One table per\n" +
				"pool (name, state, age, the job it was made for, what the next pass does), then the queued\n" +
				"jobs with the pool that serves each, or why none will. Exit 1 if part of it could not be\n" +
				"seen; what could be is shown all the same.",
			Flags: append(passFlags(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: reconcile.FormatTable,
				Usage: "table, wide or json", EnvVars: []string{"RECONCILE_OUTPUT"}}),
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usagef("unexpected argument %q", c.Args().First())
				}
				return status(c, stdout, stderr)
			},
		}, {
			Name:  "version",
			Usage: "print the version, the commit and the Go version",
			Action: func(*cli.Context) error {
				fmt.Fprintf(stdout, "reconcile %s (commit %s, %s)\n", version, commit, runtime.Version())
				return nil
			},
		}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unexpected argument %q", c.Args().First())
			}
			return serve(c, stdout, stderr)
		},
	}
}

// passFlags are the flags of a pass, made anew for each command that takes them.
func passFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML configuration `FILE`", EnvVars: []string{"RECONCILE_CONFIG"}},
		&cli.BoolFlag{Name: "once", Usage: "run one pass and exit", EnvVars: []string{"RECONCILE_ONCE"}},
		&cli.BoolFlag{Name: "dry-run", Usage: "observe and plan, print every planned action, change nothing", EnvVars: []string{"RECONCILE_DRY_RUN"}},
		&cli.DurationFlag{Name: "interval", Value: 30 * time.Second, Usage: "time between passes without --once", EnvVars: []string{"RECONCILE_INTERVAL"}},
		&cli.StringSliceFlag{Name: "repo", Usage: "poll repository `OWNER/NAME` too (repeatable)", EnvVars: []string{"RECONCILE_REPOS"}},
		&cli.StringSliceFlag{Name: "org", Usage: "poll every repository of organisation `NAME` too (repeatable)", EnvVars: []string{"RECONCILE_ORGS"}},
		&cli.StringFlag{Name: "github-url", Usage: "GitHub REST API `URL`; overrides github.api_url", EnvVars: []string{"GITHUB_API_URL"}},
		&cli.DurationFlag{Name: "timeout", Value: 50 * time.Second, Usage: "a pass's deadline: below the schedule's interval", EnvVars: []string{"RECONCILE_TIMEOUT"}},
		&cli.StringFlag{Name: "cache", Usage: "keep GitHub ETags between runs in `FILE`, or configmap:NAMESPACE/NAME", EnvVars: []string{"RECONCILE_CACHE"}},
		&cli.IntFlag{Name: "points-per-minute", Value: 600, Usage: "GitHub secondary-limit points a minute this tool may spend, reads (1) and writes (5) together (GitHub allows 900)", EnvVars: []string{"RECONCILE_POINTS_PER_MINUTE"}},
		&cli.DurationFlag{Name: "idle-poll-interval", Value: 5 * time.Minute, Usage: "look at every quiet repository at least this often", EnvVars: []string{"RECONCILE_IDLE_POLL_INTERVAL"}},
		&cli.IntFlag{Name: "primary-reserve", Value: 500, Usage: "below this many remaining primary requests, poll only busy repositories and those whose runs just ended", EnvVars: []string{"RECONCILE_PRIMARY_RESERVE"}},
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "GitHub requests under way at once (at most 99)", EnvVars: []string{"RECONCILE_CONCURRENCY"}},
		&cli.IntFlag{Name: "writes-per-minute", Value: ghpoll.DefaultWritesPerMinute, Usage: "GitHub writes (runner registrations and removals) a minute, evenly spaced (GitHub documents 80 content-creating requests a minute)", EnvVars: []string{"RECONCILE_WRITES_PER_MINUTE"}},
		&cli.IntFlag{Name: "writes-per-hour", Value: ghpoll.DefaultWritesPerHour, Usage: "runner registrations in any hour (GitHub documents 500 content-creating requests an hour)", EnvVars: []string{"RECONCILE_WRITES_PER_HOUR"}},
		&cli.IntFlag{Name: "backend-concurrency", Value: 64, Usage: "runners being started at once (GCE insert operations, Kubernetes Jobs, Docker containers)", EnvVars: []string{"RECONCILE_BACKEND_CONCURRENCY"}},
		&cli.DurationFlag{Name: "backend-timeout", Value: reconcile.DefaultBackendTimeout, Usage: "how long a backend's listing, or deletion of a runner, may take in a pass; one that does not answer in time leaves only its own pools blind", EnvVars: []string{"RECONCILE_BACKEND_TIMEOUT"}},
		&cli.DurationFlag{Name: "capacity-backoff", Value: reconcile.DefaultBackoff.Initial, Usage: "after a create fails for capacity or quota, wait this long before a probe; each failed probe doubles it", EnvVars: []string{"RECONCILE_CAPACITY_BACKOFF"}},
		&cli.DurationFlag{Name: "capacity-backoff-max", Value: reconcile.DefaultBackoff.Max, Usage: "the longest wait between probes of a pool in backoff", EnvVars: []string{"RECONCILE_CAPACITY_BACKOFF_MAX"}},
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve /metrics and /healthz on `ADDR` (loop mode)", EnvVars: []string{"RECONCILE_METRICS_ADDR"}},
		&cli.StringFlag{Name: "metrics-file", Usage: "write metrics to `FILE` after each pass, for node_exporter's textfile collector", EnvVars: []string{"RECONCILE_METRICS_FILE"}},
		&cli.StringFlag{Name: "pushgateway-url", Usage: "push metrics to a Pushgateway at `URL` after the pass (--once)", EnvVars: []string{"RECONCILE_PUSHGATEWAY_URL"}},
		&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "auto, json or console (auto: console on a terminal)", EnvVars: []string{"RECONCILE_LOG_FORMAT"}},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"RECONCILE_LOG_LEVEL"}},
	}
}

// settings is everything the command was given, checked, before anything is called.
type settings struct {
	log         zerolog.Logger
	console     bool
	cfg         *reconcile.Config
	backends    []backendSpec
	auth        http.RoundTripper
	dryRun      bool
	once        bool
	interval    time.Duration
	timeout     time.Duration
	budget      reconcile.Budget
	concurrency int
	writes      [2]int // a minute, an hour
	backendConc int
	backendTime time.Duration
	backoff     reconcile.Backoff
	cache       string
	metricsAddr string
	metricsFile string
	pushURL     string
}

// serve parses and checks everything it was given (exit 2 on any mistake, nothing
// called), then builds the clients, then runs one pass or the loop.
func serve(c *cli.Context, stdout, stderr io.Writer) error {
	s, err := parseSettings(c, stderr)
	if err != nil {
		return err
	}
	log := s.log
	var ln net.Listener
	if s.metricsAddr != "" {
		if ln, err = net.Listen("tcp", s.metricsAddr); err != nil {
			return usagef("--metrics-addr: %v", err)
		}
	}
	store, err := cacheStore(s.cache, log)
	if err != nil {
		return err
	}
	backends, err := buildBackends(c.Context, s.cfg, s.backends, realPlatforms(log))
	if err != nil {
		return err
	}
	gh, err := githubClient(c.Context, s, store)
	if err != nil {
		return err
	}
	for _, b := range backends {
		if mu, ok := b.(reconcile.MemoUser); ok {
			mu.UseMemo(gh) // kept in the cache with the ETags
		}
	}
	rc := &reconcile.Reconciler{
		Config:             s.cfg,
		GitHub:             gh,
		Backends:           backends,
		DryRun:             s.dryRun,
		Concurrency:        s.concurrency,
		BackendConcurrency: s.backendConc,
		ConflictWait:       5 * time.Second,
		Budget:             s.budget,
		BackendTimeout:     s.backendTime,
		Backoff:            s.backoff,
	}
	m := metrics.New()

	// SIGTERM or SIGINT: no new action starts; the one under way finishes or undoes
	// itself (within 90 s), and the pass ends saying what was left.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = log.WithContext(ctx)
	if ln != nil {
		log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics and /healthz")
		go func() {
			if err := m.Serve(ctx, ln, 3*s.interval+5*time.Minute); err != nil {
				log.Error().Err(err).Msg("metrics server stopped")
			}
		}()
	}
	after := reporter{s: s, log: log, metrics: m, gh: gh, store: store, stdout: stdout, ctx: context.WithoutCancel(ctx)}.after
	if s.once {
		sum, err := rc.RunWithin(ctx, s.timeout)
		after(sum, err)
		if err != nil {
			return errPassFailed
		}
		return nil
	}
	log.Info().Dur("interval", s.interval).Bool("dry_run", s.dryRun).Msg("starting")
	err = rc.Run(ctx, s.interval, s.timeout, after)
	log.Info().Msg("stopping")
	if err != nil {
		return errPassFailed // a pass cut short by the signal exits 1
	}
	return nil
}

// githubClient makes the GitHub client the settings describe, with the cache loaded.
func githubClient(ctx context.Context, s settings, store ghpoll.Store) (*ghpoll.Client, error) {
	// The client's timeout bounds a call with its retries; each attempt is bounded by
	// the base transport's header timeout, so that a hung answer is retried.
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: s.auth}
	gh, err := ghpoll.NewWithOptions(hc, s.cfg.GitHub.APIURL, ghpoll.Options{Concurrency: s.concurrency,
		WritesPerMinute: s.writes[0], WritesPerHour: s.writes[1], PointsPerMinute: s.budget.PointsPerMinute})
	if err != nil {
		return nil, usagef("github.api_url: %v", err)
	}
	gh.RunnerGroupID = s.cfg.GitHub.RunnerGroupID
	if store != nil {
		if err := gh.LoadCache(ctx, store); err != nil {
			s.log.Warn().Err(err).Msg("ignoring the GitHub request cache; starting cold")
		}
	}
	return gh, nil
}

// reporter says what a pass did, after it: metrics (recorded, written, pushed), the
// cache saved, the table on a console, the error logged.
type reporter struct {
	s       settings
	log     zerolog.Logger
	metrics *metrics.Metrics
	gh      *ghpoll.Client
	store   ghpoll.Store
	stdout  io.Writer
	ctx     context.Context // not cancelled by the signal: the pass's results are kept
}

func (r reporter) after(sum reconcile.Summary, err error) {
	r.metrics.Record(sum, err != nil)
	if r.s.metricsFile != "" {
		if werr := r.metrics.WriteTextfile(r.s.metricsFile); werr != nil {
			r.log.Warn().Err(werr).Msg("could not write the metrics file")
		}
	}
	if r.s.pushURL != "" {
		if perr := r.metrics.Push(r.ctx, r.s.pushURL); perr != nil {
			r.log.Warn().Err(perr).Msg("could not push metrics")
		}
	}
	if r.store != nil {
		dropped, serr := r.gh.SaveCache(r.ctx, r.store)
		if serr != nil {
			r.log.Warn().Err(serr).Msg("could not save the GitHub request cache")
		}
		if dropped > 0 {
			r.log.Warn().Int("pages_dropped", dropped).
				Msg("the GitHub request cache was trimmed to fit its store: the pages used longest ago will cost a request each again")
		}
	}
	// What failed comes first, one line each, with what GitHub or the network said and
	// what to check; then what was seen.
	failures := explainFailures(err, r.s.cfg.GitHub.APIURL)
	if r.s.console {
		if len(failures) > 0 {
			fmt.Fprintf(r.stdout, "PASS FAILED: %d %s\n", len(failures), plural(len(failures), "problem", "problems"))
			for _, f := range failures {
				fmt.Fprintf(r.stdout, "  - %s\n", f)
			}
			fmt.Fprintln(r.stdout)
		}
		reconcile.WriteTable(r.stdout, sum)
		return
	}
	for _, f := range failures {
		r.log.Error().Str("problem", f).Msg("pass failed")
	}
}

// explainFailures returns a line for each error a pass joined (ghpoll.Explain).
func explainFailures(err error, apiURL string) []string {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, ghpoll.Explain(e, apiURL))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// parseSettings reads flags, environment and configuration into settings. It calls
// nothing: it reads the configuration file and an App key file, and that is all.
func parseSettings(c *cli.Context, stderr io.Writer) (settings, error) {
	s := settings{dryRun: c.Bool("dry-run") || c.Command.Name == "status", once: c.Bool("once"), interval: c.Duration("interval"), timeout: c.Duration("timeout"),
		cache: c.String("cache"), metricsAddr: c.String("metrics-addr"), metricsFile: c.String("metrics-file"), pushURL: c.String("pushgateway-url")}
	var err error
	level := c.String("log-level")
	if c.Command.Name == "status" && !c.IsSet("log-level") {
		level = "warn" // the status is the output; the dry run's lines are not
	}
	if s.log, s.console, err = newLogger(c.String("log-format"), level, stderr); err != nil {
		return s, err
	}
	if s.cfg, err = loadConfig(c); err != nil {
		return s, err
	}
	s.log.Debug().Str("config", s.cfg.String()).Msg("configuration")
	if s.backends, err = parseBackends(s.cfg, s.dryRun); err != nil {
		return s, err
	}
	if s.auth, err = githubAuth(s.cfg.GitHub.APIURL); err != nil {
		return s, err
	}
	switch {
	case !s.once && s.interval <= 0:
		return s, usagef("--interval must be positive")
	case s.timeout <= 0:
		return s, usagef("--timeout must be positive")
	case s.metricsAddr != "" && s.once:
		return s, usagef("--metrics-addr serves a long-running loop; with --once use --metrics-file or --pushgateway-url")
	case s.pushURL != "" && !s.once:
		return s, usagef("--pushgateway-url pushes after a --once pass; a loop serves --metrics-addr")
	case s.pushURL != "":
		if _, ok := reconcile.HTTPURL(s.pushURL); !ok {
			return s, usagef("--pushgateway-url: %q is not an http(s) URL", s.pushURL)
		}
	}
	if s.budget, s.concurrency, err = budgetFlags(c, s.interval); err != nil {
		return s, err
	}
	if s.writes, s.backendConc, err = writeFlags(c); err != nil {
		return s, err
	}
	s.backendTime = c.Duration("backend-timeout")
	s.backoff = reconcile.Backoff{Initial: c.Duration("capacity-backoff"), Max: c.Duration("capacity-backoff-max")}
	switch {
	case s.backendTime <= 0:
		return s, usagef("--backend-timeout must be positive")
	case s.backendTime >= s.timeout && !c.IsSet("backend-timeout"):
		s.backendTime = s.timeout / 2 // a short --timeout: half of it for a listing
	case s.backendTime >= s.timeout:
		return s, usagef("--backend-timeout %v must be shorter than --timeout %v, so that a hung backend leaves time to serve the others", s.backendTime, s.timeout)
	case s.backoff.Initial <= 0:
		return s, usagef("--capacity-backoff must be positive")
	case s.backoff.Max < s.backoff.Initial:
		return s, usagef("--capacity-backoff-max %v is shorter than --capacity-backoff %v", s.backoff.Max, s.backoff.Initial)
	}
	if cost := s.writes[0] * reconcile.PointsPerWrite; cost > s.budget.PointsPerMinute {
		return s, usagef("--writes-per-minute %d costs %d points a minute (%d a write), more than --points-per-minute %d", s.writes[0], cost, reconcile.PointsPerWrite, s.budget.PointsPerMinute)
	}
	if _, _, err := parseCacheSpec(s.cache); err != nil {
		return s, err
	}
	return s, nil
}

// githubAuth returns the transport that authenticates to GitHub: a token
// (GITHUB_TOKEN), or a GitHub App installation (GITHUB_APP_ID,
// GITHUB_APP_INSTALLATION_ID, and GITHUB_APP_PRIVATE_KEY or
// GITHUB_APP_PRIVATE_KEY_FILE), whose installation token is fetched and renewed as it
// expires. Exactly one of the two. No error quotes a credential.
func githubAuth(apiURL string) (http.RoundTripper, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 20 * time.Second
	token := strings.TrimSpace(os.Getenv("GITHUB_TOKEN"))
	appID, instID := os.Getenv("GITHUB_APP_ID"), os.Getenv("GITHUB_APP_INSTALLATION_ID")
	key, keyFile := os.Getenv("GITHUB_APP_PRIVATE_KEY"), os.Getenv("GITHUB_APP_PRIVATE_KEY_FILE")
	app := appID != "" || instID != "" || key != "" || keyFile != ""
	switch {
	case token != "" && app:
		return nil, usagef("GITHUB_TOKEN and GITHUB_APP_*: set one way to authenticate, not both")
	case token != "":
		return &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: base}, nil
	case !app:
		return nil, usagef("GITHUB_TOKEN is not set: export a token that may read (and, to re-run preempted jobs, write) Actions and administer runners, or a GitHub App's GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY")
	}
	id, err := strconv.ParseInt(appID, 10, 64)
	if err != nil || id <= 0 {
		return nil, usagef("GITHUB_APP_ID: %q is not an App id", appID)
	}
	inst, err := strconv.ParseInt(instID, 10, 64)
	if err != nil || inst <= 0 {
		return nil, usagef("GITHUB_APP_INSTALLATION_ID: %q is not an installation id", instID)
	}
	switch {
	case key != "" && keyFile != "":
		return nil, usagef("GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_FILE: set one")
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, usagef("GITHUB_APP_PRIVATE_KEY_FILE: %v", err)
		}
		key = string(b)
	case key == "":
		return nil, usagef("GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE is not set")
	}
	tr, err := ghinstallation.New(base, id, inst, []byte(key))
	if err != nil {
		// Its message names the parse failure, never the key.
		return nil, usagef("GITHUB_APP_PRIVATE_KEY: not a PEM RSA private key")
	}
	tr.BaseURL = strings.TrimRight(apiURL, "/")
	return tr, nil
}

// budgetFlags reads the request budget. In --once mode, --interval says how often the
// scheduler runs the tool, since the budget is spent per pass.
func budgetFlags(c *cli.Context, interval time.Duration) (reconcile.Budget, int, error) {
	b := reconcile.DefaultBudget()
	b.PointsPerMinute = c.Int("points-per-minute")
	b.IdleInterval = c.Duration("idle-poll-interval")
	b.PrimaryReserve = c.Int("primary-reserve")
	if interval > 0 {
		b.Interval = interval
	}
	n := c.Int("concurrency")
	switch {
	case b.PointsPerMinute < 10 || b.PointsPerMinute > 900:
		return b, 0, usagef("--points-per-minute: %d is not between 10 and GitHub's 900", b.PointsPerMinute)
	case b.IdleInterval < b.Interval:
		return b, 0, usagef("--idle-poll-interval: %v is shorter than --interval %v", b.IdleInterval, b.Interval)
	case b.PrimaryReserve < 0:
		return b, 0, usagef("--primary-reserve must not be negative")
	case n < 1 || n > 99:
		return b, 0, usagef("--concurrency: %d is not between 1 and 99 (GitHub allows 100 at once)", n)
	}
	return b, n, nil
}

// writeFlags reads the pace of GitHub writes and how many runners start at once.
func writeFlags(c *cli.Context) ([2]int, int, error) {
	w := [2]int{c.Int("writes-per-minute"), c.Int("writes-per-hour")}
	n := c.Int("backend-concurrency")
	switch {
	case w[0] < 1 || w[0] > 180:
		return w, n, usagef("--writes-per-minute: %d is not between 1 and 180 (a write costs 5 of GitHub's 900 points a minute)", w[0])
	case w[1] < 1:
		return w, n, usagef("--writes-per-hour must be positive")
	case n < 1 || n > 500:
		return w, n, usagef("--backend-concurrency: %d is not between 1 and 500", n)
	}
	return w, n, nil
}

// parseCacheSpec reads --cache: a file, or configmap:NAMESPACE/NAME (ns and name set).
func parseCacheSpec(spec string) (ns, name string, err error) {
	ref, ok := strings.CutPrefix(spec, "configmap:")
	if !ok {
		return "", "", nil
	}
	ns, name, ok = strings.Cut(ref, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", usagef("--cache: %q is not configmap:NAMESPACE/NAME", spec)
	}
	return ns, name, nil
}

// cacheStore makes the store --cache names; nil for none.
func cacheStore(spec string, log zerolog.Logger) (ghpoll.Store, error) {
	if spec == "" {
		return nil, nil
	}
	ns, name, err := parseCacheSpec(spec)
	if err != nil {
		return nil, err
	}
	if ns == "" {
		return ghpoll.FileStore(spec), nil
	}
	kube, err := k8s.NewClientset(log)
	if err != nil {
		return nil, usagef("--cache: %v", err)
	}
	return k8s.ConfigMapStore{Client: kube, Namespace: ns, Name: name}, nil
}

func newLogger(format, level string, stderr io.Writer) (zerolog.Logger, bool, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, false, usagef("--log-level: %q is not one of debug, info, warn, error", level)
	}
	f, ok := stderr.(*os.File)
	tty := ok && isatty.IsTerminal(f.Fd())
	var console bool
	switch format {
	case "console":
		console = true
	case "json":
	case "auto":
		console = tty
	default:
		return zerolog.Logger{}, false, usagef("--log-format: %q is not one of auto, json, console", format)
	}
	// A pass logs from several goroutines: one write at a time.
	var w io.Writer = zerolog.SyncWriter(stderr)
	if console {
		w = zerolog.ConsoleWriter{Out: zerolog.SyncWriter(stderr), TimeFormat: "15:04:05", NoColor: !tty}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), console, nil
}

// loadConfig reads the file, merges the command line into it and validates the result.
func loadConfig(c *cli.Context) (*reconcile.Config, error) {
	var data []byte
	path := c.String("config")
	if path != "" {
		var err error
		if data, err = readConfig(path); err != nil {
			return nil, usagef("--config: %v", err)
		}
	}
	cfg, err := reconcile.Load(data)
	if err != nil {
		if path != "" {
			return nil, usagef("%s: %v", path, err)
		}
		return nil, usageError{err}
	}
	// The flags' values are checked here, under the flags' own names; the file's
	// under its keys, by Validate.
	for _, r := range c.StringSlice("repo") {
		if _, err := reconcile.ParseRepo(r); err != nil {
			return nil, usagef("--repo: %v", err)
		}
	}
	for _, o := range c.StringSlice("org") {
		if _, err := reconcile.ParseOrg(o); err != nil {
			return nil, usagef("--org: %v", err)
		}
	}
	cfg.GitHub.Repos = append(cfg.GitHub.Repos, c.StringSlice("repo")...)
	cfg.GitHub.Orgs = append(cfg.GitHub.Orgs, c.StringSlice("org")...)
	if u := c.String("github-url"); u != "" {
		if _, ok := reconcile.HTTPURL(u); !ok {
			return nil, usagef("--github-url: %q is not an http(s) URL, such as https://HOST/api/v3/", u)
		}
		cfg.GitHub.APIURL = u
	}
	if path == "" && len(cfg.Pools) == 0 {
		if !c.Bool("dry-run") {
			return nil, usagef("--config: no pools: a real run needs a configuration file; try --dry-run to see what would happen")
		}
		cfg.Pools = []reconcile.Pool{reconcile.DefaultPool()}
	}
	if err := cfg.Validate(); err != nil {
		if path != "" {
			return nil, usagef("%s: %v", path, err)
		}
		return nil, usageError{err}
	}
	return cfg, nil
}

// readConfig reads at most a little more than a configuration may hold, so that a
// huge file is refused without reading all of it.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, reconcile.MaxConfigSize+1)) // one more: Load names the size
}

// platforms makes the clients of the backends; tests replace them.
type platforms struct {
	kube   func() (kubernetes.Interface, error)
	gce    func(ctx context.Context, cfg gce.Config, owner string) (reconcile.Backend, error)
	docker func(cfg docker.Config) (*dockerclient.Client, error)
}

func realPlatforms(log zerolog.Logger) platforms {
	return platforms{
		kube: func() (kubernetes.Interface, error) { return k8s.NewClientset(log) },
		gce: func(ctx context.Context, cfg gce.Config, owner string) (reconcile.Backend, error) {
			var opts []option.ClientOption
			if tok := os.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN"); tok != "" {
				opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})))
			}
			return gce.New(ctx, cfg, owner, opts...)
		},
		docker: docker.NewClient,
	}
}

// backendSpec is one pool's backend section, parsed.
type backendSpec struct {
	pool   string
	key    string // pools[i], for errors
	gce    *gce.Config
	kube   *k8s.Config
	docker *docker.Config
}

// parseBackends decodes and checks each pool's backend section; it calls nothing.
func parseBackends(cfg *reconcile.Config, dryRun bool) ([]backendSpec, error) {
	var out []backendSpec
	for i, p := range cfg.Pools {
		key := fmt.Sprintf("pools[%d]", i)
		var sections []string
		for name, raw := range map[string]json.RawMessage{"gce": p.GCE, "kubernetes": p.Kubernetes, "docker": p.Docker} {
			if raw != nil {
				sections = append(sections, name)
			}
		}
		slices.Sort(sections)
		sp := backendSpec{pool: p.Name, key: key}
		var err error
		switch {
		case len(sections) > 1:
			return nil, usagef("%s: %s are exclusive: a pool has one backend", key, strings.Join(sections, " and "))
		case p.GCE != nil:
			sp.gce = new(gce.Config)
			*sp.gce, err = gce.ParseConfig(p.GCE, key+".gce")
		case p.Kubernetes != nil:
			sp.kube = new(k8s.Config)
			*sp.kube, err = k8s.ParseConfig(p.Kubernetes, key+".kubernetes")
		case p.Docker != nil:
			sp.docker = new(docker.Config)
			*sp.docker, err = docker.ParseConfig(p.Docker, key+".docker")
		case !dryRun:
			return nil, usagef("%s: no backend: add a gce, kubernetes or docker section", key)
		default:
			continue
		}
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, sp)
	}
	return out, nil
}

// poolAdder is a backend that serves several pools of one platform account.
type poolAdder interface {
	AddPool(ctx context.Context, pool string, cfg gce.Config) error
}

// buildBackends makes each pool's backend. Clients are made only for the platforms
// some pool uses; one Kubernetes client serves all, the GCE pools of one project
// share one backend, and so do the Docker pools of one engine, so that a pass lists
// each project's instances and each engine's containers once.
func buildBackends(ctx context.Context, cfg *reconcile.Config, specs []backendSpec, pf platforms) (map[string]reconcile.Backend, error) {
	backends := map[string]reconcile.Backend{}
	projects := map[string]reconcile.Backend{} // project and endpoint → its backend
	engines := map[string]*docker.Backend{}    // engine address and TLS files → its backend
	var kube kubernetes.Interface
	for _, sp := range specs {
		switch {
		case sp.gce != nil:
			account := sp.gce.Project + "|" + sp.gce.Endpoint
			if b, ok := projects[account].(poolAdder); ok {
				if err := b.AddPool(ctx, sp.pool, *sp.gce); err != nil {
					return nil, usagef("%s.gce: %v", sp.key, err)
				}
				backends[sp.pool] = projects[account]
				continue
			}
			b, err := pf.gce(ctx, *sp.gce, cfg.NamePrefix) // serves this first pool of the project as it is
			if err != nil {
				return nil, usagef("%s.gce: %v", sp.key, err)
			}
			projects[account], backends[sp.pool] = b, b
		case sp.kube != nil:
			if kube == nil {
				var err error
				if kube, err = pf.kube(); err != nil {
					return nil, usagef("%s.kubernetes: %v", sp.key, err)
				}
			}
			backends[sp.pool] = k8s.New(kube, cfg.NamePrefix, *sp.kube)
		case sp.docker != nil:
			if b, ok := engines[sp.docker.Account()]; ok {
				b.AddPool(sp.pool, *sp.docker)
				backends[sp.pool] = b
				continue
			}
			cli, err := pf.docker(*sp.docker)
			if err != nil {
				return nil, usagef("%s.docker: %v", sp.key, err)
			}
			b := docker.New(cli, cfg.NamePrefix, sp.pool, *sp.docker)
			engines[sp.docker.Account()], backends[sp.pool] = b, b
		}
	}
	return backends, nil
}

// status runs a read-only pass (a dry run that saves no cache) and shows what it saw.
func status(c *cli.Context, stdout, stderr io.Writer) error {
	format := c.String("output")
	if format != reconcile.FormatTable && format != reconcile.FormatWide && format != reconcile.FormatJSON {
		return usagef("--output: %q is not table, wide or json", format)
	}
	s, err := parseSettings(c, stderr)
	if err != nil {
		return err
	}
	store, err := cacheStore(s.cache, s.log) // read for its ETags, never saved
	if err != nil {
		return err
	}
	backends, err := buildBackends(c.Context, s.cfg, s.backends, realPlatforms(s.log))
	if err != nil {
		return err
	}
	gh, err := githubClient(c.Context, s, store)
	if err != nil {
		return err
	}
	rc := &reconcile.Reconciler{Config: s.cfg, GitHub: gh, Backends: backends, DryRun: true,
		Concurrency: s.concurrency, BackendConcurrency: s.backendConc, Budget: s.budget, BackendTimeout: s.backendTime, Backoff: s.backoff}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, perr := rc.RunWithin(s.log.WithContext(ctx), s.timeout)
	st := reconcile.BuildStatus(*s.cfg, sum.Observed, sum.Plan, sum.Started)
	if perr != nil {
		st.Errors = strings.Split(perr.Error(), "\n")
	}
	f, ok := stdout.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd()) && os.Getenv("NO_COLOR") == ""
	if err := reconcile.WriteStatus(stdout, st, *s.cfg, format, colour); err != nil {
		return err
	}
	if perr != nil {
		return errPassFailed
	}
	return nil
}
