package gce

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/compute/metadata"
	"github.com/google/uuid"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Labels and metadata keys that carry a runner's state on its instance. GCE label keys
// and values allow lowercase letters, digits, '_' and '-' only.
const (
	LabelOwner = "reconcile-owner" // the name prefix: what has it is this installation's
	LabelPool  = "reconcile-pool"
	LabelJobID = "reconcile-job-id"
	// LabelRunID and LabelRepo carry the workflow run and the repository (RepoLabel)
	// into Cloud Billing's export, so that cost can be split by them.
	LabelRunID       = "reconcile-run-id"
	LabelRepo        = "reconcile-repo"
	LabelTemplate    = "reconcile-template"   // the template's name: which of a pool's templates made it
	MetadataJIT      = "reconcile-jit-config" // read by the startup script; a credential
	MetadataScope    = "reconcile-scope"      // where the runner is registered
	MetadataRepo     = "reconcile-repo"       // the repository of the job it was made for
	operationTimeout = 5 * time.Minute
)

// ownership keeps a runner's Ownership in its instance's labels and metadata (the
// instance's name is the runner's).
var ownership = reconcile.OwnershipKeys{Owner: LabelOwner, Pool: LabelPool, JobID: LabelJobID, Scope: MetadataScope, Repo: MetadataRepo,
	RunID: LabelRunID, BillingRepo: LabelRepo, LabelValue: gceLabelRune}

// gceLabelRune is GCE's rule for a label value's characters: lowercase letters,
// digits, '_' and '-' ("Requirements for labels", cloud.google.com/compute/docs/
// labeling-resources; international characters are allowed too, and not used here).
func gceLabelRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// capacityReasons are the error codes that say "not here, try another zone".
var capacityReasons = []string{
	"ZONE_RESOURCE_POOL_EXHAUSTED",
	"ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
	"QUOTA_EXCEEDED",
	"quotaExceeded",
	"resourcePoolExhausted",
	"STOCKOUT",
}

// lackingTTL is how long a zone that does not offer the template's machine type (or
// accelerator, or CPU platform) is left out of the zone order: such zones gain a machine
// family seldom, and after a day one failed insert tells again.
const lackingTTL = 24 * time.Hour

// Backend runs runners as instances of one project: one pool's, or several pools' of
// that project (AddPool), each with its template and zones, so that a pass lists the
// project's instances once whatever the number of its pools.
type Backend struct {
	cfg       Config // the first pool's, with what New filled in
	owner     string
	opts      []option.ClientOption
	instances *compute.InstancesClient
	ops       *compute.ZoneOperationsClient
	allOps    *compute.GlobalOperationsClient
	// PageSize is how many instances one aggregated list request asks for.
	PageSize uint32

	mu      sync.Mutex
	pools   map[string]Config // pool → its configuration, for pools added by AddPool
	memo    reconcile.Memo
	lacking map[string]map[string]time.Time // template → zone → when an insert found the zone lacks what it asks for
	now     func() time.Time
	// gates hold back the inserts into a zone this process has not yet placed the
	// template in: the first goes alone, so that a burst finds out once, not once per
	// runner, that the zone lacks the machine type. placed: zones that took one.
	gates  map[string]chan struct{} // template|zone: a one-slot semaphore
	placed map[string]bool
}

var _ reconcile.Backend = (*Backend)(nil)

// Options implements reconcile.Backend: the pool's templates by name, the preferred
// first.
func (b *Backend) Options(pool string) []string {
	var out []string
	for _, t := range b.poolConfig(pool).Templates() {
		out = append(out, templateName(t))
	}
	return out
}

// Describe implements reconcile.Backend.
func (b *Backend) Describe() (where, check string) {
	where = "Compute Engine project " + b.cfg.Project
	if b.cfg.Endpoint != "" {
		where += " at " + b.cfg.Endpoint
	}
	return where, "check Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, or the VM's or workload's service account), " +
		"that its role grants manifests/gce/role.yaml, and the project, region and templates in the configuration"
}

