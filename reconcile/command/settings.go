package command

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// settings is everything the command was given, checked, before anything is called.
type settings struct {
	log         zerolog.Logger
	console     bool
	cfg         *reconcile.Config
	kinds       []reconcile.BackendKind            // the platforms pools may run on
	sections    map[string][]reconcile.PoolSection // the pools' backend sections, parsed, by platform
	auth        http.RoundTripper
	dryRun      bool
	check       bool // a dry run of a pass: ask the backends whether its creates would work
	once        bool
	interval    time.Duration
	timeout     time.Duration
	budget      reconcile.Budget
	concurrency int
	writes      writePace
	backendConc int
	backendTime time.Duration
	backoff     reconcile.Backoff
	cache       string
	openStore   func(zerolog.Logger) (reconcile.Store, error) // nil: no --cache
	metricsAddr string
	metricsFile string
	pushURL     string
}

// parseSettings reads flags, environment and configuration into settings. It calls
// nothing: it reads the configuration file and an App key file, and that is all.
func parseSettings(c *cli.Context, stderr io.Writer, w Wiring) (settings, error) {
	s := settings{dryRun: c.Bool("dry-run") || c.Command.Name == "status", check: c.Bool("dry-run") && c.Command.Name != "status" && c.Command.Name != "down", once: c.Bool("once"), interval: c.Duration("interval"), timeout: c.Duration("timeout"),
		cache: c.String("cache"), metricsAddr: c.String("metrics-addr"), metricsFile: c.String("metrics-file"), pushURL: c.String("pushgateway-url")}
	var err error
	level := c.String("log-level")
	if c.Command.Name == "status" && !c.IsSet("log-level") {
		level = "warn" // the status is the output; the dry run's lines are not
	}
	if s.log, s.console, err = newLogger(c.String("log-format"), level, stderr); err != nil {
		return s, err
	}
	s.kinds = w.Platforms(s.log)
	if err := s.configuration(c); err != nil {
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
	if err := s.paceFlags(c); err != nil {
		return s, err
	}
	if s.openStore, err = w.Store(s.cache); err != nil {
		return s, usagef("--cache: %v", err)
	}
	return s, nil
}

// paceFlags reads the budget, the write pace, and the bounds on the backends' calls.
func (s *settings) paceFlags(c *cli.Context) error {
	var err error
	if s.budget, s.concurrency, err = budgetFlags(c, s.interval); err != nil {
		return err
	}
	if s.writes, s.backendConc, err = writeFlags(c); err != nil {
		return err
	}
	s.backendTime = c.Duration("backend-timeout")
	s.backoff = reconcile.Backoff{Initial: c.Duration("capacity-backoff"), Max: c.Duration("capacity-backoff-max")}
	switch {
	case s.backendTime <= 0:
		return usagef("--backend-timeout must be positive")
	case s.backendTime >= s.timeout && !c.IsSet("backend-timeout"):
		s.backendTime = s.timeout / 2 // a short --timeout: half of it for a listing
	case s.backendTime >= s.timeout:
		return usagef("--backend-timeout %v must be shorter than --timeout %v, so that a hung backend leaves time to serve the others", s.backendTime, s.timeout)
	case s.backoff.Initial <= 0:
		return usagef("--capacity-backoff must be positive")
	case s.backoff.Max < s.backoff.Initial:
		return usagef("--capacity-backoff-max %v is shorter than --capacity-backoff %v", s.backoff.Max, s.backoff.Initial)
	}
	if cost := s.writes.perMinute * reconcile.PointsPerWrite; cost > s.budget.PointsPerMinute {
		return usagef("--writes-per-minute %d costs %d points a minute (%d a write), more than --points-per-minute %d", s.writes.perMinute, cost, reconcile.PointsPerWrite, s.budget.PointsPerMinute)
	}
	return nil
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

// writePace is how many registrations a minute (0: as many as the points allow) and
// an hour.
type writePace struct{ perMinute, perHour int }

// writeFlags reads the pace of GitHub writes and how many runners start at once.
func writeFlags(c *cli.Context) (writePace, int, error) {
	w := writePace{c.Int("writes-per-minute"), c.Int("writes-per-hour")}
	n := c.Int("backend-concurrency")
	switch {
	case c.IsSet("writes-per-minute") && (w.perMinute < 1 || w.perMinute > 180):
		return w, n, usagef("--writes-per-minute: %d is not between 1 and 180 (a write costs 5 of GitHub's 900 points a minute)", w.perMinute)
	case w.perHour < 1:
		return w, n, usagef("--writes-per-hour must be positive")
	case n < 1 || n > 500:
		return w, n, usagef("--backend-concurrency: %d is not between 1 and 500", n)
	}
	return w, n, nil
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

// configuration loads the configuration and parses the pools' backend sections.
// Every unknown key, of the file and of its sections, is reported at once, each with
// the file's name.
func (s *settings) configuration(c *cli.Context) error {
	path := c.String("config")
	inFile := func(err error) error {
		if path == "" {
			return usageError{err}
		}
		return usagef("%s: %v", path, err)
	}
	cfg, err := loadConfig(c, s.dryRun)
	unknown := &reconcile.UnknownKeysError{}
	switch {
	case errors.As(err, &unknown) && cfg != nil:
	case err != nil:
		return err
	}
	s.cfg = cfg
	s.log.Debug().Str("config", s.cfg.String()).Msg("configuration")
	s.sections, err = reconcile.ParseSections(s.cfg, s.kinds, s.dryRun || len(unknown.Keys) > 0)
	more := &reconcile.UnknownKeysError{}
	switch {
	case errors.As(err, &more):
		unknown.Keys = append(unknown.Keys, more.Keys...)
	case err != nil && len(unknown.Keys) == 0:
		return inFile(err)
	}
	if len(unknown.Keys) > 0 {
		unknown.File = path
		return usageError{unknown}
	}
	return nil
}

// loadConfig reads the file, merges the command line into it and validates the result;
// with unknown keys, it returns what it read and them (*reconcile.UnknownKeysError).
// Without a file, a dry run (and status) looks at a default pool.
func loadConfig(c *cli.Context, dryRun bool) (*reconcile.Config, error) {
	var data []byte
	path := c.String("config")
	if path != "" {
		var err error
		if data, err = readConfig(path); err != nil {
			return nil, usagef("--config: %v", err)
		}
	}
	cfg, err := reconcile.Load(data)
	unknown := &reconcile.UnknownKeysError{}
	switch {
	case errors.As(err, &unknown):
		// Looked for in the sections too, then reported; what depends on the keys
		// meant (Validate) is not judged without them.
	case err != nil && path != "":
		return nil, usagef("%s: %v", path, err)
	case err != nil:
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
		if !dryRun {
			return nil, usagef("--config: no pools: a real run needs a configuration file; try --dry-run to see what would happen")
		}
		cfg.Pools = []reconcile.Pool{reconcile.DefaultPool()}
	}
	if len(unknown.Keys) > 0 {
		return cfg, unknown
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
