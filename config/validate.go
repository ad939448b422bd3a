package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Bounds shared with the code that uses the values.
const (
	minHashMemoryKiB = 19456           // OWASP's minimum for Argon2id
	maxHashMemoryKiB = 4 * 1024 * 1024 // what storage/passhash accepts back
	// Below this memory OWASP pairs Argon2id with at least 2 passes (its
	// 1-pass option needs 46 MiB).
	onePassMemoryKiB = 47104
	maxHashPasses    = 100 // storage/passhash's bound
	maxPasswordLen   = 1024
	secretKeyLen     = 32
)

// Validate checks the whole configuration and returns every problem at once
// in an *Error, or nil. It reads the file system to check that the files
// named exist.
func (c Config) Validate() error {
	var ps problems
	c.validateServer(&ps)
	c.validateMail(&ps)
	c.validateSecrets(&ps)
	c.validateLifetimes(&ps)
	c.validatePassword(&ps)
	c.validateRecovery(&ps)
	return ps.err()
}

func (c Config) validateServer(ps *problems) {
	if why := issuerProblem(c.Issuer); why != "" {
		ps.add("issuer", fmt.Sprintf("%q %s", c.Issuer, why))
	}
	if why := hostPortProblem(c.Listen, true); why != "" {
		ps.add("listen", fmt.Sprintf("%q %s", c.Listen, why))
	}
	if why := databaseURLProblem(c.DatabaseURL); why != "" {
		ps.add("database_url", why) // the value may hold a password: not echoed
	}
	if strings.TrimSpace(c.DataDir) == "" {
		ps.add("data_dir", "must not be empty")
	}
	oneOf(ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(ps, "log.format", c.Log.Format, "json", "text")
	oneOf(ps, "keys.algorithm", c.Keys.Algorithm, "RS256", "ES256")
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			ps.add("http.trusted_proxies", fmt.Sprintf("%q is neither an IP address nor a CIDR", p))
		}
	}
	if a := c.HTTP.AdminListen; a != "" {
		if why := hostPortProblem(a, false); why != "" {
			ps.add("http.admin_listen", fmt.Sprintf("%q %s", a, why))
		} else if a == c.Listen {
			ps.add("http.admin_listen", fmt.Sprintf("%q is the main listener's address: the administration endpoints need their own", a))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		ps.add("tls", "tls.cert_file and tls.key_file must be set together, or neither")
	}
	fileExists(ps, "tls.cert_file", c.TLS.CertFile)
	fileExists(ps, "tls.key_file", c.TLS.KeyFile)
	if c.Captcha.TestAnswer != "" && !OnLoopback(c.Issuer) {
		ps.add("captcha.test_answer", "only allowed when issuer is on localhost")
	}
}

// qualifiedDomain: a dotted name that is not localhost's.
func qualifiedDomain(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return strings.Contains(name, ".") && name != "localhost" && !strings.HasSuffix(name, ".localhost") &&
		!strings.HasSuffix(name, ".localdomain")
}

