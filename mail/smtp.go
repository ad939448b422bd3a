package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// DefaultSMTPTimeout bounds one whole SMTP session when SMTPConfig.Timeout is 0.
const DefaultSMTPTimeout = 30 * time.Second

// Configuration errors, returned by SMTPConfig.Validate and by Send.
var (
	// ErrInsecureAuth: a password would cross the network in clear.
	ErrInsecureAuth = errors.New("mail: SMTP authentication requires STARTTLS unless the server is on localhost")
	// ErrNoStartTLS: STARTTLS is configured but the server does not offer it.
	ErrNoStartTLS = errors.New("mail: SMTP server does not offer STARTTLS")
)

// SMTPConfig is how to reach the relay.
type SMTPConfig struct {
	Addr     string // host:port
	Username string // empty: no authentication
	Password string
	Helo     string // the name sent with EHLO; empty: "localhost"
	StartTLS bool
	Timeout  time.Duration // whole session, dial included; 0: DefaultSMTPTimeout
	// TLSConfig, when set, is used for STARTTLS (tests inject their own
	// roots); its ServerName defaults to the host of Addr.
	TLSConfig *tls.Config
}

// Validate reports a configuration that can never work, so that the
// application can refuse to start rather than retry every mail until it
// gives up.
func (c SMTPConfig) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("mail: SMTP address %q: %w", c.Addr, err)
	}
	if c.Username != "" && !c.StartTLS && !isLocalhost(host) {
		return ErrInsecureAuth
	}
	return nil
}

// isLocalhost is net/smtp's own rule for sending PLAIN credentials without
// TLS; keeping the same one means Validate and Send agree.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// ReplyError is a negative reply from the SMTP server.
type ReplyError struct {
	Command string // the command it answered: "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA"
	Code    int
	Message string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("smtp %s: %d %s", e.Command, e.Code, e.Message)
}

// IsPermanent tells whether retrying err is pointless: the message cannot be
// built, or the server refused this mail with a 5xx reply to RCPT (the
// recipient: 5.1.1 user unknown...) or DATA (the message: 5.6.x...). A 4xx
// reply, a network failure or a timeout is temporary.
//
// So is every refusal that says the relay refuses us rather than this mail,
// a configuration matter an operator can fix; the mail then waits until the
// sender gives up on it, and fixing the configuration in time delivers it:
// a 5xx to the greeting, EHLO, STARTTLS or AUTH; a 5xx to MAIL, whose only
// argument is our own sender address (mail.from), the same for every mail;
// a 5xx to RCPT or DATA with a security or policy status (enhanced code
// 5.7.x, RFC 3463), which is how relays refuse our sender or relaying for
// us (Postfix: "5.7.1 Sender address rejected", "5.7.1 Relay access
// denied") and receivers our domain's authentication (Gmail's "5.7.26
// unauthenticated", DMARC), the same for every mail of ours;
// and RFC 4954's replies on authentication and encryption (530
// authentication or STARTTLS required, 534 mechanism too weak, 535 bad
// credentials, 538 encryption required), whichever command gets them.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	var re *ReplyError
	if !errors.As(err, &re) || re.Code < 500 || re.Code > 599 {
		return false
	}
	switch re.Code {
	case 530, 534, 535, 538:
		return false
	}
	switch re.Command {
	case "RCPT", "DATA":
		return !isPolicyStatus(re.Message)
	}
	return false
}

// isPolicyStatus tells whether a reply's text carries the enhanced status
// code 5.7.x ("security or policy status", RFC 3463). RFC 2034 puts the code
// at the start of every line of the reply; its last line is read, the one
// servers that write it only once write it on.
func isPolicyStatus(msg string) bool {
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	code, _, _ := strings.Cut(msg, " ")
	detail, ok := strings.CutPrefix(code, "5.7.")
	if !ok || len(detail) == 0 || len(detail) > 3 {
		return false
	}
	for _, c := range detail {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SMTPTransport sends each message in its own SMTP session: mails are rare,
// and a fresh session never trips over a connection the relay dropped.
type SMTPTransport struct {
	cfg SMTPConfig
}

// NewSMTPTransport returns a transport for c (see SMTPConfig.Validate).
func NewSMTPTransport(c SMTPConfig) *SMTPTransport {
	if c.Timeout <= 0 {
		c.Timeout = DefaultSMTPTimeout
	}
	if c.Helo == "" {
		c.Helo = "localhost"
	}
	return &SMTPTransport{cfg: c}
}

// reply turns net/smtp's *textproto.Error into a ReplyError naming the
// command; other errors (network, TLS) are wrapped as they are.
func reply(command string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &ReplyError{Command: command, Code: te.Code, Message: te.Msg}
	}
	return fmt.Errorf("smtp %s: %w", command, err)
}

// Send delivers msg to one recipient. from and to are bare envelope addresses
// (see Envelope). The whole session is bounded by the configured timeout, and
// cancelling ctx aborts it.
func (t *SMTPTransport) Send(ctx context.Context, from, to string, msg []byte) error {
	if err := t.cfg.Validate(); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(t.cfg.Addr) // Validate checked it

	deadline := time.Now().Add(t.cfg.Timeout)
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", t.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("smtp dial: %w", err)
	}
	// A deadline in the past unblocks whatever read or write is pending.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return reply("greeting", err)
	}
	defer c.Close()

	if err := c.Hello(t.cfg.Helo); err != nil {
		return reply("EHLO", err)
	}
	if t.cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return ErrNoStartTLS
		}
		tc := &tls.Config{}
		if t.cfg.TLSConfig != nil {
			tc = t.cfg.TLSConfig.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		if err := c.StartTLS(tc); err != nil {
			return reply("STARTTLS", err)
		}
	}
	if t.cfg.Username != "" {
		// net/smtp's PlainAuth itself refuses a clear-text session to
		// anything but localhost.
		if err := c.Auth(smtp.PlainAuth("", t.cfg.Username, t.cfg.Password, host)); err != nil {
			return reply("AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return reply("MAIL", err)
	}
	if err := c.Rcpt(to); err != nil {
		return reply("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return reply("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return reply("DATA", err)
	}
	if err := w.Close(); err != nil { // reads the server's verdict on the message
		return reply("DATA", err)
	}
	// The relay has accepted the message: a failing QUIT must not make the
	// sender retry (and deliver it twice).
	_ = c.Quit()
	return nil
}
