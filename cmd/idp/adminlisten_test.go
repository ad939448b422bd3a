package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/e2e/harness"
)

// TestAdminListener: with http.admin_listen, the metrics and the profiler
// answer there and only there (the real binary, two listeners).
func TestAdminListener(t *testing.T) {
	admin := harness.FreeAddr(t)
	srv := harness.Start(t, harness.Env(t, "IDP_HTTP_ADMIN_LISTEN="+admin))
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	get(srv.URL + "/login") // something for the metrics to count

	if code, body := get("http://" + admin + "/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `idp_http_requests_total{method="GET",route="/login",status="200"}`) {
		t.Fatalf("admin /metrics: %d\n%.2000s", code, body)
	}
	if code, body := get("http://" + admin + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("admin /debug/pprof/: %d\n%.500s", code, body)
	}
	if code, body := get("http://" + admin + "/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(body) == 0 {
		t.Fatalf("admin CPU profile: %d, %d bytes", code, len(body))
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/profile?seconds=1"} {
		if code, _ := get(srv.URL + path); code != http.StatusNotFound {
			t.Errorf("public listener answers %s with %d, want 404", path, code)
		}
	}
	if !strings.Contains(srv.Logs(), "idp administration endpoints on "+admin) {
		t.Errorf("the start-up output does not say where the administration endpoints are:\n%s", srv.Logs())
	}
}
