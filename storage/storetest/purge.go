package storetest

import (
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func purgeBehaviours() []behaviour {
	return []behaviour{
		{"RemovesExpiredKeepsLive", testPurge},
		{"CodesKeptAnHourAfterExpiry", testPurgeCodes},
		{"AuthRequestKeptWhileItsCodeIsValid", testPurgeAuthRequestOfValidCode},
		{"ZeroBeforeKeepsMailsAndAudit", testPurgeZeroBefore},
		{"CountersWhoseWindowEnded", testPurgeCounters},
		{"ThrottlesIdleUnlessLocked", testPurgeThrottles},
		{"HabilitationsStay", testPurgeKeepsHabilitations},
	}
}

// Each expired record below is checked gone by reading it at a time when it
// was still valid: only a deletion explains ErrNotFound then.
func testPurge(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	u1 := addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	secret, err := s.GetOrCreateSecret(ctx, "cookie-key", []byte("secret"))
	mustOK(t, err, "GetOrCreateSecret")
	key := newSigningKey("k1", now.Add(-90*24*time.Hour))
	mustOK(t, s.AddSigningKey(ctx, key, ""), "AddSigningKey")
	mustOK(t, enqueue(s, ctx, newRecoveryJob("job-1", "agent@example.fr", now.Add(-time.Hour))), "EnqueueRecoveryJob")

	// Auth requests.
	arOld := newAuthRequest("ar-old", "portail", now.Add(-20*time.Minute))
	arLive := newAuthRequest("ar-live", "portail", now)
	for _, r := range []storage.AuthRequest{arOld, arLive} {
		mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest "+r.ID)
	}

	// Sessions: one past its idle expiry, one past its absolute expiry.
	idle := newSession("sess-idle", "u-1", now.Add(-2*time.Hour))
	idle.IdleExpiresAt, idle.AbsoluteExpiresAt = now.Add(-time.Minute), now.Add(time.Hour)
	absolute := newSession("sess-absolute", "u-1", now.Add(-2*time.Hour))
	absolute.IdleExpiresAt, absolute.AbsoluteExpiresAt = now.Add(10*time.Minute), now.Add(-time.Minute)
	live := newSession("sess-live", "u-1", now)
	for _, sess := range []storage.Session{idle, absolute, live} {
		mustOK(t, s.CreateSession(ctx, sess), "CreateSession "+sess.ID)
	}

	// Challenges.
	chOld := newChallenge("ch-old", now.Add(-10*time.Minute))
	chLive := newChallenge("ch-live", now)
	for _, c := range []storage.Challenge{chOld, chLive} {
		addChallenge(t, s, c)
	}
	for id, expires := range map[string]time.Time{"receipt-old": now, "receipt-live": now.Add(time.Second)} {
		j := newRecoveryJob("job-"+id, "agent@example.fr", now)
		j.Receipt = storage.ChallengeReceipt{ID: id, ExpiresAt: expires}
		mustOK(t, enqueue(s, ctx, j), "EnqueueRecoveryJob with "+id)
		// The receipt outlives its job, which the worker deletes at once.
		mustOK(t, s.DeleteRecoveryJobs(ctx, []string{j.ID}), "DeleteRecoveryJobs "+j.ID)
	}

	// Provisional passwords.
	provOld := newProvisional("u-1", "$argon2id$old", now.Add(-time.Hour))
	provLive := newProvisional("u-2", "$argon2id$live", now)
	to := map[string]string{"u-1": "agent@example.fr", "u-2": "collegue@example.fr"}
	for _, p := range []storage.ProvisionalPassword{provOld, provLive} {
		issue := storage.ProvisionalIssue{Password: p, Mail: newMail("mail-prov-"+p.UserID, to[p.UserID], now)}
		mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword "+p.UserID)
	}

	// Tokens: expired, live, revoked, and a rotated family whose old refresh
	// token must stay to detect a replay.
	longAgo := now.Add(-40 * 24 * time.Hour)
	oldAT, oldRT := addGrant(t, s, "g-old", "portail", "u-1", longAgo)
	liveAT, liveRT := addGrant(t, s, "g-live", "portail", "u-1", now)
	addGrant(t, s, "g-revoked", "portail", "u-1", now)
	mustOK(t, s.RevokeGrant(ctx, "g-revoked"), "RevokeGrant")
	_, rotatedRT := addGrant(t, s, "g-rotated", "portail", "u-1", now.Add(-2*time.Minute))
	newAT := newAccessToken("at-g-rotated-2", "g-rotated", "portail", "u-1", now.Add(-time.Minute))
	newRT := newRefreshToken("rt-g-rotated-2", "g-rotated", "portail", "u-1", now.Add(-time.Minute))
	mustOK(t, s.RotateRefreshToken(ctx, rotatedRT.TokenHash, newAT, newRT, now.Add(-time.Minute)), "RotateRefreshToken")

	// Mails (none of the provisional-password mails above is sent).
	for _, id := range []string{"mail-sent-old", "mail-sent-recent", "mail-pending-old", "mail-failed-old"} {
		addMail(t, s, id, now.Add(-11*24*time.Hour))
	}
	mustOK(t, s.MarkMailSent(ctx, "mail-sent-old", now.Add(-10*24*time.Hour)), "MarkMailSent old")
	mustOK(t, s.MarkMailSent(ctx, "mail-sent-recent", now.Add(-24*time.Hour)), "MarkMailSent recent")
	mustOK(t, s.MarkMailFailed(ctx, "mail-failed-old", "550"), "MarkMailFailed")

	// Audit.
	for _, e := range []storage.AuditEvent{
		newAuditEvent("audit.old", "agent@example.fr", now.Add(-100*24*time.Hour)),
		newAuditEvent("audit.recent", "agent@example.fr", now.Add(-24*time.Hour)),
	} {
		mustOK(t, s.AppendAudit(ctx, e), "AppendAudit")
	}

	n, err := s.PurgeExpired(ctx, now, now.Add(-7*24*time.Hour), now.Add(-30*24*time.Hour))
	mustOK(t, err, "PurgeExpired")
	if n <= 0 {
		t.Errorf("PurgeExpired removed %d rows, want > 0", n)
	}
	n, err = s.PurgeExpired(ctx, now, now.Add(-7*24*time.Hour), now.Add(-30*24*time.Hour))
	mustOK(t, err, "PurgeExpired again")
	if n != 0 {
		t.Errorf("PurgeExpired again removed %d rows, want 0", n)
	}

	_, err = s.GetAuthRequest(ctx, arOld.ID, arOld.ExpiresAt.Add(-time.Minute))
	wantErr(t, err, storage.ErrNotFound, "expired auth request after purge")
	_, err = s.GetAuthRequest(ctx, arLive.ID, now)
	mustOK(t, err, "live auth request after purge")

	assertSessionGone(t, s, idle.ID, idle.IdleExpiresAt.Add(-time.Minute))
	assertSessionGone(t, s, absolute.ID, absolute.AbsoluteExpiresAt.Add(-time.Minute))
	assertSessionLive(t, s, live.ID, now)

	_, err = s.ConsumeChallenge(ctx, chOld.ID, chOld.ExpiresAt.Add(-time.Minute))
	wantErr(t, err, storage.ErrNotFound, "expired challenge after purge")
	_, err = s.ConsumeChallenge(ctx, chLive.ID, now)
	mustOK(t, err, "live challenge after purge")
	// Read before its expiry: only a deletion explains its absence.
	if ok, err := s.ChallengeReceipt(ctx, "receipt-old", now.Add(-time.Second)); err != nil || ok {
		t.Errorf("expired challenge receipt after purge: %v, %v; want gone", ok, err)
	}
	if ok, err := s.ChallengeReceipt(ctx, "receipt-live", now); err != nil || !ok {
		t.Errorf("live challenge receipt after purge: %v, %v; want there", ok, err)
	}

	_, err = s.GetProvisionalPassword(ctx, "u-1", provOld.ExpiresAt.Add(-time.Minute))
	wantErr(t, err, storage.ErrNotFound, "expired provisional password after purge")
	_, err = s.GetProvisionalPassword(ctx, "u-2", now)
	mustOK(t, err, "live provisional password after purge")

	_, err = s.GetAccessToken(ctx, oldAT.ID, oldAT.ExpiresAt.Add(-time.Minute))
	wantErr(t, err, storage.ErrNotFound, "expired access token after purge")
	_, err = s.GetRefreshToken(ctx, oldRT.TokenHash, oldRT.ExpiresAt.Add(-time.Minute))
	wantErr(t, err, storage.ErrNotFound, "expired refresh token after purge")
	assertGrantLive(t, s, liveAT, liveRT, now)
	_, err = s.GetRefreshToken(ctx, rotatedRT.TokenHash, now)
	wantErr(t, err, storage.ErrAlreadyUsed, "rotated (not expired) refresh token after purge")

	mails, err := s.ListMails(ctx, "", 100)
	mustOK(t, err, "ListMails")
	assertIDSet(t, "outbox after purge", mails,
		"mail-prov-u-1", "mail-prov-u-2", "mail-sent-recent", "mail-pending-old", "mail-failed-old")

	events, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustOK(t, err, "ListAudit")
	assertAuditTypes(t, "audit after purge", events, "audit.recent")

	// What the purge does not cover stays.
	gotUser, err := s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser after purge")
	assertSame(t, "user after purge", gotUser, u1)
	_, err = s.GetClient(ctx, "portail")
	mustOK(t, err, "GetClient after purge")
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys after purge")
	assertSameList(t, "keys after purge", keys, []storage.SigningKey{key})
	gotSecret, err := s.GetOrCreateSecret(ctx, "cookie-key", []byte("other"))
	mustOK(t, err, "GetOrCreateSecret after purge")
	if string(gotSecret) != string(secret) {
		t.Errorf("secret after purge = %q, want %q", gotSecret, secret)
	}
	jobs, err := s.ClaimRecoveryJobs(ctx, now, time.Minute, 10)
	mustOK(t, err, "ClaimRecoveryJobs after purge")
	assertIDSet(t, "recovery jobs after purge", jobs, "job-1")
}

// A used code must outlive its expiry for an hour, so that a late replay is
// still recognised; codes are otherwise not observable once expired, so
// this test counts rows on a store holding nothing else that expires.
func testPurgeCodes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	ar := newAuthRequest("ar-1", "portail", now)
	ar.ExpiresAt = now.Add(24 * time.Hour)
	ar.UserID, ar.Done = "u-1", true // codes go to completed requests
	mustOK(t, s.CreateAuthRequest(ctx, ar), "CreateAuthRequest")
	for _, c := range []storage.AuthCode{
		{CodeHash: "code-expired-2h", AuthRequestID: ar.ID, ExpiresAt: now.Add(-2 * time.Hour)},
		{CodeHash: "code-expired-10m", AuthRequestID: ar.ID, ExpiresAt: now.Add(-10 * time.Minute)},
		{CodeHash: "code-live", AuthRequestID: ar.ID, ExpiresAt: now.Add(time.Minute)},
	} {
		mustOK(t, s.SaveAuthCode(ctx, c), "SaveAuthCode "+c.CodeHash)
	}

	n, err := s.PurgeExpired(ctx, now, time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired")
	if n != 1 {
		t.Errorf("PurgeExpired removed %d rows, want 1 (the code expired two hours ago)", n)
	}
	_, _, err = s.AuthRequestByCode(ctx, "code-live", now)
	mustOK(t, err, "AuthRequestByCode of the live code after purge")

	// 51 minutes later the code that expired 10 minutes before the first
	// purge is over its hour and goes; the live one, expired for 50 minutes,
	// stays.
	n, err = s.PurgeExpired(ctx, now.Add(51*time.Minute), time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired later")
	if n != 1 {
		t.Errorf("PurgeExpired later removed %d rows, want 1 (the code expired 61 minutes ago)", n)
	}
}

// A login near the end of its auth request's life gets a code that outlives
// the request: the request stays until its codes have expired, for their
// exchange needs it. Requests checked gone are read at a time when they were
// still valid: only a deletion explains ErrNotFound then.
func testPurgeAuthRequestOfValidCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now.Add(-time.Hour))
	// Each request expires at now (newAuthRequest: ten minutes), and was
	// completed at its last moment, or never.
	created := now.Add(-10 * time.Minute)
	completed := func(id string, codeExpiresAt time.Time) storage.AuthRequest {
		t.Helper()
		ar := addCompletedAuthRequest(t, s, id, "portail", "u-1", "sess-1", created)
		code := storage.AuthCode{CodeHash: "code-" + id, AuthRequestID: id, ExpiresAt: codeExpiresAt}
		mustOK(t, s.SaveAuthCode(ctx, code), "SaveAuthCode "+code.CodeHash)
		return ar
	}
	read := completed("ar-read", now.Add(time.Minute))
	exchanged := completed("ar-exchanged", now.Add(time.Minute))
	expiredCode := completed("ar-expired-code", now.Add(-time.Second))
	noCode := newAuthRequest("ar-no-code", "portail", created)
	mustOK(t, s.CreateAuthRequest(ctx, noCode), "CreateAuthRequest "+noCode.ID)

	mid := now.Add(30 * time.Second)
	_, err := s.PurgeExpired(ctx, mid, time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired while the codes are valid")
	for _, ar := range []storage.AuthRequest{expiredCode, noCode} {
		_, err = s.GetAuthRequest(ctx, ar.ID, created)
		wantErr(t, err, storage.ErrNotFound, "expired auth request without a valid code, after purge: "+ar.ID)
	}
	got, _, err := s.AuthRequestByCode(ctx, "code-"+read.ID, mid)
	mustOK(t, err, "AuthRequestByCode of a valid code whose request expired, after purge")
	assertSame(t, "auth request of the valid code", got, read)
	at, rt := codeTokens(exchanged, "1", mid)
	mustOK(t, s.ExchangeAuthCode(ctx, "code-"+exchanged.ID, at, &rt, mid),
		"ExchangeAuthCode of a valid code whose request expired, after purge")

	// Once its code has expired, the request goes.
	_, err = s.PurgeExpired(ctx, now.Add(time.Minute), time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired once the codes expired")
	_, err = s.GetAuthRequest(ctx, read.ID, created)
	wantErr(t, err, storage.ErrNotFound, "auth request after its code expired, after purge")
}

func testPurgeZeroBefore(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addMail(t, s, "mail-1", now.Add(-400*24*time.Hour))
	mustOK(t, s.MarkMailSent(ctx, "mail-1", now.Add(-400*24*time.Hour)), "MarkMailSent")
	mustOK(t, s.AppendAudit(ctx, newAuditEvent("audit.old", "agent@example.fr", now.Add(-400*24*time.Hour))), "AppendAudit")

	n, err := s.PurgeExpired(ctx, now, time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired")
	if n != 0 {
		t.Errorf("PurgeExpired with zero mailBefore and auditBefore removed %d rows, want 0", n)
	}
	mails, err := s.ListMails(ctx, "", 10)
	mustOK(t, err, "ListMails")
	assertIDSet(t, "outbox after purge", mails, "mail-1")
	events, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustOK(t, err, "ListAudit")
	assertAuditTypes(t, "audit after purge", events, "audit.old")
}

// purgeCount purges at now (keeping mails and audit) and checks how many rows
// went, on a store holding nothing else that expires.
func purgeCount(t *testing.T, s storage.Store, now time.Time, want int64, what string) {
	t.Helper()
	n, err := s.PurgeExpired(t.Context(), now, time.Time{}, time.Time{})
	mustOK(t, err, "PurgeExpired "+what)
	if n != want {
		t.Errorf("PurgeExpired %s removed %d rows, want %d", what, n, want)
	}
}

// Counters whose window has ended are deleted; a live window is not, even
// one that restarted after an earlier window ended (its count goes on).
func testPurgeCounters(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	hit := func(key string, at time.Duration, want int64) {
		t.Helper()
		got, err := s.HitCounter(ctx, key, time.Minute, now.Add(at))
		mustOK(t, err, "HitCounter "+key)
		if got != want {
			t.Errorf("HitCounter(%s) at +%v = %d, want %d", key, at, got, want)
		}
	}
	hit("restarted", 0, 1)
	hit("restarted", 61*time.Second, 1) // a new window, until +121 s
	hit("restarted", 62*time.Second, 2)
	hit("short", 30*time.Second, 1)                     // until +90 s
	n, err := s.HitCounter(ctx, "hour", time.Hour, now) // until +1 h
	mustOK(t, err, "HitCounter hour")
	if n != 1 {
		t.Errorf("HitCounter(hour) = %d, want 1", n)
	}

	purgeCount(t, s, now.Add(59*time.Second), 0, "before any window ended")
	purgeCount(t, s, now.Add(100*time.Second), 1, "once the short window ended")
	hit("restarted", 110*time.Second, 3) // kept: its window runs until +121 s
	purgeCount(t, s, now.Add(121*time.Second), 1, "once the restarted window ended")
	purgeCount(t, s, now.Add(2*time.Hour), 1, "once the hour's window ended")
	purgeCount(t, s, now.Add(3*time.Hour), 0, "again")
}

// Throttles are forgotten a day after their last failure, unless locked: a
// lock lasts until a completed recovery resets it.
func testPurgeThrottles(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	day := storage.ThrottleForgetAfter
	add := func(key string, lockAfter int, at time.Time) {
		t.Helper()
		_, err := addFailure(ctx, s, key, lockAfter, at)
		mustOK(t, err, "addFailure "+key)
	}
	add("old", 5, now.Add(-day-time.Hour))
	add("refreshed", 5, now.Add(-3*day))
	add("refreshed", 5, now.Add(-day+time.Hour)) // the last failure counts
	add("edge", 5, now.Add(-day))                // exactly a day: not older
	add("recent", 5, now.Add(-time.Hour))
	add("locked", 1, now.Add(-30*day))

	purgeCount(t, s, now, 1, "of throttles")
	for _, c := range []struct {
		key      string
		failures int
	}{{"old", 0}, {"refreshed", 2}, {"edge", 1}, {"recent", 1}, {"locked", 1}} {
		got, err := s.GetThrottle(ctx, c.key)
		mustOK(t, err, "GetThrottle "+c.key)
		if got.Failures != c.failures {
			t.Errorf("throttle %s after purge: %d failures, want %d", c.key, got.Failures, c.failures)
		}
	}
	got, err := s.GetThrottle(ctx, "locked")
	mustOK(t, err, "GetThrottle locked")
	if got.LockedAt == nil {
		t.Errorf("locked throttle lost its lock in the purge")
	}
	purgeCount(t, s, now.Add(365*day), 3, "a year later (all but the lock)")
}

func testPurgeKeepsHabilitations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addClient(t, s, "paie", now)
	ended := now.Add(-400 * 24 * time.Hour)
	h := newHabilitation("u-1", "paie", now.Add(-500*24*time.Hour))
	h.Until = &ended
	mustOK(t, s.GrantHabilitation(ctx, h), "GrantHabilitation")
	purgeCount(t, s, now, 0, "with an ended habilitation")
	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "habilitations after purge", list, []storage.Habilitation{h})
}
