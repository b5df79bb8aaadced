package plan

import (
	"testing"
	"time"
)

// One counting rule for max_runners wherever it is asked: a finished runner, or one a
// deletion removed, holds no slot; a runner already counted holds its own.
func TestRoom(t *testing.T) {
	t.Parallel()
	cfg := testConfig() // arm64: max_runners 3
	active := runner("arm64", repoA, 1, time.Minute)
	deleted := runner("arm64", repoA, 2, time.Hour)
	r := NewRoom(cfg, []Runner{active, deleted, finished(runner("arm64", repoA, 3, time.Hour)), runner("x64", repoA, 4, time.Minute)},
		func(r Runner) bool { return r.Name == deleted.Name })
	if got := r.Free("arm64"); got != 2 {
		t.Fatalf("free(arm64) = %d, want 2: one active runner of 3", got)
	}
	if !r.Claim("arm64", active.Name) || r.Free("arm64") != 2 {
		t.Errorf("claiming a counted runner's slot took another: free %d, want 2", r.Free("arm64"))
	}
	for i, want := range []bool{true, true, false} {
		if got := r.Claim("arm64", RunnerName("gha", "arm64", int64(10+i), 0)); got != want {
			t.Errorf("claim %d = %v, want %v", i, got, want)
		}
	}
	if r.Free("gpu") != 0 || r.Claim("gpu", "gha-gpu-1") {
		t.Error("a pool no longer configured has room")
	}
}
