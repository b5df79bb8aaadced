// Package gcetest is a fake Compute Engine: an httptest server that speaks the parts
// of the Compute REST API (v1) the gce backend uses, as the real client sends them —
// regions.get, instances.insert / aggregatedList / delete, zoneOperations.get and
// .wait — and a fake metadata server. Tests point the real client at it with an
// endpoint and no authentication.
package gcetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Instance is an instance as the fake holds it.
type Instance struct {
	Name     string
	Zone     string
	Status   string // PROVISIONING, RUNNING, STOPPING, TERMINATED, ...
	Labels   map[string]string
	Metadata map[string]string
	Template string // sourceInstanceTemplate of the insert
	Created  time.Time
}

// Failure is how a zone refuses an insert.
type Failure int

const (
	// FailHTTP answers the insert call itself with 503 ZONE_RESOURCE_POOL_EXHAUSTED.
	FailHTTP Failure = iota + 1
	// FailOperation accepts the call; the operation then ends with
	// ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS.
	FailOperation
	// FailNoMachineType answers the insert call with 400, reason "invalid", as Compute
	// does in a zone that does not offer the template's machine type (ARM T2A and C4A,
	// GPU and new families exist in some zones only): "Invalid value for field
	// 'resource.machineType': '…'. Machine type with name '…' does not exist in zone '…'."
	FailNoMachineType
	// FailQuota answers the insert call with 403, reason QUOTA_EXCEEDED, as Compute does
	// when a regional quota is reached (its "Resource quotas" documentation: "Quota
	// 'CPUS' exceeded. Limit: 24.0 in region us-central1.").
	FailQuota
	// FailNoTemplate answers the insert call with 404, reason "notFound", as Compute
	// does for an instance template that does not exist: "The resource
	// 'projects/…/regions/…/instanceTemplates/…' was not found" (the answer quoted in
	// mattes/gce-deploy-action issue 3: "googleapi: Error 404: The resource
	// 'projects/…/global/instanceTemplates/…' was not found, notFound").
	FailNoTemplate
)

// Permissions maps each Compute method the fake serves to the IAM permissions it needs.
// Source: Compute Engine's IAM permissions reference ("Compute Engine IAM roles and
// permissions", and each method's REST reference page, "Authorization scopes" / "IAM
// permissions"). An insert from a template also needs what the template names: a disk
// from its image, its subnetwork and external address; the labels and metadata set on
// it need setLabels and setMetadata.
var Permissions = map[string][]string{
	"compute.regions.get":                     {"compute.regions.get"},
	"compute.instances.insert":                {"compute.instances.create", "compute.instances.setLabels", "compute.instances.setMetadata", "compute.instanceTemplates.useReadOnly", "compute.disks.create", "compute.images.useReadOnly", "compute.subnetworks.use", "compute.subnetworks.useExternalIp"},
	"compute.instances.aggregatedList":        {"compute.instances.list"},
	"compute.instances.delete":                {"compute.instances.delete"},
	"compute.zoneOperations.get":              {"compute.zoneOperations.get"},
	"compute.zoneOperations.wait":             {"compute.zoneOperations.get"},
	"compute.globalOperations.aggregatedList": {"compute.globalOperations.list"},
}

// MachineType is the machine type the fake's instance templates ask for.
const MachineType = "t2a-standard-4"

type operation struct {
	name, zone, kind, target string
	errCode                  string
	httpStatus               int
	polls                    int
	doneAt                   time.Time // wall clock: the operation runs until then
	inserted                 time.Time // insertTime, on the server's clock
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// Endpoint is what the client's endpoint option takes.
	Endpoint string

	mu       sync.Mutex
	project  string
	region   string
	zones    []string
	now      func() time.Time
	insts    map[string]*Instance // zone/name
	ops      map[string]*operation
	fail     map[string]Failure // zone → how inserts fail there
	failTmpl map[string]Failure // template path → how inserts from it fail, in every zone
	down     map[string]bool    // zones the aggregated list cannot reach
	slow     time.Duration      // every insert waits this long before it is handled
	opTime   time.Duration      // an insert operation runs this long (wall clock)
	seq      int
	requests []string
	methods  map[string]int  // Compute method → calls
	denied   map[string]bool // IAM permissions the caller's role lacks
	// served counts the answers each injected fault gave ("zone:Z", "template:T",
	// "deny:P"); a fault injected and never served fails the test.
	served map[string]int
}

