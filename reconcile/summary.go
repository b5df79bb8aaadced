package reconcile

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteTable writes the pass's per-pool table for a person at a terminal.
func WriteTable(w io.Writer, s Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tQUEUED\tUNSERVABLE\tBOOTING\tIDLE\tWARM\tBUSY\tTO CREATE\tTO DELETE")
	for _, p := range s.Plan.Pools {
		warm := strconv.Itoa(p.Warm) // warm runners booting or idle, of the min_idle now
		if p.WarmTarget > 0 {
			warm += "/" + strconv.Itoa(p.WarmTarget)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\n", p.Pool, p.Queued, p.Unservable, p.Booting, p.Idle, warm, p.Busy, p.Create, p.Delete)
	}
	tw.Flush()
	if n, pools := len(s.Observed.Blind.Jobs), len(s.Observed.Blind.Pools); n+pools > 0 {
		fmt.Fprintf(w, "incomplete: the queued jobs of %d %s and the runners of %d %s could not be seen: the counts above leave them out\n",
			n, plural(n, "scope", "scopes"), pools, plural(pools, "pool", "pools"))
	}
	for _, r := range s.Unreachable {
		fmt.Fprintf(w, "unreachable: %s (GitHub answered 404 or 403: deleted, renamed, or not visible to these credentials)\n", r)
	}
	for _, line := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", line)
	}
	a := s.API
	fmt.Fprintf(w, "github: %d requests, %d points, %d counted against the primary limit, %d not modified; %d %s polled, %d left for later",
		a.Requests, a.Points, a.Primary, a.NotModified, a.Polled, plural(a.Polled, "repository", "repositories"), a.Skipped)
	if !a.Reset.IsZero() {
		fmt.Fprintf(w, "; %d remaining until %s", a.Remaining, a.Reset.Local().Format("15:04"))
	}
	fmt.Fprintln(w)
	if s.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
