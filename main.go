// Command reconcile runs ephemeral, JIT-configured self-hosted GitHub Actions runners
// without webhooks: each pass lists queued jobs through the GitHub REST API, compares
// them with the runners it owns, creates what is missing and removes what is finished.
//
// This file is wiring only: the platforms pools may run on, the GitHub client, the
// store of --cache, and the build's version. The command itself (flags, checks, setup,
// reports) is reconcile/command, which imports no adapter.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/ghpoll"
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
	return command.Run(ctx, args, stdout, stderr, wiring())
}

func wiring() command.Wiring {
	return command.Wiring{Version: version, Commit: commit, Platforms: platforms, GitHub: githubClient, Store: cacheStore, Explain: ghpoll.Explain}
}

// githubClient is ghpoll's client of GitHub's REST API.
func githubClient(o command.GitHubOptions) (command.GitHubClient, error) {
	gh, err := ghpoll.NewWithOptions(o.HTTP, o.APIURL, ghpoll.Options{Concurrency: o.Concurrency,
		WritesPerMinute: o.WritesPerMinute, WritesPerHour: o.WritesPerHour, PointsPerMinute: o.PointsPerMinute})
	if err != nil {
		return nil, err
	}
	gh.RunnerGroupID = o.RunnerGroupID
	return gh, nil
}

// cacheStore reads --cache: a file, or configmap:NAMESPACE/NAME (a CronJob's passes
// share it through the apiserver).
func cacheStore(spec string) (func(zerolog.Logger) (reconcile.Store, error), error) {
	ref, configMap := strings.CutPrefix(spec, "configmap:")
	switch ns, name, ok := k8s.ConfigMapRef(ref); {
	case spec == "":
		return nil, nil
	case !configMap:
		return func(zerolog.Logger) (reconcile.Store, error) { return reconcile.FileStore(spec), nil }, nil
	case !ok:
		return nil, fmt.Errorf("%q is not configmap:NAMESPACE/NAME", spec)
	default:
		return func(log zerolog.Logger) (reconcile.Store, error) {
			kube, err := k8s.NewClientset(log)
			if err != nil {
				return nil, err
			}
			return k8s.ConfigMapStore{Client: kube, Namespace: ns, Name: name}, nil
		}, nil
	}
}