// New returns a backend for a pool. It fills in the project, region and zones the
// configuration leaves unset, from the metadata server (GCE_METADATA_HOST redirects
// it) and the regions API. opts carry authentication (and, in tests, none).
func New(ctx context.Context, cfg Config, owner string, opts ...option.ClientOption) (*Backend, error) {
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	if cfg.Project == "" {
		p, err := metadata.ProjectIDWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("project is not set and the metadata server did not say: %w", err)
		}
		cfg.Project = p
	}
	if cfg.Region == "" {
		z, err := metadata.ZoneWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("region is not set and the metadata server did not say its zone: %w", err)
		}
		cfg.Region = regionOf(z)
	}
	if len(cfg.Zones) == 0 {
		zones, err := regionZones(ctx, cfg.Project, cfg.Region, opts)
		if err != nil {
			return nil, err
		}
		cfg.Zones = zones
	}
	instances, err := compute.NewInstancesRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute client: %w", err)
	}
	ops, err := compute.NewZoneOperationsRESTClient(ctx, opts...)
	if err != nil {
		instances.Close()
		return nil, fmt.Errorf("compute client: %w", err)
	}
	allOps, err := compute.NewGlobalOperationsRESTClient(ctx, opts...)
	if err != nil {
		instances.Close()
		ops.Close()
		return nil, fmt.Errorf("compute client: %w", err)
	}
	return &Backend{cfg: cfg, owner: owner, opts: opts, instances: instances, ops: ops, allOps: allOps, PageSize: 500,
		pools: map[string]Config{}, lacking: map[string]map[string]time.Time{}, now: time.Now}, nil
}

// AddPool makes the backend serve another pool of its project, with the pool's own
// template and zones (every zone of its region when unset).
func (b *Backend) AddPool(ctx context.Context, pool string, cfg Config) error {
	if cfg.Project == "" {
		cfg.Project = b.cfg.Project
	}
	if cfg.Region == "" {
		cfg.Region = b.cfg.Region
	}
	if cfg.Project != b.cfg.Project || cfg.Endpoint != b.cfg.Endpoint {
		return fmt.Errorf("pool %s: project %s is not this backend's %s", pool, cfg.Project, b.cfg.Project)
	}
	if len(cfg.Zones) == 0 {
		zones, err := regionZones(ctx, cfg.Project, cfg.Region, b.opts)
		if err != nil {
			return err
		}
		cfg.Zones = zones
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pools[pool] = cfg
	return nil
}

// poolConfig returns the configuration of a pool: its own if AddPool gave one, else the
// first pool's.
func (b *Backend) poolConfig(pool string) Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.pools[pool]; ok {
		return c
	}
	return b.cfg
}

// regionZones lists the zones of a region that are up.
func regionZones(ctx context.Context, project, region string, opts []option.ClientOption) ([]string, error) {
	rc, err := compute.NewRegionsRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute client: %w", err)
	}
	defer rc.Close()
	r, err := rc.Get(ctx, &computepb.GetRegionRequest{Project: project, Region: region})
	if err != nil {
		return nil, fmt.Errorf("listing the zones of region %s: %w", region, err)
	}
	var zones []string
	for _, z := range r.GetZones() {
		zones = append(zones, path.Base(z))
	}
	slices.Sort(zones)
	if len(zones) == 0 {
		return nil, fmt.Errorf("region %s has no zones", region)
	}
	return zones, nil
}

// Config returns the configuration with what New filled in.
func (b *Backend) Config() Config { return b.cfg }

// Close releases the client's connections.
func (b *Backend) Close() error {
	return errors.Join(b.instances.Close(), b.ops.Close(), b.allOps.Close())
}

// List returns the runners of every instance of the project with this tool's owner
// label, in one aggregated listing, every page. A zone that could not be read fails
// the listing: never a partial list.
func (b *Backend) List(ctx context.Context) ([]reconcile.Runner, error) {
	it := b.instances.AggregatedList(ctx, &computepb.AggregatedListInstancesRequest{
		Project:    b.cfg.Project,
		Filter:     proto.String(fmt.Sprintf("labels.%s = %q", LabelOwner, b.owner)),
		MaxResults: proto.Uint32(b.PageSize),
	})
	var out []reconcile.Runner
	for {
		pair, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, classify(fmt.Errorf("listing instances of project %s: %w", b.cfg.Project, err))
		}
		if w := pair.Value.GetWarning(); w.GetCode() == "UNREACHABLE" {
			return nil, fmt.Errorf("listing instances of project %s: %s unreachable: %s", b.cfg.Project, pair.Key, w.GetMessage())
		}
		for _, in := range pair.Value.GetInstances() {
			if in.GetLabels()[LabelOwner] != b.owner {
				continue // the filter should have left it out; be sure
			}
			out = append(out, runnerOf(in))
		}
	}
	return b.markPreempted(ctx, out)
}

