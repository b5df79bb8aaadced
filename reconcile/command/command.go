// Package command is the reconcile command: its flags and environment, the checks made
// before anything is called (exit 2), the setup a pass and status share, and what is
// said after a pass. Main wires it (Wiring): the table of platforms, the GitHub client,
// the store of --cache, and the build's version. It imports no adapter.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // the pass failed, wholly or partly
	ExitUsage  = 2 // bad flags, environment or configuration; nothing was called
)

// usageError is a mistake in flags, environment or configuration: exit 2, one line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Wiring is what main gives the command: the adapters, and what was built.
type Wiring struct {
	// Version and Commit say what was built.
	Version, Commit string
	// Platforms returns the platforms pools may run on (reconcile.BackendKind), with
	// the command's logger for their clients.
	Platforms func(log zerolog.Logger) []reconcile.BackendKind
	// GitHub makes the GitHub client.
	GitHub func(GitHubOptions) (GitHubClient, error)
	// Store reads --cache and calls nothing (an error is a usage error); it returns
	// how to open the store (nil, nil: no --cache).
	Store func(spec string) (func(log zerolog.Logger) (reconcile.Store, error), error)
	// Explain says what one of a pass's errors means and what to check, in one line.
	Explain func(err error, apiURL string) string
}

// GitHubClient is the GitHub port, with its part of the notes (its request cache).
type GitHubClient interface {
	reconcile.GitHub
	KeepIn(*reconcile.Notes) error
	// SharePoints spends GitHub's points a minute with the processes that share the
	// record (the cache's); an error leaves the client spending them alone.
	SharePoints(context.Context, reconcile.Shared) error
}

// GitHubOptions are what the GitHub client is made with.
type GitHubOptions struct {
	HTTP                                        *http.Client
	APIURL                                      string
	Concurrency, WritesPerMinute, WritesPerHour int
	PointsPerMinute                             int
	RunnerGroupID                               int64
}

// Run is the command without the process: it returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, w Wiring) int {
	app := newApp(stdout, stderr, w)
	err := app.RunContext(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		// One line, whatever the message: a parser's error may span several.
		fmt.Fprintf(stderr, "reconcile: %s\n", strings.Join(strings.Fields(ue.err.Error()), " "))
		return ExitUsage
	case errors.Is(err, errPassFailed):
		return ExitFailed
	default:
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return ExitFailed
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

func newApp(stdout, stderr io.Writer, w Wiring) *cli.App {
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
		Version:         w.Version + " (commit " + w.Commit + ", " + runtime.Version() + ")",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: false, // `reconcile help` and `reconcile help status` work
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return flagError(c.App, nil, err)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // Run maps errors to exit codes
		Flags:          Flags(),
		Commands:       []*cli.Command{statusCommand(stdout, stderr, w), downCommand(stdout, stderr, w), upCommand(stdout, w), versionCommand(stdout, w)},
		Action:         noArgs(func(c *cli.Context) error { return serve(c, stdout, stderr, w) }),
	}
}

// noArgs refuses arguments (a command takes flags only), then runs action.
func noArgs(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("unexpected argument %q", c.Args().First())
		}
		return action(c)
	}
}

func statusCommand(stdout, stderr io.Writer, w Wiring) *cli.Command {
	cmd := &cli.Command{
		Name:  "status",
		Usage: "show the runners this installation owns and the queued jobs, changing nothing",
		Description: "Observes as a pass does (same configuration, flags and credentials) and plans as a dry\n" +
			"run does: it makes no JIT configuration, creates, deletes and saves nothing. One table per\n" +
			"pool (name, state, age, the job it was made for, what the next pass does), then the queued\n" +
			"jobs with the pool that serves each, or why none will. Exit 1 if part of it could not be\n" +
			"seen; what could be is shown all the same.\n\n" +
			"With --usage, it shows instead what the runners cost: runner-hours by pool and repository\n" +
			"(busy, idle, booting), the waste share and the jobs served, as the counters kept in --cache\n" +
			"hold them. It reads the cache only: no configuration, credentials or calls are needed.",
		Flags: append(flagsWithout(statusSkips), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: reconcile.FormatTable,
			Usage: "table, wide or json", EnvVars: []string{"RECONCILE_OUTPUT"}},
			&cli.BoolFlag{Name: "usage", Usage: "show the runner time counted in --cache, by pool and repository, and call nothing"}),
	}
	return subcommand(cmd, statusSkips, func(c *cli.Context) error { return status(c, stdout, stderr, w) })
}

