package metrics_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/metrics"
)

// Two --once processes credit runner time; what `status --usage` reads from their
// notes is each pool's time by repository and state, the jobs served, each pool's
// total and waste share, and the total of both pools, counted since the first process.
func TestUsage_ReadFromTheCountersTheProcessesKept(t *testing.T) {
	t.Parallel()
	app, api := reconcile.ParseScope("octo-org/app"), reconcile.ParseScope("octo-org/api")
	k := func(pool string, repo reconcile.Scope, st reconcile.State) reconcile.UsageKey {
		return reconcile.UsageKey{Pool: pool, Repo: repo, State: st}
	}
	passes := []reconcile.Usage{
		{Seconds: map[reconcile.UsageKey]float64{k("arm64", app, reconcile.StateBooting): 60, k("arm64", app, reconcile.StateIdle): 1740,
			k("x64", api, reconcile.StateBusy): 3600}, Served: map[reconcile.UsageKey]int{{Pool: "x64", Repo: api}: 2}},
		{Seconds: map[reconcile.UsageKey]float64{k("arm64", app, reconcile.StateBusy): 1800, k("arm64", api, reconcile.StateBusy): 7200},
			Served: map[reconcile.UsageKey]int{{Pool: "arm64", Repo: app}: 1, {Pool: "arm64", Repo: api}: 3}},
	}
	var kept []byte
	began := time.Now().Add(-time.Second)
	for i, u := range passes {
		m := metrics.New()
		if kept != nil {
			if err := m.RestoreNotes(kept); err != nil {
				t.Fatalf("process %d: %v", i, err)
			}
		}
		m.Record(reconcile.Summary{Usage: u}, false)
		var err error
		if kept, err = m.NotesData(); err != nil {
			t.Fatal(err)
		}
	}
	u, err := metrics.ReadUsage(kept)
	if err != nil {
		t.Fatal(err)
	}
	if u.Since.Before(began.Truncate(time.Second)) || u.Since.After(time.Now()) {
		t.Errorf("since %v: want when the first process began (%v)", u.Since, began)
	}
	type row struct {
		pool, repo          string
		booting, idle, busy float64
		jobs                int
		total               bool
	}
	want := []row{
		{"arm64", "octo-org/api", 0, 0, 7200, 3, false}, // most runner time first
		{"arm64", "octo-org/app", 60, 1740, 1800, 1, false},
		{"arm64", "", 60, 1740, 9000, 4, true},
		{"x64", "octo-org/api", 0, 0, 3600, 2, false},
		{"x64", "", 0, 0, 3600, 2, true},
		{"", "", 60, 1740, 12600, 6, true},
	}
	var got []row
	for _, r := range u.Rows {
		got = append(got, row{r.Pool, r.Repo, r.Booting, r.Idle, r.Busy, r.Jobs, r.Total})
	}
	if len(got) != len(want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if w := u.Rows[1].Waste(); w != 0.5 {
		t.Errorf("arm64 octo-org/app waste %v, want (60+1740)/3600 = 0.5", w)
	}

	var table bytes.Buffer
	if err := metrics.WriteUsage(&table, u, "/var/cache/reconcile.json", false, u.Since.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"since " + u.Since.UTC().Format("2006-01-02 15:04 UTC") + " (1h30m0s)",
		"arm64      octo-org/app  1.00          0.50  0.48  0.02     50 %   1",
		"arm64      all           3.00          2.50  0.48  0.02     17 %   4",
		"all pools                4.00          3.50  0.48  0.02     12 %   6"} {
		if !strings.Contains(table.String(), line) {
			t.Errorf("the table lacks %q:\n%s", line, table.String())
		}
	}
	var back metrics.Usage
	var js bytes.Buffer
	if err := metrics.WriteUsage(&js, u, "x", true, time.Now()); err != nil || json.Unmarshal(js.Bytes(), &back) != nil || len(back.Rows) != 6 {
		t.Errorf("JSON (%v):\n%s", err, js.String())
	}
}

// A cache with no counters yet says so; a cache of the first format (the series
// alone) is read, its start unknown.
func TestUsage_EmptyAndFirstFormatCaches(t *testing.T) {
	t.Parallel()
	u, err := metrics.ReadUsage(nil)
	var out bytes.Buffer
	if err != nil || metrics.WriteUsage(&out, u, "c.json", false, time.Now()) != nil || !strings.HasPrefix(out.String(), "no runner time counted in c.json yet") {
		t.Errorf("no counters: %v, %q", err, out.String())
	}
	old := `[{"family":"reconcile_runner_seconds_total","type":"counter","labels":[["pool","arm64"],["repo","o/r"],["state","busy"]],"value":7200}]`
	u, err = metrics.ReadUsage(json.RawMessage(old))
	if err != nil || !u.Since.IsZero() || len(u.Rows) != 2 || u.Rows[0].Busy != 7200 {
		t.Errorf("first format: %v, %+v", err, u)
	}
	m := metrics.New()
	if err := m.RestoreNotes(json.RawMessage(old)); err != nil {
		t.Fatal(err)
	}
	if data, _ := m.NotesData(); !strings.Contains(string(data), `"value":7200`) || strings.Contains(string(data), `"since"`) {
		t.Errorf("a first-format cache carried on: %s", data)
	}
}
