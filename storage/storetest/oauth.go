package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func authRequestBehaviours() []behaviour {
	return []behaviour{
		{"RoundTrip", testAuthRequestRoundTrip},
		{"Expiry", testAuthRequestExpiry},
		{"Complete", testAuthRequestComplete},
		{"CreateCompletedWithCode", testAuthRequestCreateWithCode},
		{"CompleteWithCode", testAuthRequestCompleteWithCode},
		{"CompletedOnlyOnce", testAuthRequestCompletedOnlyOnce},
		{"ByCodeWithAccess", testAuthRequestByCodeWithAccess},
		{"Delete", testAuthRequestDelete},
	}
}

// testAuthRequestCreateWithCode: a request stored completed with its code
// (single sign-on) is found by the code, as after Complete and SaveAuthCode.
func testAuthRequestCreateWithCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	r := newAuthRequest("ar-sso", "portail", now)
	r.UserID, r.SessionID, r.AuthTime, r.AMR, r.Done = "u-1", "sess-1", now.Add(-time.Hour), []string{"pwd"}, true
	r.IDTokenHintSubject = "u-1" // the application asked about the session's agent
	code := storage.AuthCode{CodeHash: "hash-sso", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.CreateAuthRequestWithCode(ctx, r, code), "CreateAuthRequestWithCode")

	got, _, err := s.AuthRequestByCode(ctx, code.CodeHash, now)
	mustOK(t, err, "AuthRequestByCode")
	assertSame(t, "request found by its code", got, r)
	got, err = s.GetAuthRequest(ctx, r.ID, now)
	mustOK(t, err, "GetAuthRequest")
	assertSame(t, "request found by its id", got, r)

	// A request id already taken: nothing of the second call is stored.
	dup := storage.AuthCode{CodeHash: "hash-dup", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthRequestWithCode(ctx, r, dup); err == nil {
		t.Fatal("CreateAuthRequestWithCode accepted a duplicate request id")
	}
	_, _, err = s.AuthRequestByCode(ctx, dup.CodeHash, now)
	wantErr(t, err, storage.ErrNotFound, "the code of a refused request")
}

// testAuthRequestCompleteWithCode: completion and code in one write; an
// unknown or expired request gets ErrNotFound and no code.
func testAuthRequestCompleteWithCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	other := newAuthRequest("ar-2", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest ar-2")

	authTime := now.Add(42 * time.Second)
	amr := []string{"pwd"}
	code := storage.AuthCode{CodeHash: "hash-1", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.CompleteAuthRequestWithCode(ctx, r.ID, "u-1", "sess-1", authTime, amr, code, now), "CompleteAuthRequestWithCode")
	got, _, err := s.AuthRequestByCode(ctx, code.CodeHash, now)
	mustOK(t, err, "AuthRequestByCode")
	want := r
	want.UserID, want.SessionID, want.AuthTime, want.AMR, want.Done = "u-1", "sess-1", authTime, amr, true
	assertSame(t, "completed request found by its code", got, want)
	got, err = s.GetAuthRequest(ctx, other.ID, now)
	mustOK(t, err, "GetAuthRequest ar-2")
	assertSame(t, "untouched auth request", got, other)

	for name, c := range map[string]struct {
		id  string
		now time.Time
	}{
		"unknown": {"ar-unknown", now},
		"expired": {other.ID, other.ExpiresAt.Add(time.Second)},
	} {
		lost := storage.AuthCode{CodeHash: "hash-" + name, AuthRequestID: c.id, ExpiresAt: c.now.Add(time.Minute)}
		err := s.CompleteAuthRequestWithCode(ctx, c.id, "u-1", "sess-1", authTime, amr, lost, c.now)
		wantErr(t, err, storage.ErrNotFound, "CompleteAuthRequestWithCode "+name)
		_, _, err = s.AuthRequestByCode(ctx, lost.CodeHash, c.now)
		wantErr(t, err, storage.ErrNotFound, "the code of a "+name+" request")
	}
	got, err = s.GetAuthRequest(ctx, other.ID, now)
	mustOK(t, err, "GetAuthRequest ar-2 after the refused completion")
	assertSame(t, "expired request left as it was", got, other)
}

