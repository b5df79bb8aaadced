package metrics

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// What the runners cost, from the counters the cache keeps (`reconcile status
// --usage`): reconcile_runner_seconds_total and reconcile_jobs_served_total as the
// last pass that saved the cache left them, by pool and repository. Nothing is asked
// of GitHub or the platforms.

// UsageRow is the runner time of one pool for one repository ("" for runners made for
// no repository's job, such as an organisation pool's warm runners), or a total.
type UsageRow struct {
	Pool    string  `json:"pool"` // "" in the total of every pool
	Repo    string  `json:"repo"` // "" in a pool's total, and in the total
	Booting float64 `json:"booting_seconds"`
	Idle    float64 `json:"idle_seconds"`
	Busy    float64 `json:"busy_seconds"`
	Jobs    int     `json:"jobs_served"`
	Total   bool    `json:"total,omitempty"`
}

// Seconds is the row's runner time in every state.
func (r UsageRow) Seconds() float64 { return r.Booting + r.Idle + r.Busy }

// Waste is the share of the runner time spent booting or idle: paid for, running no
// job. 0 without runner time.
func (r UsageRow) Waste() float64 {
	if r.Seconds() == 0 {
		return 0
	}
	return (r.Booting + r.Idle) / r.Seconds()
}

// Usage is what the counters hold: a row per pool and repository, most runner time
// first within a pool, each pool followed by its total, then, with more than one pool,
// the total of all.
type Usage struct {
	Since time.Time  `json:"since,omitzero"` // when the counting began (zero: not known)
	Rows  []UsageRow `json:"rows"`
}

// ReadUsage reads the usage from the counters' share of the notes (NotesPart); nil
// data (no share yet) is no usage.
func ReadUsage(data json.RawMessage) (Usage, error) {
	var u Usage
	if data == nil {
		return u, nil
	}
	in, err := readCarried(data)
	if err != nil {
		return u, fmt.Errorf("the cache's counters: %w", err)
	}
	if in.Since > 0 {
		u.Since = time.Unix(in.Since, 0)
	}
	rows := map[[2]string]*UsageRow{}
	row := func(labels [][2]string) *UsageRow {
		var k [2]string
		for _, l := range labels {
			switch l[0] {
			case "pool":
				k[0] = l[1]
			case "repo":
				k[1] = l[1]
			}
		}
		if rows[k] == nil {
			rows[k] = &UsageRow{Pool: k[0], Repo: k[1]}
		}
		return rows[k]
	}
	for _, s := range in.Series {
		switch s.Family {
		case "reconcile_runner_seconds_total":
			r := row(s.Labels)
			switch label(s.Labels, "state") {
			case "booting":
				r.Booting += s.Value
			case "idle":
				r.Idle += s.Value
			case "busy":
				r.Busy += s.Value
			}
		case "reconcile_jobs_served_total":
			row(s.Labels).Jobs += int(s.Value)
		}
	}
	u.Rows = withTotals(rows)
	return u, nil
}

func label(labels [][2]string, name string) string {
	for _, l := range labels {
		if l[0] == name {
			return l[1]
		}
	}
	return ""
}

// withTotals orders the rows by pool, most runner time first within a pool, and adds
// each pool's total and the total of all.
func withTotals(rows map[[2]string]*UsageRow) []UsageRow {
	var all []UsageRow
	for _, r := range rows {
		all = append(all, *r)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b UsageRow) int {
		return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(b.Seconds(), a.Seconds()), cmp.Compare(a.Repo, b.Repo))
	})
	var out []UsageRow
	total, pools := UsageRow{Total: true}, 0
	for i := 0; i < len(all); pools++ {
		pool := UsageRow{Pool: all[i].Pool, Total: true}
		for ; i < len(all) && all[i].Pool == pool.Pool; i++ {
			out = append(out, all[i])
			pool.add(all[i])
		}
		out = append(out, pool)
		total.add(pool)
	}
	if pools == 1 {
		return out
	}
	return append(out, total)
}

func (r *UsageRow) add(o UsageRow) {
	r.Booting, r.Idle, r.Busy, r.Jobs = r.Booting+o.Booting, r.Idle+o.Idle, r.Busy+o.Busy, r.Jobs+o.Jobs
}

// WriteUsage writes u as a table (hours), or as JSON (seconds) when json is set;
// where names the cache the counters were read from.
func WriteUsage(w io.Writer, u Usage, where string, asJSON bool, now time.Time) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(u)
	}
	switch {
	case len(u.Rows) == 0:
		fmt.Fprintf(w, "no runner time counted in %s yet: passes count it when they run with --cache %s\n", where, where)
		return nil
	case u.Since.IsZero():
		fmt.Fprintf(w, "runner time counted in %s, since a time it does not record\n\n", where)
	default:
		fmt.Fprintf(w, "runner time counted in %s since %s (%s)\n\n", where, u.Since.UTC().Format("2006-01-02 15:04 MST"),
			now.Sub(u.Since).Round(time.Minute))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tREPOSITORY\tRUNNER-HOURS\tBUSY\tIDLE\tBOOTING\tWASTE\tJOBS")
	for _, r := range u.Rows {
		pool, repo := r.Pool, r.Repo
		switch {
		case r.Total && pool == "":
			pool, repo = "all pools", ""
		case r.Total:
			repo = "all"
		case repo == "":
			repo = "(no job's)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f %%\t%d\n", pool, repo, r.Seconds()/3600, r.Busy/3600, r.Idle/3600,
			r.Booting/3600, 100*r.Waste(), r.Jobs)
	}
	return tw.Flush()
}
