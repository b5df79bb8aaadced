package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// setup is what a pass and status share: the notes opened from --cache, the backends
// built, the GitHub client made with its part of the notes, and the reconciler.
type setup struct {
	notes *reconcile.Notes
	rc    *reconcile.Reconciler
}

// build makes the clients the settings describe. A cache that cannot be read is
// warned about, and the pass starts cold.
func build(ctx context.Context, s settings, w Wiring) (*setup, error) {
	var store reconcile.Store
	if s.openStore != nil {
		var err error
		if store, err = s.openStore(s.log); err != nil {
			return nil, usagef("--cache: %v", err)
		}
	}
	notes, err := reconcile.OpenNotes(ctx, store)
	if err != nil {
		s.log.Warn().Err(err).Msg("ignoring the cache; starting cold")
	}
	backends, err := reconcile.BuildBackends(ctx, s.kinds, s.sections, reconcile.BackendEnv{Owner: s.cfg.NamePrefix, Memo: notes})
	if err != nil {
		return nil, usageError{err}
	}
	// The client's timeout bounds a call with its retries; each attempt is bounded by
	// the base transport's header timeout, so that a hung answer is retried.
	gh, err := w.GitHub(GitHubOptions{HTTP: &http.Client{Timeout: 2 * time.Minute, Transport: s.auth}, APIURL: s.cfg.GitHub.APIURL,
		Concurrency: s.concurrency, WritesPerMinute: s.writes.perMinute, WritesPerHour: s.writes.perHour,
		PointsPerMinute: s.budget.PointsPerMinute, RunnerGroupID: s.cfg.GitHub.RunnerGroupID})
	if err != nil {
		return nil, usagef("github.api_url: %v", err)
	}
	if err := gh.KeepIn(notes); err != nil {
		s.log.Warn().Err(err).Msg("ignoring the GitHub request cache; starting cold")
	}
	var pause reconcile.Shared
	if store != nil {
		pause = notes.Shared(reconcile.PauseRecord)
		if err := gh.SharePoints(ctx, notes.Shared("points")); err != nil {
			s.log.Warn().Err(err).Msg("not sharing GitHub's points with passes that overlap this one; it keeps within --points-per-minute alone")
		}
	}
	rc := &reconcile.Reconciler{
		Config:             s.cfg,
		GitHub:             gh,
		Backends:           backends,
		Memo:               notes,
		DryRun:             s.dryRun,
		CheckCreates:       s.check,
		Pause:              pause,
		Concurrency:        s.concurrency,
		BackendConcurrency: s.backendConc,
		ConflictWait:       5 * time.Second,
		Budget:             s.budget,
		BackendTimeout:     s.backendTime,
		Backoff:            s.backoff,
	}
	return &setup{notes: notes, rc: rc}, nil
}

// serve parses and checks everything it was given (exit 2 on any mistake, nothing
// called), then builds the clients, then runs one pass or the loop.
func serve(c *cli.Context, stdout, stderr io.Writer, w Wiring) error {
	s, err := parseSettings(c, stderr, w)
	if err != nil {
		return err
	}
	var ln net.Listener
	if s.metricsAddr != "" {
		if ln, err = net.Listen("tcp", s.metricsAddr); err != nil {
			return usagef("--metrics-addr: %v", err)
		}
	}
	st, m, ctx, stop, err := start(c, s, w)
	if err != nil {
		return err
	}
	defer stop()
	if ln != nil {
		s.log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics and /healthz")
		go func() {
			if err := m.Serve(ctx, ln, 3*s.interval+5*time.Minute); err != nil {
				s.log.Error().Err(err).Msg("metrics server stopped")
			}
		}()
	}
	after := reporter{s: s, metrics: m, notes: st.notes, explain: w.Explain, stdout: stdout, ctx: context.WithoutCancel(ctx)}.after
	if s.once {
		sum, err := st.rc.RunWithin(ctx, s.timeout)
		after(sum, err)
		if err != nil {
			return errPassFailed
		}
		return nil
	}
	s.log.Info().Dur("interval", s.interval).Bool("dry_run", s.dryRun).Msg("starting")
	err = st.rc.Run(ctx, s.interval, s.timeout, after)
	s.log.Info().Msg("stopping")
	if err != nil {
		return errPassFailed // a pass cut short by the signal exits 1
	}
	return nil
}