// NewServer starts a fake for one project and region with these zones; it is closed
// when the test ends, and the test fails if a fault it was told to inject (FailZone,
// FailTemplate, Deny) was never served: a test whose fault did not happen tests
// nothing.
func NewServer(t interface {
	Cleanup(func())
	Errorf(format string, args ...any)
}, project, region string, zones ...string) *Server {
	s := &Server{project: project, region: region, zones: zones, now: time.Now,
		insts: map[string]*Instance{}, ops: map[string]*operation{}, fail: map[string]Failure{}, down: map[string]bool{},
		methods: map[string]int{}, denied: map[string]bool{}, failTmpl: map[string]Failure{}, served: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Endpoint = s.Server.URL
	t.Cleanup(s.Server.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range slices.Sorted(maps.Keys(s.served)) {
			if s.served[k] == 0 {
				t.Errorf("gcetest: the fault injected for %s was never served", k)
			}
		}
	})
	return s
}

// inject tracks a fault from now on (on) or forgets it (off).
func (s *Server) inject(key string, on bool) {
	if !on {
		delete(s.served, key)
	} else if _, ok := s.served[key]; !ok {
		s.served[key] = 0
	}
}

// hit counts an answer of the fault, if it is tracked.
func (s *Server) hit(key string) {
	if _, ok := s.served[key]; ok {
		s.served[key]++
	}
}

// SetClock makes new instances carry now() as their creation time.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// FailZone makes every insert into zone fail as f says (0: succeed again).
func (s *Server) FailZone(zone string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[zone] = f
	s.inject("zone:"+zone, f != 0)
}

// FailTemplate makes every insert from the template (its full path) fail as f says,
// in every zone (0: succeed again): a Spot template stocked out in the region while a
// standard one of the same machine has room.
func (s *Server) FailTemplate(template string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failTmpl[template] = f
	s.inject("template:"+template, f != 0)
}

// SlowInserts makes every insert wait d before it is handled, as a busy zone does.
func (s *Server) SlowInserts(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = d
}

// OperationTime makes every insert operation run d (wall clock) after the call returns
// (DESIGN: insert operations take 10–40 s on real GCE; the instance is listed, in
// PROVISIONING, as soon as the call is accepted),
// as Compute's do (10–40 s for a VM from a template): the instance is listed at once,
// PROVISIONING, and zoneOperations.get answers RUNNING until then.
func (s *Server) OperationTime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opTime = d
}

// preempted is the operationType Compute records when it preempts a Spot VM.
const preempted = "compute.instances.preempted"

// Source: Compute Engine's "Spot VMs" documentation, "Detect if a Spot VM was
// preempted": a zone operation of operationType compute.instances.preempted targets
// the instance; instanceTerminationAction STOP leaves it TERMINATED, DELETE deletes it.
//
// Preempt takes a Spot VM away as Compute does: a compute.instances.preempted
// operation on the instance, then, as the template's instanceTerminationAction says,
// the instance STOP-ped (TERMINATED) or deleted (deleted true). False if there is no
// instance of that name.
func (s *Server) Preempt(name string, deleted bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, in := range s.insts {
		if in.Name != name {
			continue
		}
		s.newOp(in.Zone, preempted, name, "", 0)
		if deleted {
			delete(s.insts, key)
		} else {
			in.Status = "TERMINATED"
		}
		return true
	}
	return false
}

