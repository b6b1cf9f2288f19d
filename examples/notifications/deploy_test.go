package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/workpool-go/workpool"
)

// The observability kit in deploy/ assumes this service's metric names.
var (
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "workpool.json")
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
)

const prefix = "notification_worker_pool_"

// exposed returns the series names and label names the service's registry
// exposes for a pool: each histogram as its _bucket, _sum and _count series.
func exposed(t *testing.T) (names, labels map[string]bool) {
	t.Helper()
	reg, metrics, err := newMetrics("test")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := workpool.New(func(context.Context, Notification) error { return nil },
		workpool.WithMetrics(metrics))
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names, labels = map[string]bool{}, map[string]bool{"le": true, "instance": true, "job": true}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	return names, labels
}

// A small PromQL reader: enough to find the metric and label names in the
// kit's expressions without depending on the Prometheus server.
var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers    = regexp.MustCompile(`\{[^}]*\}`)
	matcherName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	ranges      = regexp.MustCompile(`\[[^\]]*\]`)
	grouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	keywords    = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true, "Inf": true, "NaN": true}
)

// references returns the metric names and label names a PromQL expression
// uses.
func references(expr string) (metricNames, labelNames []string) {
	if m := labelValues.FindStringSubmatch(strings.TrimSpace(expr)); m != nil {
		return []string{m[1]}, []string{m[2]}
	}
	expr = stringLit.ReplaceAllString(expr, `""`)
	for _, sel := range matchers.FindAllString(expr, -1) {
		for _, m := range matcherName.FindAllStringSubmatch(sel, -1) {
			labelNames = append(labelNames, m[1])
		}
	}
	expr = matchers.ReplaceAllString(expr, " ")
	expr = ranges.ReplaceAllString(expr, " ")
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labelNames = append(labelNames, l)
			}
		}
	}
	expr = grouping.ReplaceAllString(expr, " ")
	for _, loc := range identifier.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		next := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if keywords[name] || strings.HasPrefix(next, "(") || (loc[0] > 0 && isDigit(expr[loc[0]-1])) {
			continue // a keyword, a function or aggregation, or a number's exponent
		}
		metricNames = append(metricNames, name)
	}
	return metricNames, labelNames
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' || b == '.' }

func TestReferences(t *testing.T) {
	m, l := references(`histogram_quantile(0.99, sum by (pool, le) (rate(a_bucket{pool=~"$pool", x!="}"}[$__rate_interval]))) / on(pool) b > 1e3 and bool c offset 5m`)
	if want := []string{"a_bucket", "b", "c"}; !slices.Equal(m, want) {
		t.Errorf("metric names = %q; want %q", m, want)
	}
	if want := []string{"pool", "x", "pool", "le", "pool"}; !slices.Equal(l, want) {
		t.Errorf("label names = %q; want %q", l, want)
	}
}

type dashboard struct {
	Templating struct {
		List []struct {
			Name, Type string
			Query      any
		}
	}
	Panels []struct {
		Title, Type string
		Datasource  struct{ UID string }
		Targets     []struct {
			Expr       string
			Datasource struct{ UID string }
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert       string
			Expr        string
			For         string
			Labels      map[string]string
			Annotations map[string]string
		}
	}
}

// kitExpressions reads the dashboard and the alert rules, checks their
// shape, and returns every PromQL expression in them by where it is.
func kitExpressions(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if q, ok := v.Query.(map[string]any); ok {
			exprs["dashboard variable "+v.Name], _ = q["query"].(string)
		}
	}
	if vars["datasource"] != "datasource" || vars["pool"] != "query" {
		t.Errorf("%s: template variables = %v; want datasource (datasource) and pool (query)", dashboardFile, vars)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: %d targets, datasource %q; want targets on ${datasource}", p.Title, len(p.Targets), p.Datasource.UID)
		}
		for i, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" || !strings.Contains(tg.Expr, `pool=~"$pool"`) {
				t.Errorf("panel %q target %d: not templated on ${datasource} and $pool: %s", p.Title, i, tg.Expr)
			}
			exprs["panel "+p.Title+" "+string(rune('A'+i))] = tg.Expr
		}
	}

	raw, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" ||
				r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q: want alert, expr, a severity label, summary and description", r.Alert)
			}
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	if len(alerts) < 4 {
		t.Errorf("%s: alerts %q; want at least drops, saturation, error ratio and p99", alertsFile, alerts)
	}
	return exprs
}

// TestDeployKitMatchesMetrics checks that every metric and label the
// dashboard and the alert rules use is one this service exposes, and that
// the kit shows every pool metric, so renaming a metric in the library
// fails here instead of blanking a panel in production.
func TestDeployKitMatchesMetrics(t *testing.T) {
	names, labels := exposed(t)
	used := map[string]bool{}
	for where, expr := range kitExpressions(t) {
		ms, ls := references(expr)
		if len(ms) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, m := range ms {
			used[m] = true
			if !names[m] {
				t.Errorf("%s: metric %s is not exposed by the service", where, m)
			}
		}
		for _, l := range ls {
			if !labels[l] {
				t.Errorf("%s: label %q is not on any exposed metric", where, l)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(n, prefix) || base != n && names[base] {
			continue // not a pool metric, or a histogram's series
		}
		if !used[n] && !used[n+"_bucket"] {
			t.Errorf("metric %s is on neither the dashboard nor the alerts", n)
		}
	}
}

// TestDeployKitWithPromtool checks the rule file and runs its unit tests
// (deploy/prometheus/alerts_test.yml) with promtool, and checks that every
// dashboard query parses, by handing them to promtool as recording rules.
// It is skipped when promtool is not installed (Debian: apt-get install
// prometheus).
func TestDeployKitWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := kitExpressions(t)
	for i, where := range slices.Sorted(maps.Keys(exprs)) {
		if !strings.HasPrefix(where, "panel ") {
			continue
		}
		expr := strings.NewReplacer("$__rate_interval", "5m", "$pool", ".*").Replace(exprs[where])
		q, err := json.Marshal(expr) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	dashRules := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(dashRules, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"test", "rules", strings.TrimSuffix(alertsFile, ".yml") + "_test.yml"},
		{"check", "rules", dashRules},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
