package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	sigsyaml "sigs.k8s.io/yaml"
)

// These tests check manifests/monitoring with the real tools: promtool (check and
// unit tests of the rules) and a real Prometheus (Debian's package, which make test
// installs: tools/prometheus.sh) scraping the command in loop mode. Without them they
// are skipped, unless RECONCILE_REQUIRE_PROMETHEUS=1 (as make test sets).

const monitoring = "manifests/monitoring"

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found (%v); `make test` installs Debian's prometheus (tools/prometheus.sh)", name, err)
		if os.Getenv("RECONCILE_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func TestMonitoring_PromtoolChecksAndUnitTestsTheRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoring
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type ruleGroups struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert, Record, Expr, For string
			Labels, Annotations      map[string]string
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The PrometheusRule is the rules file for the Prometheus Operator: the same groups.
func TestMonitoring_PrometheusRuleHoldsTheRulesFile(t *testing.T) {
	var plain ruleGroups
	readYAML(t, filepath.Join(monitoring, "rules.yaml"), &plain)
	var cr struct {
		APIVersion, Kind string
		Spec             ruleGroups
	}
	readYAML(t, filepath.Join(monitoring, "prometheusrule.yaml"), &cr)
	if cr.APIVersion != "monitoring.coreos.com/v1" || cr.Kind != "PrometheusRule" {
		t.Errorf("prometheusrule.yaml is a %s %s", cr.APIVersion, cr.Kind)
	}
	if diff := cmp.Diff(plain, cr.Spec); diff != "" || len(plain.Groups) == 0 {
		t.Errorf("prometheusrule.yaml and rules.yaml differ (-rules.yaml +prometheusrule.yaml):\n%s", diff)
	}
}

// expressions returns every PromQL expression of the dashboard and the rules, by
// where it is, with Grafana's interval variables replaced as Grafana would.
func expressions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var rules ruleGroups
	readYAML(t, filepath.Join(monitoring, "rules.yaml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["rules.yaml: "+r.Alert+r.Record] = r.Expr
		}
	}
	b, err := os.ReadFile(filepath.Join(monitoring, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("dashboard.json: %s [%d]", p.Title, i)] = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s").Replace(tg.Expr)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d expressions found", len(out))
	}
	return out
}

// promNames returns the metric names and the label names a valid PromQL expression
// uses: identifiers that are not functions, keywords or label values; those inside a
// selector's braces before a matcher, or in a by/without/on/ignoring/group_* list,
// are label names.
func promNames(expr string) (metrics, labels []string) {
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	aggregations := map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	r := []rune(expr)
	braces, list := false, false
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(r) && r[j] != c {
				if r[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '[': // a range or subquery: durations only
			for i < len(r) && r[i] != ']' {
				i++
			}
		case c == '{':
			braces, i = true, i+1
		case c == '}':
			braces, i = false, i+1
		case c == ')':
			list, i = false, i+1
		case unicode.IsLetter(c) || c == '_' || c == ':':
			j := i
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_' || r[j] == ':') {
				j++
			}
			word := string(r[i:j])
			k := j
			for k < len(r) && r[k] == ' ' {
				k++
			}
			next := rune(0)
			if k < len(r) {
				next = r[k]
			}
			switch {
			case braces || list:
				labels = append(labels, word)
			case keywords[word] && next == '(' && word != "bool":
				list = word != "and" && word != "or" && word != "unless"
			case keywords[word], aggregations[word]: // an aggregation may have its by (…) before its (…)
			case next == '(': // a function
			default:
				metrics = append(metrics, word)
			}
			i = j
		case unicode.IsDigit(c) || c == '.':
			for i < len(r) && (unicode.IsDigit(r[i]) || unicode.IsLetter(r[i]) || r[i] == '.') {
				i++ // a number, or a duration such as 5m
			}
		default:
			i++
		}
	}
	return metrics, labels
}

func TestPromNames(t *testing.T) {
	m, l := promNames(`histogram_quantile(0.99, sum by (le, pool) (rate(x_bucket{a="b", c=~"d|e"}[5m]))) > 0 unless on (pool) y{state="idle"} * 2`)
	if !slices.Equal(m, []string{"x_bucket", "y"}) || !slices.Equal(l, []string{"le", "pool", "a", "c", "pool", "state"}) {
		t.Fatalf("metrics %v, labels %v", m, l)
	}
}