// markPreempted sets PreemptedAt on the finished runners whose instance Compute
// preempted (a compute.instances.preempted operation on it), with one aggregated
// listing of those operations; without a finished runner it asks nothing. The
// listing only refines what List says: when it fails (a role without
// compute.globalOperations.list), the runners are returned as they are, with a
// reconcile.Degraded error: preemption unknown, no job is re-run, and the finished
// instances are deleted as finished.
func (b *Backend) markPreempted(ctx context.Context, runners []reconcile.Runner) ([]reconcile.Runner, error) {
	if !slices.ContainsFunc(runners, func(r reconcile.Runner) bool { return r.Phase == reconcile.PhaseFinished }) {
		return runners, nil
	}
	it := b.allOps.AggregatedList(ctx, &computepb.AggregatedListGlobalOperationsRequest{
		Project: b.cfg.Project,
		Filter:  proto.String(`operationType = "compute.instances.preempted"`),
	})
	at := map[string]time.Time{} // zone/name → when
	for {
		pair, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return runners, &reconcile.Degraded{Err: classify(fmt.Errorf("listing preemptions in project %s (a finished runner's job is not re-run): %w", b.cfg.Project, err))}
		}
		for _, op := range pair.Value.GetOperations() {
			t, err := time.Parse(time.RFC3339, op.GetInsertTime())
			if err != nil {
				continue
			}
			link := op.GetTargetLink()
			name := link[strings.LastIndex(link, "/")+1:]
			zone := op.GetZone()[strings.LastIndex(op.GetZone(), "/")+1:]
			at[zone+"/"+name] = t
		}
	}
	for i, r := range runners {
		if t, ok := at[r.Location+"/"+r.Name]; ok && r.Phase == reconcile.PhaseFinished && !t.Before(r.CreatedAt) {
			runners[i].PreemptedAt = t
		}
	}
	return runners, nil
}

// runnerOf reads a runner's state back from its instance.
func runnerOf(in *computepb.Instance) reconcile.Runner {
	meta := map[string]string{}
	for _, it := range in.GetMetadata().GetItems() {
		if it.GetKey() != MetadataJIT { // a credential: not read back
			meta[it.GetKey()] = it.GetValue()
		}
	}
	o := ownership.Decode(in.GetLabels(), meta)
	r := reconcile.Runner{
		Name:     in.GetName(),
		Pool:     o.Pool,
		Scope:    o.Scope,
		Repo:     o.Repo,
		JobID:    o.JobID,
		Location: path.Base(in.GetZone()),
		Phase:    reconcile.PhaseActive,
		Option:   in.GetLabels()[LabelTemplate],
	}
	r.CreatedAt, _ = time.Parse(time.RFC3339, in.GetCreationTimestamp())
	switch in.GetStatus() {
	case "STOPPING", "STOPPED", "SUSPENDING", "SUSPENDED", "TERMINATED":
		// Preempted, or powered off by the startup script after its job.
		r.Phase = reconcile.PhaseFinished
	}
	return r
}

// UseMemo keeps in m (the Notes of --cache) the zones that lack a template's machine type
// are kept there too, so that the next --once process does not try them first.
func (b *Backend) UseMemo(m reconcile.Memo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.memo = m
	var cfgs []Config
	for _, c := range append([]Config{b.cfg}, slices.Collect(maps.Values(b.pools))...) {
		for _, t := range c.Templates() {
			cfgs = append(cfgs, c.withTemplate(templateName(t)))
		}
	}
	for _, c := range cfgs {
		v, _ := m.Recall(memoLackingZones, c.templatePath())
		for _, item := range strings.Split(v, ",") {
			zone, at, ok := strings.Cut(item, "=")
			sec, err := strconv.ParseInt(at, 10, 64)
			if ok && err == nil && slices.Contains(c.Zones, zone) {
				b.lackingLocked(c)[zone] = time.Unix(sec, 0)
			}
		}
	}
}

func (b *Backend) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// memoLackingZones is the memo of the zones that lack a template's machine type, by
// template.
const memoLackingZones reconcile.MemoKind = "gce-lacking-zones"

// lackingLocked returns the zones known to lack what c's template asks for; the caller
// holds b.mu.
func (b *Backend) lackingLocked(c Config) map[string]time.Time {
	if b.lacking == nil {
		b.lacking = map[string]map[string]time.Time{}
	}
	t := c.templatePath()
	if b.lacking[t] == nil {
		b.lacking[t] = map[string]time.Time{}
	}
	return b.lacking[t]
}

