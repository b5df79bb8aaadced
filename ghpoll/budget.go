package ghpoll

import "github.com/reconcile-dev/reconcile/reconcile"

// PollFacts returns what the client remembers of the repositories (kept with the
// ETags, and in the cache across processes) and the primary rate limit as GitHub last
// stated it, for reconcile.ChooseRepos. Org runners' registrations are listed for the
// org: a recent org listing sweeps every repository of it.
func (c *Client) PollFacts(repos []reconcile.Scope) reconcile.PollFacts {
	s := c.tr.statsNow()
	f := reconcile.PollFacts{Repos: make(map[reconcile.Scope]reconcile.RepoFacts, len(repos)), Remaining: s.Remaining, Reset: s.Reset,
		Registered: c.cache.registered()}
	owners := map[string]bool{}
	for _, r := range repos {
		if !owners[r.Owner] {
			// An organisation's latest pushes are listed each pass.
			owners[r.Owner] = true
			f.Overhead += c.cache.pages(cacheKey(kindOrgPushed, r.Owner) + "#")
		}
		st := c.cache.repo(r.String())
		swept := st.Swept
		if org := c.cache.repo(r.Owner).Swept; org.After(swept) {
			swept = org
		}
		f.Repos[r] = reconcile.RepoFacts{
			Runs:     st.Runs,
			HadRuns:  st.HadRuns,
			Polled:   st.Polled,
			Swept:    swept,
			Pushed:   st.Pushed,
			PollCost: max(st.ViewCost, 1) + st.Runs, // the runs view, and each run's jobs
		}
	}
	// And its whole listing once every orgListEvery: the pages this pass fetched.
	c.mu.Lock()
	f.Overhead += c.listed
	c.listed = 0
	f.Busy = map[string]bool{}
	for _, r := range repos {
		for _, name := range c.cache.repo(r.String()).Busy {
			f.Busy[name] = true
		}
	}
	c.mu.Unlock()
	return f
}