// isLoopbackHost: a relay on this machine, by name or address.
func isLoopbackHost(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || name == "localhost.localdomain" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// MaxSMTPTimeout keeps one send within the lease of the mail senders
// (cmd/idp: twice this, no send started after the first half).
const MaxSMTPTimeout = time.Minute

func (c Config) validateMail(ps *problems) {
	if c.SMTP.Addr != "" {
		if why := hostPortProblem(c.SMTP.Addr, false); why != "" {
			ps.add("smtp.addr", fmt.Sprintf("%q %s", c.SMTP.Addr, why))
		}
	}
	if (c.SMTP.Username == "") != (c.SMTP.Password == "") {
		ps.add("smtp.username", "smtp.username and smtp.password must be set together, or neither")
	}
	if c.SMTP.Addr == "" && (c.SMTP.Username != "" || c.SMTP.Password != "") {
		ps.add("smtp.username", "SMTP credentials are set but smtp.addr is empty")
	}
	if c.SMTP.Addr != "" && c.SMTP.Username != "" && c.SMTP.Password != "" && !c.SMTP.StartTLS {
		// The sender refuses to send credentials in clear to anything but
		// the loopback: refused here, at start-up, rather than on every
		// mail for a day (each retried, then failed, the provisional
		// password lost).
		// The sender's own rule (mail.isLocalhost, net/smtp's), not
		// isLoopbackHost: a relay the sender would refuse on every mail is
		// refused here.
		if host, _, err := net.SplitHostPort(c.SMTP.Addr); err == nil && host != "localhost" && host != "127.0.0.1" && host != "::1" {
			ps.add("smtp.starttls", fmt.Sprintf("must be true to send smtp.username's credentials to %s (only a relay on localhost may do without)", c.SMTP.Addr))
		}
	}
	// idp serve leases a claimed mail for 2 minutes and starts no send
	// after the first: a send must end within the second, or another
	// instance may send the same mail again.
	if c.SMTP.Timeout >= MaxSMTPTimeout {
		ps.add("smtp.timeout", fmt.Sprintf("%s must be under %s (a send must end within the mail's lease)", c.SMTP.Timeout, MaxSMTPTimeout))
	}
	if c.SMTP.Helo == "" || strings.ContainsAny(c.SMTP.Helo, " \t\r\n") {
		ps.add("smtp.helo", fmt.Sprintf("%q must be a host name", c.SMTP.Helo))
	}
	positive(ps, "smtp.timeout", c.SMTP.Timeout)
	from, err := mail.ParseAddress(c.Mail.From)
	if err != nil {
		ps.add("mail.from", fmt.Sprintf("%q is not a mail address (%v)", c.Mail.From, err))
	} else if !isASCII(from.Address) {
		ps.add("mail.from", fmt.Sprintf("%q must be ASCII (an internationalized domain in its xn-- form): mails go out without SMTPUTF8", from.Address))
	}
	// A relay elsewhere than on this machine judges us by the names we
	// give: Postfix refuses a non-qualified EHLO name or sender domain at
	// RCPT, others file the mail as spam. The defaults (localhost) only do
	// for a relay on this machine.
	if host, _, err := net.SplitHostPort(c.SMTP.Addr); err == nil && host != "" && !isLoopbackHost(host) {
		if !qualifiedDomain(c.SMTP.Helo) && !strings.HasPrefix(c.SMTP.Helo, "[") {
			ps.add("smtp.helo", fmt.Sprintf("%q is not a fully qualified domain name, which the relay %s may refuse (RFC 5321 §4.1.1.1): give the provider's own, e.g. idp.example.fr", c.SMTP.Helo, c.SMTP.Addr))
		}
		if from != nil {
			if _, domain, _ := strings.Cut(from.Address, "@"); !qualifiedDomain(domain) {
				ps.add("mail.from", fmt.Sprintf("%q: the domain %q is not fully qualified, which the relay %s may refuse: give the agency's sending address", from.Address, domain, c.SMTP.Addr))
			}
		}
	}
	positive(ps, "mail.give_up_after", c.Mail.GiveUpAfter)
	positive(ps, "mail.poll_interval", c.Mail.PollInterval)
}

func (c Config) validateSecrets(ps *problems) {
	crypto := secretKeyProblem(ps, "secrets.crypto_key", c.Secrets.CryptoKey)
	kek := secretKeyProblem(ps, "secrets.key_encryption_key", c.Secrets.KeyEncryptionKey)
	if crypto != nil && kek != nil && string(crypto) == string(kek) {
		ps.add("secrets.key_encryption_key", "must differ from secrets.crypto_key")
	}
}

func (c Config) validateLifetimes(ps *problems) {
	if c.Tokens.CodeTTL < time.Second || c.Tokens.CodeTTL > 10*time.Minute {
		ps.add("tokens.code_ttl", fmt.Sprintf("%s must be between 1s and 10m", formatDuration(c.Tokens.CodeTTL)))
	}
	positive(ps, "tokens.access_ttl", c.Tokens.AccessTTL)
	positive(ps, "tokens.id_token_ttl", c.Tokens.IDTokenTTL)
	positive(ps, "tokens.refresh_ttl", c.Tokens.RefreshTTL)
	positive(ps, "tokens.auth_request_ttl", c.Tokens.AuthRequestTTL)
	positive(ps, "session.idle_timeout", c.Session.IdleTimeout)
	positive(ps, "session.absolute_timeout", c.Session.AbsoluteTimeout)
	if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		ps.add("session.idle_timeout", fmt.Sprintf("%s must not exceed session.absolute_timeout (%s)",
			formatDuration(c.Session.IdleTimeout), formatDuration(c.Session.AbsoluteTimeout)))
	}
	if c.Keys.RotationPeriod < 0 {
		ps.add("keys.rotation_period", "must not be negative (0 disables rotation)")
	}
	if c.Keys.PublishAhead < 0 {
		ps.add("keys.publish_ahead", "must not be negative")
	}
	if c.Keys.RotationPeriod > 0 && c.Keys.PublishAhead >= c.Keys.RotationPeriod {
		ps.add("keys.publish_ahead", fmt.Sprintf("%s must be shorter than keys.rotation_period (%s)",
			formatDuration(c.Keys.PublishAhead), formatDuration(c.Keys.RotationPeriod)))
	}
	positive(ps, "provisional.ttl", c.Provisional.TTL)
	positive(ps, "captcha.ttl", c.Captcha.TTL)
	positive(ps, "audit.retention", c.Audit.Retention)
}

