package reconcile_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// What a pass cannot register (here the hour's registrations run out after two) is
// the end of the fair share, not one repository's whole turn: of web's one job and
// app's six older ones, the two registered are app's oldest and web's.
func TestPass_WhatTheHoursRegistrationsLeaveIsTheEndOfTheShare(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Config.GitHub.Repos = []string{"octo-org/app", "octo-org/web"}
	w.rc.Config.Pools[0].MaxRunners = 20
	w.rc.Concurrency = 1
	var app []reconcile.Job
	for range 6 {
		app = append(app, w.queue(time.Hour, arm64...))
	}
	w.nextJob++
	web := reconcile.Job{ID: w.nextJob, RunID: w.nextJob * 10, Repo: reconcile.Scope{Owner: "octo-org", Repo: "web"}, Name: "build", Labels: arm64, CreatedAt: w.Now().Add(-time.Minute)}
	w.gh.Queue(web)
	w.rc.GitHub = &pacedGitHub{GitHub: w.gh, budget: 2}
	ctx := zerolog.New(zerolog.SyncWriter(&w.logs)).WithContext(context.Background())
	if _, err := w.rc.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce() = %v\n%s", err, w.logs.String())
	}
	var made []string
	for _, r := range w.gh.Regs() {
		made = append(made, r.Name)
	}
	slices.Sort(made)
	want := []string{reconcile.RunnerName("gha", "arm64", app[0].ID, 0), reconcile.RunnerName("gha", "arm64", web.ID, 0)}
	slices.Sort(want)
	if !slices.Equal(made, want) {
		t.Errorf("registered %v, want app's oldest and web's job: %v", made, want)
	}
}