// markLacking remembers that zone does not offer what c's template asks for.
func (b *Backend) markLacking(c Config, zone string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lacking := b.lackingLocked(c)
	lacking[zone] = b.clock()
	if b.memo == nil {
		return
	}
	var items []string
	for _, z := range slices.Sorted(maps.Keys(lacking)) {
		items = append(items, z+"="+strconv.FormatInt(lacking[z].Unix(), 10))
	}
	b.memo.Remember(memoLackingZones, c.templatePath(), strings.Join(items, ","))
}

// zoneOrder returns a pool's zones in ZoneSpread's order, leaving out the zones known
// to lack the template's machine type (all of them are tried if every zone is known to
// lack it: the knowledge may be old).
func (b *Backend) zoneOrder(c Config, name string) []string {
	order := ZoneSpread(c.Zones, name)
	b.mu.Lock()
	defer b.mu.Unlock()
	lacking := b.lackingLocked(c)
	offered := slices.DeleteFunc(slices.Clone(order), func(z string) bool {
		at, ok := lacking[z]
		return ok && b.clock().Sub(at) < lackingTTL
	})
	if len(offered) == 0 {
		return order
	}
	return offered
}

// ZoneSpread returns the zones in the order a create of the named runner tries them,
// before any zone is found lacking its machine type: the zones in turn, from one picked
// by a hash of the name, so that runners spread evenly and a retried create of the
// same runner tries the same zone first.
func ZoneSpread(zones []string, name string) []string {
	h := fnv.New32a()
	h.Write([]byte(name))
	start := int(h.Sum32() % uint32(len(zones)))
	return append(slices.Clone(zones[start:]), zones[:start]...)
}

// Create inserts an instance from the template spec.Option names (the pool's first
// without one) and waits for the operation, so that a create reported done is done. A
// zone out of capacity (stockout, zonal quota), or one that does not offer the
// template's machine type, accelerator or CPU platform, moves the create to the next
// zone; the latter is remembered (see zoneOrder). Nil if an instance of that name
// already exists. The error says what kind of failure it was (reconcile.PlatformError):
// no capacity when every zone tried had none, quota when every zone answered with a
// quota, invalid when no zone offers the machine type or the template is missing, a
// permission the role lacks.
func (b *Backend) Create(ctx context.Context, spec reconcile.RunnerSpec) error {
	var tried []string
	var errs []error
	c := b.poolConfig(spec.Pool).withTemplate(spec.Option)
	quota, lacking := 0, 0
	for _, zone := range b.zoneOrder(c, spec.Name) {
		err := b.insert(ctx, c, zone, spec)
		if err == nil {
			return nil
		}
		switch {
		case errors.Is(err, errLacking):
			lacking++
		case isNotOffered(err, zone):
			b.markLacking(c, zone)
			lacking++
		case isQuota(err):
			quota++
		case !isCapacity(err):
			return classify(fmt.Errorf("creating instance %s from template %s in %s: %w", spec.Name, templateName(c.InstanceTemplate), zone, err))
		}
		tried = append(tried, zone)
		errs = append(errs, fmt.Errorf("%s: %w", zone, err))
	}
	err := fmt.Errorf("creating instance %s from template %s: no zone could take it (tried %s): %w",
		spec.Name, templateName(c.InstanceTemplate), strings.Join(tried, ", "), errors.Join(errs...))
	switch {
	case lacking == len(tried):
		return reconcile.Classify(reconcile.FailInvalid, err) // the machine type is offered nowhere the pool may go
	case quota+lacking == len(tried):
		return reconcile.Classify(reconcile.FailQuota, err)
	}
	return reconcile.Classify(reconcile.FailNoCapacity, err)
}

