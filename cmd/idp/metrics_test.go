package main

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, e *testEnv) map[string]*dto.MetricFamily {
	t.Helper()
	resp := e.get("/metrics")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the text format: %v", err)
	}
	return fams
}

// metricValue sums the series of name whose labels include want.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// labelValues lists the values a label takes in a family.
func labelValues(fams map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// knownRoutes is every value the route label may take.
var knownRoutes = map[string]bool{
	"/": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/login": true, "/login/forgot": true, "/login/forgot/sent": true, "/login/change": true,
	"/login/password": true, "/espace": true, "/logout": true, "/static/style.css": true,
	"other": true, unmatchedRoute: true,
}

func isKnownRoute(r string) bool { return knownRoutes[r] || providerPaths[r] }

// checkJourneyMetrics: after the journey, /metrics counts exactly what
// happened — requests by route template and status, logins by outcome,
// the recovery request, mails queued and sent, tokens issued, the replays
// — with bounded labels; the PostgreSQL pool is exposed on PostgreSQL.
func checkJourneyMetrics(t *testing.T, e *testEnv, dbURL string) {
	// Requests whose raw path must not become a label.
	for _, p := range []string{"/nimporte/quoi/12345", "/login/../etc/passwd", "/keys?x=secret"} {
		resp := e.get(p)
		resp.Body.Close()
	}
	req, _ := http.NewRequest("PROPFIND", e.issuer+"/login", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	fams := scrape(t, e)

	want := []struct {
		name    string
		labels  map[string]string
		value   float64
		atLeast bool // the clients' own behaviour (caches, redirects) may add some
	}{
		{"idp_logins_total", map[string]string{"outcome": "success"}, 1, false},
		{"idp_logins_total", map[string]string{"outcome": "provisional"}, 1, false},
		{"idp_logins_total", map[string]string{"outcome": "failure", "reason": "wrong password"}, 1, false},
		{"idp_recovery_requests_total", map[string]string{"outcome": "accepted"}, 1, false},
		{"idp_mails_queued_total", map[string]string{"kind": "provisional_password"}, 1, false},
		{"idp_mails_queued_total", map[string]string{"kind": "password_changed"}, 2, false},
		{"idp_mail_deliveries_total", map[string]string{"outcome": "sent"}, 3, false},
		{"idp_tokens_issued_total", map[string]string{"kind": "access", "grant": "authorization_code"}, 2, false},
		{"idp_tokens_issued_total", map[string]string{"kind": "refresh", "grant": "authorization_code"}, 2, false},
		{"idp_tokens_issued_total", map[string]string{"kind": "access", "grant": "refresh_token"}, 2, false},
		{"idp_token_reuse_detected_total", map[string]string{"kind": "authorization_code"}, 1, false},
		{"idp_token_reuse_detected_total", map[string]string{"kind": "refresh_token"}, 1, false},
		{"idp_audit_events_total", map[string]string{"type": "provisional.mailed"}, 1, false},
		{"idp_audit_events_total", map[string]string{"type": "sessions.revoked"}, 2, false},
		{"idp_http_requests_total", map[string]string{"route": "/login", "method": "POST", "status": "200"}, 1, false},
		{"idp_http_requests_total", map[string]string{"route": "/login/forgot", "method": "POST", "status": "303"}, 1, false},
		{"idp_http_requests_total", map[string]string{"route": "/oauth/token", "method": "POST", "status": "200"}, 4, false},
		{"idp_http_requests_total", map[string]string{"route": "/userinfo", "method": "GET", "status": "200"}, 1, false},
		// 303 to the change form after a provisional password, 302 to the
		// application with its code after a personal one.
		{"idp_http_requests_total", map[string]string{"route": "/login", "method": "POST", "status": "303"}, 1, true},
		{"idp_http_requests_total", map[string]string{"route": "/login", "method": "POST", "status": "302"}, 1, true},
		{"idp_http_requests_total", map[string]string{"route": "other", "method": "GET"}, 2, true},
		{"idp_http_requests_total", map[string]string{"route": "/keys", "method": "GET", "status": "200"}, 2, true},
		{"idp_http_request_duration_seconds", map[string]string{"route": "/login"}, 3, true},
	}
	for _, w := range want {
		got := metricValue(fams, w.name, w.labels)
		if got != w.value && !(w.atLeast && got > w.value) {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	if got := metricValue(fams, "idp_http_requests_total", map[string]string{"method": "other"}); got != 1 {
		t.Errorf("a PROPFIND counted %v times under method=other", got)
	}
	for _, name := range []string{"idp_http_requests_total", "idp_http_request_duration_seconds"} {
		for _, r := range labelValues(fams, name, "route") {
			if !isKnownRoute(r) {
				t.Errorf("%s has route label %q: not a route template", name, r)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "idp_build_info"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	_, pool := fams["idp_db_pool_max_connections"]
	if postgresURL := strings.HasPrefix(dbURL, "postgres"); pool != postgresURL {
		t.Errorf("pool metrics present: %v, on PostgreSQL: %v", pool, postgresURL)
	}
	if pool {
		if metricValue(fams, "idp_db_pool_max_connections", nil) < 1 || metricValue(fams, "idp_db_pool_acquires_total", nil) < 10 {
			t.Errorf("pool metrics look empty")
		}
	}
}
