package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func sessionBehaviours() []behaviour {
	return []behaviour{
		{"CreateAndGet", testSessionCreateAndGet},
		{"WithItsAgent", testSessionAndUser},
		{"IdleExpiry", testSessionIdleExpiry},
		{"AbsoluteExpiry", testSessionAbsoluteExpiry},
		{"TouchPushesIdleExpiryUpToAbsolute", testSessionTouch},
		{"Delete", testSessionDelete},
		{"DeleteUserSessions", testSessionDeleteUser},
		{"CreateCarriesItsAuditEvents", testSessionCreateAudit},
	}
}

// testSessionCreateAudit: a session created with audit events stores them
// with it, in their order; a session that cannot be created (its id taken)
// stores neither.
func testSessionCreateAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	event := func(typ, detail string) storage.AuditEvent {
		return storage.AuditEvent{Time: now, Type: typ, UserID: "u-1", Email: "agent@example.fr",
			ClientIP: "192.0.2.7", UserAgent: "Firefox", Detail: detail}
	}
	sess := newSession("sess-1", "u-1", now)
	mustOK(t, s.CreateSession(ctx, sess, event("login.success", "first"), event("login.success", "second")), "CreateSession with events")
	got, err := s.GetSession(ctx, "sess-1", now)
	mustOK(t, err, "GetSession")
	assertSame(t, "session created with its events", got, sess)

	// A header's bytes that are not UTF-8 fail neither the event nor the
	// session it goes with.
	garbled := event("login.success", "garbled")
	garbled.UserAgent = "Mozilla/5.0 \xff\xfe(X11)"
	mustOK(t, s.CreateSession(ctx, newSession("sess-2", "u-1", now), garbled), "CreateSession with a User-Agent that is not UTF-8")

	again := newSession("sess-1", "u-1", now.Add(time.Minute))
	wantErr(t, s.CreateSession(ctx, again, event("login.success", "refused")), storage.ErrDuplicate, "CreateSession with a taken id")

	list, err := s.ListAudit(ctx, storage.AuditFilter{Email: "agent@example.fr"})
	mustOK(t, err, "ListAudit")
	var details []string
	for _, e := range list { // newest first
		if e.Detail == "garbled" {
			if !strings.HasPrefix(e.UserAgent, "Mozilla/5.0 ") || !strings.HasSuffix(e.UserAgent, "(X11)") {
				t.Errorf("garbled User-Agent stored as %q", e.UserAgent)
			}
		} else if e.Type != "login.success" || e.UserID != "u-1" || e.ClientIP != "192.0.2.7" || e.UserAgent != "Firefox" {
			t.Errorf("audit event stored as %+v", e)
		}
		details = append([]string{e.Detail}, details...)
	}
	if len(details) != 3 || details[0] != "first" || details[1] != "second" || details[2] != "garbled" {
		t.Fatalf("audit events after the three creations: %q, want [first second garbled]", details)
	}
}

func testSessionCreateAndGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	active := newSession("sess-1", "u-1", now.Add(321*time.Microsecond))
	mustOK(t, s.CreateSession(ctx, active), "CreateSession")
	change := newSession("sess-2", "u-1", now)
	change.Kind, change.AMR = storage.SessionPasswordChange, []string{"pwd"}
	mustOK(t, s.CreateSession(ctx, change), "CreateSession password_change")

	got, err := s.GetSession(ctx, "sess-1", now.Add(time.Minute))
	mustOK(t, err, "GetSession")
	assertSame(t, "active session", got, active)
	got, err = s.GetSession(ctx, "sess-2", now.Add(time.Minute))
	mustOK(t, err, "GetSession password_change")
	assertSame(t, "password-change session", got, change)
	_, err = s.GetSession(ctx, "sess-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetSession unknown")
}

func testSessionIdleExpiry(t *testing.T, s storage.Store) {
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	sess := addSession(t, s, "sess-1", "u-1", now)
	assertSessionLive(t, s, sess.ID, sess.IdleExpiresAt.Add(-time.Second))
	assertSessionGone(t, s, sess.ID, sess.IdleExpiresAt.Add(time.Second))
}

func testSessionAbsoluteExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	// An idle expiry beyond the absolute one: the absolute one still rules.
	sess := newSession("sess-1", "u-1", now)
	sess.AbsoluteExpiresAt = now.Add(10 * time.Minute)
	mustOK(t, s.CreateSession(ctx, sess), "CreateSession")
	assertSessionLive(t, s, sess.ID, now.Add(10*time.Minute-time.Second))
	assertSessionGone(t, s, sess.ID, now.Add(10*time.Minute+time.Second))
}

func testSessionTouch(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	sess := addSession(t, s, "sess-1", "u-1", now) // idle +30 min, absolute +1 h
	other := addSession(t, s, "sess-2", "u-1", now)

	t1 := now.Add(20 * time.Minute)
	mustOK(t, s.TouchSession(ctx, sess.ID, t1, t1.Add(30*time.Minute)), "TouchSession")
	// Past the first idle expiry: alive only because of the touch.
	got, err := s.GetSession(ctx, sess.ID, now.Add(40*time.Minute))
	mustOK(t, err, "GetSession after touch")
	want := sess
	want.LastSeenAt, want.IdleExpiresAt = t1, t1.Add(30*time.Minute)
	assertSame(t, "touched session", got, want)
	assertSessionGone(t, s, other.ID, now.Add(40*time.Minute))

	t2 := now.Add(45 * time.Minute)
	mustOK(t, s.TouchSession(ctx, sess.ID, t2, t2.Add(30*time.Minute)), "TouchSession beyond absolute")
	got, err = s.GetSession(ctx, sess.ID, t2)
	mustOK(t, err, "GetSession after second touch")
	want.LastSeenAt, want.IdleExpiresAt = t2, sess.AbsoluteExpiresAt
	assertSame(t, "session touched beyond its absolute expiry", got, want)
	assertSessionLive(t, s, sess.ID, sess.AbsoluteExpiresAt.Add(-time.Second))
	assertSessionGone(t, s, sess.ID, sess.AbsoluteExpiresAt.Add(time.Second))
}

func testSessionDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
	addSession(t, s, "sess-2", "u-1", now)
	mustOK(t, s.DeleteSession(ctx, "sess-1"), "DeleteSession")
	assertSessionGone(t, s, "sess-1", now)
	assertSessionLive(t, s, "sess-2", now)
}

func testSessionDeleteUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
	addSession(t, s, "sess-2", "u-1", now)
	addSession(t, s, "sess-3", "u-2", now)
	mustOK(t, s.DeleteUserSessions(ctx, "u-1"), "DeleteUserSessions")
	assertSessionGone(t, s, "sess-1", now)
	assertSessionGone(t, s, "sess-2", now)
	assertSessionLive(t, s, "sess-3", now)
}

// testSessionAndUser: the session and its agent as they are now, in one
// read; the same expiries as GetSession.
func testSessionAndUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	u := addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "autre@example.fr", now)
	sess := addSession(t, s, "sess-1", "u-1", now)
	addSession(t, s, "sess-2", "u-2", now)

	gotSess, gotUser, err := s.GetSessionAndUser(ctx, sess.ID, now.Add(time.Minute))
	mustOK(t, err, "GetSessionAndUser")
	assertSame(t, "session", gotSess, sess)
	assertSame(t, "its agent", gotUser, u)

	mustOK(t, s.SetPendingPasswordChange(ctx, u.ID, true, now.Add(time.Second)), "SetPendingPasswordChange")
	_, gotUser, err = s.GetSessionAndUser(ctx, sess.ID, now.Add(time.Minute))
	mustOK(t, err, "GetSessionAndUser after the flag")
	if !gotUser.PendingPasswordChange {
		t.Fatal("GetSessionAndUser returned the agent as it was, not as it is")
	}

	_, _, err = s.GetSessionAndUser(ctx, "sess-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetSessionAndUser unknown")
	_, _, err = s.GetSessionAndUser(ctx, sess.ID, sess.IdleExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetSessionAndUser after the idle expiry")
}