// testAuthRequestCompletedOnlyOnce: a done request is not completed again
// for another agent, with or without a code (its codes would otherwise
// follow it to the new agent); its own agent may complete it again, from
// another session (a login form posted twice opens two).
func testAuthRequestCompletedOnlyOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	amr := []string{"pwd"}
	first := storage.AuthCode{CodeHash: "hash-first", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.CompleteAuthRequestWithCode(ctx, r.ID, "u-1", "sess-1", now, amr, first, now), "first completion")

	for name, who := range map[string][2]string{"another agent": {"u-2", "sess-2"}, "another agent, the same session id": {"u-2", "sess-1"}} {
		lost := storage.AuthCode{CodeHash: "hash-" + name, AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
		err := s.CompleteAuthRequestWithCode(ctx, r.ID, who[0], who[1], now, amr, lost, now)
		wantErr(t, err, storage.ErrNotFound, "CompleteAuthRequestWithCode by "+name)
		_, _, err = s.AuthRequestByCode(ctx, lost.CodeHash, now)
		wantErr(t, err, storage.ErrNotFound, "the code of the refused completion by "+name)
		wantErr(t, s.CompleteAuthRequest(ctx, r.ID, who[0], who[1], now, amr), storage.ErrNotFound, "CompleteAuthRequest by "+name)
	}
	got, _, err := s.AuthRequestByCode(ctx, first.CodeHash, now)
	mustOK(t, err, "AuthRequestByCode of the first code")
	if got.UserID != "u-1" || got.SessionID != "sess-1" {
		t.Fatalf("the first code now leads to %s/%s, want u-1/sess-1", got.UserID, got.SessionID)
	}
	again := storage.AuthCode{CodeHash: "hash-again", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.CompleteAuthRequestWithCode(ctx, r.ID, "u-1", "sess-2", now, amr, again, now), "completion again for its agent, from another session")
	mustOK(t, s.CompleteAuthRequest(ctx, r.ID, "u-1", "sess-1", now, amr), "CompleteAuthRequest again for its agent")
}

func testAuthRequestRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	// Times given in another zone and with microseconds: the store must hand
	// them back in UTC, to the millisecond at least.
	paris := time.FixedZone("CET", 3600)
	zero, hour := int64(0), int64(3600)

	full := newAuthRequest("ar-full", "portail", now)
	full.Scopes = []string{"openid", "offline_access", "email", "profile"}
	full.Prompt = []string{"login", "consent"}
	full.MaxAge = &zero // max_age=0 is meaningful (force a login): not the same as nil
	full.LoginHint = "agent@example.fr"
	full.UILocales = "fr-FR en"
	full.ResponseMode = "form_post"
	full.BrowserBinding = "binding-of-the-browser"
	full.IDTokenHintSubject = "u-of-the-hint"
	full.CreatedAt = now.Add(456 * time.Microsecond).In(paris)
	full.ExpiresAt = now.Add(10*time.Minute + 789*time.Microsecond).In(paris)

	minimal := storage.AuthRequest{
		ID:           "ar-minimal",
		ClientID:     "portail",
		RedirectURI:  "https://portail.example.fr/callback",
		Scopes:       []string{"openid"},
		ResponseType: "code",
		CreatedAt:    now,
		ExpiresAt:    now.Add(10 * time.Minute),
	}
	withMaxAge := newAuthRequest("ar-maxage", "portail", now)
	withMaxAge.MaxAge = &hour

	for _, r := range []storage.AuthRequest{full, minimal, withMaxAge} {
		mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest "+r.ID)
	}
	for _, r := range []storage.AuthRequest{full, minimal, withMaxAge} {
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		mustOK(t, err, "GetAuthRequest "+r.ID)
		assertSame(t, r.ID, got, r)
	}
	_, err := s.GetAuthRequest(ctx, "ar-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest unknown")
}

func testAuthRequestExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")

	_, err := s.GetAuthRequest(ctx, r.ID, r.ExpiresAt.Add(-time.Second))
	mustOK(t, err, "GetAuthRequest just before expiry")
	_, err = s.GetAuthRequest(ctx, r.ID, r.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest after expiry")
}

func testAuthRequestComplete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	r := newAuthRequest("ar-1", "portail", now)
	r.Prompt = []string{"login"}
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	other := newAuthRequest("ar-2", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest ar-2")

	authTime := now.Add(42*time.Second + 123*time.Microsecond)
	amr := []string{"pwd", "captcha"}
	mustOK(t, s.CompleteAuthRequest(ctx, r.ID, "u-1", "sess-1", authTime, amr), "CompleteAuthRequest")

	got, err := s.GetAuthRequest(ctx, r.ID, now.Add(time.Minute))
	mustOK(t, err, "GetAuthRequest")
	want := r
	want.UserID, want.SessionID, want.AuthTime, want.AMR, want.Done = "u-1", "sess-1", authTime, amr, true
	assertSame(t, "completed auth request", got, want)

	got, err = s.GetAuthRequest(ctx, other.ID, now.Add(time.Minute))
	mustOK(t, err, "GetAuthRequest ar-2")
	assertSame(t, "untouched auth request", got, other)
}

func testAuthRequestDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	other := newAuthRequest("ar-2", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest ar-2")

	mustOK(t, s.DeleteAuthRequest(ctx, r.ID), "DeleteAuthRequest")
	_, err := s.GetAuthRequest(ctx, r.ID, now)
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest after delete")
	_, err = s.GetAuthRequest(ctx, other.ID, now)
	mustOK(t, err, "GetAuthRequest of another request")
}

func authCodeBehaviours() []behaviour {
	return []behaviour{
		{"ReadDoesNotConsume", testCodeReadDoesNotConsume},
		{"ExchangeStoresTokensAndDeletesRequest", testCodeExchange},
		{"ReplayAfterExchangeRevokesGrant", testCodeReplayRevokesGrant},
		{"ExpiredOrUnknown", testCodeExpiredOrUnknown},
		{"ExpiredUsedCodeReplayedStillRevokes", testCodeExpiredReplay},
		{"ExpiredUsedCodeExchangedAgainStillRevokes", testCodeExchangeExpiredReplay},
		{"AuthRequestGone", testCodeAuthRequestGone},
		{"ConcurrentExchangesOneWinner", testCodeRace},
		{"ConcurrentTokenRequestsLeaveNoLiveToken", testCodeTokenRequestsRacing},
	}
}

// codeWorld stores a client, an agent with a session, a completed auth request
// and its code (valid for a minute), and returns the auth request.
func codeWorld(t *testing.T, s storage.Store, now time.Time) storage.AuthRequest {
	t.Helper()
	addSignedIn(t, s, now)
	ar := addCompletedAuthRequest(t, s, "ar-1", "portail", "u-1", "sess-1", now)
	code := storage.AuthCode{CodeHash: "code-1", AuthRequestID: ar.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.SaveAuthCode(t.Context(), code), "SaveAuthCode")
	return ar
}

// codeTokens are the tokens an exchange of ar's code issues; name tells
// the exchanges apart.
func codeTokens(ar storage.AuthRequest, name string, now time.Time) (storage.AccessToken, storage.RefreshToken) {
	return newAccessToken("at-"+name, ar.ID, ar.ClientID, ar.UserID, now),
		newRefreshToken("rt-"+name, ar.ID, ar.ClientID, ar.UserID, now)
}

