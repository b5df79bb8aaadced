package reconcile

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A create that fails for capacity or quota will fail again for a while: Spot capacity
// for an ARM machine type can be gone from a region for hours. Every failed create
// costs one of GitHub's registrations (about 475 an hour are ours to spend) and one
// more write to remove it. So a pool's option (a GCE template; a backend without
// options has one) that fails that way goes into backoff:
//
//   - no create goes to it but one probe, the oldest job's, once the backoff's wait is
//     over: a minute after the failure, doubling with each failed probe up to ten
//     minutes (Backoff). A probe that works ends the backoff, in the same pass;
//   - while the pool has another option (instance_templates: [spot, standard]),
//     creates go there, and a create that fails for capacity moves on to the next
//     option with the same registration;
//   - the jobs of a pool whose every option is in backoff wait (status shows them as
//     waiting for capacity), and the pass warns once and exits 0: platform weather is
//     not the tool failing. An invalid template or a missing permission is probed every
//     pass and fails it (exit 1): someone must act.
//
// A pool that has not created a runner lately (a cold start, a quiet pool: TrustWindow)
// sends its first create of a pass alone, and the rest only once that one started, so
// that a stockout met cold costs one registration rather than a batch of them.
//
// What the creates said is kept per process, and in the Memo (the --cache) when there
// is one, so that --once processes share it.

// Backoff is the schedule of an option in backoff.
type Backoff struct {
	// Initial is the wait before the first probe; each failed probe doubles it.
	Initial time.Duration
	// Max bounds the wait.
	Max time.Duration
}

// DefaultBackoff: a probe a minute after the failure, then 2, 4, 8 and every 10
// minutes. A short stockout costs a minute or two; an hour-long one about 9 probes (9
// registrations of the hour's 475); and a job waits at most 10 minutes for the
// capacity that came back.
var DefaultBackoff = Backoff{Initial: time.Minute, Max: 10 * time.Minute}

func (b Backoff) orDefault() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max < b.Initial {
		b.Max = max(DefaultBackoff.Max, b.Initial)
	}
	return b
}

