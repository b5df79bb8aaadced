package command

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/urfave/cli/v2"
)

// downSkips are the flags of a pass that do nothing for down.
var downSkips = []string{"once", "metrics-addr", "metrics-file", "pushgateway-url", "backend-concurrency",
	"capacity-backoff", "capacity-backoff-max", "idle-poll-interval", "primary-reserve"}

// downGrace is how long down goes on after the wait while something is left: GitHub
// keeps a removed busy runner's registration busy until it gives up on its job.
const downGrace = 10 * time.Minute

func downCommand(stdout, stderr io.Writer, w Wiring) *cli.Command {
	cmd := &cli.Command{
		Name:  "down",
		Usage: "remove every runner and registration this installation owns, waiting for busy runners' jobs",
		Description: "Takes the installation down: passes an --interval apart that create nothing, remove idle\n" +
			"and booting runners with their registrations, give busy runners --wait to finish their\n" +
			"jobs (then remove them: their jobs fail), and remove every registration of ours left\n" +
			"without a runner, until a pass sees nothing of this installation on GitHub or the\n" +
			"platforms. With the scheduler's --cache, it pauses the passes that share it: they create\n" +
			"nothing until `reconcile up`; without, stop the scheduler first (a runner its passes\n" +
			"make meanwhile is named). --dry-run shows what would go.\n" +
			"Exit 0 when nothing is left; 1 when something is, named.",
		Flags: append(flagsWithout(downSkips), &cli.DurationFlag{Name: "wait", Value: 30 * time.Minute,
			Usage: "how long busy runners get to finish their jobs before they are removed"}),
	}
	return subcommand(cmd, downSkips, func(c *cli.Context) error { return down(c, stdout, stderr, w) })
}

// down takes the installation down and says what it removed and what is left.
func down(c *cli.Context, stdout, stderr io.Writer, w Wiring) error {
	s, err := parseSettings(c, stderr, w)
	if err != nil {
		return err
	}
	if c.Duration("wait") < 0 {
		return usagef("--wait must not be negative")
	}
	st, m, ctx, stop, err := start(c, s, w)
	if err != nil {
		return err
	}
	defer stop()
	after := reporter{s: s, metrics: m, notes: st.notes, explain: w.Explain, stdout: io.Discard, ctx: context.WithoutCancel(ctx)}.after
	paused := false
	if s.openStore != nil && !s.dryRun {
		// Passes that share the cache (the timer's, the CronJob's) create nothing from
		// now on, until `reconcile up` lifts the pause.
		pause := reconcile.Pause{Since: time.Now().UTC(), By: "reconcile down"}
		pctx, cancel := context.WithTimeout(ctx, s.backendTime) // a store that does not answer stops down here
		err := reconcile.SetPause(pctx, st.notes.Shared(reconcile.PauseRecord), pause)
		cancel()
		if err != nil {
			return fmt.Errorf("pausing the passes that share --cache %s: %w", s.cache, err)
		}
		paused = true
	}
	s.log.Info().Dur("wait", c.Duration("wait")).Bool("dry_run", s.dryRun).Msg("taking the installation down")
	rep, err := st.rc.Down(ctx, reconcile.DownOptions{Wait: c.Duration("wait"), Grace: downGrace, Interval: s.interval,
		Timeout: s.timeout, After: after})
	WriteDown(stdout, rep, c.Duration("wait"), s.dryRun)
	switch {
	case paused:
		fmt.Fprintf(stdout, "passes that share --cache %s create nothing until `reconcile up --cache %s`\n", s.cache, s.cache)
	case !s.dryRun:
		fmt.Fprintln(stdout, "without --cache, passes a scheduler runs are not paused: stop the timer or the CronJob, or give down their --cache")
	}
	switch {
	case s.dryRun && err != nil, !s.dryRun && !rep.Done():
		return errPassFailed
	}
	return nil
}

// WriteDown says what down removed, or would remove, and what is left.
func WriteDown(w io.Writer, rep reconcile.DownReport, wait time.Duration, dryRun bool) {
	if dryRun {
		busy := 0
		for _, st := range rep.Would.States {
			if st == reconcile.StateBusy {
				busy++
			}
		}
		fmt.Fprintf(w, "down --dry-run: would remove %d %s now, %d busy %s when its job ends or in %v, and %d %s without a runner; nothing was changed\n",
			len(rep.Would.Delete), plural(len(rep.Would.Delete), "runner", "runners"), busy, plural(busy, "runner", "runners"), wait,
			len(rep.Would.Deregister), plural(len(rep.Would.Deregister), "registration", "registrations"))
		return
	}
	removed := 0
	var by []string
	for _, pool := range slices.Sorted(maps.Keys(rep.Removed)) {
		removed += rep.Removed[pool]
		by = append(by, fmt.Sprintf("%s: %d", pool, rep.Removed[pool]))
	}
	fmt.Fprintf(w, "down: removed %d %s", removed, plural(removed, "runner", "runners"))
	if len(by) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintf(w, " and %d %s without a runner, in %d %s\n", rep.Deregistered, plural(rep.Deregistered, "registration", "registrations"),
		rep.Passes, plural(rep.Passes, "pass", "passes"))
	if len(rep.ForcedBusy) > 0 {
		fmt.Fprintf(w, "busy when the wait of %v ran out, removed with their jobs: %s\n", wait, strings.Join(rep.ForcedBusy, ", "))
	}
	if len(rep.MadeMeanwhile) > 0 {
		fmt.Fprintf(w, "made while down ran, by a pass of another process: %s; stop the scheduler (systemctl stop reconcile.timer; kubectl -n reconcile patch cronjob reconcile -p '{\"spec\":{\"suspend\":true}}') and run down again\n",
			strings.Join(rep.MadeMeanwhile, ", "))
	}
	switch {
	case rep.Done():
		fmt.Fprintln(w, "nothing of this installation is left on GitHub or the platforms")
	case rep.Unseen:
		fmt.Fprintf(w, "not everything could be seen (the last pass's errors say what); left as far as seen: %s\n", orNone(rep.Left))
	default:
		fmt.Fprintf(w, "left: %s\n", strings.Join(rep.Left, ", "))
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

func upCommand(stdout io.Writer, w Wiring) *cli.Command {
	cmd := &cli.Command{
		Name:  "up",
		Usage: "lift the pause `reconcile down` set: the passes that share --cache create runners again",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cache", Usage: "the passes' cache: a `FILE`, or configmap:NAMESPACE/NAME", EnvVars: []string{"RECONCILE_CACHE"}},
		},
	}
	cmd.Action = noArgs(func(c *cli.Context) error { return up(c, stdout, w) })
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error { return flagError(c.App, cmd, err) }
	return cmd
}

// up lifts the pause in the record the passes share beside --cache.
func up(c *cli.Context, stdout io.Writer, w Wiring) error {
	spec := c.String("cache")
	store, err := cacheOnly(spec, w, "up lifts the pause kept beside the passes' cache")
	if err != nil {
		return err
	}
	p, was, err := reconcile.LiftPause(c.Context, store.Shared(reconcile.PauseRecord))
	if err != nil {
		return fmt.Errorf("--cache %s: %w", spec, err)
	}
	if !was {
		fmt.Fprintf(stdout, "up: the passes that share --cache %s were not paused\n", spec)
		return nil
	}
	fmt.Fprintf(stdout, "up: lifted the pause %s set at %s; the passes that share --cache %s create runners again\n",
		p.By, p.Since.UTC().Format(time.RFC3339), spec)
	return nil
}