// Unreachable makes the aggregated list report zone as unreachable, as Compute does
// during a zonal outage: its instances are missing from the answer.
func (s *Server) Unreachable(zone string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[zone] = down
}

// SetStatus changes an instance's status; false if there is none of that name.
func (s *Server) SetStatus(name, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.insts {
		if in.Name == name {
			in.Status = status
			return true
		}
	}
	return false
}

// Put adds an instance directly.
func (s *Server) Put(in Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.Created.IsZero() {
		in.Created = s.now()
	}
	s.insts[in.Zone+"/"+in.Name] = &in
}

// Instances returns the instances, sorted by name then zone.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	for _, in := range s.insts {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Instance) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Zone, b.Zone)
	})
	return out
}

// Deny makes every method that needs the IAM permission answer as Compute does to a
// role that lacks it: 403, reason "forbidden", "Required '<permission>' permission for
// '<resource>'" (false: allow it again).
func (s *Server) Deny(permission string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[permission] = denied
	s.inject("deny:"+permission, denied)
}

// Methods returns how often each Compute method was called (Permissions' keys).
func (s *Server) Methods() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.methods)
}

// allowed records a call of method and answers 403 if the role lacks a permission it
// needs; the caller holds s.mu.
func (s *Server) allowed(w http.ResponseWriter, method string) bool {
	s.methods[method]++
	for _, p := range Permissions[method] {
		if s.denied[p] {
			s.hit("deny:" + p)
			apiError(w, http.StatusForbidden, "forbidden", "Required '"+p+"' permission for 'projects/"+s.project+"'")
			return false
		}
	}
	return true
}

// Requests returns "METHOD path?query" of every request received.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

