package metrics_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
)

// Three --once processes, each recording one pass and handing its counts to the next
// through the notes: the counters and the queue-wait histogram go on from where the
// last process left them, a series the last process never touched (x64's) included.
func TestCarry_CountersContinueAcrossProcesses(t *testing.T) {
	t.Parallel()
	created := func(pool string, n int) map[reconcile.Action]int {
		return map[reconcile.Action]int{{Kind: reconcile.ActionCreate, Pool: pool, Reason: reconcile.ReasonDemand}: n}
	}
	passes := []reconcile.Summary{
		{Done: created("arm64", 3), QueueWaits: []reconcile.QueueWait{{Pool: "arm64", Wait: 4 * time.Second}}},
		{Done: created("x64", 2)},
		{Done: created("arm64", 1), QueueWaits: []reconcile.QueueWait{{Pool: "arm64", Wait: 40 * time.Second}}},
	}
	var kept []byte
	var m *metrics.Metrics
	for i, s := range passes {
		m = metrics.New()
		if kept != nil {
			if err := m.RestoreNotes(kept); err != nil {
				t.Fatalf("process %d: RestoreNotes() = %v", i, err)
			}
		}
		m.Record(s, false)
		data, err := m.NotesData()
		if err != nil {
			t.Fatal(err)
		}
		kept = data
	}
	want := `
# HELP reconcile_job_queue_wait_seconds How long each job waited for a runner: from its created_at to the create of the runner made for it.
# TYPE reconcile_job_queue_wait_seconds histogram
` + histogram("arm64", 2, 44, map[string]int{"5": 1, "45": 2}) + `
# HELP reconcile_runners_created_total Runners created.
# TYPE reconcile_runners_created_total counter
reconcile_runners_created_total{pool="arm64"} 4
reconcile_runners_created_total{pool="x64"} 2
`
	if err := testutil.GatherAndCompare(m, strings.NewReader(want), "reconcile_job_queue_wait_seconds", "reconcile_runners_created_total"); err != nil {
		t.Error(err)
	}
	// What is written for node_exporter, and pushed, is the same.
	var buf bytes.Buffer
	mfs, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), `reconcile_runners_created_total{pool="arm64"} 4`) {
		t.Errorf("the textfile's families lack the carried count:\n%s", buf.String())
	}
}
