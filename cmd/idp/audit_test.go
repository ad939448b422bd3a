package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// checkJourneyAudit: the trail holds the journey, in order, each event with
// its time, agent, client IP and user agent: the failed and the successful
// login, the recovery request, the provisional password issued, mailed and
// used, both password changes and the revocations they caused. An
// administrator's disable through the CLI adds its own events, and
// `idp audit list` shows them.
func checkJourneyAudit(t *testing.T, e *testEnv, j *journey, dbURL string) {
	events, err := e.srv.store.ListAudit(e.ctx, storage.AuditFilter{Email: agentEmail, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(events) // oldest first
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	want := []string{
		"admin.user_created", "login.failure", "login.success", "recovery.requested", "provisional.issued",
		"provisional.mailed", "login.provisional", "password.changed", "sessions.revoked",
		"password.changed", "sessions.revoked",
	}
	if !isSubsequence(want, types) {
		t.Fatalf("audit trail of the journey:\n%v\nwant, in this order:\n%v", types, want)
	}
	now := e.clock.Now()
	for _, ev := range events {
		if ev.Time.Before(now.Add(-time.Minute)) || ev.Time.After(now) {
			t.Errorf("%s at %v, not during the journey", ev.Type, ev.Time)
		}
		switch ev.Type {
		case "login.failure", "login.success", "login.provisional", "recovery.requested", "password.changed", "sessions.revoked":
			if ev.ClientIP != "127.0.0.1" || !strings.HasPrefix(ev.UserAgent, "Go-http-client/") {
				t.Errorf("%s: client IP %q, user agent %q", ev.Type, ev.ClientIP, ev.UserAgent)
			}
		}
		if ev.Type != "recovery.requested" && ev.Type != "login.failure" && ev.UserID != j.agentID {
			t.Errorf("%s: user id %q, want the agent's", ev.Type, ev.UserID)
		}
		switch ev.Type {
		case "login.failure":
			if ev.Detail != "wrong password" {
				t.Errorf("login.failure detail %q", ev.Detail)
			}
		case "provisional.issued":
			if ev.Detail != "recovery" || ev.ClientIP != "127.0.0.1" {
				t.Errorf("provisional.issued: detail %q, client IP %q", ev.Detail, ev.ClientIP)
			}
		case "provisional.mailed":
			if !strings.HasPrefix(ev.Detail, "mail ") {
				t.Errorf("provisional.mailed detail %q", ev.Detail)
			}
		case "sessions.revoked":
			if !strings.Contains(ev.Detail, "password changed") {
				t.Errorf("sessions.revoked detail %q", ev.Detail)
			}
		}
	}

	c := newCLI(t, dbURL)
	c.ok("user", "disable", "--email", agentEmail)
	out := c.ok("audit", "list", "--email", agentEmail, "--limit", "2")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") ||
		!strings.Contains(lines[1], "sessions.revoked") || !strings.Contains(lines[2], "admin.user_disabled") {
		t.Fatalf("audit list after a disable:\n%s", out)
	}
	for _, l := range lines[1:] {
		for _, f := range []string{agentEmail, "cli", "idp-cli"} {
			if !strings.Contains(l, f) {
				t.Errorf("audit list row lacks %q: %s", f, l)
			}
		}
	}
	if !strings.Contains(lines[1], "account disabled") {
		t.Errorf("the revocation does not say why: %s", lines[1])
	}
	out = c.ok("audit", "list", "--since", "1h")
	for _, typ := range want {
		if !strings.Contains(out, typ) {
			t.Errorf("audit list --since 1h lacks %s:\n%s", typ, out)
		}
	}
}

// isSubsequence tells whether want appears in got in order (other events
// may come between).
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestAuditListCommand: `idp audit list` filters by e-mail, by time (a date,
// an RFC 3339 time, a duration) and by count, newest first; a user agent
// full of control characters cannot break the table or the terminal; bad
// input is one line on stderr and a non-zero exit.
func TestAuditListCommand(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		c := newCLI(t, dbURL)
		c.ok("migrate")
		store, err := openMigrated(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		now := time.Now()
		for _, ev := range []storage.AuditEvent{
			{Time: now.Add(-72 * time.Hour), Type: "login.failure", Email: "a@partenaire.fr", ClientIP: "192.0.2.1", UserAgent: "UA-old", Detail: "wrong password"},
			{Time: now.Add(-2 * time.Hour), Type: "login.success", Email: "b@partenaire.fr", ClientIP: "192.0.2.2", UserAgent: "Mozilla\x1b[2J\tevil\nline\r\u009b\u202e"},
			{Time: now.Add(-time.Minute), Type: "recovery.requested", Email: "a@partenaire.fr", ClientIP: "192.0.2.3", UserAgent: "UA-new"},
		} {
			if err := store.AppendAudit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		rows := func(out string) []string {
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[0], "USER AGENT") || !strings.Contains(lines[0], "DETAIL") {
				t.Fatalf("no header: %q", out)
			}
			return lines[1:]
		}
		all := rows(c.ok("audit", "list"))
		if len(all) != 3 || !strings.Contains(all[0], "recovery.requested") || !strings.Contains(all[2], "login.failure") {
			t.Fatalf("audit list, newest first:\n%s", strings.Join(all, "\n"))
		}
		if !strings.Contains(all[2], now.Add(-72*time.Hour).UTC().Format("2006-01-02T15:04")) ||
			!strings.Contains(all[2], "192.0.2.1") || !strings.Contains(all[2], "UA-old") || !strings.Contains(all[2], "wrong password") {
			t.Errorf("row lacks time, IP, user agent or detail: %s", all[2])
		}
		if strings.ContainsAny(strings.Join(all, "\n"), "\x1b\t\r\u009b\u202e") || !strings.Contains(all[1], "Mozilla?[2J?evil?line") {
			t.Errorf("control characters reached the output: %q", all[1])
		}
		cases := []struct {
			args []string
			want int
		}{
			{[]string{"--email", "A@Partenaire.fr"}, 2},
			{[]string{"--since", "24h"}, 2},
			{[]string{"--since", "90m"}, 1},
			{[]string{"--since", "7d"}, 3},
			{[]string{"--since", now.Add(-3 * time.Hour).Format(time.RFC3339)}, 2},
			{[]string{"--since", now.Add(48 * time.Hour).Format(time.DateOnly)}, 0},
			{[]string{"--limit", "1"}, 1},
			{[]string{"--email", "a@partenaire.fr", "--since", "24h"}, 1},
		}
		for _, tc := range cases {
			got := rows(c.ok(append([]string{"audit", "list"}, tc.args...)...))
			if len(got) != tc.want {
				t.Errorf("audit list %v: %d rows, want %d:\n%s", tc.args, len(got), tc.want, strings.Join(got, "\n"))
			}
		}

		c.fails("--since", "audit", "list", "--since", "hier")
		c.fails("--since", "audit", "list", "--since", "-5h")
		c.fails("--since", "audit", "list", "--since", "2026-13-45")
		c.fails("--limit", "audit", "list", "--limit", "0")
		c.fails("-limit", "audit", "list", "--limit", "many")
		c.fails("unknown subcommand", "audit", "frobnicate")
		c.fails("unexpected argument", "audit", "list", "extra")
		if code, out, _ := c.run("audit", "--help"); code != 0 || !strings.Contains(out, "--since") {
			t.Errorf("audit --help: %d %q", code, out)
		}
	})
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"24h":                       now.Add(-24 * time.Hour),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"0d":                        now,
		"1h30m":                     now.Add(-90 * time.Minute),
		"2026-03-01":                time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T08:00:00+01:00": time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC),
	}
	for in, want := range cases {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "x7d", "1w", "yesterday", "99999999d"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

// TestAuditListLimitIsDecimal (review): --limit is a flag.Int, which reads
// "010" as octal (8) and accepts "0x10" (16): `idp audit list --limit 010`
// shows 8 events.
func TestAuditListLimitIsDecimal(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	for i := range 12 {
		c.ok("user", "add", "--email", fmt.Sprintf("agent%d@mairie.fr", i), "--name", "Agent", "--password", "secret12")
	}
	out := c.ok("audit", "list", "--limit", "010")
	if rows := strings.Count(out, "\n") - 1; rows != 10 {
		t.Fatalf("audit list --limit 010 listed %d events, want 10:\n%s", rows, out)
	}
}
