package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/storage"
)

// useAsDefaultLogger does what cmdServe does: the OIDC library logs through
// slog.Default, which then writes to the server's logger (and so to
// e.logBuf). Restored when the test ends.
func useAsDefaultLogger(t *testing.T, e *testEnv) {
	prev := slog.Default()
	slog.SetDefault(e.srv.log)
	t.Cleanup(func() { slog.SetDefault(prev) })
}

// checkNoSecretInLogs: with every log line of the journey captured — ours
// and the OIDC library's, at debug level — none holds a secret the journey
// used: passwords (personal, wrong, provisional, both new ones), codes,
// access/refresh/ID tokens, the CAPTCHA answer, the session and CSRF
// cookies, the client secret. The audit trail is searched too. And the logs
// are structured: one JSON object a line, request lines complete, lines
// written during a request carrying its id.
func checkNoSecretInLogs(t *testing.T, e *testEnv, j *journey) {
	logs := e.logBuf.String()
	if len(j.secrets) < 20 {
		t.Fatalf("the journey collected only %d secrets: %v", len(j.secrets), j.names())
	}

	events, err := e.srv.store.ListAudit(e.ctx, storage.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var trail strings.Builder
	for _, ev := range events {
		trail.WriteString(ev.Type + " " + ev.Email + " " + ev.ClientIP + " " + ev.UserAgent + " " + ev.Detail + "\n")
	}
	for _, name := range j.names() {
		v := j.secrets[name]
		if i := strings.Index(logs, v); i >= 0 {
			t.Errorf("the %s is in the logs: %s", name, lineAround(logs, i))
		}
		if strings.Contains(trail.String(), v) {
			t.Errorf("the %s is in the audit trail", name)
		}
	}

	// Every line is one JSON object with a message; the library's lines
	// are among them (a replayed code makes it log "request error"), and
	// the lines written during a request carry its id.
	libraryLines, requestLines := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil {
			t.Fatalf("log line lacks time/level/msg: %q", line)
		}
		switch rec["msg"] {
		case "request error": // the OIDC library's
			libraryLines++
			fallthrough
		case "authorization error page": // the login UI's
			if rec["request_id"] == nil {
				t.Errorf("a line written during a request has no request_id: %q", line)
			}
		}
		if rec["msg"] == "request" {
			requestLines++
			for _, k := range []string{"request_id", "method", "path", "route", "status", "duration", "client_ip"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("request line lacks %s: %q", k, line)
				}
			}
		}
	}
	if libraryLines == 0 {
		t.Errorf("no line from the OIDC library was captured")
	}
	if requestLines < 30 {
		t.Errorf("only %d request lines for the whole journey", requestLines)
	}
}

// lineAround returns the log line holding logs[i].
func lineAround(logs string, i int) string {
	start := strings.LastIndexByte(logs[:i], '\n') + 1
	end := strings.IndexByte(logs[i:], '\n')
	if end < 0 {
		return logs[start:]
	}
	return logs[start : i+end]
}