// The library reads the code before it checks PKCE and the client: reading
// must leave the code for the exchange that passes them.
func testCodeReadDoesNotConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)

	for i := range 2 {
		got, _, err := s.AuthRequestByCode(ctx, "code-1", now.Add(time.Duration(i+1)*time.Second))
		mustOK(t, err, fmt.Sprintf("AuthRequestByCode, read %d", i+1))
		assertSame(t, "auth request of the code", got, ar)
	}
	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	mustOK(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), "ExchangeAuthCode after two reads")
	assertGrantLive(t, s, at, rt, now.Add(11*time.Second))
}

func testCodeExchange(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	other := addCompletedAuthRequest(t, s, "ar-2", "portail", "u-1", "sess-1", now)
	mustOK(t, s.SaveAuthCode(ctx, storage.AuthCode{CodeHash: "code-2", AuthRequestID: other.ID,
		ExpiresAt: now.Add(time.Minute)}), "SaveAuthCode code-2")

	// The tokens are stored as given, the refresh token too.
	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	mustOK(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), "ExchangeAuthCode")
	gotAT, err := s.GetAccessToken(ctx, at.ID, now.Add(11*time.Second))
	mustOK(t, err, "GetAccessToken")
	assertSame(t, "access token of the exchange", gotAT, at)
	gotRT, err := s.GetRefreshToken(ctx, rt.TokenHash, now.Add(11*time.Second))
	mustOK(t, err, "GetRefreshToken")
	assertSame(t, "refresh token of the exchange", gotRT, rt)

	// The auth request went with the exchange; the other one stays.
	_, err = s.GetAuthRequest(ctx, ar.ID, now.Add(11*time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest of the exchanged code")
	_, err = s.GetAuthRequest(ctx, other.ID, now.Add(11*time.Second))
	mustOK(t, err, "GetAuthRequest of another request")

	// Without a refresh token, and a code is redeemed only for its own
	// grant: another grant's tokens leave it untouched.
	alone := newAccessToken("at-alone", other.ID, "portail", "u-1", now.Add(12*time.Second))
	stray := newAccessToken("at-stray", ar.ID, "portail", "u-1", now.Add(12*time.Second))
	wantErr(t, s.ExchangeAuthCode(ctx, "code-2", stray, nil, now.Add(12*time.Second)), storage.ErrNotFound,
		"ExchangeAuthCode for another grant")
	_, err = s.GetAccessToken(ctx, stray.ID, now.Add(12*time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the refused exchange")
	mustOK(t, s.ExchangeAuthCode(ctx, "code-2", alone, nil, now.Add(12*time.Second)), "ExchangeAuthCode without refresh")
	gotAT, err = s.GetAccessToken(ctx, alone.ID, now.Add(13*time.Second))
	mustOK(t, err, "GetAccessToken without refresh")
	assertSame(t, "access token without refresh", gotAT, alone)
}

func testCodeReplayRevokesGrant(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	otherAT, otherRT := addGrant(t, s, "ar-other", "portail", "u-1", now)

	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	mustOK(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), "ExchangeAuthCode")

	// A replay is recognised although the auth request is gone.
	_, _, err := s.AuthRequestByCode(ctx, "code-1", now.Add(20*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "AuthRequestByCode after the exchange")
	assertGrantRevoked(t, s, at, rt, now.Add(20*time.Second))
	assertGrantLive(t, s, otherAT, otherRT, now.Add(20*time.Second))

	// Again, and through the exchange itself: refused, no token stored.
	_, _, err = s.AuthRequestByCode(ctx, "code-1", now.Add(30*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "AuthRequestByCode a third time")
	late, lateRT := codeTokens(ar, "late", now.Add(30*time.Second))
	wantErr(t, s.ExchangeAuthCode(ctx, "code-1", late, &lateRT, now.Add(30*time.Second)), storage.ErrAlreadyUsed,
		"ExchangeAuthCode a second time")
	_, err = s.GetAccessToken(ctx, late.ID, now.Add(30*time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the second exchange")
	assertGrantLive(t, s, otherAT, otherRT, now.Add(30*time.Second))
}

func testCodeExpiredOrUnknown(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	expired := now.Add(2 * time.Minute)

	_, _, err := s.AuthRequestByCode(ctx, "code-1", expired)
	wantErr(t, err, storage.ErrNotFound, "AuthRequestByCode expired")
	at, rt := codeTokens(ar, "1", expired)
	wantErr(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, expired), storage.ErrNotFound, "ExchangeAuthCode expired")
	_, err = s.GetAccessToken(ctx, at.ID, expired)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the expired exchange")

	_, _, err = s.AuthRequestByCode(ctx, "code-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "AuthRequestByCode unknown")
	wantErr(t, s.ExchangeAuthCode(ctx, "code-unknown", at, &rt, now), storage.ErrNotFound, "ExchangeAuthCode unknown")

	// The refused exchanges consumed nothing: the code still works while
	// it is valid.
	got, _, err := s.AuthRequestByCode(ctx, "code-1", now.Add(10*time.Second))
	mustOK(t, err, "AuthRequestByCode before expiry, after the refusals")
	assertSame(t, "auth request of the code", got, ar)
}

// Reuse is checked before expiry: a replay that comes after the code
// expired still revokes what the exchange gave.
func testCodeExpiredReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	mustOK(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), "ExchangeAuthCode")

	expired := now.Add(2 * time.Minute)
	_, _, err := s.AuthRequestByCode(ctx, "code-1", expired)
	wantErr(t, err, storage.ErrAlreadyUsed, "AuthRequestByCode of a used code, expired")
	assertGrantRevoked(t, s, at, rt, expired)
}

func testCodeExchangeExpiredReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	mustOK(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), "ExchangeAuthCode")

	expired := now.Add(2 * time.Minute)
	late, lateRT := codeTokens(ar, "late", expired)
	wantErr(t, s.ExchangeAuthCode(ctx, "code-1", late, &lateRT, expired), storage.ErrAlreadyUsed,
		"ExchangeAuthCode of a used code, expired")
	assertGrantRevoked(t, s, at, rt, expired)
}

func testCodeAuthRequestGone(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	mustOK(t, s.DeleteAuthRequest(ctx, ar.ID), "DeleteAuthRequest")

	_, _, err := s.AuthRequestByCode(ctx, "code-1", now.Add(10*time.Second))
	wantErr(t, err, storage.ErrNotFound, "AuthRequestByCode whose auth request is gone")
	at, rt := codeTokens(ar, "1", now.Add(10*time.Second))
	wantErr(t, s.ExchangeAuthCode(ctx, "code-1", at, &rt, now.Add(10*time.Second)), storage.ErrNotFound,
		"ExchangeAuthCode whose auth request is gone")
	_, err = s.GetAccessToken(ctx, at.ID, now.Add(10*time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the refused exchange")
}

// Concurrent exchanges: exactly one stores its tokens, and the others, being
// replays, revoke them (whichever order the engine put them in).
func testCodeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	const n = 20
	ats := make([]storage.AccessToken, n)
	rts := make([]storage.RefreshToken, n)
	for i := range n {
		ats[i], rts[i] = codeTokens(ar, fmt.Sprint(i), now.Add(10*time.Second))
	}
	errs := race(n, func(i int) error {
		return s.ExchangeAuthCode(ctx, "code-1", ats[i], &rts[i], now.Add(10*time.Second))
	})
	w := oneWinner(t, "ExchangeAuthCode", errs, storage.ErrAlreadyUsed)
	assertGrantRevoked(t, s, ats[w], rts[w], now.Add(11*time.Second))
	for i := range n {
		_, err := s.GetAccessToken(ctx, ats[i].ID, now.Add(11*time.Second))
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("GetAccessToken of exchange %d", i))
	}
}

// Two token requests of one code, as the provider makes them (read, then
// exchange), race many times: exactly one gets tokens, and none of the
// grant's tokens is left usable, whichever step the loser lost at.
func testCodeTokenRequestsRacing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	const rounds = 15
	for round := range rounds {
		ar := addCompletedAuthRequest(t, s, fmt.Sprintf("ar-%d", round), "portail", "u-1", "sess-1", now)
		code := fmt.Sprintf("code-%d", round)
		mustOK(t, s.SaveAuthCode(ctx, storage.AuthCode{CodeHash: code, AuthRequestID: ar.ID, ExpiresAt: now.Add(time.Minute)}), "SaveAuthCode")

		var ats [2]storage.AccessToken
		var rts [2]storage.RefreshToken
		errs := race(2, func(i int) error {
			got, _, err := s.AuthRequestByCode(ctx, code, now)
			if err != nil {
				return err
			}
			ats[i], rts[i] = codeTokens(got, fmt.Sprintf("%d-%d", round, i), now)
			return s.ExchangeAuthCode(ctx, code, ats[i], &rts[i], now)
		})
		oneWinner(t, fmt.Sprintf("round %d: token requests", round), errs, storage.ErrAlreadyUsed)
		for i := range 2 {
			if ats[i].ID == "" {
				continue // lost at the read
			}
			_, err := s.GetAccessToken(ctx, ats[i].ID, now)
			wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("round %d: access token of request %d", round, i))
			_, err = s.GetRefreshToken(ctx, rts[i].TokenHash, now)
			wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("round %d: refresh token of request %d", round, i))
		}
	}
}

