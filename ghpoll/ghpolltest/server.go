// Package ghpolltest is a fake GitHub: an httptest server that speaks the parts of the
// REST API the tool uses (workflow runs and jobs, org repositories, self-hosted runners,
// JIT configuration), with state a test sets up and inspects. Its answers are built
// from GitHub's own example objects (testdata/), so their shape is GitHub's.
//
// The API is served under /api/v3/, as GitHub Enterprise Server does, which catches
// absolute-URL mistakes.
package ghpolltest

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed testdata/*.json
var examples embed.FS

// APIPrefix is the path under which the API is served.
const APIPrefix = "/api/v3/"

// Run is a workflow run.
type Run struct {
	ID        int64
	Repo      string // owner/name
	Status    string // queued, in_progress, completed
	Event     string
	CreatedAt time.Time
	Public    bool // the repository is public (runs are private by default)
	Fork      bool // a pull_request run from a fork
	Attempt   int  // run_attempt: 1, and one more for each re-run
}

// Job is a workflow job.
type Job struct {
	ID         int64
	RunID      int64
	Name       string
	Status     string // queued, in_progress, completed
	Labels     []string
	CreatedAt  time.Time
	RunnerName string
	// Once completed: its conclusion, when, and its steps.
	Conclusion  string
	CompletedAt time.Time
	Steps       []Step
	Attempt     int // the run attempt it belongs to
}

// Step is a step of a job, as the job's "steps" show it.
type Step struct {
	Name, Status, Conclusion string
	CompletedAt              time.Time
}

// Runner is a self-hosted runner registration.
type Runner struct {
	ID     int64
	Scope  string // owner/name, or an org
	Name   string
	Status string // online, offline
	Busy   bool
	Labels []string
	// JITConfig is the configuration generate-jitconfig returned for it.
	JITConfig string
	// Group is the runner group it joined.
	Group int64
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // below APIPrefix, without the query
	Query  url.Values
}

type repo struct {
	owner, name string
	archived    bool
	disabled    bool
	pushed      time.Time // pushed_at: the latest push to any branch
}

// Limits make the server enforce GitHub's rate limits and answer as GitHub does past
// them. Zero values enforce nothing.
type Limits struct {
	PrimaryPerHour  int // requests counted per hour (304s are not)
	PointsPerMinute int // secondary: GET 1, others 5, whatever the answer
	Concurrent      int // secondary: requests under way at once
	// Content-creating requests (POSTs here: runner registrations): GitHub documents,
	// "in general", no more than 80 a minute and 500 an hour (docs.github.com, "Rate
	// limits for the REST API", About secondary rate limits); past them it answers 403
	// with retry-after, as for the points.
	CreatesPerMinute, CreatesPerHour int
	// ContentCreating says which requests count as content-creating; nil: every POST.
	// GitHub names no endpoint: a test declares the reading it tries.
	ContentCreating func(method, path string) bool
	// Minute is the length of the per-minute windows (points, creates); zero is a
	// minute. A test shrinks it to see a window slide in seconds.
	Minute  time.Duration
	Latency time.Duration // added to every answer
}

// GitHubLimits are api.github.com's documented limits for a token: 5,000 requests an
// hour, 900 points a minute, 100 requests at once, 80 content-creating requests a
// minute and 500 an hour.
var GitHubLimits = Limits{PrimaryPerHour: 5000, PointsPerMinute: 900, Concurrent: 100, CreatesPerMinute: 80, CreatesPerHour: 500}

// Received is a request the server received, answered or refused, at its wall time.
type Received struct {
	At      time.Time
	Method  string
	Path    string
	Limited bool // answered 403 or 429 for a rate limit
}

// JITOnly declares the runner registrations (generate-jitconfig) content-creating, and
// no other request.
func JITOnly(method, path string) bool {
	return method == http.MethodPost && strings.HasSuffix(path, "/generate-jitconfig")
}

// Stats is what the server received.
type Stats struct {
	Requests      int
	Points        int
	Primary       int // counted against the primary limit
	NotModified   int
	Limited       int // answered 403/429 for a rate limit
	MaxConcurrent int
	MaxPointsMin  int // the most points in any one-minute window
	Mutations     int
}

type failure struct {
	method, contains string
	status           int
	times            int
	served           int // answers it gave
	header           http.Header
	delay            time.Duration
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// APIURL is the root a client is configured with.
	APIURL string

	mu       sync.Mutex
	now      func() time.Time
	nextID   int64
	repos    []repo
	runs     map[int64]*Run
	jobs     map[int64]*Job
	runners  map[int64]*Runner
	requests []Request
	received []Received
	failures []failure
	jits     int
	forks    map[string]bool // repositories that are themselves forks
	gone     map[string]bool // repositories deleted, renamed or hidden from the token

	tokenTTL  time.Duration
	exchanges []string // installation ids whose token was asked for, in order
	appID     string
	token     string               // when set, the only personal access token accepted
	tokens    map[string]time.Time // installation tokens issued → expiry

	limits   Limits
	stats    Stats
	inFlight int
	points   []pointAt // points spent, for the sliding minute
	primary  []time.Time
	creates  []time.Time // content-creating requests accepted, for the sliding minute and hour
}

type pointAt struct {
	at     time.Time
	points int
}

// NewServer starts a fake GitHub; it is closed when the test ends, and the test fails
// if a fault it was told to inject (Fail, FailWith, Delay) was never served: a test
// whose fault did not happen tests nothing.
func NewServer(t interface {
	Cleanup(func())
	Errorf(format string, args ...any)
}) *Server {
	s := &Server{now: time.Now, nextID: 1000, runs: map[int64]*Run{}, jobs: map[int64]*Job{}, runners: map[int64]*Runner{},
		forks: map[string]bool{}, gone: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.APIURL = s.Server.URL + APIPrefix
	t.Cleanup(s.Server.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range s.failures {
			if f.served == 0 {
				t.Errorf("ghpolltest: the fault injected for %s …%s… was never served", f.method, f.contains)
			}
		}
	})
	return s
}

// SetClock makes the server stamp new objects with now().
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// AddRepo adds a repository of an organisation (or user).
func (s *Server) AddRepo(fullName string, archived, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, name, _ := strings.Cut(fullName, "/")
	s.repos = append(s.repos, repo{owner: owner, name: name, archived: archived, disabled: disabled})
}

// SetRepoFork makes a repository one that is itself a fork of another: on GitHub, its
// runs' repository and head_repository both say "fork": true, for every branch.
func (s *Server) SetRepoFork(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forks[strings.ToLower(fullName)] = true
}

// SetRepoGone makes every repository endpoint of fullName answer 404 Not Found, as
// GitHub does for a repository that was deleted or renamed, or that the token cannot
// see (GitHub answers 404 rather than 403 so as not to reveal that a private
// repository exists).
func (s *Server) SetRepoGone(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[strings.ToLower(fullName)] = true
}

// AddRun adds a workflow run and returns its id.
func (s *Server) AddRun(repo, status string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	s.runs[id] = &Run{ID: id, Repo: repo, Status: status, Event: "push", CreatedAt: s.now(), Attempt: 1}
	return id
}

// AddJob adds a job to a run and returns its id.
func (s *Server) AddJob(runID int64, status string, labels ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	attempt := 1
	if run, ok := s.runs[runID]; ok {
		attempt = run.Attempt
	}
	s.jobs[id] = &Job{ID: id, RunID: runID, Name: fmt.Sprintf("job-%d", id), Status: status, Labels: labels, CreatedAt: s.now(), Attempt: attempt}
	return id
}

// Sources for what a lost runner leaves: peers' trackers quote GitHub's annotation
// "The self-hosted runner: … lost communication with the server" on a failed job
// (tenstorrent/tt-xla issue 1992, ClickHouse issue 41850); a runner that hears the
// shutdown reports its job cancelled instead (paradedb PR 5305).
//
// LoseRunner ends a running job as GitHub does when its runner vanishes mid-job (a
// preemption): completed, conclusion failure ("The self-hosted runner: … lost
// communication with the server"), the step under way never finished. Its run
// completes, failed, once no job of it is left.
func (s *Server) LoseRunner(id int64) { s.endJob(id, "failure", "") }

// FailStep ends a running job that failed on its own: a step concluded failure.
func (s *Server) FailStep(id int64) { s.endJob(id, "failure", "failure") }

// CancelJob ends a job as a person's cancel does: conclusion cancelled.
func (s *Server) CancelJob(id int64) { s.endJob(id, "cancelled", "cancelled") }

// Job returns a job as the server holds it.
func (s *Server) Job(id int64) (Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, false
	}
	return *j, true
}

// Jobs returns the jobs of a run, in every attempt, oldest first.
func (s *Server) Jobs(runID int64) []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, j := range s.jobs {
		if j.RunID == runID {
			out = append(out, *j)
		}
	}
	slices.SortFunc(out, func(a, b Job) int { return int(a.ID - b.ID) })
	return out
}

func (s *Server) endJob(id int64, conclusion, lastStep string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return
	}
	now := s.now()
	j.Status, j.Conclusion, j.CompletedAt = "completed", conclusion, now
	last := Step{Name: "Run tests", Status: "completed", Conclusion: lastStep, CompletedAt: now}
	if lastStep == "" {
		last = Step{Name: "Run tests", Status: "in_progress"} // the runner never reported it
	}
	j.Steps = []Step{{Name: "Set up job", Status: "completed", Conclusion: "success", CompletedAt: j.CreatedAt}, last}
	run := s.runs[j.RunID]
	for _, o := range s.jobs {
		if o.RunID == j.RunID && o.Attempt == run.Attempt && o.Status != "completed" {
			return
		}
	}
	run.Status = "completed"
}

// QueueJob adds a queued run holding one queued job, and returns the job's id.
func (s *Server) QueueJob(repo string, labels ...string) int64 {
	return s.AddJob(s.AddRun(repo, "queued"), "queued", labels...)
}

// SetJobStatus changes a job's status; a job that starts takes runnerName.
func (s *Server) SetJobStatus(id int64, status, runnerName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[id]; ok {
		j.Status, j.RunnerName = status, runnerName
	}
}

// SetRunOrigin marks a run as one of a public repository, and as a pull request from
// a fork.
func (s *Server) SetRunOrigin(id int64, public, forkPR bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[id]; ok {
		r.Public, r.Fork = public, forkPR
		if forkPR {
			r.Event = "pull_request"
		}
	}
}

// Runs returns the ids of a repository's runs, oldest first.
func (s *Server) Runs(repo string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for _, r := range s.runs {
		if strings.EqualFold(r.Repo, repo) {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Push records a push to the repository now, as its pushed_at shows it (Source:
// GitHub's repository object; the organisation's listing can sort by it).
func (s *Server) Push(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.repos {
		if s.repos[i].owner+"/"+s.repos[i].name == fullName {
			s.repos[i].pushed = s.now()
		}
	}
}

// SetRunEvent changes the event that triggered a run (push, pull_request, ...).
func (s *Server) SetRunEvent(id int64, event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[id]; ok {
		r.Event = event
	}
}

// SetRunStatus changes a run's status.
func (s *Server) SetRunStatus(id int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[id]; ok {
		r.Status = status
	}
}

// AddRunner registers a runner directly (not through JIT) and returns its id.
func (s *Server) AddRunner(scope, name string, online, busy bool, labels ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	s.runners[id] = &Runner{ID: id, Scope: scope, Name: name, Status: onlineStatus(online), Busy: busy, Labels: labels}
	return id
}

// SetRunner changes a registration's status, by name; false if there is none.
func (s *Server) SetRunner(name string, online, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runners {
		if r.Name == name {
			r.Status, r.Busy = onlineStatus(online), busy
			return true
		}
	}
	return false
}

// SetRunnerLabels replaces a registration's labels, by name; false if there is none.
// GitHub keeps a JIT registration's labels as they were given.
func (s *Server) SetRunnerLabels(name string, labels []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runners {
		if r.Name == name {
			r.Labels = slices.Clone(labels)
			return true
		}
	}
	return false
}

// RemoveRunner deletes a registration by name, as GitHub does when an ephemeral runner
// has run its job.
func (s *Server) RemoveRunner(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.runners {
		if r.Name == name {
			delete(s.runners, id)
		}
	}
}

func onlineStatus(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

// Runners returns the registrations, sorted by name.
func (s *Server) Runners() []Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Runner, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Runner) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// JITCount returns how many JIT configurations were generated.
func (s *Server) JITCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jits
}

// Requests returns the requests received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Mutations returns the requests that change something (anything but GET), as
// "METHOD path".
func (s *Server) Mutations() []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// RequireToken makes the server accept only tok as a personal access token; any
// other gets 401 Bad credentials, as GitHub answers a wrong, expired or revoked one
// (Source: GitHub's REST API docs, "Troubleshooting the REST API": 401 with the
// message "Bad credentials").
func (s *Server) RequireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = tok
}

// SetApp makes the server a GitHub App's: it issues installation tokens valid for ttl
// to JWTs whose issuer is appID, and from then on accepts only those tokens.
func (s *Server) SetApp(appID string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.tokenTTL, s.tokens = appID, ttl, map[string]time.Time{}
}

// TokenExchanges returns the installation ids tokens were issued for, in order.
func (s *Server) TokenExchanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request, installation string) {
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 || s.appID == "" {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss any `json:"iss"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil || fmt.Sprint(claims.Iss) != s.appID {
		writeError(w, http.StatusUnauthorized, "'Issuer' claim ('iss') must be an Integer")
		return
	}
	s.exchanges = append(s.exchanges, installation)
	token := fmt.Sprintf("ghs_fake%d", len(s.exchanges))
	expires := time.Now().Add(s.tokenTTL)
	s.tokens[token] = expires
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": expires.UTC().Format(time.RFC3339),
		"permissions": map[string]string{"actions": "read", "administration": "write"}, "repository_selection": "all"})
}

func (s *Server) installationRepos(w http.ResponseWriter, r *http.Request) {
	page, total := paginate(w, r, len(s.repos))
	items := []any{}
	for i, rp := range s.repos[page[0]:page[1]] {
		items = append(items, repoJSON(page[0]+i+1, rp))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "repositories": items})
}

// SetLimits makes the server enforce limits.
func (s *Server) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// Stats returns what the server received so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ResetStats starts counting again (the rate-limit windows go on).
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// FailWith is Fail with headers on the answer (Retry-After, X-RateLimit-*).
func (s *Server) FailWith(method, substr string, status, n int, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{method: method, contains: substr, status: status, times: n, header: header})
}

// Delay makes the next n matching requests wait d before their answer, as a server
// that hangs.
func (s *Server) Delay(method, substr string, d time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{method: method, contains: substr, times: n, delay: d})
}

// Fail makes the next n requests whose method is method and whose path (below the API
// prefix, query included) contains substr answer with status.
func (s *Server) Fail(method, substr string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{method: method, contains: substr, status: status, times: n})
}

// serve answers one request: rate limits first, then the API, then the ETag. GitHub
// computes an ETag for every GET answer and answers 304 to a matching If-None-Match.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inFlight++
	s.stats.MaxConcurrent = max(s.stats.MaxConcurrent, s.inFlight)
	latency := s.limits.Latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if latency > 0 {
		time.Sleep(latency)
	}
	rec := httptest.NewRecorder()
	s.mu.Lock()
	limited := s.enforce(rec, r)
	if !limited {
		s.route(rec, r)
	}
	s.account(r, rec)
	s.received = append(s.received, Received{At: time.Now(), Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, APIPrefix), Limited: limited})
	// Every answer names the primary bucket it was counted against (GitHub's REST
	// documentation, "Rate limits for the REST API": x-ratelimit-resource).
	rec.Header().Set("X-RateLimit-Resource", "core")
	s.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// enforce answers as GitHub does past a limit; it reports whether it did. Past a
// secondary limit it answers 403 with retry-after: how long until the limit admits
// the request again, in whole seconds (GitHub's REST documentation, "Rate limits for
// the REST API", Exceeding the rate limit).
func (s *Server) enforce(w *httptest.ResponseRecorder, r *http.Request) bool {
	now := s.now()
	l := s.limits
	minute := l.Minute
	if minute <= 0 {
		minute = time.Minute
	}
	cost := 1
	if r.Method != http.MethodGet {
		cost = 5
	}
	s.points = slices.DeleteFunc(s.points, func(p pointAt) bool { return now.Sub(p.at) >= minute })
	s.primary = slices.DeleteFunc(s.primary, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	spent := 0
	for _, p := range s.points {
		spent += p.points
	}
	s.points = append(s.points, pointAt{now, cost}) // charged whatever the answer
	s.stats.MaxPointsMin = max(s.stats.MaxPointsMin, spent+cost)
	remaining := max(l.PrimaryPerHour-len(s.primary), 0)
	if l.PrimaryPerHour > 0 {
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(l.PrimaryPerHour))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	}
	s.creates = slices.DeleteFunc(s.creates, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	create := r.Method == http.MethodPost
	if l.ContentCreating != nil {
		create = l.ContentCreating(r.Method, strings.TrimPrefix(r.URL.Path, APIPrefix))
	}
	var inMinute []time.Time
	for _, t := range s.creates {
		if now.Sub(t) < minute {
			inMinute = append(inMinute, t)
		}
	}
	var wait time.Duration
	switch {
	case l.PointsPerMinute > 0 && spent+cost > l.PointsPerMinute:
		wait = s.points[0].at.Add(minute).Sub(now)
	case l.Concurrent > 0 && s.inFlight > l.Concurrent:
		wait = time.Second
	case create && l.CreatesPerMinute > 0 && len(inMinute) >= l.CreatesPerMinute:
		wait = inMinute[0].Add(minute).Sub(now)
	case create && l.CreatesPerHour > 0 && len(s.creates) >= l.CreatesPerHour:
		wait = s.creates[0].Add(time.Hour).Sub(now)
	case l.PrimaryPerHour > 0 && remaining == 0:
		s.stats.Limited++
		writeError(w, http.StatusForbidden, "API rate limit exceeded")
		return true
	}
	if wait > 0 {
		s.stats.Limited++
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		return true
	}
	if create {
		s.creates = append(s.creates, now)
	}
	return false
}

// Received returns every request the server received, in order, with its wall time.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// account counts the request, turns a 200 GET into a 304 when the ETag matches, and
// charges the primary limit for all but 304s.
func (s *Server) account(r *http.Request, rec *httptest.ResponseRecorder) {
	s.stats.Requests++
	if r.Method == http.MethodGet {
		s.stats.Points++
	} else {
		s.stats.Points += 5
		s.stats.Mutations++
	}
	if r.Method == http.MethodGet && rec.Code == http.StatusOK {
		sum := sha256.Sum256(rec.Body.Bytes())
		etag := fmt.Sprintf(`W/"%x"`, sum) // api.github.com: a weak ETag of 64 hex digits
		rec.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			rec.Code = http.StatusNotModified
			rec.Body.Reset()
			rec.Header().Del("Content-Type")
			rec.Header().Del("Link")
			s.stats.NotModified++
			return
		}
	}
	s.primary = append(s.primary, s.now())
	s.stats.Primary++
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, APIPrefix)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Query: r.URL.Query()})
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") && !strings.HasPrefix(a, "token ") {
		writeError(w, http.StatusUnauthorized, "Requires authentication")
		return
	} else if tok := strings.TrimPrefix(strings.TrimPrefix(a, "Bearer "), "token "); s.token != "" && s.appID == "" && tok != s.token {
		writeError(w, http.StatusUnauthorized, "Bad credentials") // GitHub's answer to a wrong, expired or revoked token
		return
	} else if tok, ok := strings.CutPrefix(a, "token "); s.appID != "" && !strings.HasSuffix(path, "/access_tokens") {
		if exp, issued := s.tokens[tok]; !ok || !issued || time.Now().After(exp) {
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
	}
	full := path
	if r.URL.RawQuery != "" {
		full += "?" + r.URL.RawQuery
	}
	for i := range s.failures {
		f := &s.failures[i]
		if f.times > 0 && f.method == r.Method && strings.Contains(full, f.contains) {
			f.times--
			f.served++
			if f.delay > 0 {
				s.mu.Unlock()
				time.Sleep(f.delay)
				s.mu.Lock()
				break
			}
			for k, v := range f.header {
				w.Header()[k] = v
			}
			writeError(w, f.status, http.StatusText(f.status))
			return
		}
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "repos" && s.gone[strings.ToLower(parts[1]+"/"+parts[2])] {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	switch {
	case match(parts, "repos", "*", "*", "actions", "runs") && r.Method == http.MethodGet:
		s.listRuns(w, r, parts[1]+"/"+parts[2])
	case match(parts, "repos", "*", "*", "actions", "runs", "*", "jobs") && r.Method == http.MethodGet:
		s.listJobs(w, r, parts[1]+"/"+parts[2], parts[5])
	case match(parts, "repos", "*", "*", "actions", "runs", "*") && r.Method == http.MethodGet:
		s.getRun(w, parts[1]+"/"+parts[2], parts[5])
	case match(parts, "repos", "*", "*", "actions", "jobs", "*") && r.Method == http.MethodGet:
		s.getJob(w, parts[1]+"/"+parts[2], parts[5])
	case match(parts, "repos", "*", "*", "actions", "jobs", "*", "rerun") && r.Method == http.MethodPost:
		s.rerunJob(w, parts[1]+"/"+parts[2], parts[5])
	case match(parts, "app", "installations", "*", "access_tokens") && r.Method == http.MethodPost:
		s.accessToken(w, r, parts[2])
	case match(parts, "installation", "repositories") && r.Method == http.MethodGet:
		s.installationRepos(w, r)
	case match(parts, "orgs", "*", "repos") && r.Method == http.MethodGet:
		s.listOrgRepos(w, r, parts[1])
	case match(parts, "repos", "*", "*", "actions", "runners"):
		s.runnersEndpoint(w, r, parts[1]+"/"+parts[2], "")
	case match(parts, "repos", "*", "*", "actions", "runners", "*"):
		s.runnersEndpoint(w, r, parts[1]+"/"+parts[2], parts[5])
	case match(parts, "orgs", "*", "actions", "runners"):
		s.runnersEndpoint(w, r, parts[1], "")
	case match(parts, "orgs", "*", "actions", "runners", "*"):
		s.runnersEndpoint(w, r, parts[1], parts[4])
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

func match(parts []string, pattern ...string) bool {
	if len(parts) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != parts[i] {
			return false
		}
	}
	return true
}

func (s *Server) runnersEndpoint(w http.ResponseWriter, r *http.Request, scope, tail string) {
	switch {
	case tail == "" && r.Method == http.MethodGet:
		s.listRunners(w, r, scope)
	case tail == "generate-jitconfig" && r.Method == http.MethodPost:
		s.generateJIT(w, r, scope)
	case tail != "" && r.Method == http.MethodDelete:
		s.deleteRunner(w, scope, tail)
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, repo string) {
	status := r.URL.Query().Get("status")
	var runs []*Run
	for _, run := range s.runs {
		if strings.EqualFold(run.Repo, repo) && (status == "" || run.Status == status) {
			runs = append(runs, run)
		}
	}
	slices.SortFunc(runs, func(a, b *Run) int { return int(b.ID - a.ID) }) // newest first, as GitHub
	page, total := paginate(w, r, len(runs))
	items := []any{}
	for _, run := range runs[page[0]:page[1]] {
		items = append(items, s.runJSON(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "workflow_runs": items})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, repo, runID string) {
	id, _ := strconv.ParseInt(runID, 10, 64)
	run, ok := s.runs[id]
	if !ok || !strings.EqualFold(run.Repo, repo) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	// filter=latest (the default) gives the jobs of the run's latest attempt; all, of
	// every attempt (shared/github-api ops/GET_list-jobs-for-workflow-run.json; each job
	// carries run_attempt, "1 for first attempt and higher if the workflow was re-run").
	all := r.URL.Query().Get("filter") == "all"
	var jobs []*Job
	for _, j := range s.jobs {
		if j.RunID == id && (all || j.Attempt == run.Attempt) {
			jobs = append(jobs, j)
		}
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return int(a.ID - b.ID) })
	page, total := paginate(w, r, len(jobs))
	items := []any{}
	for _, j := range jobs[page[0]:page[1]] {
		items = append(items, s.jobJSON(run, j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "jobs": items})
}

func (s *Server) getRun(w http.ResponseWriter, repo, runID string) {
	id, _ := strconv.ParseInt(runID, 10, 64)
	run, ok := s.runs[id]
	if !ok || !strings.EqualFold(run.Repo, repo) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.runJSON(run))
}

func (s *Server) getJob(w http.ResponseWriter, repo, jobID string) {
	id, _ := strconv.ParseInt(jobID, 10, 64)
	j, ok := s.jobs[id]
	if !ok || !strings.EqualFold(s.runs[j.RunID].Repo, repo) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.jobJSON(s.runs[j.RunID], j))
}

// Source: REST "Re-run a job from a workflow run" (201, no body) and docs.github.com
// "Re-running workflows and jobs": a re-run starts a new attempt of the run, the job
// gets a new id. That a job is re-run only once its run has completed is what the
// docs' steps show (re-runs are offered on a finished run); the fake enforces it, and
// the tool waits for it, which costs only time if GitHub is more lenient.
//
// rerunJob re-runs a completed job (POST …/actions/jobs/{id}/rerun, 201 with no body):
// the run gets a new attempt in which the job is queued again under a new id. A job
// not completed is refused (403), as GitHub does.
func (s *Server) rerunJob(w http.ResponseWriter, repo, jobID string) {
	id, _ := strconv.ParseInt(jobID, 10, 64)
	j, ok := s.jobs[id]
	if !ok || !strings.EqualFold(s.runs[j.RunID].Repo, repo) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	run := s.runs[j.RunID]
	if j.Status != "completed" || run.Status != "completed" {
		writeError(w, http.StatusForbidden, "This workflow run is not completed")
		return
	}
	run.Attempt++
	run.Status = "queued"
	nid := s.id()
	s.jobs[nid] = &Job{ID: nid, RunID: run.ID, Name: j.Name, Status: "queued", Labels: slices.Clone(j.Labels), CreatedAt: s.now(), Attempt: run.Attempt}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) listOrgRepos(w http.ResponseWriter, r *http.Request, org string) {
	var repos []repo
	for _, rp := range s.repos {
		if strings.EqualFold(rp.owner, org) {
			repos = append(repos, rp)
		}
	}
	if len(repos) == 0 {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	// Source: "List organization repositories" (GET /orgs/{org}/repos): sort=pushed
	// orders by pushed_at, direction desc unless asc is asked for.
	if r.URL.Query().Get("sort") == "pushed" {
		slices.SortStableFunc(repos, func(a, b repo) int { return b.pushed.Compare(a.pushed) })
		if r.URL.Query().Get("direction") == "asc" {
			slices.Reverse(repos)
		}
	}
	page, _ := paginate(w, r, len(repos))
	items := []any{}
	for i, rp := range repos[page[0]:page[1]] {
		items = append(items, repoJSON(page[0]+i+1, rp))
	}
	writeJSON(w, http.StatusOK, items)
}

func repoJSON(id int, rp repo) map[string]any {
	m := example("example_repo.json")
	m["id"] = id
	m["name"] = rp.name
	m["full_name"] = rp.owner + "/" + rp.name
	m["owner"].(map[string]any)["login"] = rp.owner
	m["archived"] = rp.archived
	m["disabled"] = rp.disabled
	if !rp.pushed.IsZero() {
		m["pushed_at"] = rp.pushed.UTC().Format(time.RFC3339)
	}
	return m
}

func (s *Server) listRunners(w http.ResponseWriter, r *http.Request, scope string) {
	name := r.URL.Query().Get("name")
	var runners []*Runner
	for _, rn := range s.runners {
		if strings.EqualFold(rn.Scope, scope) && (name == "" || rn.Name == name) {
			runners = append(runners, rn)
		}
	}
	slices.SortFunc(runners, func(a, b *Runner) int { return int(a.ID - b.ID) })
	page, total := paginate(w, r, len(runners))
	items := []any{}
	for _, rn := range runners[page[0]:page[1]] {
		items = append(items, runnerJSON(rn))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": total, "runners": items})
}

func (s *Server) generateJIT(w http.ResponseWriter, r *http.Request, scope string) {
	var req struct {
		Name          string   `json:"name"`
		RunnerGroupID *int64   `json:"runner_group_id"`
		Labels        []string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || req.RunnerGroupID == nil || len(req.Labels) == 0 || len(req.Labels) > 100 {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request: name, runner_group_id and 1 to 100 labels are required")
		return
	}
	for _, rn := range s.runners {
		if strings.EqualFold(rn.Scope, scope) && rn.Name == req.Name {
			writeError(w, http.StatusConflict, "Already exists - A runner with the name "+req.Name+" already exists.")
			return
		}
	}
	s.jits++
	id := s.id()
	rn := &Runner{ID: id, Scope: scope, Name: req.Name, Status: "offline", Labels: req.Labels, Group: *req.RunnerGroupID,
		JITConfig: fmt.Sprintf("jit-secret-%d-%s", id, req.Name)}
	s.runners[id] = rn
	m := example("example_jitconfig_response.json")
	m["runner"] = runnerJSON(rn)
	m["encoded_jit_config"] = rn.JITConfig
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) deleteRunner(w http.ResponseWriter, scope, idText string) {
	id, _ := strconv.ParseInt(idText, 10, 64)
	rn, ok := s.runners[id]
	if !ok || !strings.EqualFold(rn.Scope, scope) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if rn.Busy {
		writeError(w, http.StatusUnprocessableEntity, "Bad request - Runner \""+rn.Name+"\" is still running a job\"")
		return
	}
	delete(s.runners, id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) runJSON(run *Run) map[string]any {
	m := example("example_workflow_run.json")
	m["id"] = run.ID
	m["status"] = run.Status
	m["conclusion"] = nil
	m["run_attempt"] = run.Attempt
	m["event"] = run.Event
	m["created_at"] = run.CreatedAt.UTC().Format(time.RFC3339)
	m["updated_at"] = run.CreatedAt.UTC().Format(time.RFC3339)
	// The run's repository and, for a push or a pull request from a branch of the same
	// repository, its head_repository are the same repository: same id, same full name,
	// and "fork" says whether that repository is itself a fork. A pull request from a
	// fork has another head repository, which is a fork.
	name := run.Repo[strings.Index(run.Repo, "/")+1:]
	isFork := s.forks[strings.ToLower(run.Repo)]
	if repo, ok := m["repository"].(map[string]any); ok {
		repo["id"] = repoID(run.Repo)
		repo["full_name"] = run.Repo
		repo["name"] = name
		repo["private"] = !run.Public
		repo["fork"] = isFork
	}
	if head, ok := m["head_repository"].(map[string]any); ok {
		head["id"], head["full_name"], head["name"], head["fork"] = repoID(run.Repo), run.Repo, name, isFork
		if run.Fork {
			head["id"], head["full_name"], head["fork"] = repoID("someone/"+name), "someone/"+name, true
		}
	}
	return m
}

// repoID is a repository's id: stable for its name, as GitHub's is for a repository.
func repoID(fullName string) int64 {
	sum := sha256.Sum256([]byte(strings.ToLower(fullName)))
	return int64(sum[0])<<24 | int64(sum[1])<<16 | int64(sum[2])<<8 | int64(sum[3]) + 1
}

func (s *Server) jobJSON(run *Run, j *Job) map[string]any {
	m := example("example_job.json")
	m["id"] = j.ID
	m["run_id"] = run.ID
	m["name"] = j.Name
	m["status"] = j.Status
	m["conclusion"] = nil
	m["labels"] = j.Labels
	m["created_at"] = j.CreatedAt.UTC().Format(time.RFC3339)
	m["started_at"] = j.CreatedAt.UTC().Format(time.RFC3339)
	m["completed_at"] = nil
	m["run_attempt"] = j.Attempt
	if j.Status == "completed" {
		m["conclusion"] = j.Conclusion
		m["completed_at"] = j.CompletedAt.UTC().Format(time.RFC3339)
	}
	steps := []any{}
	for i, st := range j.Steps {
		step := map[string]any{"name": st.Name, "status": st.Status, "conclusion": nil, "number": i + 1,
			"started_at": j.CreatedAt.UTC().Format(time.RFC3339), "completed_at": nil}
		if st.Status == "completed" {
			step["conclusion"] = st.Conclusion
			step["completed_at"] = st.CompletedAt.UTC().Format(time.RFC3339)
		}
		steps = append(steps, step)
	}
	m["steps"] = steps
	m["runner_name"] = j.RunnerName
	return m
}

func runnerJSON(rn *Runner) map[string]any {
	m := example("example_runner.json")
	m["id"] = rn.ID
	m["name"] = rn.Name
	m["status"] = rn.Status
	m["busy"] = rn.Busy
	m["ephemeral"] = true
	labels := []any{}
	for i, l := range rn.Labels {
		labels = append(labels, map[string]any{"id": i + 1, "name": l, "type": "custom"})
	}
	m["labels"] = labels
	return m
}

// example returns a fresh copy of one of GitHub's example objects.
func example(name string) map[string]any {
	b, err := examples.ReadFile("testdata/" + name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// paginate reads per_page and page as GitHub does (default 30, at most 100), sets the
// Link header, and returns the slice bounds of the page and the total.
func paginate(w http.ResponseWriter, r *http.Request, n int) ([2]int, int) {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (n+per-1)/per)
	link := func(p int, rel string) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo := min((page-1)*per, n)
	hi := min(lo+per, n)
	return [2]int{lo, hi}, n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)})
}