// exported returns, from a real /metrics page, each metric name a query can use
// (a histogram's _bucket, _sum and _count) and the label names each has.
func exported(fams map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := []string{name}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			names = []string{name + "_sum", name + "_count", name + "_bucket"}
		}
		for _, n := range names {
			out[n] = labels
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			out[name+"_bucket"] = map[string]bool{"le": true}
			for l := range labels {
				out[name+"_bucket"][l] = true
			}
		}
	}
	return out
}

// loop runs the command in loop mode, a pass a second, against the fake GitHub and
// Compute of w, serving its metrics; it returns the metrics address.
func loop(t *testing.T, w *procWorld) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "--config", w.config, "--interval", "1s", "--log-format", "json", "--metrics-addr", addr)
	cmd.Env = w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	return addr
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// prometheus starts a real Prometheus on 127.0.0.1 that scrapes target every second
// and loads the rules; it returns its address.
func prometheus(t *testing.T, target string) string {
	t.Helper()
	bin := needTool(t, "prometheus")
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(monitoring, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%q]\n"+
		"scrape_configs: [{job_name: reconcile, static_configs: [{targets: [%q]}]}]\n", rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus's log:\n%s", b)
		}
	})
	return addr
}

// query asks Prometheus for an instant query's result: its status, an error, and the
// values of the vector or scalar it returned.
func query(t *testing.T, prom, expr string) (values []string, errText string) {
	t.Helper()
	return queryAt(t, prom, expr, "")
}

// queryAt is query evaluated at a time (Unix seconds, as Prometheus gives them; ""
// for now).
func queryAt(t *testing.T, prom, expr, at string) (values []string, errText string) {
	t.Helper()
	params := url.Values{"query": {expr}}
	if at != "" {
		params.Set("time", at)
	}
	resp, err := http.Get("http://" + prom + "/api/v1/query?" + params.Encode())
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status, Error string
		Data          struct {
			ResultType string
			Result     json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Sprintf("%v: %s", err, b)
	}
	if r.Status != "success" {
		return nil, r.Error
	}
	switch r.Data.ResultType {
	case "vector":
		var v []struct{ Value [2]any }
		_ = json.Unmarshal(r.Data.Result, &v)
		for _, s := range v {
			values = append(values, fmt.Sprint(s.Value[1]))
		}
	case "scalar":
		var s [2]any
		_ = json.Unmarshal(r.Data.Result, &s)
		values = append(values, fmt.Sprint(s[1]))
	}
	return values, ""
}

// The whole path: the loop creates runners and serves its metrics, a real Prometheus
// scrapes them and answers for the queue-wait histogram; every expression of the
// dashboard and the rules is valid PromQL to that Prometheus and names only metrics
// and labels the binary exports.
func TestMonitoring_ARealPrometheusScrapesTheLoopAndEveryExpressionFits(t *testing.T) {
	needTool(t, "prometheus")
	w := newProcWorld(t)
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
	target := loop(t, w)
	prom := prometheus(t, target)

	var hist []string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if v, _ := query(t, prom, `sum(reconcile_job_queue_wait_seconds_count)`); len(v) == 1 && v[0] == "2" {
			hist, _ = query(t, prom, `histogram_quantile(0.5, sum by (le) (reconcile_job_queue_wait_seconds_bucket))`)
			break
		}
	}
	if len(hist) != 1 || hist[0] == "NaN" {
		t.Fatalf("Prometheus has no queue wait of the two jobs' runners (median %v)", hist)
	}

	resp, err := http.Get("http://" + target + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	names := exported(parseMetrics(t, string(page)))
	for where, expr := range expressions(t) {
		if _, errText := query(t, prom, expr); errText != "" {
			t.Errorf("%s: %q: Prometheus says %s", where, expr, errText)
		}
		metrics, labels := promNames(expr)
		used := map[string]bool{}
		for _, m := range metrics {
			l, ok := names[m]
			if !ok {
				t.Errorf("%s: %s is not a metric the binary exports", where, m)
			}
			for k := range l {
				used[k] = true
			}
		}
		for _, l := range labels {
			if !used[l] {
				t.Errorf("%s: label %s is on none of the metrics %v", where, l, metrics)
			}
		}
	}
	// Prometheus loaded the rules and evaluates them without error.
	if v, errText := query(t, prom, `count(ALERTS)`); errText != "" {
		t.Errorf("ALERTS: %s (%v)", errText, v)
	}
}

