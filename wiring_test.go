package main

import (
	"context"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/command"
)

// The command's exit codes, under the names the tests use.
const (
	exitOK     = command.ExitOK
	exitFailed = command.ExitFailed
	exitUsage  = command.ExitUsage
)

// backendsFor parses the pools' sections and builds their backends with kinds, as the
// command does with its table.
func backendsFor(conf *reconcile.Config, kinds ...reconcile.BackendKind) (map[string]reconcile.Backend, error) {
	sections, err := reconcile.ParseSections(conf, kinds, false)
	if err != nil {
		return nil, err
	}
	return reconcile.BuildBackends(context.Background(), kinds, sections, reconcile.BackendEnv{Owner: conf.NamePrefix})
}
