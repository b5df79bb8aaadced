package command

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/urfave/cli/v2"
)

// Flags without traps. A flag of a pass may come before the subcommand or after it
// (`reconcile --config F status` is `reconcile status --config F`); a subcommand
// refuses, by name, a flag that does nothing for it; and a parser's error says, with
// the flag's two dashes, what was wrong and what was meant.

// statusSkips are the flags of a pass that do nothing for status: hidden from its
// help, and refused when given.
var statusSkips = []string{"once", "dry-run", "interval", "metrics-addr", "metrics-file", "pushgateway-url",
	"writes-per-minute", "writes-per-hour", "backend-concurrency", "capacity-backoff", "capacity-backoff-max"}

// flagsWithout returns the flags of a pass with those named hidden.
func flagsWithout(skips []string) []cli.Flag {
	fs := Flags()
	for _, f := range fs {
		if slices.Contains(skips, f.Names()[0]) {
			hide(f)
		}
	}
	return fs
}

func hide(f cli.Flag) {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.Hidden = true
	case *cli.BoolFlag:
		f.Hidden = true
	case *cli.IntFlag:
		f.Hidden = true
	case *cli.DurationFlag:
		f.Hidden = true
	case *cli.StringSliceFlag:
		f.Hidden = true
	}
}

// subcommand completes cmd: its action takes no arguments and inherits the flags
// given before it (skips refused), and its parser's errors say what was meant.
func subcommand(cmd *cli.Command, skips []string, action cli.ActionFunc) *cli.Command {
	cmd.Action = noArgs(func(c *cli.Context) error {
		if err := inherit(c, skips); err != nil {
			return err
		}
		return action(c)
	})
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error { return flagError(c.App, cmd, err) }
	return cmd
}

// inherit gives the subcommand the flags given before it on the command line; one
// given after it wins. A flag in skips, given before or after, is refused: it would
// do nothing. Flags set by the environment apply to every command as they are.
func inherit(c *cli.Context, skips []string) error {
	root := c.Lineage()[1]
	for _, f := range c.App.Flags {
		name := f.Names()[0]
		if slices.Contains(skips, name) && (root.IsSet(name) || c.IsSet(name)) && !fromEnv(f) {
			return usagef("--%s does not apply to %s", name, c.Command.Name)
		}
		if !root.IsSet(name) || c.IsSet(name) || fromEnv(f) {
			continue
		}
		values := []string{fmt.Sprint(root.Value(name))}
		if _, slice := f.(*cli.StringSliceFlag); slice {
			values = root.StringSlice(name)
		}
		for _, v := range values {
			if err := c.Set(name, v); err != nil {
				return usagef("--%s: %v", name, err)
			}
		}
	}
	return nil
}

// fromEnv reports whether one of the flag's environment variables is set.
func fromEnv(f cli.Flag) bool {
	ef, ok := f.(interface{ GetEnvVars() []string })
	if !ok {
		return false
	}
	return slices.ContainsFunc(ef.GetEnvVars(), func(v string) bool { _, set := os.LookupEnv(v); return set })
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): `)
	fromEnvValue  = regexp.MustCompile(`^could not parse "(.*)" as \S+ value from (?:env var|environment variable) "([^"]+)" for flag ([^:]+): `)
	needsArgument = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
)

// flagError rewrites a parser's error about cmd's flags (the App's when cmd is nil)
// in the words a user needs: the flag with its two dashes, the kind of value it
// takes, and for an unknown flag the nearest known one.
func flagError(app *cli.App, cmd *cli.Command, err error) error {
	flags := app.Flags
	if cmd != nil {
		flags = cmd.Flags
	}
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return unknownFlag(app, flags, m[1])
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return usagef("--%s: %q is not %s", m[2], m[1], valueKind(flags, m[2]))
	}
	if m := fromEnvValue.FindStringSubmatch(msg); m != nil {
		return usagef("%s (--%s): %q is not %s", m[2], m[3], m[1], valueKind(flags, m[3]))
	}
	if m := needsArgument.FindStringSubmatch(msg); m != nil {
		if kind := valueKind(flags, m[1]); kind != "a valid value" {
			return usagef("--%s needs a value: %s", m[1], kind)
		}
		return usagef("--%s needs a value", m[1])
	}
	return usageError{err}
}

// unknownFlag names a flag no command has, with the nearest one, or says which
// command takes it.
func unknownFlag(app *cli.App, flags []cli.Flag, name string) error {
	for _, sub := range app.Commands {
		for _, f := range sub.Flags {
			if slices.Contains(f.Names(), name) && !slices.ContainsFunc(flags, func(g cli.Flag) bool { return slices.Contains(g.Names(), name) }) {
				return usagef("--%s is a flag of %s: reconcile %s --%s", name, sub.Name, sub.Name, name)
			}
		}
	}
	var names []string
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		names = append(names, f.Names()...)
	}
	flag := strings.SplitN(name, "=", 2)[0]
	if near := reconcile.Nearest(flag, names); near != "" {
		return usagef("unknown flag --%s: did you mean --%s?", flag, near)
	}
	return usagef("unknown flag --%s (reconcile help lists the flags)", flag)
}

// valueKind says what a flag takes.
func valueKind(flags []cli.Flag, name string) string {
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.DurationFlag:
			return "a duration such as 30s, 5m or 1h30m"
		case *cli.IntFlag:
			return "a whole number"
		case *cli.BoolFlag:
			return "true or false"
		}
	}
	return "a valid value"
}