// addSignedIn adds the client "portail" and the agent "u-1" with its session
// "sess-1": what completing an auth request needs.
func addSignedIn(t *testing.T, s storage.Store, now time.Time) {
	t.Helper()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
}

// testAuthRequestByCodeWithAccess: the code's request comes with its agent
// and the agent's habilitation for the request's client that holds at now,
// as GetUserAccess gives them.
func testAuthRequestByCodeWithAccess(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addSignedIn(t, s, now)
	addClient(t, s, "paie", now)
	r := newAuthRequest("ar-sso", "portail", now)
	r.UserID, r.SessionID, r.AuthTime, r.AMR, r.Done = "u-1", "sess-1", now, []string{"pwd"}, true
	code := storage.AuthCode{CodeHash: "hash-sso", AuthRequestID: r.ID, ExpiresAt: now.Add(time.Hour)}
	mustOK(t, s.CreateAuthRequestWithCode(ctx, r, code), "CreateAuthRequestWithCode")
	same := func(what string, at time.Time) {
		t.Helper()
		_, got, err := s.AuthRequestByCode(ctx, code.CodeHash, at)
		mustOK(t, err, "AuthRequestByCode "+what)
		want, err := s.GetUserAccess(ctx, "u-1", "portail", at)
		mustOK(t, err, "GetUserAccess "+what)
		assertSame(t, "access with the code's request, "+what, got, want)
	}

	same("without habilitation", now)
	_, access, _ := s.AuthRequestByCode(ctx, code.CodeHash, now)
	if access.User.Email != "agent@example.fr" || access.Habilitation != nil {
		t.Fatalf("access without habilitation: %+v", access)
	}
	// Another client's habilitation is not this request's.
	addHabilitation(t, s, "u-1", "paie", now)
	same("with a habilitation for another client", now)
	h := addHabilitation(t, s, "u-1", "portail", now)
	same("with a habilitation", now)
	_, access, _ = s.AuthRequestByCode(ctx, code.CodeHash, now)
	if access.Habilitation == nil || access.Habilitation.ClientID != "portail" {
		t.Fatalf("the request's habilitation is missing: %+v", access.Habilitation)
	}
	// A habilitation that ends before the code does.
	until := now.Add(30 * time.Minute)
	h.Until = &until
	mustOK(t, s.GrantHabilitation(ctx, h), "GrantHabilitation ending in 30 minutes")
	later := until.Add(time.Second)
	same("after the habilitation ended", later)
	_, access, _ = s.AuthRequestByCode(ctx, code.CodeHash, later)
	if access.Habilitation != nil {
		t.Fatalf("an ended habilitation came with the code: %+v", access.Habilitation)
	}
}
