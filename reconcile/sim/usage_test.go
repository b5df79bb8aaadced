package sim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// A warm pool's waste (its runners' booting and idle time, against all their time), as
// the reconciler's passes account it, matches the world's own record within 5 %: two
// simulated hours of arrivals on a pool that keeps runners warm (seed 3: one in three
// seeds has a warm pool).
func TestUsage_AWarmPoolsWasteMatchesTheWorldsRecord(t *testing.T) {
	t.Parallel()
	w := New(3, DefaultParams())
	w.Calm()
	w.Run(context.Background(), 240) // passes 30 s apart: two hours
	record, accounted := w.Spent("arm64")
	waste := func(m map[reconcile.State]time.Duration) float64 {
		all := m[reconcile.StateBooting] + m[reconcile.StateIdle] + m[reconcile.StateBusy]
		return float64(m[reconcile.StateBooting]+m[reconcile.StateIdle]) / float64(all)
	}
	if w.Cfg.Pools[0].MinIdle == 0 {
		t.Fatal("seed 3 has no warm pool")
	}
	got, want := waste(accounted), waste(record)
	if math.Abs(got-want) > 0.05*want {
		t.Errorf("waste share accounted %.3f, the world's record %.3f: more than 5 %% apart\naccounted %v\nrecord %v", got, want, accounted, record)
	}
	t.Logf("waste share of the warm pool: accounted %.1f %%, the world's record %.1f %% (accounted %v; record %v)", 100*got, 100*want, accounted, record)
}