var (
	regionPath = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/regions/([^/]+)$`)
	insertPath = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances$`)
	instPath   = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$`)
	opPath     = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)$`)
	waitPath   = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)/wait$`)
	aggPath    = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/aggregated/instances$`)
	aggOpsPath = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/aggregated/operations$`)
	opFilter   = regexp.MustCompile(`^operationType\s*=\s*"([a-z.]+)"$`)
	// GCE's requirements for labels (cloud.google.com/compute/docs/labeling-resources,
	// "Requirements for labels"): keys start with a lowercase letter; keys and values
	// hold at most 63 lowercase letters, digits, '_' and '-' (international characters
	// too, which the tool never sends); a value may be empty.
	labelKey   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValue = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	filterExpr = regexp.MustCompile(`^labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?$`)
	namePat    = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && waitPath.MatchString(r.URL.Path) {
		s.wait(w, r, waitPath.FindStringSubmatch(r.URL.Path))
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if slow := s.slow; slow > 0 && r.Method == http.MethodPost {
		// The request has reached Compute: it is done even if the caller goes away
		// while Compute takes its time (read the body now; the connection may close).
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Unlock()
		time.Sleep(slow)
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	p := r.URL.Path
	var m []string
	project := func() bool {
		if m[1] != s.project {
			apiError(w, http.StatusNotFound, "notFound", "project "+m[1]+" not found")
			return false
		}
		return true
	}
	switch {
	case r.Method == http.MethodGet && regionPath.MatchString(p):
		m = regionPath.FindStringSubmatch(p)
		if !s.allowed(w, "compute.regions.get") || !project() {
			return
		}
		if m[2] != s.region {
			apiError(w, http.StatusNotFound, "notFound", "region "+m[2]+" not found")
			return
		}
		var zones []string
		for _, z := range s.zones {
			zones = append(zones, fmt.Sprintf("%s/compute/v1/projects/%s/zones/%s", s.Endpoint, s.project, z))
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "compute#region", "name": s.region, "status": "UP", "zones": zones})
	case r.Method == http.MethodPost && insertPath.MatchString(p):
		m = insertPath.FindStringSubmatch(p)
		if s.allowed(w, "compute.instances.insert") && project() {
			s.insert(w, r, m[2])
		}
	case r.Method == http.MethodDelete && instPath.MatchString(p):
		m = instPath.FindStringSubmatch(p)
		if !s.allowed(w, "compute.instances.delete") || !project() {
			return
		}
		key := m[2] + "/" + m[3]
		if _, ok := s.insts[key]; !ok {
			apiError(w, http.StatusNotFound, "notFound", "The resource 'projects/"+s.project+"/zones/"+key+"' was not found")
			return
		}
		delete(s.insts, key)
		writeJSON(w, http.StatusOK, s.newOp(m[2], "delete", m[3], "", 0).json(s))
	case r.Method == http.MethodGet && opPath.MatchString(p):
		m = opPath.FindStringSubmatch(p)
		op, ok := s.ops[m[3]]
		if !s.allowed(w, "compute.zoneOperations.get") || !project() {
			return
		}
		if !ok || op.zone != m[2] {
			apiError(w, http.StatusNotFound, "notFound", "operation not found")
			return
		}
		op.polls++
		writeJSON(w, http.StatusOK, op.json(s))
	case r.Method == http.MethodGet && aggOpsPath.MatchString(p):
		m = aggOpsPath.FindStringSubmatch(p)
		if s.allowed(w, "compute.globalOperations.aggregatedList") && project() {
			s.aggregatedOps(w, r)
		}
	case r.Method == http.MethodGet && aggPath.MatchString(p):
		m = aggPath.FindStringSubmatch(p)
		if s.allowed(w, "compute.instances.aggregatedList") && project() {
			s.aggregated(w, r)
		}
	default:
		apiError(w, http.StatusNotFound, "notFound", "no such method: "+r.Method+" "+p)
	}
}

// Source: the Compute API reference, zoneOperations.wait: "Waits for the specified
// Operation resource to return as DONE or for the request to approach the 2 minute
// deadline … best-effort … Be prepared to retry if the operation is not DONE."
//
// waitTimeout is how long zoneOperations.wait holds a request at most ("approaching
// the 2 minute deadline").
const waitTimeout = 2 * time.Minute

// wait answers zoneOperations.wait: the operation once it is done, or as it stands
// after waitTimeout.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, m []string) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if !s.allowed(w, "compute.zoneOperations.wait") {
		s.mu.Unlock()
		return
	}
	op, ok := s.ops[m[3]]
	if m[1] != s.project || !ok || op.zone != m[2] {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "notFound", "operation not found")
		return
	}
	d := min(time.Until(op.doneAt), waitTimeout)
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op.polls++
	writeJSON(w, http.StatusOK, op.json(s))
}

func (s *Server) insert(w http.ResponseWriter, r *http.Request, zone string) {
	if !slices.Contains(s.zones, zone) {
		apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'zone': '"+zone+"'")
		return
	}
	tmpl := r.URL.Query().Get("sourceInstanceTemplate")
	if tmpl == "" || r.URL.Query().Get("requestId") == "" {
		apiError(w, http.StatusBadRequest, "required", "sourceInstanceTemplate and requestId are required here")
		return
	}
	var body struct {
		Name     string            `json:"name"`
		Labels   map[string]string `json:"labels"`
		Metadata struct {
			Items []struct{ Key, Value string } `json:"items"`
		} `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "parseError", err.Error())
		return
	}
	if !namePat.MatchString(body.Name) {
		apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.name': '"+body.Name+"'")
		return
	}
	for k, v := range body.Labels {
		if !labelKey.MatchString(k) || !labelValue.MatchString(v) {
			apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.labels': '"+k+"'")
			return
		}
	}
	fail := s.fail[zone]
	if fail != 0 {
		s.hit("zone:" + zone)
	}
	if f := s.failTmpl[tmpl]; f != 0 {
		fail = f
		s.hit("template:" + tmpl)
	}
	switch fail {
	case FailNoTemplate:
		apiError(w, http.StatusNotFound, "notFound", "The resource '"+tmpl+"' was not found")
		return
	case FailHTTP:
		apiError(w, http.StatusServiceUnavailable, "ZONE_RESOURCE_POOL_EXHAUSTED",
			"The zone 'projects/"+s.project+"/zones/"+zone+"' does not have enough resources available to fulfill the request.")
		return
	case FailOperation:
		writeJSON(w, http.StatusOK, s.newOp(zone, "insert", body.Name, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", http.StatusServiceUnavailable).json(s))
		return
	case FailQuota:
		apiError(w, http.StatusForbidden, "QUOTA_EXCEEDED", "Quota 'CPUS' exceeded. Limit: 24.0 in region "+s.region+".")
		return
	case FailNoMachineType:
		apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.machineType': 'zones/"+zone+"/machineTypes/"+MachineType+
			"'. Machine type with name '"+MachineType+"' does not exist in zone '"+zone+"'.")
		return
	}
	if _, ok := s.insts[zone+"/"+body.Name]; ok {
		apiError(w, http.StatusConflict, "alreadyExists", "The resource 'projects/"+s.project+"/zones/"+zone+"/instances/"+body.Name+"' already exists")
		return
	}
	md := map[string]string{}
	for _, it := range body.Metadata.Items {
		md[it.Key] = it.Value
	}
	status := "RUNNING"
	if s.opTime > 0 {
		status = "PROVISIONING"
	}
	s.insts[zone+"/"+body.Name] = &Instance{Name: body.Name, Zone: zone, Status: status, Labels: body.Labels, Metadata: md, Template: tmpl, Created: s.now()}
	writeJSON(w, http.StatusOK, s.newOp(zone, "insert", body.Name, "", 0).json(s))
}

