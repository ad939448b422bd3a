package harness

import (
	"net/http"
	"testing"
)

// TestServeStartsAndStops: the binary serves with nothing but its defaults
// and a port, and exits cleanly (status 0) on SIGTERM.
func TestServeStartsAndStops(t *testing.T) {
	s := Start(t, Env(t))
	resp, err := http.Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.Logs())
	}
}
