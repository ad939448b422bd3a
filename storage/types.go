// Package storage holds the identity provider's domain records and the one
// storage contract (Store) that every engine implements: storage/sqlite for the
// embedded default, storage/postgres for production. storage/storetest is the
// conformance suite both must pass.
//
// Every piece of state lives here, never in process memory, so that several
// instances behind a load balancer can share one database. Methods that decide
// on time take `now` from the caller (the injected clock), never time.Now().
package storage

import (
	"errors"
	"time"
)

// Errors every engine returns for the same situations (wrapped is fine; test
// with errors.Is).
var (
	// ErrNotFound: no such record, or the record has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrDuplicate: a unique key (user e-mail, client id...) is already taken.
	ErrDuplicate = errors.New("storage: duplicate")
	// ErrAlreadyUsed: a single-use record (authorization code, refresh token)
	// was presented a second time. The engine has already revoked what the
	// contract says (see AuthRequestByCode, RotateRefreshToken).
	ErrAlreadyUsed = errors.New("storage: already used")
	// ErrConflict: a compare-and-swap lost its race (someone else changed the
	// record first) or its precondition no longer holds.
	ErrConflict = errors.New("storage: conflict")
	// ErrAccountChanged: the agent a write was meant for is no longer as
	// the caller read it (disabled, gone, or at another address): see
	// IssueProvisionalPassword.
	ErrAccountChanged = errors.New("storage: account changed")
	// ErrNotHabilitated: the agent holds no live habilitation for a
	// restricted client (see Client.Restricted). Returned by the provider,
	// not by stores; it lives here so that the pages can recognise it
	// without importing the provider.
	ErrNotHabilitated = errors.New("storage: agent not habilitated for this client")
)

