package plan

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Fair share. When a pool cannot serve every queued job in a pass (its max_runners; or,
// later in the pass, the write pace, the hour's registrations, a backoff), what there
// is goes round the repositories: turn by turn, the repository that holds the fewest
// of the pool's runners for its weight (runners made for its jobs, booting, idle or
// busy, and those given in this pass) gets a runner for its oldest job; a tie goes to
// the repository whose next job has waited longest. So a 256-job matrix in one
// repository takes the room while no other repository waits, and a one-job fix
// elsewhere gets the next runner the pool frees. With weights, a repository of weight
// 3 holds three runners for each one of weight 1 while both have jobs waiting.
//
// Org-scoped runners: GitHub gives an idle org runner to any job of the org it allows,
// not to the one it was made for, so the share holds for what is created, not for who
// runs on it.

// fairOrder orders a pool's demand creates: the order in which the room is given.
// held counts the pool's runners by the repository they were made for; weight is each
// repository's (at least 1); created is when each job was queued.
func fairOrder(wanted []Create, held map[Scope]int, weight func(Scope) int, created map[int64]time.Time) []Create {
	byRepo := map[Scope][]Create{}
	var repos []Scope
	for _, c := range wanted {
		if _, seen := byRepo[c.Repo]; !seen {
			repos = append(repos, c.Repo)
		}
		byRepo[c.Repo] = append(byRepo[c.Repo], c)
	}
	oldest := func(a, b Create) int {
		return cmp.Or(created[a.JobID].Compare(created[b.JobID]), cmp.Compare(a.JobID, b.JobID))
	}
	for _, cs := range byRepo {
		slices.SortFunc(cs, oldest)
	}
	given := map[Scope]int{}
	for r, n := range held {
		given[r] = n
	}
	out := make([]Create, 0, len(wanted))
	for len(out) < len(wanted) {
		var best Scope
		found := false
		for _, r := range repos {
			if len(byRepo[r]) == 0 {
				continue
			}
			if !found || before(r, best, given, weight, byRepo, oldest) {
				best, found = r, true
			}
		}
		out = append(out, byRepo[best][0])
		byRepo[best] = byRepo[best][1:]
		given[best]++
	}
	return out
}

// before reports whether repository a takes its turn before b: the fewer runners for
// its weight ((held+1)/weight, compared without division), then the older next job,
// then by name.
func before(a, b Scope, given map[Scope]int, weight func(Scope) int, next map[Scope][]Create, oldest func(a, b Create) int) bool {
	la, lb := (given[a]+1)*weight(b), (given[b]+1)*weight(a)
	if la != lb {
		return la < lb
	}
	if c := oldest(next[a][0], next[b][0]); c != 0 {
		return c < 0
	}
	return strings.Compare(a.String(), b.String()) < 0
}
