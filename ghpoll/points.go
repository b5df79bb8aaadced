package ghpoll

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// GitHub's secondary limit allows 900 points a minute to the credentials, whoever
// spends them. Processes that share a cache (a timer's pass and one from a terminal,
// overlapping) share the points: each claims them in blocks from one record
// (reconcile.Shared) before it sends, and waits when the record holds the minute's
// whole budget. Without a cache the record is this process's alone.
//
// A claim's points are spent within claimLife of it, or not at all (what a block of
// reads left is given back at the process's next claim), and the record keeps the
// claim for GitHub's minute after that, with a second's margin (GitHub counts a
// request when it arrives): so a point spent is counted in the record for at least the
// minute GitHub counts it.
const (
	pointsBlock = 10 // reads claimed at once: one update of the record
	claimLife   = 2 * time.Second
	claimKept   = time.Minute + time.Second + claimLife
)

// pointsRecord is the shared record: the claims of the last minute, and what a
// process learnt from a secondary limit, for the others at once (the cache tells the
// next processes).
type pointsRecord struct {
	Claims []pointsClaim `json:"claims,omitempty"`
	Held   int64         `json:"held,omitempty"` // Unix ms: GitHub asked for no request until then
	Slow   int64         `json:"slow,omitempty"` // Unix ms: registrations at the fallback pace until then
	// Waiting holds the processes that found no points, by process: points that free up
	// go to the one that has waited longest, so that a process whose requests follow
	// each other closely cannot take every point another waits for.
	Waiting map[string]pointsWaiter `json:"waiting,omitempty"`
}

// pointsWaiter is a process waiting for points: since when, and when it comes back.
type pointsWaiter struct {
	Since int64 `json:"since"` // Unix ms
	Wake  int64 `json:"wake"`  // Unix ms
}

type pointsClaim struct {
	By     string `json:"by"`
	N      int    `json:"n"` // the process's count of its claims
	Write  bool   `json:"w,omitempty"`
	At     int64  `json:"at"` // Unix ms
	Points int    `json:"points"`
}

// ledger is this process's side of the record.
type ledger struct {
	cap   int
	by    string // this process, in the record
	block int
	life  time.Duration // claimLife
	kept  time.Duration // claimKept

	mu     sync.Mutex
	shared reconcile.Shared
	left   int       // of this process's latest block of reads
	until  time.Time // when what is left of it may no longer be spent
	n      int       // the count of this process's claims: the latest's, to give back what it left
	failed error     // the shared record could not be updated: the ledger went local
}

func newLedger(cap int) *ledger {
	return &ledger{cap: cap, block: pointsBlock, life: claimLife, kept: claimKept, by: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()), shared: &reconcile.LocalShared{}}
}

// share makes the ledger claim from a record other processes update too. The record is
// updated once here, so that one that cannot be is found before the pass.
func (l *ledger) share(ctx context.Context, s reconcile.Shared) error {
	if err := s.Update(ctx, func(old []byte) []byte { return encodeRecord(decodeRecord(old, time.Now(), l.kept)) }); err != nil {
		return err
	}
	l.mu.Lock()
	l.shared = s
	l.mu.Unlock()
	return nil
}

// SharePoints makes the client spend its points a minute (Options.PointsPerMinute)
// with the processes that update the same record: reconcile.Notes.Shared, beside the
// cache. An error leaves the client spending them alone.
func (c *Client) SharePoints(ctx context.Context, s reconcile.Shared) error {
	if c.tr.points == nil {
		return nil
	}
	return c.tr.points.share(ctx, s)
}

// learnt is what the record says other processes learnt from GitHub.
type learnt struct{ held, slow time.Time }

// take waits until cost points fit within the minute's budget, and charges them. A
// write while registrations keep the fallback pace (slowUntil, or what the record
// learnt) waits, too, until the record holds fewer than reconcile.FallbackWritesPerMinute
// writes of the last minute: GitHub counts content-creating requests over a rolling
// minute, and the burst before its refusal is still in it when its wait ends. It
// returns how long it waited and what the record says of GitHub's limits.
func (l *ledger) take(ctx context.Context, cost int, slowUntil time.Time) (time.Duration, learnt, error) {
	var waited time.Duration
	for {
		l.mu.Lock()
		now := time.Now()
		if cost == pointsRead && l.left >= cost && now.Before(l.until) {
			l.left -= cost
			l.mu.Unlock()
			return waited, learnt{}, nil
		}
		var c claimed
		update := func(old []byte) []byte { return l.claim(old, cost, slowUntil, &c) }
		if err := l.shared.Update(ctx, update); err != nil {
			if ctx.Err() != nil {
				l.mu.Unlock()
				return waited, learnt{}, ctx.Err()
			}
			// Go on alone rather than fail GitHub's calls; what this process claimed is
			// lost to it, which only makes it slower.
			l.failed, l.shared = err, &reconcile.LocalShared{}
			l.mu.Unlock()
			continue
		}
		l.left = 0 // given back
		if c.wait == 0 {
			l.n++
			if c.want > cost {
				l.left, l.until = c.want-cost, c.at.Add(l.life)
			}
		}
		l.mu.Unlock()
		if c.wait == 0 {
			return waited, c.news, nil
		}
		waited += c.wait
		if err := sleep(ctx, c.wait); err != nil {
			return waited, learnt{}, err
		}
	}
}

// claimed is what one update of the record decided.
type claimed struct {
	at   time.Time
	want int           // the points claimed
	wait time.Duration // 0: claimed; else how long until they may be
	news learnt
}

