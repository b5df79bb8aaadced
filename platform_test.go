package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/command"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// A fourth platform is one registration in the table and its package: the in-memory
// backend (reconciletest.Kind) serves a pool of the whole command, as GCE, Kubernetes
// and Docker do, and a section it does not know is refused by its name.
func TestPlatforms_AFourthIsOneRegistration(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	gh.AddRepo("octo-org/app", false, false)
	job := gh.QueueJob("octo-org/app", "self-hosted", "linux", "x64")
	t.Setenv("GITHUB_TOKEN", "test-token")
	backend := reconciletest.NewBackend(time.Now)
	withMemory := wiring()
	withMemory.Platforms = func(log zerolog.Logger) []reconcile.BackendKind {
		return append(platforms(log), reconciletest.Kind(backend)) // the one registration
	}
	config := func(section string) string {
		path := filepath.Join(t.TempDir(), "config.yaml")
		data := "github: {repos: [octo-org/app]}\npools:\n  - name: x64\n    labels: [self-hosted, linux, x64]\n    max_runners: 2\n    " + section + "\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var stdout, stderr bytes.Buffer
	args := []string{"reconcile", "--once", "--config", config("memory: {}"), "--github-url", gh.APIURL, "--log-format", "json"}
	if code := command.Run(context.Background(), args, &stdout, &stderr, withMemory); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	name := reconcile.RunnerName("gha", "x64", job, 0)
	if spec, ok := backend.Spec(name); !ok || spec.JITConfig.Reveal() == "" {
		t.Fatalf("runners %v, want %s with its JIT configuration", reconciletest.Names(backend.Runners()), name)
	}
	stderr.Reset()
	args[3] = config("memroy: {}")
	if code := command.Run(context.Background(), args, &stdout, &stderr, withMemory); code != exitUsage ||
		!bytes.Contains(stderr.Bytes(), []byte("pools[0].memroy: unknown key")) {
		t.Errorf("a section no platform has: exit %d, %q; want %d naming it", code, stderr.String(), exitUsage)
	}
}