// User is an agent of a partner organisation.
type User struct {
	ID           string // stable opaque id, the OIDC `sub`
	Email        string // normalised (NormaliseEmail), unique
	Name         string
	Organisation string
	// PasswordHash is the personal password's Argon2id PHC string; empty when
	// the agent has none yet (onboarding through a provisional password).
	PasswordHash string
	// PendingPasswordChange: the agent logged in with a provisional password
	// and has not yet chosen a personal one. No token is issued meanwhile.
	PendingPasswordChange bool
	Disabled              bool
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

// Client is a relying application.
type Client struct {
	ID                     string
	Name                   string
	SecretHash             string // Argon2id PHC string; empty for a public client
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	HomeURL                string // where the secure space links to; may be empty
	// AllowRefresh: the client may obtain refresh tokens with offline_access.
	AllowRefresh bool
	// Restricted: only agents holding a live Habilitation for this client may
	// enter it. False (the default, and that of clients stored before the
	// flag existed): open to every active agent.
	Restricted bool
	CreatedAt  time.Time
}

// Habilitation lets one agent enter one restricted relying application
// (Client.Restricted). At most one per (UserID, ClientID).
type Habilitation struct {
	UserID   string
	ClientID string
	// Roles are handed to the application (stored and returned in order).
	Roles []string
	// Until ends the habilitation (exclusive: it no longer holds at Until);
	// nil: no end.
	Until     *time.Time
	GrantedAt time.Time
	GrantedBy string // who granted it (an administrator's identifier), for the audit
}

// UserAccess is an agent with its habilitation for one client, read together
// (GetUserAccess) because the gate of every token request needs both.
type UserAccess struct {
	User User
	// Habilitation is the agent's habilitation for the client that holds at
	// the time asked; nil when there is none or it ended. A habilitation
	// without roles is not nil.
	Habilitation *Habilitation
}

// HabilitationFilter narrows ListHabilitations. Zero values mean "any".
type HabilitationFilter struct {
	UserID   string
	ClientID string
}

// Throttle is the login-throttling state of one key (an account, an
// address...): consecutive failures since the last success, shared by every
// instance so that delays grow and a lock holds whichever instance answers.
type Throttle struct {
	Key           string
	Failures      int // consecutive failures
	LastFailureAt time.Time
	// LockedAt is set once, when Failures reached the lock threshold; it
	// stays until ResetThrottle (a completed recovery). nil: not locked.
	LockedAt *time.Time
}

// AttemptLimit is how many password attempts may be in flight from an
// address (ReserveAttempt): as many as its free failures leave, decayed
// (one forgotten per Every since the last), and at least PastFree. A
// reservation counts for Life, unless settled before.
type AttemptLimit struct {
	Free, PastFree int
	Every, Life    time.Duration
}

// Room is how many attempts may be in flight with failures decayed.
func (l AttemptLimit) Room(failures int) int {
	return max(l.Free-failures, l.PastFree)
}

// ReservationForgetAfter is how long the purge keeps a reservation never
// settled: long past any AttemptLimit.Life.
const ReservationForgetAfter = time.Hour

// DecayedAt is Failures as a key counted by AddDecayingFailure holds them at
// now: one fewer per whole every since the last failure, never below zero.
func (t Throttle) DecayedAt(now time.Time, every time.Duration) int {
	elapsed := now.Sub(t.LastFailureAt)
	if elapsed <= 0 || every <= 0 {
		return t.Failures
	}
	return max(0, t.Failures-int(elapsed/every))
}

// InKeyOrder returns one Throttle per key, in the order of keys, from the
// states found (a key without one gets a zero Throttle with Key set): the
// engines' GetThrottles read the keys in one query, in no order.
func InKeyOrder(keys []string, found []Throttle) []Throttle {
	out := make([]Throttle, len(keys))
	for i, k := range keys {
		out[i] = Throttle{Key: k}
		for _, th := range found {
			if th.Key == k {
				out[i] = th
				break
			}
		}
	}
	return out
}

// ThrottleForgetAfter is how long an unlocked throttle outlives its last
// failure: PurgeExpired deletes it then (a lock is never purged).
const ThrottleForgetAfter = 24 * time.Hour

// AuthRequest is an OIDC authorization request between /authorize and the
// code exchange.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int64 // seconds; nil when not sent
	LoginHint           string
	UILocales           string
	// BrowserBinding ties the request to the browser that sent it to
	// /authorize (a hash of its random cookie, made by the login UI): only
	// that browser's login completes it. "" when unbound.
	BrowserBinding string
	// IDTokenHintSubject is the sub of the id_token_hint the relying
	// application sent, the agent it asks about: the session of another
	// agent does not complete the request without a login. "" without a
	// hint.
	IDTokenHintSubject string
	// Set by CompleteAuthRequest once the agent is authenticated.
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	Done      bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthCode is an authorization code, stored only as a hash.
type AuthCode struct {
	CodeHash      string
	AuthRequestID string // also the grant id of the tokens issued from it
	ExpiresAt     time.Time
}

// Session kinds.
const (
	// SessionActive is an SSO session: it lets the browser into every relying
	// application without a new login.
	SessionActive = "active"
	// SessionPasswordChange unlocks nothing but the forced change form.
	SessionPasswordChange = "password_change"
)

// Session is a browser's login. ID is the hash of the cookie value, never the
// value itself.
type Session struct {
	ID                string
	UserID            string
	Kind              string // SessionActive or SessionPasswordChange
	AuthTime          time.Time
	AMR               []string
	CreatedAt         time.Time
	LastSeenAt        time.Time
	IdleExpiresAt     time.Time
	AbsoluteExpiresAt time.Time
}

// AccessToken is an opaque access token's record.
type AccessToken struct {
	ID        string
	GrantID   string // the auth request the grant started from; shared by its refresh family
	ClientID  string
	UserID    string
	Scopes    []string
	Audience  []string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// RefreshToken is a refresh token, stored only as a hash. All tokens rotated
// from one grant share GrantID: the family that a reuse revokes.
type RefreshToken struct {
	ID        string
	TokenHash string
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string
	Audience  []string
	AMR       []string
	AuthTime  time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
}

// ChangeGenerations grow with every change to the registered clients and to
// the signing keys: only their moving means something, not their values.
type ChangeGenerations struct {
	Clients, SigningKeys int64
}

// SigningKey is one of the provider's token-signing keys. The private part is
// encrypted by the caller (PrivateKeyEncrypted); the store never sees it clear.
type SigningKey struct {
	ID                  string // the JWK kid
	Algorithm           string // RS256 or ES256
	PrivateKeyEncrypted []byte
	PublicKeyJWK        []byte // JSON of the public JWK, as published
	CreatedAt           time.Time
	// NotBefore: the key is published from CreatedAt but signs only from
	// NotBefore, so that clients caching the key set know it before they meet
	// it. The signing key is the newest one whose NotBefore has passed; an
	// older key is retired from the moment a newer one signs, and is deleted
	// once every token it signed has expired.
	NotBefore time.Time
}

// Challenge kinds.
const (
	ChallengeImage    = "image"
	ChallengeQuestion = "question" // the non-visual alternative
)

// Challenge is a CAPTCHA challenge. The answer is stored only as a hash, and
// the challenge is bound to one browser (BindingHash).
type Challenge struct {
	ID          string
	Kind        string
	AnswerHash  string
	BindingHash string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// RecoveryJob is a « Mot de passe oublié ? » request waiting to be processed in
// the background, so that the form's answer does not depend on the address.
type RecoveryJob struct {
	ID            string
	Email         string // as typed, normalised
	ClientIP      string
	AuthRequestID string // the pending auth request, if any (informational)
	RequestedAt   time.Time
	// Receipt, when set, is recorded with the job, in the same write: the
	// receipt of the challenge the request answered (ChallengeReceipt).
	// Not read back with the job.
	Receipt ChallengeReceipt
}

// ChallengeReceipt says that a challenge was solved and the request it
// guarded accepted, until ExpiresAt, so that the same form posted again
// gets the same answer. The zero value is no receipt.
type ChallengeReceipt struct {
	ID        string
	ExpiresAt time.Time
}

// ProvisionalPassword is an auto-generated password mailed to the agent. At
// most one per agent: a newer one replaces the older.
type ProvisionalPassword struct {
	UserID    string
	Hash      string // Argon2id PHC string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Outbox statuses.
const (
	MailPending = "pending"
	MailSent    = "sent"
	MailFailed  = "failed"

	// The last error of a pending mail that carried a provisional password,
	// given up because the password it carries is no longer the agent's
	// (the agent would type it and see it refused) or the account cannot
	// use it: IssueProvisionalPassword, ChangePassword, SetUserDisabled and
	// DeleteProvisionalPassword end them, bodies cleared, in their
	// transaction.
	ProvisionalMailSuperseded = "superseded: a newer provisional password was issued"
	ProvisionalMailPersonal   = "superseded: the agent set a personal password"
	ProvisionalMailDisabled   = "the account was disabled"
	ProvisionalMailCancelled  = "the provisional password was cancelled (a personal login)"
)

// OutboxMail is a message waiting to be sent, or its record once sent or
// given up. Bodies are cleared once the mail has been sent, so a provisional
// password does not linger in the database.
type OutboxMail struct {
	ID            string
	To            string
	Subject       string
	TextBody      string
	HTMLBody      string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        *time.Time
}

// AuditEvent is one line of the audit trail. Its texts may hold invalid
// UTF-8 (they come from request headers): every engine stores the event,
// PostgreSQL with the invalid bytes replaced by U+FFFD.
type AuditEvent struct {
	ID        int64
	Time      time.Time
	Type      string // e.g. "login.success", "recovery.requested"
	UserID    string
	Email     string
	ClientIP  string
	UserAgent string
	Detail    string
}

// AuditFilter narrows ListAudit. Zero values mean "any".
type AuditFilter struct {
	Email string
	Since time.Time
	Limit int // 0: engine default (1000)
}

// PasswordChange is the one transaction that sets an agent's personal
// password (see Store.ChangePassword).
type PasswordChange struct {
	UserID  string
	NewHash string
	// Exactly one of the two preconditions is set:
	// ExpectProvisionalHash: the provisional password row must still exist with
	// this hash; it is deleted (consumed) by the change.
	ExpectProvisionalHash string
	// ExpectPasswordHash: the personal hash must still be this one (voluntary
	// change: the agent proved knowledge of it).
	ExpectPasswordHash string
	// KeepSessionID: the agent's sessions are all deleted except this one
	// (empty: all are deleted).
	KeepSessionID string
	// Notification is queued in the outbox in the same transaction.
	Notification *OutboxMail
	Now          time.Time
}

// ProvisionalIssue is the one transaction that gives an agent a provisional
// password (see Store.IssueProvisionalPassword).
type ProvisionalIssue struct {
	Password ProvisionalPassword
	// Mail carries the password to the agent's address as the caller read
	// it: the issue happens only if that is still the enabled agent's.
	Mail OutboxMail
	// JobID, when set, is the recovery job this issue completes; it is
	// deleted in the same transaction.
	JobID string
	// NewUser, when set, is the agent's account, created in the same
	// transaction (as CreateUser: ErrDuplicate, and nothing written, when
	// its id or e-mail is taken): an account created without a password
	// never exists without its provisional password and its mail.
	NewUser *User
}