func (c Config) validatePassword(ps *problems) {
	h := c.Password.Hash
	switch {
	case h.MemoryKiB < minHashMemoryKiB:
		ps.add("password.hash.memory_kib", fmt.Sprintf("%d must be at least %d", h.MemoryKiB, minHashMemoryKiB))
	case h.MemoryKiB > maxHashMemoryKiB:
		ps.add("password.hash.memory_kib", fmt.Sprintf("%d must be at most %d (4 GiB)", h.MemoryKiB, maxHashMemoryKiB))
	}
	switch {
	case h.Iterations < 1 || h.Iterations > maxHashPasses:
		ps.add("password.hash.iterations", fmt.Sprintf("%d must be between 1 and %d", h.Iterations, maxHashPasses))
	case h.Iterations < 2 && h.MemoryKiB < onePassMemoryKiB:
		ps.add("password.hash.iterations", fmt.Sprintf("%d must be at least 2 when password.hash.memory_kib is below %d", h.Iterations, onePassMemoryKiB))
	}
	if h.Parallelism < 1 || h.Parallelism > 255 {
		ps.add("password.hash.parallelism", fmt.Sprintf("%d must be between 1 and 255", h.Parallelism))
	}
	if h.MaxConcurrent < 0 {
		ps.add("password.hash.max_concurrent", fmt.Sprintf("%d must not be negative (0: number of CPUs)", h.MaxConcurrent))
	}

	p := c.Password.Policy
	lengthsOK := true
	if p.MinLength < 1 {
		ps.add("password.policy.min_length", fmt.Sprintf("%d must be at least 1", p.MinLength))
		lengthsOK = false
	}
	if p.MaxLength > maxPasswordLen {
		ps.add("password.policy.max_length", fmt.Sprintf("%d must be at most %d", p.MaxLength, maxPasswordLen))
		lengthsOK = false
	}
	if p.MaxLength < p.MinLength {
		ps.add("password.policy.max_length", fmt.Sprintf("%d must not be below password.policy.min_length (%d)", p.MaxLength, p.MinLength))
		lengthsOK = false
	}
	required := 0
	for _, r := range []bool{p.RequireLowercase, p.RequireUppercase, p.RequireDigit, p.RequireSymbol} {
		if r {
			required++
		}
	}
	if lengthsOK && required > p.MaxLength {
		ps.add("password.policy.max_length", fmt.Sprintf("%d is too short for the %d required character classes", p.MaxLength, required))
		lengthsOK = false
	}
	fileExists(ps, "password.policy.forbidden_passwords_file", p.ForbiddenPasswordsFile)

	// The provisional length is judged only against a policy that can be
	// met, or its problem would just repeat the policy's.
	if !lengthsOK {
		return
	}
	n := c.Provisional.Length
	switch {
	case n < p.MinLength || n > p.MaxLength:
		ps.add("provisional.length", fmt.Sprintf("%d must be between password.policy.min_length (%d) and password.policy.max_length (%d)", n, p.MinLength, p.MaxLength))
	case n < required:
		ps.add("provisional.length", fmt.Sprintf("%d is too short for the %d character classes the policy requires", n, required))
	}
}

func (c Config) validateRecovery(ps *problems) {
	atLeastOne(ps, "recovery.max_mails_per_account_per_hour", c.Recovery.MaxMailsPerAccountPerHour)
	atLeastOne(ps, "recovery.max_requests_per_ip_per_hour", c.Recovery.MaxRequestsPerIPPerHour)
	positive(ps, "recovery.poll_interval", c.Recovery.PollInterval)
	if c.Captcha.Length != 5 && c.Captcha.Length != 6 {
		ps.add("captcha.length", fmt.Sprintf("%d must be 5 or 6", c.Captcha.Length))
	}
}

