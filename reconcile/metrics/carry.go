package metrics

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Counters under cron. A --once process starts every counter and histogram at zero,
// so a textfile or a Pushgateway series would drop back at each pass and Prometheus'
// increase() could not sum the passes. What earlier processes counted is kept in the
// cache (the notes' "counters" part) and added to this process's own counts wherever
// the metrics are written or served: each series continues from where the last
// process left it. A lost cache starts the series at zero again, which Prometheus
// reads as a counter reset and handles.

// notesPart is the name of the counters' share of the notes.
const NotesPart = "counters"

// carried is what earlier processes counted, by series.
type carried struct {
	mu     sync.Mutex
	series map[string]*dto.MetricFamily // by family name: each holds its carried series
	since  time.Time                    // when the counting began (zero: not known)
}

// carriedNotes is the counters' share of the notes.
type carriedNotes struct {
	Since  int64           `json:"since,omitempty"` // Unix seconds: when the first process of the series began
	Series []carriedSeries `json:"series"`
}

// carriedSeries is one series as kept in the notes.
type carriedSeries struct {
	Family  string       `json:"family"`
	Help    string       `json:"help,omitempty"`
	Type    string       `json:"type"` // counter or histogram
	Labels  [][2]string  `json:"labels,omitempty"`
	Value   float64      `json:"value,omitempty"` // a counter's
	Count   uint64       `json:"count,omitempty"` // a histogram's
	Sum     float64      `json:"sum,omitempty"`
	Buckets [][2]float64 `json:"buckets,omitempty"` // upper bound, cumulative count
}

// Gather implements prometheus.Gatherer: the registry's metrics, with what earlier
// processes counted added to the counters and histograms.
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return nil, err
	}
	m.carry.mu.Lock()
	defer m.carry.mu.Unlock()
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	for name, old := range m.carry.series {
		mf, ok := byName[name]
		if !ok { // no series of it yet in this process
			mf = &dto.MetricFamily{Name: old.Name, Help: old.Help, Type: old.Type}
			mfs = append(mfs, mf)
			byName[name] = mf
		}
		for _, om := range old.Metric {
			if cur := findSeries(mf, om.GetLabel()); cur != nil {
				addSeries(cur, om)
			} else {
				mf.Metric = append(mf.Metric, proto.Clone(om).(*dto.Metric))
			}
		}
	}
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	for _, mf := range mfs {
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a.GetLabel()), labelKey(b.GetLabel())) })
	}
	return mfs, nil
}

var _ prometheus.Gatherer = (*Metrics)(nil)

func labelKey(ls []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.GetName() + "=" + l.GetValue() + "\xff")
	}
	return b.String()
}

func findSeries(mf *dto.MetricFamily, ls []*dto.LabelPair) *dto.Metric {
	key := labelKey(ls)
	for _, m := range mf.Metric {
		if labelKey(m.GetLabel()) == key {
			return m
		}
	}
	return nil
}

// addSeries adds old's counts to cur's.
func addSeries(cur, old *dto.Metric) {
	if c := cur.GetCounter(); c != nil {
		c.Value = proto.Float64(c.GetValue() + old.GetCounter().GetValue())
	}
	if h := cur.GetHistogram(); h != nil {
		oh := old.GetHistogram()
		h.SampleCount = proto.Uint64(h.GetSampleCount() + oh.GetSampleCount())
		h.SampleSum = proto.Float64(h.GetSampleSum() + oh.GetSampleSum())
		for _, b := range h.Bucket {
			for _, ob := range oh.GetBucket() {
				if ob.GetUpperBound() == b.GetUpperBound() {
					b.CumulativeCount = proto.Uint64(b.GetCumulativeCount() + ob.GetCumulativeCount())
				}
			}
		}
	}
}

// NotesData implements reconcile.Part: every counter and histogram series, with what
// earlier processes counted.
func (m *Metrics) NotesData() (json.RawMessage, error) {
	mfs, err := m.Gather()
	if err != nil {
		return nil, err
	}
	m.carry.mu.Lock()
	out := carriedNotes{Since: unixOrZero(m.carry.since)}
	m.carry.mu.Unlock()
	for _, mf := range mfs {
		typ := mf.GetType()
		if typ != dto.MetricType_COUNTER && typ != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, s := range mf.Metric {
			cs := carriedSeries{Family: mf.GetName(), Help: mf.GetHelp(), Type: strings.ToLower(typ.String())}
			for _, l := range s.GetLabel() {
				cs.Labels = append(cs.Labels, [2]string{l.GetName(), l.GetValue()})
			}
			if typ == dto.MetricType_COUNTER {
				cs.Value = s.GetCounter().GetValue()
			} else {
				h := s.GetHistogram()
				cs.Count, cs.Sum = h.GetSampleCount(), h.GetSampleSum()
				for _, b := range h.GetBucket() {
					cs.Buckets = append(cs.Buckets, [2]float64{b.GetUpperBound(), float64(b.GetCumulativeCount())})
				}
			}
			out.Series = append(out.Series, cs)
		}
	}
	return json.Marshal(out)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// RestoreNotes implements reconcile.Part: it takes back what earlier processes
// counted.
func (m *Metrics) RestoreNotes(data json.RawMessage) error {
	in, err := readCarried(data)
	if err != nil {
		return err
	}
	series := map[string]*dto.MetricFamily{}
	for _, cs := range in.Series {
		mf := series[cs.Family]
		if mf == nil {
			mf = &dto.MetricFamily{Name: proto.String(cs.Family), Help: proto.String(cs.Help)}
			series[cs.Family] = mf
		}
		s := &dto.Metric{}
		for _, l := range cs.Labels {
			s.Label = append(s.Label, &dto.LabelPair{Name: proto.String(l[0]), Value: proto.String(l[1])})
		}
		switch cs.Type {
		case "counter":
			mf.Type = dto.MetricType_COUNTER.Enum()
			s.Counter = &dto.Counter{Value: proto.Float64(cs.Value)}
		case "histogram":
			mf.Type = dto.MetricType_HISTOGRAM.Enum()
			h := &dto.Histogram{SampleCount: proto.Uint64(cs.Count), SampleSum: proto.Float64(cs.Sum)}
			for _, b := range cs.Buckets {
				h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b[0]), CumulativeCount: proto.Uint64(uint64(b[1]))})
			}
			s.Histogram = h
		default:
			continue
		}
		mf.Metric = append(mf.Metric, s)
	}
	m.carry.mu.Lock()
	m.carry.series = series
	m.carry.since = time.Time{} // counted since the first process; a cache of the first format does not say
	if in.Since > 0 {
		m.carry.since = time.Unix(in.Since, 0)
	}
	m.carry.mu.Unlock()
	return nil
}

// readCarried decodes the counters' share of the notes; the first format was the
// series alone.
func readCarried(data json.RawMessage) (carriedNotes, error) {
	var in carriedNotes
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "[") {
		return in, json.Unmarshal(data, &in.Series)
	}
	return in, json.Unmarshal(data, &in)
}

// Shrink implements reconcile.Part: the counters are few and are all kept.
func (m *Metrics) Shrink(float64) int { return 0 }