// start builds the clients and the metrics for passes that write, and their context.
// Counters continue from what earlier processes counted (kept with --cache), so that
// a textfile or Pushgateway series of --once passes is a true counter. SIGTERM or
// SIGINT ends the context: no new action starts; the one under way finishes or undoes
// itself (within 90 s), and the pass ends saying what was left.
func start(c *cli.Context, s settings, w Wiring) (*setup, *metrics.Metrics, context.Context, context.CancelFunc, error) {
	st, err := build(c.Context, s, w)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	m := metrics.New()
	if err := st.notes.Attach(metrics.NotesPart, m); err != nil {
		s.log.Warn().Err(err).Msg("counters start again from zero: the cache's could not be read")
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	return st, m, s.log.WithContext(ctx), stop, nil
}

// reporter says what a pass did, after it: metrics (recorded, written, pushed), the
// notes saved, the table on a console, the error logged.
type reporter struct {
	s       settings
	metrics *metrics.Metrics
	notes   *reconcile.Notes
	explain func(err error, apiURL string) string
	stdout  io.Writer
	ctx     context.Context // not cancelled by the signal: the pass's results are kept
}

func (r reporter) after(sum reconcile.Summary, err error) {
	r.metrics.Record(sum, err != nil)
	if r.s.metricsFile != "" {
		if werr := r.metrics.WriteTextfile(r.s.metricsFile); werr != nil {
			r.s.log.Warn().Err(werr).Msg("could not write the metrics file")
		}
	}
	if r.s.pushURL != "" {
		if perr := r.metrics.Push(r.ctx, r.s.pushURL); perr != nil {
			r.s.log.Warn().Err(perr).Msg("could not push metrics")
		}
	}
	r.save()
	// What failed comes first, one line each, with what GitHub or the network said and
	// what to check; then what was seen.
	failures := explainFailures(err, r.s.cfg.GitHub.APIURL, r.explain)
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
		r.s.log.Error().Str("problem", f).Msg("pass failed")
	}
}

// save stores the notes (--cache), within the store's bound.
func (r reporter) save() {
	dropped, err := r.notes.Save(r.ctx)
	if err != nil {
		r.s.log.Warn().Err(err).Msg("could not save the cache")
	}
	if dropped > 0 {
		r.s.log.Warn().Int("pages_dropped", dropped).
			Msg("the GitHub request cache was trimmed to fit its store: the pages used longest ago will cost a request each again")
	}
}

// explainFailures returns a line for each error a pass joined.
func explainFailures(err error, apiURL string, explain func(error, string) string) []string {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, explain(e, apiURL))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// status runs a read-only pass (a dry run that saves no cache) and shows what it saw.
func status(c *cli.Context, stdout, stderr io.Writer, w Wiring) error {
	format := c.String("output")
	if format != reconcile.FormatTable && format != reconcile.FormatWide && format != reconcile.FormatJSON {
		return usagef("--output: %q is not table, wide or json", format)
	}
	if c.Bool("usage") {
		return usage(c, stdout, w, format == reconcile.FormatJSON)
	}
	s, err := parseSettings(c, stderr, w)
	if err != nil {
		return err
	}
	st, err := build(c.Context, s, w) // the cache read for its ETags, never saved
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, perr := st.rc.RunWithin(s.log.WithContext(ctx), s.timeout)
	view := reconcile.BuildStatus(*s.cfg, sum.Observed, sum.Plan, sum.Started)
	if st.rc.Pause != nil {
		pctx, cancel := context.WithTimeout(ctx, s.backendTime)
		p, paused, _ := reconcile.ReadPause(pctx, st.rc.Pause)
		cancel()
		if paused {
			view.Paused = &p
		}
	}
	if perr != nil {
		view.Errors = strings.Split(perr.Error(), "\n")
	}
	f, ok := stdout.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd()) && os.Getenv("NO_COLOR") == ""
	if err := reconcile.WriteStatus(stdout, view, *s.cfg, format, colour); err != nil {
		return err
	}
	if perr != nil {
		return errPassFailed
	}
	return nil
}

// cacheOnly opens the store --cache names, for a command that reads or writes it and
// nothing else; why says what it needs the cache for when none is given.
func cacheOnly(spec string, w Wiring, why string) (reconcile.Store, error) {
	if spec == "" {
		return nil, usagef("%s: give it as --cache (a FILE, or configmap:NAMESPACE/NAME)", why)
	}
	open, err := w.Store(spec)
	if err != nil {
		return nil, usagef("--cache: %v", err)
	}
	store, err := open(zerolog.Nop())
	if err != nil {
		return nil, usagef("--cache: %v", err)
	}
	return store, nil
}

// usage shows the runner time the counters in --cache hold. It reads the cache and
// nothing else: no configuration, no credentials, no call to GitHub or a platform.
func usage(c *cli.Context, stdout io.Writer, w Wiring, asJSON bool) error {
	spec := c.String("cache")
	store, err := cacheOnly(spec, w, "--usage reads the counters the passes keep in their cache")
	if err != nil {
		return err
	}
	notes, err := reconcile.OpenNotes(c.Context, store)
	if err != nil {
		return fmt.Errorf("--cache %s: %w", spec, err)
	}
	var counters rawPart
	if err := notes.Attach(metrics.NotesPart, &counters); err != nil {
		return err
	}
	u, err := metrics.ReadUsage(counters.data)
	if err != nil {
		return fmt.Errorf("--cache %s: %w", spec, err)
	}
	return metrics.WriteUsage(stdout, u, spec, asJSON, time.Now())
}

// rawPart receives a share of the notes as it was saved.
type rawPart struct{ data json.RawMessage }

func (p *rawPart) RestoreNotes(data json.RawMessage) error { p.data = data; return nil }
func (p *rawPart) NotesData() (json.RawMessage, error)     { return p.data, nil }
func (p *rawPart) Shrink(float64) int                      { return 0 }