func (b *Backend) insert(ctx context.Context, c Config, zone string, spec reconcile.RunnerSpec) error {
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	labels, notes := ownership.Encode(reconcile.OwnershipOf(b.owner, spec))
	labels[LabelTemplate] = templateName(c.InstanceTemplate)
	items := []*computepb.Items{{Key: proto.String(MetadataJIT), Value: proto.String(spec.JITConfig.Reveal())}}
	for _, k := range slices.Sorted(maps.Keys(notes)) {
		items = append(items, &computepb.Items{Key: proto.String(k), Value: proto.String(notes[k])})
	}
	in := &computepb.Instance{Name: proto.String(spec.Name), Labels: labels, Metadata: &computepb.Metadata{Items: items}}
	release, err := b.enter(ctx, c, zone)
	if err != nil {
		return err
	}
	op, err := b.instances.Insert(ctx, &computepb.InsertInstanceRequest{
		Project:                b.cfg.Project,
		Zone:                   zone,
		InstanceResource:       in,
		SourceInstanceTemplate: proto.String(c.templatePath()),
		RequestId:              proto.String(uuid.NewString()),
	})
	release(err)
	if isAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return err
	}
	done, err := b.wait(ctx, zone, op.Proto())
	if err != nil {
		return err
	}
	// The operation's own errors are what count (an operation can fail without an HTTP
	// status).
	if oe := operationError(done); oe != nil {
		if isAlreadyExists(oe) {
			return nil
		}
		return oe
	}
	return nil
}

// wait waits for a zone operation to be DONE with zoneOperations.wait, which answers
// when it is, or after about two minutes (or sooner: it is best-effort), and returns
// it. Operation.Wait's polling of zoneOperations.get backs off to a minute between
// looks, which can leave a 30-second operation unnoticed for half a minute more while
// the create holds a backend slot; wait costs one request a look.
func (b *Backend) wait(ctx context.Context, zone string, op *computepb.Operation) (*computepb.Operation, error) {
	for op.GetStatus() != computepb.Operation_DONE {
		next, err := b.ops.Wait(ctx, &computepb.WaitZoneOperationRequest{Project: b.cfg.Project, Zone: zone, Operation: op.GetName()})
		if err != nil {
			return nil, fmt.Errorf("waiting for operation %s: %w", op.GetName(), err)
		}
		op = next
	}
	return op, nil
}

// errLacking: the zone was found lacking the template's machine type while this insert
// waited its turn.
var errLacking = errors.New("the zone lacks the template's machine type")

// enter waits for an insert's turn into a zone the template has not been placed in by
// this process yet (see Backend.gates), and returns what to call with the insert
// call's error: a zone that took an insert is open to all; one that refused it for
// its machine type is marked lacking before the next waiter looks.
func (b *Backend) enter(ctx context.Context, c Config, zone string) (func(error), error) {
	key := c.templatePath() + "|" + zone
	b.mu.Lock()
	if b.placed[key] {
		b.mu.Unlock()
		return func(error) {}, nil
	}
	if b.gates == nil {
		b.gates, b.placed = map[string]chan struct{}{}, map[string]bool{}
	}
	gate := b.gates[key]
	if gate == nil {
		gate = make(chan struct{}, 1) // one insert at a time
		b.gates[key] = gate
	}
	b.mu.Unlock()
	entered := b.clock()
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	at, lacking := b.lackingLocked(c)[zone]
	b.mu.Unlock()
	if lacking && !at.Before(entered) {
		<-gate
		return nil, errLacking
	}
	return func(err error) {
		if err == nil || isAlreadyExists(err) {
			b.mu.Lock()
			b.placed[key] = true
			b.mu.Unlock()
		}
		if isNotOffered(err, zone) {
			b.markLacking(c, zone)
		}
		<-gate
	}, nil
}

// operationError turns a finished operation's errors into a *googleapi.Error, so that
// one check serves errors from the call and from the operation.
func operationError(p *computepb.Operation) error {
	errs := p.GetError().GetErrors()
	if len(errs) == 0 {
		return nil
	}
	ge := &googleapi.Error{Code: int(p.GetHttpErrorStatusCode()), Message: p.GetHttpErrorMessage()}
	var msgs []string
	for _, e := range errs {
		ge.Errors = append(ge.Errors, googleapi.ErrorItem{Reason: e.GetCode(), Message: e.GetMessage()})
		msgs = append(msgs, e.GetCode()+": "+e.GetMessage())
	}
	if ge.Message == "" {
		ge.Message = strings.Join(msgs, "; ")
	}
	return ge
}

func reasons(err error) (int, []string) {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return 0, nil
	}
	var rs []string
	for _, e := range ge.Errors {
		rs = append(rs, e.Reason)
	}
	return ge.Code, rs
}

func isCapacity(err error) bool {
	_, rs := reasons(err)
	return slices.ContainsFunc(rs, func(r string) bool {
		return slices.ContainsFunc(capacityReasons, func(c string) bool { return strings.EqualFold(r, c) })
	})
}