func (s *Server) newOp(zone, kind, target, errCode string, status int) *operation {
	s.seq++
	op := &operation{name: fmt.Sprintf("operation-%d", s.seq), zone: zone, kind: kind, target: target, errCode: errCode, httpStatus: status,
		doneAt: time.Now().Add(s.opTime), inserted: s.now()}
	s.ops[op.name] = op
	return op
}

// json renders the operation: running when the call returns, done from the first poll
// on once its time has passed; an insert that is done has a RUNNING instance.
func (op *operation) json(s *Server) map[string]any {
	m := map[string]any{
		"kind":          "compute#operation",
		"name":          op.name,
		"zone":          fmt.Sprintf("%s/compute/v1/projects/%s/zones/%s", s.Endpoint, s.project, op.zone),
		"operationType": op.kind,
		"targetLink":    fmt.Sprintf("%s/compute/v1/projects/%s/zones/%s/instances/%s", s.Endpoint, s.project, op.zone, op.target),
		"status":        "RUNNING",
		"progress":      0,
		"insertTime":    op.inserted.Format("2006-01-02T15:04:05.000-07:00"),
	}
	if op.kind == preempted { // the system's own, done when it is listed
		m["status"], m["progress"] = "DONE", 100
		return m
	}
	if op.polls > 0 && !time.Now().Before(op.doneAt) {
		m["status"], m["progress"] = "DONE", 100
		if in := s.insts[op.zone+"/"+op.target]; in != nil && op.kind == "insert" && in.Status == "PROVISIONING" {
			in.Status = "RUNNING"
		}
		if op.errCode != "" {
			m["error"] = map[string]any{"errors": []any{map[string]any{"code": op.errCode,
				"message": "The zone '" + op.zone + "' does not have enough resources available to fulfill the request."}}}
			m["httpErrorStatusCode"] = op.httpStatus
			m["httpErrorMessage"] = http.StatusText(op.httpStatus)
		}
	}
	return m
}

