package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// hungShared is a pause record whose store never answers: each update waits for its
// context to end.
type hungShared struct{}

func (hungShared) Update(ctx context.Context, _ func([]byte) []byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// failingShared is a pause record whose store refuses every update.
type failingShared struct{}

func (failingShared) Update(context.Context, func([]byte) []byte) error {
	return errors.New("configmaps \"reconcile-cache.pause\" is forbidden")
}

// The pause, read each pass: while set, a queued job gets no runner and the pass says
// why; once lifted, it gets one. A record that cannot be read, or whose store never
// answers, costs that read only (within the backend timeout): the pass creates as if
// not paused, with one warning, and asks GitHub for nothing more.
func TestPause_APausedPassCreatesNothingAndAnUnreadableRecordCostsOnlyItsRead(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Pause = &reconcile.LocalShared{}
	if err := reconcile.SetPause(t.Context(), w.rc.Pause, reconcile.Pause{Since: w.Now(), By: "reconcile down"}); err != nil {
		t.Fatal(err)
	}
	w.queue(0, arm64...)
	sum := w.mustPass(t)
	if len(w.backend.Runners()) != 0 || len(sum.Warnings) != 1 {
		t.Fatalf("paused: %d runners, warnings %v; want none, and one warning", len(w.backend.Runners()), sum.Warnings)
	}
	if _, lifted, err := reconcile.LiftPause(t.Context(), w.rc.Pause); err != nil || !lifted {
		t.Fatalf("LiftPause: %v, %v", lifted, err)
	}
	w.mustPass(t)
	if n := len(w.backend.Runners()); n != 1 {
		t.Fatalf("%d runners after the pause is lifted, want 1", n)
	}

	calls := map[string]int{}
	for _, shared := range []reconcile.Shared{nil, hungShared{}, failingShared{}} {
		w := newPassWorld(t)
		w.rc.BackendTimeout = 100 * time.Millisecond
		if shared != nil {
			w.rc.Pause = shared
		}
		w.queue(0, arm64...)
		start := time.Now()
		sum := w.mustPass(t)
		name := fmt.Sprintf("%T", shared)
		calls[name] = len(w.gh.Calls())
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: the pass took %v", name, took)
		}
		if want := min(1, len(calls)-1); len(w.backend.Runners()) != 1 || len(sum.Warnings) != want {
			t.Errorf("%s: %d runners, warnings %v; want the job's runner and %d warning", name, len(w.backend.Runners()), sum.Warnings, want)
		}
		if calls[name] != calls["<nil>"] {
			t.Errorf("%s: %d GitHub calls, %d without a pause record", name, calls[name], calls["<nil>"])
		}
	}
}
