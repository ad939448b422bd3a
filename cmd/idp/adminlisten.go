package main

import (
	"net/http"
	"net/http/pprof"
)

// adminRoutes are the endpoints for operators only: the Prometheus metrics
// and Go's profiler. With http.admin_listen set they are served on that
// listener alone (loopback or an internal network), and the public one has
// neither; without it, /metrics stays on the public listener (block it at
// the proxy) and nothing profiles.
//
// Profiling a running instance:
//
//	go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
func adminRoutes(m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler())
	// The profiler's handlers, on this mux only: importing net/http/pprof
	// also registers them on http.DefaultServeMux, which nothing serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