func (s *Server) aggregated(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var key, value string
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		m := filterExpr.FindStringSubmatch(f)
		if m == nil {
			apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'filter': '"+f+"'")
			return
		}
		key, value = m[1], m[2]
	}
	var all []*Instance
	for _, in := range s.insts {
		if key == "" || in.Labels[key] == value {
			all = append(all, in)
		}
	}
	slices.SortFunc(all, func(a, b *Instance) int { return strings.Compare(a.Zone+"/"+a.Name, b.Zone+"/"+b.Name) })
	per, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || per <= 0 || per > 500 {
		per = 500
	}
	start, _ := strconv.Atoi(q.Get("pageToken"))
	end := min(start+per, len(all))
	start = min(start, end)
	items := map[string]any{}
	for _, z := range s.zones {
		items["zones/"+z] = map[string]any{"warning": map[string]any{"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'zones/" + z + "' on this page."}}
	}
	for _, in := range all[start:end] {
		if s.down[in.Zone] {
			continue
		}
		scope := items["zones/"+in.Zone].(map[string]any)
		delete(scope, "warning")
		list, _ := scope["instances"].([]any)
		scope["instances"] = append(list, s.instanceJSON(in))
	}
	for z, down := range s.down {
		if down {
			items["zones/"+z] = map[string]any{"warning": map[string]any{"code": "UNREACHABLE",
				"message": "Scope 'zones/" + z + "' is unreachable."}}
		}
	}
	resp := map[string]any{"kind": "compute#instanceAggregatedList", "items": items}
	if end < len(all) {
		resp["nextPageToken"] = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, resp)
}

// aggregatedOps answers globalOperations.aggregatedList: every zone's operations, one
// page, filtered by operationType (the only filter the backend sends).
func (s *Server) aggregatedOps(w http.ResponseWriter, r *http.Request) {
	kind := ""
	if f := strings.TrimSpace(r.URL.Query().Get("filter")); f != "" {
		m := opFilter.FindStringSubmatch(f)
		if m == nil {
			apiError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'filter': '"+f+"'")
			return
		}
		kind = m[1]
	}
	items := map[string]any{}
	for _, z := range s.zones {
		var ops []any
		for _, name := range slices.Sorted(maps.Keys(s.ops)) {
			if op := s.ops[name]; op.zone == z && (kind == "" || op.kind == kind) {
				ops = append(ops, op.json(s))
			}
		}
		if len(ops) == 0 {
			items["zones/"+z] = map[string]any{"warning": map[string]any{"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'zones/" + z + "' on this page."}}
			continue
		}
		items["zones/"+z] = map[string]any{"operations": ops}
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "compute#operationAggregatedList", "items": items})
}

func (s *Server) instanceJSON(in *Instance) map[string]any {
	var items []any
	for k, v := range in.Metadata {
		items = append(items, map[string]any{"key": k, "value": v})
	}
	return map[string]any{
		"kind":              "compute#instance",
		"name":              in.Name,
		"zone":              fmt.Sprintf("%s/compute/v1/projects/%s/zones/%s", s.Endpoint, s.project, in.Zone),
		"status":            in.Status,
		"labels":            in.Labels,
		"metadata":          map[string]any{"kind": "compute#metadata", "items": items},
		"creationTimestamp": in.Created.Format("2006-01-02T15:04:05.000-07:00"),
	}
}

func apiError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []any{map[string]any{"message": msg, "domain": "global", "reason": reason}},
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Metadata is a fake metadata server; set GCE_METADATA_HOST to its Host.
type Metadata struct {
	*httptest.Server
	Host string
}

// NewMetadata serves project-id and instance/zone, as the metadata server does, and
// requires the Metadata-Flavor header as it does.
func NewMetadata(t interface{ Cleanup(func()) }, project, projectNumber, zone string) *Metadata {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "Missing Metadata-Flavor:Google header", http.StatusForbidden)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		switch r.URL.Path {
		case "/computeMetadata/v1/project/project-id":
			fmt.Fprint(w, project)
		case "/computeMetadata/v1/instance/zone":
			fmt.Fprintf(w, "projects/%s/zones/%s", projectNumber, zone)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return &Metadata{Server: srv, Host: strings.TrimPrefix(srv.URL, "http://")}
}
