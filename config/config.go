// Package config is the identity provider's configuration: one struct with
// defaults, overridden by a YAML file, then by IDP_* environment variables,
// and validated as a whole so that an operator sees every mistake at once.
//
// Each leaf field carries its YAML key (`yaml`) and a one-line description
// (`desc`); its environment variable is derived from the dotted key
// ("smtp.addr" → IDP_SMTP_ADDR). Loading, the unknown-key checks and
// Reference all walk the struct by reflection, so none of them can drift
// from it. Leaf fields are string, bool, int, time.Duration or []string.
package config

import (
	"path/filepath"
	"time"
)

// Config is the whole configuration.
type Config struct {
	Issuer      string      `yaml:"issuer" desc:"public URL of the provider, the OIDC issuer: https (http on localhost only), a host of its own without a path"`
	Listen      string      `yaml:"listen" desc:"host:port the HTTP server listens on"`
	DatabaseURL string      `yaml:"database_url" secret:"true" desc:"sqlite:PATH for the embedded database, or a postgres:// URL"`
	DataDir     string      `yaml:"data_dir" desc:"directory for local files; mails are written to DATA_DIR/mail when no SMTP server is set"`
	Log         Log         `yaml:"log"`
	SMTP        SMTP        `yaml:"smtp"`
	Mail        Mail        `yaml:"mail"`
	Secrets     Secrets     `yaml:"secrets"`
	Tokens      Tokens      `yaml:"tokens"`
	Session     Session     `yaml:"session"`
	Keys        Keys        `yaml:"keys"`
	Password    Password    `yaml:"password"`
	Provisional Provisional `yaml:"provisional"`
	Captcha     Captcha     `yaml:"captcha"`
	Recovery    Recovery    `yaml:"recovery"`
	Login       Login       `yaml:"login"`
	Audit       Audit       `yaml:"audit"`
	HTTP        HTTP        `yaml:"http"`
	TLS         TLS         `yaml:"tls"`
}

// Log configures the logger.
type Log struct {
	Level  string `yaml:"level" desc:"debug, info, warn or error"`
	Format string `yaml:"format" desc:"json or text"`
}

// SMTP configures the mail relay.
type SMTP struct {
	Addr     string        `yaml:"addr" desc:"host:port of the SMTP relay; empty: idp serve writes mails to the log and to DATA_DIR/mail as .eml files, and the other commands leave theirs to it"`
	Username string        `yaml:"username" desc:"SMTP user (set with smtp.password, or neither); AUTH PLAIN where the relay offers it, else AUTH LOGIN (Exchange, Office 365)"`
	Password string        `yaml:"password" secret:"true" desc:"SMTP password (set with smtp.username, or neither)"`
	StartTLS bool          `yaml:"starttls" desc:"require STARTTLS before sending; must be true when smtp.username is set and the relay is not on localhost"`
	Helo     string        `yaml:"helo" desc:"host name announced in HELO/EHLO; with a relay elsewhere than on this machine, a fully qualified name (or an address literal [192.0.2.10]): Postfix refuses localhost"`
	Timeout  time.Duration `yaml:"timeout" desc:"timeout of one SMTP conversation; under 1m (a send must end within the lease of a claimed mail)"`
}

// Mail configures outgoing mail.
type Mail struct {
	From         string        `yaml:"from" desc:"sender address of every mail, e.g. \"Name <addr@example.fr>\"; ASCII (a domain in its xn-- form); with a relay elsewhere than on this machine, its domain fully qualified"`
	GiveUpAfter  time.Duration `yaml:"give_up_after" desc:"how long the outbox keeps retrying a mail (with backoff) before giving up"`
	PollInterval time.Duration `yaml:"poll_interval" desc:"how often the outbox looks for mails to send"`
}

// Secrets are the provider's own keys.
type Secrets struct {
	CryptoKey        string `yaml:"crypto_key" secret:"true" desc:"base64 of 32 bytes encrypting cookies and state; empty: generated on first start and kept in the database"`
	KeyEncryptionKey string `yaml:"key_encryption_key" secret:"true" desc:"base64 of 32 bytes encrypting the signing keys at rest; empty: generated on first start and kept in the database"`
}

// Tokens sets token lifetimes.
type Tokens struct {
	CodeTTL        time.Duration `yaml:"code_ttl" desc:"lifetime of an authorization code (1s to 10m)"`
	AccessTTL      time.Duration `yaml:"access_ttl" desc:"lifetime of an access token"`
	IDTokenTTL     time.Duration `yaml:"id_token_ttl" desc:"lifetime of an ID token"`
	RefreshTTL     time.Duration `yaml:"refresh_ttl" desc:"lifetime of a refresh token"`
	AuthRequestTTL time.Duration `yaml:"auth_request_ttl" desc:"how long a login may take between /authorize and the code"`
}

// Session sets the browser session's lifetimes.
type Session struct {
	IdleTimeout     time.Duration `yaml:"idle_timeout" desc:"a session without activity for this long ends"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout" desc:"a session ends this long after login whatever the activity (>= session.idle_timeout)"`
}

// Keys configures token-signing keys.
type Keys struct {
	Algorithm      string        `yaml:"algorithm" desc:"signing algorithm of new keys: RS256 or ES256"`
	RotationPeriod time.Duration `yaml:"rotation_period" desc:"age at which the signing key is replaced; 0: no automatic rotation"`
	PublishAhead   time.Duration `yaml:"publish_ahead" desc:"how long a new key is published before it signs"`
}

// Password groups the hashing cost and the password policy.
type Password struct {
	Hash   Hash   `yaml:"hash"`
	Policy Policy `yaml:"policy"`
}

