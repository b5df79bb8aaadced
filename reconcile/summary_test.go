package reconcile_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// The table a person sees after a pass at a terminal: a row per pool, then what could
// not be seen, the warnings, GitHub's cost, and a dry run said as one.
func TestSummary_TableForAPerson(t *testing.T) {
	t.Parallel()
	sum := reconcile.Summary{DryRun: true,
		Plan:        reconcile.Plan{Pools: []reconcile.PoolStatus{{Pool: "arm64", Queued: 3, Booting: 1, Idle: 2, Warm: 1, WarmTarget: 2, Busy: 4, Create: 2, Delete: 1}}},
		Observed:    reconcile.Observed{Blind: reconcile.Blind{Jobs: map[reconcile.Scope]bool{app: true}, Pools: map[string]bool{"x64": true}}},
		Unreachable: []string{"octo-org/gone"},
		Warnings:    []string{"pool arm64: no capacity (stockout)"},
		API:         reconcile.APIStats{Requests: 12, Points: 17, Primary: 3, NotModified: 9, Polled: 1, Skipped: 0, Remaining: 4990, Reset: time.Date(2026, 12, 7, 15, 4, 0, 0, time.Local)},
	}
	var buf bytes.Buffer
	reconcile.WriteTable(&buf, sum)
	out := buf.String()
	for _, want := range []string{
		"POOL   QUEUED  UNSERVABLE  BOOTING  IDLE  WARM  BUSY  TO CREATE  TO DELETE",
		"arm64  3       0           1        2     1/2   4     2          1",
		"incomplete: the queued jobs of 1 scope and the runners of 1 pool could not be seen",
		"unreachable: octo-org/gone (GitHub answered 404 or 403",
		"warning: pool arm64: no capacity (stockout)",
		"github: 12 requests, 17 points, 3 counted against the primary limit, 9 not modified; 1 repository polled, 0 left for later; 4990 remaining until 15:04",
		"dry run: nothing was changed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// After a real pass, what it did: the two creates made, one of two deletes (the
	// other failed).
	sum.DryRun = false
	sum.Plan.Pools[0].Delete = 2
	sum.Done = map[reconcile.Action]int{{Kind: reconcile.ActionCreate, Pool: "arm64", Reason: reconcile.ReasonDemand}: 2,
		{Kind: reconcile.ActionDelete, Pool: "arm64", Reason: reconcile.ReasonFinished}: 1}
	buf.Reset()
	reconcile.WriteTable(&buf, sum)
	for _, want := range []string{"POOL   QUEUED  UNSERVABLE  BOOTING  IDLE  WARM  BUSY  CREATED  DELETED", "arm64  3       0           1        2     1/2   4     2        1 of 2"} {
		if !strings.Contains(buf.String(), want) || strings.Contains(buf.String(), "dry run") {
			t.Errorf("after a real pass, the table lacks %q:\n%s", want, buf.String())
		}
	}
}
