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
// built, or the server refused this mail for its recipient or its content: a
// 5xx reply to RCPT whose enhanced status (RFC 3463) names the recipient's
// address or mailbox (5.1.x but 5.1.0, 5.1.7 and 5.1.8; 5.2.x: 5.1.1 user
// unknown, 5.2.1 mailbox disabled...) or, with another or none, 550, 551 or
// 553; a 5xx reply to DATA, unless its status says otherwise (below). A 4xx reply, a network
// failure or a timeout is temporary.
//
// So is every refusal that says the relay refuses us rather than this mail,
// a configuration matter an operator can fix; the mail then waits until the
// sender gives up on it, and fixing the configuration in time delivers it:
// a 5xx to the greeting, EHLO, STARTTLS or AUTH; a 5xx to MAIL, whose only
// argument is our own sender address (mail.from), the same for every mail;
// a 5xx to RCPT or DATA whose status is about our sender (5.1.0, 5.1.7, 5.1.8:
// Postfix's "Sender address rejected: Domain not found"), the protocol
// (5.5.x: Postfix checks our EHLO name at RCPT, "5.5.2 Helo command
// rejected"), routing (5.4.x) or security and policy (5.7.x: "Relay access
// denied", Gmail's "5.7.26 unauthenticated", DMARC), any other 5xx to RCPT
// but 550, 551 and 553; and RFC 4954's replies on
// authentication and encryption (530 authentication or STARTTLS required,
// 534 mechanism too weak, 535 bad credentials, 538 encryption required),
// whichever command gets them.
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
	if re.Command != "RCPT" && re.Command != "DATA" {
		return false
	}
	subject, detail, ok := enhancedStatus(re.Message)
	// About us: our sender's address (5.1.0 other address status, which
	// Postfix's reject_unlisted_sender gives; 5.1.7, 5.1.8), routing
	// (5.4.x), the protocol (5.5.x), security and policy (5.7.x).
	if ok && (subject == 4 || subject == 5 || subject == 7 || subject == 1 && (detail == 0 || detail == 7 || detail == 8)) {
		return false
	}
	if re.Command == "DATA" {
		return true // the message
	}
	if ok && (subject == 1 || subject == 2) {
		return true // the recipient's address or mailbox
	}
	return re.Code == 550 || re.Code == 551 || re.Code == 553
}

// enhancedStatus reads the enhanced status code 5.subject.detail of a
// reply's text (RFC 3463). RFC 2034 puts the code at the start of every line
// of the reply; its last line is read, the one servers that write it only
// once write it on.
func enhancedStatus(msg string) (subject, detail int, ok bool) {
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	code, _, _ := strings.Cut(msg, " ")
	rest, found := strings.CutPrefix(code, "5.")
	if !found {
		return 0, 0, false
	}
	s, d, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	subject, ok1 := statusNumber(s)
	detail, ok2 := statusNumber(d)
	return subject, detail, ok1 && ok2
}

// statusNumber is one number of an enhanced status code: 1 to 3 digits.
func statusNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
		// PLAIN or LOGIN, refused on a clear-text session to anything but
		// localhost.
		if err := c.Auth(newRelayAuth(t.cfg.Username, t.cfg.Password, host)); err != nil {
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