// Hash sets Argon2id's cost.
type Hash struct {
	MemoryKiB     int `yaml:"memory_kib" desc:"Argon2id memory per hash in KiB (>= 19456)"`
	Iterations    int `yaml:"iterations" desc:"Argon2id passes (>= 2 below 47104 KiB of memory, >= 1 above)"`
	Parallelism   int `yaml:"parallelism" desc:"Argon2id lanes (1 to 255)"`
	MaxConcurrent int `yaml:"max_concurrent" desc:"hashes computed at once by one instance, each costing memory_kib; 0: number of CPUs"`
}

// Policy is the rule set for personal passwords.
type Policy struct {
	MinLength              int    `yaml:"min_length" desc:"minimum length in characters (Unicode code points)"`
	MaxLength              int    `yaml:"max_length" desc:"maximum length in characters (at most 1024)"`
	RequireLowercase       bool   `yaml:"require_lowercase" desc:"require a lowercase letter (accented ones count)"`
	RequireUppercase       bool   `yaml:"require_uppercase" desc:"require an uppercase letter"`
	RequireDigit           bool   `yaml:"require_digit" desc:"require a digit"`
	RequireSymbol          bool   `yaml:"require_symbol" desc:"require a character that is neither a letter nor a digit"`
	ForbiddenPasswordsFile string `yaml:"forbidden_passwords_file" desc:"file of refused common passwords, one a line (# comments); empty: none"`
	ForbidEmailLocalPart   bool   `yaml:"forbid_email_local_part" desc:"refuse passwords containing the part of the agent's address before @"`
}

// Provisional configures the passwords mailed by « Mot de passe oublié ? ».
type Provisional struct {
	Length int           `yaml:"length" desc:"length of a provisional password (within the policy's bounds)"`
	TTL    time.Duration `yaml:"ttl" desc:"how long a provisional password can be used"`
}

// Captcha configures the CAPTCHA of the recovery form.
type Captcha struct {
	Length     int           `yaml:"length" desc:"characters in an image CAPTCHA (5 or 6)"`
	TTL        time.Duration `yaml:"ttl" desc:"how long a CAPTCHA can be answered"`
	TestAnswer string        `yaml:"test_answer" secret:"true" desc:"answer accepted for every CAPTCHA, for automated tests; only allowed when the issuer is on localhost"`
}

// Recovery limits the « Mot de passe oublié ? » procedure.
type Recovery struct {
	MaxMailsPerAccountPerHour int           `yaml:"max_mails_per_account_per_hour" desc:"provisional passwords mailed to one agent per hour at most"`
	MaxRequestsPerIPPerHour   int           `yaml:"max_requests_per_ip_per_hour" desc:"recovery requests accepted from one IP address per hour at most"`
	PollInterval              time.Duration `yaml:"poll_interval" desc:"how often recovery requests are processed (at once when one arrives on this instance, and after a full batch of 20)"`
}

// Login configures the login flow.
type Login struct {
	ReloginAfterChange bool `yaml:"relogin_after_change" desc:"after the forced password change, make the agent log in again instead of continuing"`
}

// Audit configures the audit trail.
type Audit struct {
	Retention time.Duration `yaml:"retention" desc:"how long audit events are kept"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	TrustedProxies []string `yaml:"trusted_proxies" desc:"IPs or CIDRs of reverse proxies whose X-Forwarded-For is believed (comma-separated in the environment)"`
	AdminListen    string   `yaml:"admin_listen" desc:"host:port of a second listener for /metrics and /debug/pprof (empty: /metrics on the main listener, no profiling)"`
}

// TLS lets the server terminate TLS itself.
type TLS struct {
	CertFile string `yaml:"cert_file" desc:"PEM certificate chain (set with tls.key_file, or neither: plain HTTP behind a proxy)"`
	KeyFile  string `yaml:"key_file" desc:"PEM private key (set with tls.cert_file, or neither)"`
}

// Default is the configuration before any file or environment variable: a
// working local setup (SQLite, mails to files, http://localhost:8080).
func Default() Config {
	return Config{
		Issuer:      "http://localhost:8080",
		Listen:      "127.0.0.1:8080",
		DatabaseURL: "sqlite:data/idp.db",
		DataDir:     "data",
		Log:         Log{Level: "info", Format: "json"},
		SMTP:        SMTP{Helo: "localhost", Timeout: 30 * time.Second},
		Mail: Mail{
			From:         "Portail Extranet <no-reply@localhost>",
			GiveUpAfter:  24 * time.Hour,
			PollInterval: 2 * time.Second,
		},
		Tokens: Tokens{
			CodeTTL:        60 * time.Second,
			AccessTTL:      15 * time.Minute,
			IDTokenTTL:     15 * time.Minute,
			RefreshTTL:     720 * time.Hour,
			AuthRequestTTL: 30 * time.Minute,
		},
		Session: Session{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 12 * time.Hour},
		Keys:    Keys{Algorithm: "RS256", RotationPeriod: 2160 * time.Hour, PublishAhead: time.Hour},
		Password: Password{
			Hash: Hash{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, MaxConcurrent: 0},
			Policy: Policy{
				MinLength: 6, MaxLength: 20,
				RequireLowercase: true, RequireDigit: true,
			},
		},
		Provisional: Provisional{Length: 12, TTL: 24 * time.Hour},
		Captcha:     Captcha{Length: 6, TTL: 10 * time.Minute},
		Recovery: Recovery{
			MaxMailsPerAccountPerHour: 3,
			MaxRequestsPerIPPerHour:   20,
			PollInterval:              2 * time.Second,
		},
		Audit: Audit{Retention: 8760 * time.Hour},
	}
}

// MailDir is where mails are written when no SMTP relay is configured.
func (c Config) MailDir() string { return filepath.Join(c.DataDir, "mail") }