func versionCommand(stdout io.Writer, w Wiring) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit and the Go version",
		OnUsageError: func(*cli.Context, error, bool) error {
			return usagef("version takes no flags")
		},
		Action: func(*cli.Context) error {
			fmt.Fprintf(stdout, "reconcile %s (commit %s, %s)\n", w.Version, w.Commit, runtime.Version())
			return nil
		},
	}
}

// Flags are the flags of a pass, made anew for each command that takes them.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML configuration `FILE`", EnvVars: []string{"RECONCILE_CONFIG"}},
		&cli.BoolFlag{Name: "once", Usage: "run one pass and exit", EnvVars: []string{"RECONCILE_ONCE"}},
		&cli.BoolFlag{Name: "dry-run", Usage: "observe and plan, print every planned action, change nothing", EnvVars: []string{"RECONCILE_DRY_RUN"}},
		&cli.DurationFlag{Name: "interval", Value: 30 * time.Second, Usage: "time between passes without --once", EnvVars: []string{"RECONCILE_INTERVAL"}},
		&cli.StringSliceFlag{Name: "repo", Usage: "poll repository `OWNER/NAME` too (repeatable)", EnvVars: []string{"RECONCILE_REPOS"}},
		&cli.StringSliceFlag{Name: "org", Usage: "poll every repository of organisation `NAME` too (repeatable)", EnvVars: []string{"RECONCILE_ORGS"}},
		&cli.StringFlag{Name: "github-url", Usage: "GitHub REST API `URL`; overrides github.api_url", EnvVars: []string{"GITHUB_API_URL"}},
		&cli.DurationFlag{Name: "timeout", Value: 50 * time.Second, Usage: "a pass's deadline: below the schedule's interval", EnvVars: []string{"RECONCILE_TIMEOUT"}},
		&cli.StringFlag{Name: "cache", Usage: "keep what passes learn (GitHub ETags, backoff, ...) between runs in `FILE`, or configmap:NAMESPACE/NAME", EnvVars: []string{"RECONCILE_CACHE"}},
		&cli.IntFlag{Name: "points-per-minute", Value: reconcile.DefaultPointsPerMinute, Usage: "GitHub secondary-limit points a minute this tool may spend, reads (1) and writes (5) together, with the passes that share --cache (GitHub allows 900; 100 are left for others)", EnvVars: []string{"RECONCILE_POINTS_PER_MINUTE"}},
		&cli.DurationFlag{Name: "idle-poll-interval", Value: 5 * time.Minute, Usage: "look at every quiet repository at least this often", EnvVars: []string{"RECONCILE_IDLE_POLL_INTERVAL"}},
		&cli.IntFlag{Name: "primary-reserve", Value: 500, Usage: "below this many remaining primary requests, poll only busy repositories and those whose runs just ended", EnvVars: []string{"RECONCILE_PRIMARY_RESERVE"}},
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "GitHub requests under way at once (at most 99)", EnvVars: []string{"RECONCILE_CONCURRENCY"}},
		&cli.IntFlag{Name: "writes-per-minute", Usage: "GitHub writes (runner registrations and removals) a minute at most, evenly spaced (default: as many as the points allow, --points-per-minute / 5; 75 for an hour after GitHub's secondary limit answered one)", EnvVars: []string{"RECONCILE_WRITES_PER_MINUTE"}},
		&cli.IntFlag{Name: "writes-per-hour", Value: reconcile.DefaultWritesPerHour, Usage: "runner registrations in any hour (GitHub documents 500 content-creating requests an hour)", EnvVars: []string{"RECONCILE_WRITES_PER_HOUR"}},
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
