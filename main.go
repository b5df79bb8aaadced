// Command reconcile runs ephemeral, JIT-configured self-hosted GitHub Actions runners
// without webhooks: each pass lists queued jobs through the GitHub REST API, compares
// them with the runners it owns, creates what is missing and removes what is finished.
//
// This file is wiring only: the platforms pools may run on, and the build's version.
// The command itself (flags, checks, setup, reports) is reconcile/command.
package main

import (
	"context"
	"io"
	"os"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/k8s"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/command"
)

// Set at build time: -ldflags "-X main.version=… -X main.commit=…". The only
// package-level variables, because the linker can set nothing else.
var (
	version = "dev"
	commit  = "unknown"
)

// platforms are the platforms a pool may run on, one line each: a pool's section
// (gce, kubernetes, docker) names its platform, whose package parses the section and
// builds the backend.
func platforms(log zerolog.Logger) []reconcile.BackendKind {
	return []reconcile.BackendKind{
		gce.Kind(),
		k8s.Kind(func() (kubernetes.Interface, error) { return k8s.NewClientset(log) }),
		docker.Kind(),
	}
}

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return command.Run(ctx, args, stdout, stderr, command.Build{Version: version, Commit: commit}, platforms)
}