// claim is one update of the record: it gives back what the process's last block of
// reads left, and claims cost points (a block, for a read) if they fit; c says what it
// decided (the store may call it again: only its last call counts).
func (l *ledger) claim(old []byte, cost int, slowUntil time.Time, c *claimed) []byte {
	c.at = time.Now() // the store may have waited, or tried again
	rec := decodeRecord(old, c.at, l.kept)
	rec.giveBack(l.by, l.n, l.left)
	c.news = learnt{held: fromUnixMilli(rec.Held), slow: fromUnixMilli(rec.Slow)}
	// A write claims its own points: it reads what other processes learnt of GitHub's
	// limits just before it leaves. Reads claim a block, or what is left.
	c.want = cost
	if cost == pointsRead {
		c.want = max(cost, min(l.block, l.cap-rec.total()))
	}
	room := rec.room(c.at, l.kept, l.cap, c.want)
	c.wait = room
	write := cost != pointsRead
	if write && (c.at.Before(slowUntil) || c.at.Before(c.news.slow)) {
		c.wait = max(c.wait, rec.writeRoom(c.at, l.kept, reconcile.FallbackWritesPerMinute))
	}
	if c.wait == 0 {
		c.wait = rec.yieldTo(l.by, c.at, l.life) // another process has waited longer: its turn first
	}
	switch {
	case c.wait == 0:
		rec.Claims = append(rec.Claims, pointsClaim{By: l.by, N: l.n + 1, At: c.at.UnixMilli(), Points: c.want, Write: write})
		delete(rec.Waiting, l.by)
	case room > 0: // no points: this process queues for them
		if rec.Waiting == nil {
			rec.Waiting = map[string]pointsWaiter{}
		}
		w := rec.Waiting[l.by]
		if w.Since == 0 {
			w.Since = c.at.UnixMilli()
		}
		w.Wake = c.at.Add(room).UnixMilli()
		rec.Waiting[l.by] = w
	}
	return encodeRecord(rec)
}

// yieldMargin is how long after a waiting process's wake others still give way to it.
const yieldMargin = 5 * time.Millisecond

// yieldTo returns how long by gives way to processes that have waited for points
// longer than by: until each comes back for them. One that has not come back within
// grace of its wake has lost its turn.
func (r *pointsRecord) yieldTo(by string, now time.Time, grace time.Duration) time.Duration {
	mine, waiting := r.Waiting[by]
	var wait time.Duration
	for other, w := range r.Waiting {
		wake := time.UnixMilli(w.Wake)
		if other == by || waiting && w.Since >= mine.Since || now.After(wake.Add(grace)) {
			continue
		}
		wait = max(wait, wake.Sub(now)+yieldMargin)
	}
	return wait
}

// learn records what a secondary limit said, for the processes that share the record.
func (l *ledger) learn(ctx context.Context, held, slow time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.shared.Update(ctx, func(old []byte) []byte {
		rec := decodeRecord(old, time.Now(), l.kept)
		rec.Held, rec.Slow = max(rec.Held, unixMilli(held)), max(rec.Slow, unixMilli(slow))
		return encodeRecord(rec)
	})
}

// room returns how long until want more points fit within limit, 0 if they do now.
func (r *pointsRecord) room(now time.Time, kept time.Duration, limit, want int) time.Duration {
	total := r.total()
	if total+want <= limit {
		return 0
	}
	for _, c := range r.Claims { // oldest first
		if total -= c.Points; total+want <= limit {
			return max(time.UnixMilli(c.At).Add(kept).Sub(now), time.Millisecond)
		}
	}
	return time.Millisecond // want exceeds the limit: not from take
}

// decodeRecord reads the record as it stands at now: the claims GitHub still counts
// (made within kept), oldest first, and what was learnt that still holds.
// giveBack takes the points by's n-th claim did not spend off it.
func (r *pointsRecord) giveBack(by string, n, unspent int) {
	for i, c := range r.Claims {
		if c.By == by && c.N == n && unspent > 0 {
			r.Claims[i].Points -= min(unspent, c.Points)
			return
		}
	}
}

// writeRoom returns how long until the record holds fewer than limit writes, 0 if it
// does now.
func (r *pointsRecord) writeRoom(now time.Time, kept time.Duration, limit int) time.Duration {
	var writes []int64
	for _, c := range r.Claims { // oldest first
		if c.Write {
			writes = append(writes, c.At)
		}
	}
	if len(writes) < limit {
		return 0
	}
	return max(time.UnixMilli(writes[len(writes)-limit]).Add(kept).Sub(now), time.Millisecond)
}

func (r *pointsRecord) total() int {
	total := 0
	for _, c := range r.Claims {
		total += c.Points
	}
	return total
}

func decodeRecord(data []byte, now time.Time, kept time.Duration) pointsRecord {
	var rec pointsRecord
	if json.Unmarshal(data, &rec) != nil {
		return pointsRecord{} // unreadable: a record starts afresh, as after a minute
	}
	rec.Claims = slices.DeleteFunc(rec.Claims, func(c pointsClaim) bool { return now.Sub(time.UnixMilli(c.At)) >= kept })
	slices.SortStableFunc(rec.Claims, func(a, b pointsClaim) int { return int(a.At - b.At) })
	if now.UnixMilli() >= rec.Held {
		rec.Held = 0
	}
	if now.UnixMilli() >= rec.Slow {
		rec.Slow = 0
	}
	// A process that has not come back for its points within the time a claim is kept
	// has ended or given up: it holds no turn.
	maps.DeleteFunc(rec.Waiting, func(_ string, w pointsWaiter) bool { return now.Sub(time.UnixMilli(w.Since)) >= kept })
	return rec
}

func encodeRecord(rec pointsRecord) []byte {
	data, _ := json.Marshal(rec) // plain values: cannot fail
	return data
}

func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
