package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one instance, in a registry of its
// own (never the package-global default: two servers in one test process
// must not share counters). Every label takes values from a closed set
// written in this code, so no request can grow the number of series.
type metrics struct {
	registry *prometheus.Registry

	requests        *prometheus.CounterVec   // route, method, status
	requestDuration *prometheus.HistogramVec // route
	logins          *prometheus.CounterVec   // outcome, reason
	recovery        *prometheus.CounterVec   // outcome
	audit           *prometheus.CounterVec   // type
	mailsQueued     *prometheus.CounterVec   // kind
	mailDeliveries  *prometheus.CounterVec   // outcome
	tokens          *prometheus.CounterVec   // kind, grant
	tokenReuse      *prometheus.CounterVec   // kind
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "idp_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template (a login costs two Argon2id hashes).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_logins_total",
			Help: "Login attempts by outcome (success, provisional, failure, throttled) and, for failures, reason.",
		}, []string{"outcome", "reason"}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_recovery_requests_total",
			Help: "« Mot de passe oublié ? » requests: accepted (a job was queued) or throttled (per-IP limit).",
		}, []string{"outcome"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_audit_events_total",
			Help: "Audit events recorded, by type.",
		}, []string{"type"}),
		mailsQueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_mails_queued_total",
			Help: "Mails put in the outbox, by kind (provisional_password, password_changed, other).",
		}, []string{"kind"}),
		mailDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_mail_deliveries_total",
			Help: "Delivery attempts of outbox mails by outcome: sent, deferred (will be retried), failed (given up).",
		}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_tokens_issued_total",
			Help: "Access and refresh tokens issued, by kind and grant (authorization_code, refresh_token).",
		}, []string{"kind", "grant"}),
		tokenReuse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_token_reuse_detected_total",
			Help: "Replayed authorization codes and refresh tokens (their whole grant was revoked).",
		}, []string{"kind"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.logins, m.recovery, m.audit,
		m.mailsQueued, m.mailDeliveries, m.tokens, m.tokenReuse,
	)
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "idp_build_info", Help: "Always 1; the version label says which binary runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)
	m.registry.MustRegister(buildInfo)
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// watchPool exposes the PostgreSQL connection pool.
func (m *metrics) watchPool(pool *pgxpool.Pool) {
	m.registry.MustRegister(&poolCollector{pool: pool})
}

// --- HTTP ---

// routeKey carries, in a request's context, where the router writes the
// template of the route it matched.
type routeKey struct{}

type matchedRoute struct{ template string }

// unmatchedRoute labels requests no route took (405s from the router).
const unmatchedRoute = "unmatched"

// providerRouteName names the catch-all route to the OpenID provider, whose
// template ("/") says nothing: its requests are labelled by their path when
// it is one of the provider's endpoints, "other" otherwise.
const providerRouteName = "provider"

// providerPaths are the provider's endpoints (provider.Handler).
var providerPaths = map[string]bool{
	"/.well-known/openid-configuration": true, "/keys": true, "/authorize": true,
	"/authorize/callback": true, "/oauth/token": true, "/oauth/introspect": true,
	"/userinfo": true, "/revoke": true, "/end_session": true,
}

// markRoute is a router middleware: it runs once a route matched and
// records the route's template for routeOf.
func markRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mr, ok := r.Context().Value(routeKey{}).(*matchedRoute); ok {
			if rt := mux.CurrentRoute(r); rt != nil {
				switch tpl, err := rt.GetPathTemplate(); {
				case rt.GetName() == providerRouteName && providerPaths[r.URL.Path]:
					mr.template = r.URL.Path
				case rt.GetName() == providerRouteName:
					mr.template = "other"
				case err == nil:
					mr.template = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withRouteSlot gives the request a slot that markRoute fills in.
func withRouteSlot(r *http.Request) (*http.Request, *matchedRoute) {
	mr := &matchedRoute{template: unmatchedRoute}
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, mr)), mr
}

// observeRequest counts one answered request.
func (m *metrics) observeRequest(route, method string, status int, seconds float64) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions:
	default:
		method = "other" // the method is the client's choice: keep the set closed
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.requestDuration.WithLabelValues(route).Observe(seconds)
}

// --- domain events ---

// loginFailureReasons are the reasons account.Service.LogIn records; others
// (a future one) count as "other" until listed here.
var loginFailureReasons = map[string]bool{
	"wrong password": true, "unknown account": true, "malformed password": true, "disabled account": true,
}

// auditEvent counts an audit event, and the logins and recovery requests
// it stands for. Types come from the code (account.audit's constants).
func (m *metrics) auditEvent(typ, detail string) {
	m.audit.WithLabelValues(typ).Inc()
	switch typ {
	case "login.success":
		m.logins.WithLabelValues("success", "").Inc()
	case "login.provisional":
		m.logins.WithLabelValues("provisional", "").Inc()
	case "login.throttled":
		m.logins.WithLabelValues("throttled", "").Inc()
	case "login.failure":
		reason := "other"
		if loginFailureReasons[detail] {
			reason = detail
		}
		m.logins.WithLabelValues("failure", reason).Inc()
	case "recovery.requested":
		m.recovery.WithLabelValues("accepted").Inc()
	case "recovery.throttled":
		if detail == "per-IP limit" {
			m.recovery.WithLabelValues("throttled").Inc()
		}
	}
}

// --- the PostgreSQL pool ---

// poolCollector reads pgxpool's statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolTotalDesc    = prometheus.NewDesc("idp_db_pool_connections", "PostgreSQL pool connections by state (acquired, idle, constructing).", []string{"state"}, nil)
	poolMaxDesc      = prometheus.NewDesc("idp_db_pool_max_connections", "Maximum size of the PostgreSQL pool.", nil, nil)
	poolAcquireDesc  = prometheus.NewDesc("idp_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaitDesc     = prometheus.NewDesc("idp_db_pool_empty_acquires_total", "Acquires that had to wait for a connection (pool exhausted).", nil, nil)
	poolWaitTimeDesc = prometheus.NewDesc("idp_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection from an empty pool.", nil, nil)
	poolCancelDesc   = prometheus.NewDesc("idp_db_pool_canceled_acquires_total", "Acquires cancelled by their context (a request gave up waiting).", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotalDesc, poolMaxDesc, poolAcquireDesc, poolWaitDesc, poolWaitTimeDesc, poolCancelDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotalDesc, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolTotalDesc, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotalDesc, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquireDesc, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitTimeDesc, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
	ch <- prometheus.MustNewConstMetric(poolCancelDesc, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