// wait returns how long after its fails-th failure in a row an option is probed.
func (b Backoff) wait(fails int) time.Duration {
	d := b.Initial
	for i := 1; i < fails && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// TrustWindow is how long after its last successful create a pool's creates go at
// full speed. Past it (a cold start, a quiet pool), its first create of a pass goes
// alone.
const TrustWindow = 30 * time.Minute

// optionHealth is what the creates of one option of a pool said last.
type optionHealth struct {
	Class   FailureClass `json:"class,omitempty"` // in backoff for this; empty: not in backoff
	Since   time.Time    `json:"since,omitzero"`  // when the backoff began
	Failed  time.Time    `json:"failed,omitzero"` // the last failed create or probe
	Fails   int          `json:"fails,omitempty"` // failures in a row
	Message string       `json:"message,omitempty"`
	OK      time.Time    `json:"ok,omitzero"` // the last create that worked
}

func (h *optionHealth) held() bool { return h != nil && h.Class != "" }

// due reports whether a probe may go to an option in backoff now. An invalid template
// or a missing permission is probed every pass: the fix may have come.
func (h *optionHealth) due(now time.Time, b Backoff) bool {
	if !h.held() || !h.Class.Weather() {
		return true
	}
	return !now.Before(h.next(b))
}

func (h *optionHealth) next(b Backoff) time.Time { return h.Failed.Add(b.wait(h.Fails)) }

// poolHealth is what the creates of a pool's options said last.
type poolHealth struct {
	Options map[string]*optionHealth `json:"options"`
}

func (ph *poolHealth) option(name string) *optionHealth {
	if ph.Options == nil {
		ph.Options = map[string]*optionHealth{}
	}
	h, ok := ph.Options[name]
	if !ok {
		h = &optionHealth{}
		ph.Options[name] = h
	}
	return h
}

// poolOption is one way a pool makes a runner.
type poolOption struct{ pool, option string }

// probeResult counts a pass's probes of an option in backoff.
type probeResult struct{ ok, failed int }

// PoolHealth is a pool's standing with its platform, for status and metrics.
type PoolHealth struct {
	Pool string
	// Held: every option is in backoff (Class, Since, Message and Next of the one
	// in backoff longest); the pool's jobs wait for capacity.
	Held    bool
	Class   FailureClass
	Since   time.Time
	Message string
	Next    time.Time
	// Options are the pool's options, the preferred first ("" for a backend without);
	// Backoff lists those in backoff.
	Options []string
	Backoff []OptionHealth
	// ProbesOK and ProbesFailed count this pass's probes.
	ProbesOK, ProbesFailed int
}

// OptionHealth is an option of a pool in backoff.
type OptionHealth struct {
	Option  string
	Class   FailureClass
	Since   time.Time
	Message string
}

// options returns the pool's options, the preferred first ("" for a backend without).
func (rc *Reconciler) options(pool string) []string {
	if b, ok := rc.Backends[pool]; ok {
		if opts := b.Options(pool); len(opts) > 0 {
			return opts
		}
	}
	return []string{""}
}

// loadHealth reads the pools' health from the Memo, which overlapping --once processes
// share and which is newer than this process's copy; without one, the process's own
// copy stands.
func (rc *Reconciler) loadHealth() {
	if rc.health == nil {
		rc.health = map[string]*poolHealth{}
	}
	for _, p := range rc.Config.Pools {
		ph := &poolHealth{}
		if v, ok := rc.memo.Recall(MemoPoolHealth, p.Name); ok && v != "" {
			if json.Unmarshal([]byte(v), ph) != nil {
				ph = &poolHealth{} // unreadable: start afresh, which costs a probe
			}
		}
		rc.health[p.Name] = ph
	}
}

// poolHealth returns a pool's health; the caller holds p.mu or runs alone.
func (p *pass) poolHealth(pool string) *poolHealth {
	ph, ok := p.rc.health[pool]
	if !ok {
		ph = &poolHealth{}
		p.rc.health[pool] = ph
	}
	return ph
}

// holds returns the pools every option of which is in backoff, for the planner.
func (p *pass) holds() map[string]Hold {
	out := map[string]Hold{}
	bo := p.rc.Backoff.orDefault()
	for _, pool := range p.rc.Config.Pools {
		if h, ok := p.hold(pool.Name, bo); ok {
			out[pool.Name] = h
		}
	}
	return out
}

// hold says whether every option of the pool is in backoff, and as what; the caller
// holds p.mu or runs alone.
func (p *pass) hold(pool string, bo Backoff) (Hold, bool) {
	ph := p.poolHealth(pool)
	var h Hold
	for _, opt := range p.rc.options(pool) {
		oh := ph.Options[opt]
		if !oh.held() {
			return Hold{}, false
		}
		if h.Class == "" || oh.Since.Before(h.Since) {
			h.Class, h.Since, h.Message = oh.Class, oh.Since, oh.Message
		}
		if oh.due(p.now, bo) {
			h.Probe = true
		} else if n := oh.next(bo); h.Next.IsZero() || n.Before(h.Next) {
			h.Next = n
		}
	}
	if h.Probe {
		h.Next = time.Time{}
	}
	return h, true
}

// trusted reports whether a pool made a runner within TrustWindow (by what this process
// or the cache remembers, or a runner listed this pass) with an option not in backoff,
// and has no option in backoff whose probe is due: its creates need not wait for a
// first one.
func (p *pass) trusted(pool string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	bo := p.rc.Backoff.orDefault()
	ph := p.poolHealth(pool)
	ok := false
	for _, opt := range p.rc.options(pool) {
		oh := ph.Options[opt]
		switch {
		case oh.held() && oh.due(p.now, bo):
			return false // this pass probes it: the first create goes alone
		case oh.held():
		case oh != nil && p.now.Sub(oh.OK) < TrustWindow, p.now.Sub(p.made[poolOption{pool, opt}]) < TrustWindow:
			ok = true // this process, the cache, or a runner the backend lists says it made one lately
		}
	}
	return ok
}

// noteMade records, from the pass's listing, when each pool's option last made a
// runner that is still there: a create that worked lately, whoever made it (another
// process without a shared cache).
func (p *pass) noteMade(runners []Runner) {
	for _, r := range runners {
		po := poolOption{r.Pool, r.Option}
		if r.CreatedAt.After(p.made[po]) {
			p.made[po] = r.CreatedAt
		}
	}
}

// held reports whether every option of the pool is in backoff now (a create of this
// pass may have put the last one there).
func (p *pass) held(pool string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, held := p.hold(pool, p.rc.Backoff.orDefault())
	return held
}

// tryOrder returns the options a create of the pool tries, in order: those not in
// backoff, and those in backoff whose probe is due and not yet taken by another create
// of this pass (one probe an option a pass).
func (p *pass) tryOrder(pool string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	bo := p.rc.Backoff.orDefault()
	ph := p.poolHealth(pool)
	var out []string
	for _, opt := range p.rc.options(pool) {
		oh := ph.Options[opt]
		po := poolOption{pool, opt}
		switch {
		case !oh.held():
			out = append(out, opt)
		case oh.due(p.now, bo) && !p.probing[po]:
			p.probing[po] = true
			out = append(out, opt)
		}
	}
	return out
}

// noteCreate records what a create with an option said of its platform: a success ends
// any backoff, a failure of a known class starts or extends one. Other errors say
// nothing of capacity and change nothing.
func (p *pass) noteCreate(pool, opt string, err error) {
	class := ClassOf(err)
	if err != nil && class == "" {
		return
	}
	p.mu.Lock()
	ph := p.poolHealth(pool)
	oh := ph.option(opt)
	wasHeld := oh.held()
	// The pass's start, not the create's moment: passes a schedule apart see the probe
	// due exactly one wait later, however long each pass took to get to its create.
	now := p.now
	if err == nil {
		*oh = optionHealth{OK: now}
	} else {
		if !wasHeld || oh.Class != class {
			oh.Since, oh.Fails = now, 0
		}
		oh.Class, oh.Failed, oh.Message = class, now, oneLine(err.Error())
		oh.Fails++
	}
	if wasHeld {
		r := p.probes[poolOption{pool, opt}]
		if err == nil {
			r.ok++
		} else {
			r.failed++
		}
		p.probes[poolOption{pool, opt}] = r
	}
	data, _ := json.Marshal(ph)
	p.mu.Unlock()
	p.rc.memo.Remember(MemoPoolHealth, pool, string(data))
}

// healthReport returns each pool's health after the pass, for the summary.
func (p *pass) healthReport() []PoolHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	bo := p.rc.Backoff.orDefault()
	var out []PoolHealth
	for _, pool := range p.rc.Config.Pools {
		ph := PoolHealth{Pool: pool.Name}
		if h, held := p.hold(pool.Name, bo); held {
			ph.Held, ph.Class, ph.Since, ph.Message, ph.Next = true, h.Class, h.Since, h.Message, h.Next
			if h.Probe {
				ph.Next = p.rc.now()
			}
		}
		health := p.poolHealth(pool.Name)
		ph.Options = p.rc.options(pool.Name)
		for _, opt := range ph.Options {
			if oh := health.Options[opt]; oh.held() {
				ph.Backoff = append(ph.Backoff, OptionHealth{Option: opt, Class: oh.Class, Since: oh.Since, Message: oh.Message})
			}
			r := p.probes[poolOption{pool.Name, opt}]
			ph.ProbesOK += r.ok
			ph.ProbesFailed += r.failed
		}
		out = append(out, ph)
	}
	return out
}

// warnHeld gives one warning for each pool in backoff whose jobs wait.
func (p *pass) warnHeld(health []PoolHealth, waiting map[string]int) {
	for _, h := range health {
		if !h.Held {
			continue
		}
		next := "a probe goes this pass"
		if !h.Next.IsZero() && h.Next.After(p.rc.now()) {
			next = "next probe at " + h.Next.UTC().Format(time.TimeOnly)
		}
		line := fmt.Sprintf("pool %s: %s since %s (%s); %d %s for capacity, %s", h.Pool, describeClass(h.Class),
			h.Since.UTC().Format(time.TimeOnly), h.Message, waiting[h.Pool], plural(waiting[h.Pool], "job waits", "jobs wait"), next)
		p.warn("held:"+h.Pool, line, p.log.Warn().Str("pool", h.Pool).Str("reason", string(h.Class)).Int("jobs_waiting", waiting[h.Pool]))
	}
}

// describeClass says a failure class in words.
func describeClass(c FailureClass) string {
	switch c {
	case FailNoCapacity:
		return "no capacity (stockout)"
	case FailQuota:
		return "quota exceeded"
	case FailInvalid:
		return "invalid configuration"
	case FailPermission:
		return "permission denied"
	}
	return string(c)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