// issuerProblem says why s is not a usable issuer, or "".
func issuerProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return "is not an absolute URL"
	case u.Hostname() == "": // "https://:8443": a port, no host
		return "has no host name"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must use https"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not contain a user name or password"
	case u.Path != "" && u.Path != "/":
		// The routes, the login pages' links and the cookies' paths are at
		// the root: discovery would be at /.well-known and advertise
		// endpoints under the path that nothing serves.
		return "must not have a path: the provider serves its endpoints at the root of its host (give it a host name of its own)"
	case u.Scheme == "http" && !OnLoopback(s):
		return "must use https (http is only allowed on localhost)"
	}
	return ""
}

// OnLoopback reports whether rawURL's host is localhost or a loopback
// address: the only hosts where plain http and test shortcuts are allowed.
func OnLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hostPortProblem says why s is not host:port, or "". An empty host (all
// interfaces) is allowed only when emptyHostOK.
func hostPortProblem(s string, emptyHostOK bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "is not host:port"
	}
	if host == "" && !emptyHostOK {
		return "has no host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "has no valid port number"
	}
	return ""
}

func databaseURLProblem(s string) string {
	if path, ok := strings.CutPrefix(s, "sqlite:"); ok {
		if strings.TrimSpace(path) == "" {
			return "sqlite: needs a file path, e.g. sqlite:data/idp.db"
		}
		return ""
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "is not a valid postgres:// URL"
		}
		return postgresURLProblem(s, u)
	}
	return "must be sqlite:PATH or a postgres:// URL"
}

// postgresURLProblem asks the driver, which refuses what net/url lets
// through (a misspelt sslmode, a connect_timeout or pool_max_conns that
// is not a number): otherwise the configuration is "valid" and every
// command fails with the store's "invalid connection URL", naming neither
// the key nor the parameter. The driver's message quotes the URL, its
// password masked at best: only what follows the quote is kept, and
// nothing of it if it still holds the password.
func postgresURLProblem(s string, u *url.URL) string {
	_, err := pgxpool.ParseConfig(s)
	if err == nil {
		return ""
	}
	why := err.Error()
	if i := strings.LastIndex(why, "`: "); i >= 0 {
		why = why[i+len("`: "):]
	} else {
		why = ""
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(why, pw) {
		why = ""
	}
	if why == "" {
		return "is refused by the PostgreSQL driver"
	}
	return "is refused by the PostgreSQL driver: " + why
}

// secretKeyProblem checks an optional base64 key and returns its bytes when
// valid and set.
func secretKeyProblem(ps *problems, key, value string) []byte {
	if value == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		ps.add(key, "is not valid base64")
		return nil
	}
	if len(b) != secretKeyLen {
		ps.add(key, fmt.Sprintf("must be %d bytes once base64-decoded, not %d (e.g. openssl rand -base64 32)", secretKeyLen, len(b)))
		return nil
	}
	return b
}

// DecodeKey returns the bytes of a secrets.* value (nil when empty). The
// value must have passed Validate.
func DecodeKey(value string) ([]byte, error) {
	if value == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil || len(b) != secretKeyLen {
		return nil, fmt.Errorf("config: key must be base64 of %d bytes", secretKeyLen)
	}
	return b, nil
}

func oneOf(ps *problems, key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	ps.add(key, fmt.Sprintf("%q must be one of %s", value, strings.Join(allowed, ", ")))
}

func positive(ps *problems, key string, d time.Duration) {
	if d <= 0 {
		ps.add(key, fmt.Sprintf("%s must be positive", formatDuration(d)))
	}
}

func atLeastOne(ps *problems, key string, n int) {
	if n < 1 {
		ps.add(key, fmt.Sprintf("%d must be at least 1", n))
	}
}

func fileExists(ps *problems, key, path string) {
	if path == "" {
		return
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ps.add(key, fmt.Sprintf("%q does not exist", path))
	case err != nil:
		ps.add(key, fmt.Sprintf("cannot be read: %v", err))
	case !info.Mode().IsRegular():
		ps.add(key, fmt.Sprintf("%q is not a regular file", path))
	}
}
