package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The formats WriteStatus writes.
const (
	FormatTable = "table" // a table per pool, then the queue: one screen for a small fleet
	FormatWide  = "wide"  // the same, with registration scopes, machines and job labels
	FormatJSON  = "json"
)

// WriteStatus writes st as format says; colour marks the states (for a terminal).
func WriteStatus(w io.Writer, st Status, cfg Config, format string, colour bool) error {
	if format == FormatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	wide := format == FormatWide
	if p := st.Paused; p != nil {
		fmt.Fprintf(w, "paused by %s since %s: passes create nothing until `reconcile up` with their --cache\n\n", p.By,
			p.Since.Local().Format(time.DateTime))
	}
	for _, e := range st.Errors {
		fmt.Fprintf(w, "not seen: %s\n", e)
	}
	if len(st.Errors) > 0 {
		fmt.Fprintln(w)
	}
	pools := map[string][]RunnerStatus{}
	var order []string
	for _, p := range cfg.Pools {
		order = append(order, p.Name)
	}
	for _, r := range st.Runners {
		if _, ok := pools[r.Pool]; !ok && cfg.Pool(r.Pool) == nil {
			order = append(order, r.Pool) // a pool no longer configured, or ghosts ("")
		}
		pools[r.Pool] = append(pools[r.Pool], r)
	}
	for _, b := range st.Backoff {
		next := "the next pass probes"
		if !b.NextProbe.IsZero() {
			next = "next probe at " + b.NextProbe.Local().Format(time.TimeOnly)
		}
		fmt.Fprintf(w, "pool %s in backoff: %s since %s, %s; its jobs wait for capacity\n  %s\n", b.Pool, describeClass(b.Reason),
			b.Since.Local().Format(time.TimeOnly), next, b.Message)
	}
	if len(st.Backoff) > 0 {
		fmt.Fprintln(w)
	}
	for _, name := range order {
		writePool(w, cfg, name, pools[name], wide, colour)
	}
	writeQueue(w, st.Queue, wide)
	return nil
}

func writePool(w io.Writer, cfg Config, name string, runners []RunnerStatus, wide, colour bool) {
	switch p := cfg.Pool(name); {
	case name == "":
		fmt.Fprintf(w, "registrations without a runner: %d\n", len(runners))
	case p == nil:
		fmt.Fprintf(w, "pool %s (no longer configured): %d runners\n", name, len(runners))
	default:
		fmt.Fprintf(w, "pool %s: %d runners of max %d\n", name, len(runners), p.MaxRunners)
	}
	if len(runners) == 0 {
		fmt.Fprintln(w)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// With colour, the header's STATE carries escapes as long as the states' do, so
	// that the columns line up (tabwriter counts them as width).
	head := "NAME\t" + paintAs("STATE", "01", colour) + "\tAGE\tJOB\tRUNS\tREPO\tNEXT"
	if wide {
		head += "\tSCOPE\tMACHINE"
	}
	fmt.Fprintln(tw, head)
	for _, r := range runners {
		job := "-"
		switch {
		case r.Warm:
			job = "warm"
		case r.JobID != 0:
			job = strconv.FormatInt(r.JobID, 10)
		}
		runs := "-"
		if r.RunsJob != 0 {
			runs = strconv.FormatInt(r.RunsJob, 10)
			if r.RunsRepo != r.Repo {
				runs += " (" + r.RunsRepo + ")"
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Name, paint(r.State, colour), Age(r.Age, r.State == StateGhost),
			job, runs, dash(r.Repo), dash(r.Next))
		if wide {
			line += fmt.Sprintf("\t%s\t%s", dash(r.Scope), dash(r.Location))
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func writeQueue(w io.Writer, queue []QueuedStatus, wide bool) {
	fmt.Fprintf(w, "queued jobs for self-hosted runners: %d\n", len(queue))
	if len(queue) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "JOB\tAGE\tREPO\tNAME\tPOOL\tRUNNER OR WHY NONE"
	if wide {
		head += "\tLABELS"
	}
	fmt.Fprintln(tw, head)
	for _, q := range queue {
		served := q.Runner
		switch {
		case q.NotServed != "":
			served = NotServedText[q.NotServed]
		case q.Waiting == WaitingCapacity:
			served = "waiting for capacity (the pool is in backoff)"
		case q.Waiting == WaitingRoom:
			served = fmt.Sprintf("waiting for room (fair share: %d ahead)", q.Ahead)
		case served == "":
			served = "waiting for room (max_runners)"
		}
		line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", q.JobID, Age(q.Age, false), q.Repo, q.Name, dash(q.Pool), served)
		if wide {
			line += "\t" + strings.Join(q.Labels, ",")
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// Age is a duration as a person reads an age: 45s, 12m, 3h5m, 2d4h; "-" if unknown.
func Age(d time.Duration, unknown bool) string {
	switch {
	case unknown:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(max(d, 0).Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stateColour is the ANSI colour of each state: what works green, what waits
// yellow, what is wrong red.
var stateColour = map[State]string{
	StateIdle: "32", StateBusy: "36", StateBooting: "33", StateFinished: "90", StateHolding: "90", StateRecycled: "90",
	StateBootFailed: "31", StateExpired: "31", StateGhost: "31", StateUnknown: "35",
}

func paint(state State, colour bool) string {
	return paintAs(string(state), stateColour[state], colour)
}

// paintAs wraps s in a two-digit SGR code and a reset.
func paintAs(s, code string, colour bool) string {
	if !colour || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
