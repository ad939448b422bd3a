package storage

import (
	"context"
	"time"
)

// Store is the storage contract. Every read-modify-write below is atomic in
// the engine (one transaction or one conditional statement), so that two
// instances sharing a PostgreSQL database never both win a race.
//
// Slices in records are stored and returned in order; a nil slice and an empty
// one are equivalent (engines return nil or empty, callers must not care).
// Times are stored with at least millisecond precision and returned in UTC.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// SchemaVersion is the highest migration applied.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error

	// GetOrCreateSecret returns the secret stored under name, storing
	// candidate first when there is none. Concurrent callers with different
	// candidates all get the one value that was stored first.
	GetOrCreateSecret(ctx context.Context, name string, candidate []byte) ([]byte, error)
	// GetSecret returns the secret stored under name, ErrNotFound when
	// there is none; it never stores one (a command that may be refused
	// reads with it, so as to write nothing then).
	GetSecret(ctx context.Context, name string) ([]byte, error)

	// Users. Emails are stored normalised (NormaliseEmail); lookups normalise.
	CreateUser(ctx context.Context, u User) error // ErrDuplicate on e-mail or id
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// GetUserWithProvisional is GetUserByEmail with the agent's provisional
	// password, expired or not (nil when it has none), in one read: a login
	// checks the one or cancels the other.
	GetUserWithProvisional(ctx context.Context, email string) (User, *ProvisionalPassword, error)
	// GetUsersByEmail returns the agents whose e-mails are among emails
	// (compared normalised), ordered by e-mail; unknown addresses are just
	// absent. A recovery worker looks up a whole claim at once.
	GetUsersByEmail(ctx context.Context, emails []string) ([]User, error)
	ListUsers(ctx context.Context) ([]User, error) // ordered by e-mail
	// SetUserDisabled flips the flag; disabling also deletes the agent's
	// sessions, revokes its tokens, deletes its provisional password and
	// gives up its pending provisional-password mails
	// (ProvisionalMailDisabled) in the same transaction.
	SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error
	// UpdatePasswordHash replaces the personal hash only if it is still
	// oldHash (ErrConflict otherwise): used to rehash on login when the
	// Argon2id parameters change.
	UpdatePasswordHash(ctx context.Context, id, oldHash, newHash string, now time.Time) error
	// SetPendingPasswordChange marks or clears "pending password change".
	SetPendingPasswordChange(ctx context.Context, id string, pending bool, now time.Time) error

	// Clients.
	CreateClient(ctx context.Context, c Client) error // ErrDuplicate
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error) // ordered by id
	// DeleteClient removes the client (ErrNotFound when none) and, in the
	// same transaction, revokes every access and refresh token issued to it
	// and deletes its habilitations.
	DeleteClient(ctx context.Context, id string) error
	// SetClientRestricted sets Client.Restricted; ErrNotFound when no such
	// client.
	SetClientRestricted(ctx context.Context, clientID string, restricted bool) error

	// Habilitations (who may enter a restricted client).
	// GrantHabilitation creates or replaces (h.UserID, h.ClientID)'s
	// habilitation; ErrNotFound when the agent or the client does not exist
	// (a client deleted meanwhile leaves no habilitation behind).
	GrantHabilitation(ctx context.Context, h Habilitation) error
	// RevokeHabilitation deletes it; ErrNotFound when none.
	RevokeHabilitation(ctx context.Context, userID, clientID string) error
	// GetHabilitation returns the habilitation that holds at now; ErrNotFound
	// when none or when Until <= now.
	GetHabilitation(ctx context.Context, userID, clientID string, now time.Time) (Habilitation, error)
	// GetUserAccess returns the agent and, in the same read, its
	// habilitation for clientID that holds at now (as GetHabilitation; nil
	// when none). ErrNotFound only when there is no such agent.
	GetUserAccess(ctx context.Context, userID, clientID string, now time.Time) (UserAccess, error)
	// ListHabilitations lists the habilitations matching f, ordered by user
	// then client, expired ones included (the administrator sees them).
	ListHabilitations(ctx context.Context, f HabilitationFilter) ([]Habilitation, error)

	// Auth requests. GetAuthRequest returns ErrNotFound once ExpiresAt has
	// passed.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	// CompleteAuthRequest records who authenticated and sets Done; a done
	// request is completed again only for the same agent (ErrNotFound for
	// another: its codes would follow it).
	CompleteAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string) error
	// CreateAuthRequestWithCode stores a request already completed (r.Done,
	// single sign-on) with its code, in one write: the provider answers the
	// code at once. CompleteAuthRequestWithCode is CompleteAuthRequest and
	// SaveAuthCode in one write; ErrNotFound when the request is unknown or
	// expired at now, and then nothing is written.
	CreateAuthRequestWithCode(ctx context.Context, r AuthRequest, c AuthCode) error
	CompleteAuthRequestWithCode(ctx context.Context, id, userID, sessionID string, authTime time.Time, amr []string, c AuthCode, now time.Time) error
	DeleteAuthRequest(ctx context.Context, id string) error

	// Authorization codes. A code is exchanged in two steps, because the
	// library checks PKCE and the client between them: a failed check must
	// leave the code usable for the legitimate exchange that follows.
	SaveAuthCode(ctx context.Context, c AuthCode) error
	// AuthRequestByCode finds the code's auth request without consuming the
	// code (a plain read). A code already exchanged is a replay: the reuse is
	// recorded on the code, every access and refresh token of the grant
	// (GrantID == AuthRequestID) is revoked, and the call gets
	// ErrAlreadyUsed. Reuse is checked before expiry, so a replay after the
	// code expired still revokes. An unknown or expired code, or one whose
	// auth request or agent is gone, gets ErrNotFound. With the request
	// comes, in the same read, the access of its agent to its client at now,
	// as GetUserAccess returns it: the token request checks it.
	AuthRequestByCode(ctx context.Context, codeHash string, now time.Time) (AuthRequest, UserAccess, error)
	// ExchangeAuthCode redeems the code and, in the same transaction, stores
	// the access token and, when rt is not nil, the refresh token, and
	// deletes the auth request (the code itself stays until the purge, so
	// that later replays are still recognised). at.GrantID (and rt.GrantID)
	// must be the code's auth request: an unused code of another grant gets
	// ErrNotFound. Of concurrent exchanges of one code exactly one
	// succeeds; the others are replays (see AuthRequestByCode): they revoke
	// the grant, the winner's tokens included, and get ErrAlreadyUsed. An
	// unknown or expired code, or one whose auth request is gone, gets
	// ErrNotFound and nothing is written.
	ExchangeAuthCode(ctx context.Context, codeHash string, at AccessToken, rt *RefreshToken, now time.Time) error

	// Tokens. CreateTokens stores an access token and, when rt is not nil, a
	// refresh token, in one transaction, unconditionally: tokens issued for
	// a code go through ExchangeAuthCode, which checks the code.
	CreateTokens(ctx context.Context, at AccessToken, rt *RefreshToken) error
	// GetAccessToken returns ErrNotFound for unknown, revoked or expired.
	GetAccessToken(ctx context.Context, id string, now time.Time) (AccessToken, error)
	RevokeAccessToken(ctx context.Context, id string) error
	// GetRefreshToken finds an active refresh token by hash. A token already
	// rotated gets ErrAlreadyUsed and its whole family (GrantID) is revoked
	// in the same transaction; unknown, revoked or expired gets ErrNotFound.
	GetRefreshToken(ctx context.Context, tokenHash string, now time.Time) (RefreshToken, error)
	// RotateRefreshToken retires oldHash and stores the new pair, atomically.
	// If oldHash was already rotated (a concurrent or replayed use) it gets
	// ErrAlreadyUsed and the whole family is revoked; if it is unknown,
	// revoked or expired it gets ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash string, at AccessToken, rt RefreshToken, now time.Time) error
	// RevokeGrant revokes every access and refresh token of a grant.
	RevokeGrant(ctx context.Context, grantID string) error
	// RevokeUserTokens revokes every token of an agent, and its codes not yet
	// exchanged (its completed auth requests are deleted). SetUserDisabled
	// and ChangePassword do the same.
	RevokeUserTokens(ctx context.Context, userID string) error

	// Sessions. GetSession returns ErrNotFound once either expiry has passed.
	// CreateSession stores s and appends the audit events given, in one
	// write (all or nothing): a login records its event with its session.
	CreateSession(ctx context.Context, s Session, audit ...AuditEvent) error
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	// GetSessionAndUser is GetSession and GetUser of the session's agent in
	// one read (every page a browser with a session asks for needs both).
	GetSessionAndUser(ctx context.Context, id string, now time.Time) (Session, User, error)
	// TouchSession records activity and pushes the idle expiry (never beyond
	// the absolute one).
	TouchSession(ctx context.Context, id string, now, idleExpiresAt time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID string) error

	// CAPTCHA challenges.
	// CreateCountedChallenge counts one hit on key as HitCounter does and, in
	// the same write, stores c unless the count is over max; it returns the
	// count. A CAPTCHA and the per-address throttle that allows it cost one
	// round trip.
	CreateCountedChallenge(ctx context.Context, key string, window time.Duration, max int64, c Challenge, now time.Time) (int64, error)
	// ConsumeChallenge deletes the challenge and returns it, whatever the
	// answer will be: a challenge can be tried once. Concurrent callers: one
	// gets it, the others ErrNotFound. Expired: ErrNotFound (and deleted).
	ConsumeChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
	// TakeChallenge is ConsumeChallenge and GetThrottle(key) together, in
	// one round trip where the engine has round trips: an answer is judged
	// with its address's wrong-answer throttle, and the challenge is spent
	// whatever the throttle says. The challenge is nil when unknown,
	// already taken or expired (deleted all the same).
	TakeChallenge(ctx context.Context, id, key string, now time.Time) (*Challenge, Throttle, error)
	// ChallengeReceipt tells whether the receipt id is there and not
	// expired at now (EnqueueRecoveryJob records them).
	ChallengeReceipt(ctx context.Context, id string, now time.Time) (bool, error)

	// Recovery jobs. A « Mot de passe oublié ? » request is one write when
	// queued and a share of one when dropped.
	// EnqueueRecoveryJob counts one hit on key in a fixed window (as
	// HitCounter, at j.RequestedAt) and, when the count is at most max,
	// queues j, unleased, with the audit events given; all in one write. It
	// returns the count: over max nothing else is stored. The job keeps
	// j.Email normalised (NormaliseEmail). A queued job's j.Receipt, when
	// set, is recorded in the same write (an id already there keeps the
	// later expiry).
	EnqueueRecoveryJob(ctx context.Context, key string, window time.Duration, max int64, j RecoveryJob, audit ...AuditEvent) (int64, error)
	// ClaimRecoveryJobs leases up to limit jobs not leased by anyone else
	// (or whose lease ran out) until now+lease. Concurrent claimers never get
	// the same job while its lease runs.
	ClaimRecoveryJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]RecoveryJob, error)
	// DeleteRecoveryJobs removes processed jobs and appends the audit events
	// given, in one write (all or nothing), so that a worker drops a whole
	// claim's jobs at once. Jobs already gone are not an error: another
	// worker, whose lease ran out, may have finished them.
	DeleteRecoveryJobs(ctx context.Context, ids []string, audit ...AuditEvent) error

	// Provisional passwords.
	// IssueProvisionalPassword, in one transaction: creates the agent when
	// NewUser is set, replaces the agent's provisional password, queues the
	// mail, deletes the recovery job if set, and gives up the agent's
	// pending mails that carry an older provisional password
	// (ProvisionalMailSuperseded).
	// When JobID is set but the job no longer exists (another worker, whose
	// lease had not run out, completed it) it gets ErrConflict and writes
	// nothing: one job mails one password. When the agent is no longer
	// enabled at the mail's address (Mail.To), disabled or gone since the
	// caller read it, it gets ErrAccountChanged and writes nothing: a
	// provisional password is never mailed to an account that cannot use
	// it, nor to an address that is no longer the agent's.
	IssueProvisionalPassword(ctx context.Context, p ProvisionalIssue) error
	// GetProvisionalPassword returns ErrNotFound when none or expired.
	GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (ProvisionalPassword, error)
	// DeleteProvisionalPassword removes the agent's provisional password if
	// it is still the one of hash (the one its caller read), with its
	// pending mails (ProvisionalMailCancelled): one issued meanwhile stays,
	// with its mail.
	DeleteProvisionalPassword(ctx context.Context, userID, hash string) error
	// ChangePassword, in one transaction: checks the precondition
	// (ErrConflict when it no longer holds, changing nothing), sets the new
	// hash, clears the pending flag, deletes the provisional password, deletes
	// the agent's sessions but KeepSessionID, revokes all its tokens, gives
	// up its pending provisional-password mails (ProvisionalMailPersonal),
	// queues the notification.
	ChangePassword(ctx context.Context, c PasswordChange) error

	// Mail outbox.
	EnqueueMail(ctx context.Context, m OutboxMail) error
	// ClaimMails leases up to limit pending mails due at now (NextAttemptAt
	// <= now) by pushing their NextAttemptAt to now+lease; concurrent
	// claimers never get the same mail (SKIP LOCKED on PostgreSQL).
	ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMail, error)
	// ClaimMailsTo is ClaimMails for the mails to one address only (to as
	// stored): an administrator's command delivers the mail it queued, not
	// the rest of the outbox.
	ClaimMailsTo(ctx context.Context, to string, now time.Time, lease time.Duration, limit int) ([]OutboxMail, error)
	// MailPending tells whether the mail is still to be sent (a sender
	// checks before sending one it claimed: it may have been given up
	// since, ProvisionalMailSuperseded); ErrNotFound when there is none.
	MailPending(ctx context.Context, id string) (bool, error)
	// MarkMailSent sets status sent, SentAt, and clears the bodies and
	// LastError.
	MarkMailSent(ctx context.Context, id string, now time.Time) error
	// MarkMailRetry counts an attempt and schedules the next one.
	MarkMailRetry(ctx context.Context, id string, next time.Time, lastError string) error
	// MarkMailFailed counts the last attempt, gives up, and clears the bodies
	// (they may hold a provisional password).
	MarkMailFailed(ctx context.Context, id string, lastError string) error
	// ListMails lists the outbox, newest first; status "" means any; limit 0
	// or less means 1000.
	ListMails(ctx context.Context, status string, limit int) ([]OutboxMail, error)

	// Rate-limit counters: fixed windows keyed by a string.
	// HitCounter counts one hit on key and returns the count in the current
	// window (the first hit of a window returns 1; a window starts at the first
	// hit after the previous one ended). Atomic across instances.
	HitCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error)

	// Login throttling: consecutive failures per key, shared by every
	// instance.
	// AddDecayingFailure counts one more failure on a key that forgets one
	// per whole every since its last failure (an address's key: an office
	// behind one NAT address makes typos all day long, and must not end up
	// refused for its accumulated total); it never locks. The count stored
	// is the decayed count plus one (see Throttle.DecayedAt).
	AddDecayingFailure(ctx context.Context, key string, every time.Duration, now time.Time) (Throttle, error)
	// ReserveAttempt records attempt id in flight on an address's key (one
	// counted by AddDecayingFailure with limit.Every) before it is judged,
	// on condition that the attempts in flight there, those reserved less
	// than limit.Life before now and not settled, stay below
	// limit.Room(failures decayed at now). It returns the key's state and
	// the attempts in flight, this one included; ok is false, and nothing
	// written, when there is no room. Concurrent reservations on one key
	// are judged one after the other. The key's failures are left alone.
	ReserveAttempt(ctx context.Context, key, id string, limit AttemptLimit, now time.Time) (th Throttle, inFlight int, ok bool, err error)
	// SettleAttempt ends reservation id (one already ended or purged is not
	// an error) and, if failed, counts one failure on key as
	// AddDecayingFailure counts it (on a key without state too).
	SettleAttempt(ctx context.Context, key, id string, failed bool, every time.Duration, now time.Time) error
	// ChargeThrottle charges one attempt to key as a failure before it is
	// judged, on condition that the key still holds expect (the state its
	// caller read and judged, Failures and LastFailureAt): attempts sent
	// together are then judged one after the other. The key then holds
	// failures (the caller's count plus one; 1 when it had no state) at
	// now. The first charge that leaves Failures >= lockAfter (when
	// lockAfter > 0) sets LockedAt to its now; a lock, once set, is kept
	// until ResetThrottle. ok is false, and nothing written, when another
	// charge, a refund or a reset came first.
	ChargeThrottle(ctx context.Context, key string, expect Throttle, failures, lockAfter int, now time.Time) (th Throttle, ok bool, err error)
	// RefundThrottle takes back a charge that reached no verdict: when the key still holds charged (the
	// charge's result) it is put back to before; otherwise (a later charge)
	// it loses one failure and keeps its time. A lock is kept; a key
	// without state is not an error.
	RefundThrottle(ctx context.Context, key string, charged, before Throttle) error
	// GetThrottle returns key's state: a zero Throttle with Key set when
	// there is none (never ErrNotFound).
	GetThrottle(ctx context.Context, key string) (Throttle, error)
	// GetThrottles is GetThrottle for several keys in one read, in the
	// order given: a login checks its address's and its account's together.
	GetThrottles(ctx context.Context, keys ...string) ([]Throttle, error)
	// ResetThrottle forgets key (a success, or a completed recovery); a key
	// without state is not an error.
	ResetThrottle(ctx context.Context, key string) error

	// Signing keys.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error) // oldest first
	// AddSigningKey stores k only if the newest stored key's ID is
	// expectNewestID ("" for an empty table); ErrConflict otherwise. This is
	// the compare-and-swap that keeps two instances from rotating twice.
	AddSigningKey(ctx context.Context, k SigningKey, expectNewestID string) error
	DeleteSigningKey(ctx context.Context, id string) error

	// ChangeGenerations returns the numbers that move with every committed
	// change to the registered clients and to the signing keys, whoever made
	// it (triggers keep them): what each instance's caches of those watch.
	ChangeGenerations(ctx context.Context) (ChangeGenerations, error)

	// Audit trail.
	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) // newest first

	// PurgeExpired deletes expired auth requests once every code issued from
	// them has expired too (a code is issued by a login up to the request's
	// expiry and lives its own TTL from then; its exchange needs the
	// request), codes (expired more than an hour ago), sessions, challenges
	// and their receipts, provisional passwords, tokens expired or revoked, rate-limit counters
	// whose window has ended, unlocked throttles whose last failure is older
	// than ThrottleForgetAfter, reservations older than
	// ReservationForgetAfter, sent mails older than mailBefore, and audit
	// events older than auditBefore (zero: keep). Habilitations are never
	// purged. Returns how many rows went.
	PurgeExpired(ctx context.Context, now, mailBefore, auditBefore time.Time) (int64, error)
}