// The dashboard imports as it is into Grafana: a datasource variable its panels use,
// unique panel ids, panels that do not overlap; and it shows what the README says.
func TestMonitoring_DashboardIsImportableAndComplete(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoring, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title string
		Templating struct {
			List []struct{ Name, Type, Query string }
		}
		Panels []struct {
			ID         int
			Title      string
			Datasource struct{ Type, UID string }
			GridPos    struct{ X, Y, W, H int }
			Targets    []struct{ RefID, Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || len(d.Templating.List) != 1 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Fatalf("uid %q, title %q, templating %+v: want a Prometheus datasource variable", d.UID, d.Title, d.Templating.List)
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	var all strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] || p.Datasource.UID != "${"+d.Templating.List[0].Name+"}" || len(p.Targets) == 0 || p.GridPos.W == 0 {
			t.Errorf("panel %d %q: duplicate id, datasource %+v, %d targets, grid %+v", p.ID, p.Title, p.Datasource, len(p.Targets), p.GridPos)
		}
		ids[p.ID] = true
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap", other, p.Title)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for _, want := range []string{"sum by (pool, state) (reconcile_runners)", "histogram_quantile(0.5, sum by (le, pool) (rate(reconcile_job_queue_wait_seconds_bucket",
		"histogram_quantile(0.99, sum by (le, pool) (rate(reconcile_job_queue_wait_seconds_bucket", "reconcile_oldest_queued_job_age_seconds",
		"reconcile_runners_created_total", "sum by (pool, reason) (increase(reconcile_runners_deleted_total", "sum by (stage) (increase(reconcile_errors_total",
		"reconcile_github_rate_limit_remaining", "reconcile_github_points_total", "reconcile_pass_duration_seconds_bucket",
		"reconcile_last_success_timestamp_seconds", "reconcile_jobs_not_served", "reconcile_pool_backoff", "reconcile_pool_probes_total",
		"sum by (repo) (increase(reconcile_runner_seconds_total[1h])) / 3600",
		`sum by (pool) (increase(reconcile_runner_seconds_total{state=~"booting|idle"}[1h])) / sum by (pool) (increase(reconcile_runner_seconds_total[1h]))`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// Under a systemd timer each pass is a new --once process that writes a textfile for
// node_exporter. Ten of them, with --cache, each creating one runner after a first that
// creates none: node_exporter serves reconcile_runners_created_total = 10, and a real
// Prometheus scraping it every second answers increase() over the passes with 10, the
// truth, where without the cache it would see a series that drops back to 1 each pass.
func TestMonitoring_TimerPassesAddUpThroughNodeExporterAndPrometheus(t *testing.T) {
	exporter := needTool(t, "prometheus-node-exporter")
	w := newGCEWorld(t)
	dir, textfiles := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(exporter, "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+textfiles)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	prom := prometheus(t, addr)
	pass := func() {
		t.Helper()
		code := runQuiet(context.Background(), "--once", "--config", w.config, "--github-url", w.gh.APIURL,
			"--cache", filepath.Join(dir, "cache.gz"), "--metrics-file", filepath.Join(textfiles, "reconcile.prom"))
		if code != exitOK {
			t.Fatalf("exit code %d", code)
		}
		time.Sleep(1500 * time.Millisecond) // a scrape or more between passes
	}
	pass() // nothing queued: the series starts at 0
	series := `reconcile_runners_created_total{pool="arm64"}`
	waitFor(t, "Prometheus's first sample of the series, 0", func() bool { v, _ := query(t, prom, series); return len(v) == 1 && v[0] == "0" })
	for range 10 {
		w.gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
		pass()
	}
	var at []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _ := query(t, prom, series)
		at, _ = query(t, prom, "timestamp("+series+")")
		if len(v) == 1 && v[0] == "10" && len(at) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has %s = %v, want node_exporter's 10", series, v)
		}
		time.Sleep(time.Second)
	}
	// At the last sample's time, over a window that holds every pass: no extrapolation
	// past either end (the series starts at 0), so increase() is the count itself.
	got, errText := queryAt(t, prom, "increase("+series+"[2m])", at[0])
	if errText != "" || len(got) != 1 || got[0] != "10" {
		t.Errorf("increase(%s[2m]) = %v %s, want the ten passes' 10", series, got, errText)
	}
}