// isQuota reports whether Compute refused for a quota (QUOTA_EXCEEDED, 403, from the
// call or the operation; Compute's "Resource quotas" documentation).
func isQuota(err error) bool {
	_, rs := reasons(err)
	return slices.ContainsFunc(rs, func(r string) bool {
		return strings.EqualFold(r, "QUOTA_EXCEEDED") || strings.EqualFold(r, "quotaExceeded")
	})
}

// requiredPermission finds the permission in Compute's 403: "Required
// 'compute.globalOperations.list' permission for 'projects/p'".
var requiredPermission = regexp.MustCompile(`Required '([A-Za-z0-9_.]+)' permission`)

// classify says what kind of failure a Compute error was: a 403 that is not a quota is
// a permission the role lacks (Compute names it in the message; reason "forbidden"),
// a 400 or 404 (a template that does not exist, an invalid field) is the
// configuration's. Anything else (5xx, a network error) says nothing of either.
func classify(err error) error {
	code, _ := reasons(err)
	switch {
	case code == http.StatusForbidden && !isQuota(err):
		var ge *googleapi.Error
		errors.As(err, &ge)
		msgs := []string{ge.Message}
		for _, e := range ge.Errors {
			msgs = append(msgs, e.Message)
		}
		for _, m := range msgs {
			if p := requiredPermission.FindStringSubmatch(m); p != nil {
				return reconcile.DeniedPermission(p[1], err)
			}
		}
		return reconcile.DeniedPermission("", err)
	case code == http.StatusBadRequest, code == http.StatusNotFound:
		return reconcile.Classify(reconcile.FailInvalid, err)
	case code == http.StatusUnauthorized:
		return reconcile.DeniedPermission("", err)
	}
	return err
}

// notOfferedPhrases are how Compute words "this zone does not have it" in a 400
// (reason "invalid") or a 404 (reason "notFound"): a machine type ("Machine type with
// name 't2a-standard-4' does not exist in zone 'us-central1-b'"), an accelerator type
// ("The resource '…/zones/us-central1-b/acceleratorTypes/nvidia-l4' was not found"), a
// CPU platform ("… is not available in zone …", "… is not supported in zone …").
var notOfferedPhrases = []string{"does not exist in zone", "not available in zone", "not supported in zone", "was not found"}

// isNotOffered reports whether an insert failed because zone does not offer what the
// template asks for: another zone of the region may.
func isNotOffered(err error, zone string) bool {
	var ge *googleapi.Error
	if !errors.As(err, &ge) || (ge.Code != http.StatusBadRequest && ge.Code != http.StatusNotFound) {
		return false
	}
	msgs := []string{ge.Message}
	for _, e := range ge.Errors {
		msgs = append(msgs, e.Message)
	}
	for _, m := range msgs {
		m = strings.ToLower(m)
		if !strings.Contains(m, "'"+zone+"'") && !strings.Contains(m, "zones/"+zone+"/") {
			continue
		}
		if slices.ContainsFunc(notOfferedPhrases, func(p string) bool { return strings.Contains(m, p) }) &&
			!strings.Contains(m, "/instances/") { // an instance not found is something else
			return true
		}
	}
	return false
}

func isAlreadyExists(err error) bool {
	code, rs := reasons(err)
	return code == http.StatusConflict || slices.ContainsFunc(rs, func(r string) bool {
		return strings.EqualFold(r, "alreadyExists") || strings.EqualFold(r, "RESOURCE_ALREADY_EXISTS")
	})
}

func isNotFound(err error) bool {
	code, rs := reasons(err)
	return code == http.StatusNotFound || slices.ContainsFunc(rs, func(r string) bool {
		return strings.EqualFold(r, "notFound") || strings.EqualFold(r, "RESOURCE_NOT_FOUND")
	})
}

// Delete removes an instance; nil if it is already gone. It does not wait for the
// operation: the next pass sees the instance going or gone.
func (b *Backend) Delete(ctx context.Context, r reconcile.Runner) error {
	if r.Location == "" {
		return fmt.Errorf("deleting instance %s: zone unknown", r.Name)
	}
	_, err := b.instances.Delete(ctx, &computepb.DeleteInstanceRequest{
		Project:   b.cfg.Project,
		Zone:      r.Location,
		Instance:  r.Name,
		RequestId: proto.String(uuid.NewString()),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting instance %s in %s: %w", r.Name, r.Location, err)
	}
	return nil
}
