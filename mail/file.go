package mail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"github.com/caf-extranet/idp/storage"
)

// FileTransport is the transport when no SMTP server is configured (a
// developer's machine, a demo): each message becomes an .eml file that any
// mail client opens, and a log line says where it went.
type FileTransport struct {
	dir    string
	logger *slog.Logger
}

// NewFileTransport writes messages under dir, created 0700 on first use: the
// files hold provisional passwords.
func NewFileTransport(dir string, logger *slog.Logger) *FileTransport {
	return &FileTransport{dir: dir, logger: logger}
}

// Send writes msg as <dir>/<date>-<id>.eml (mode 0600), naming it after the
// message's own Date and Message-ID so that the name says when and which mail
// without this transport reading a clock. The file appears whole or not at
// all (written aside, then renamed). The log line carries the recipient, the
// subject and the path, never the body.
func (t *FileTransport) Send(ctx context.Context, from, to string, msg []byte) error {
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return fmt.Errorf("mail: creating outbox folder: %w", err)
	}
	subject, stamp, id := describe(msg)
	tmp, err := os.CreateTemp(t.dir, ".writing-*") // mode 0600
	if err != nil {
		return fmt.Errorf("mail: writing message: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(msg); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: writing message: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: writing message: %w", err)
	}
	path := filepath.Join(t.dir, stamp+"-"+id+".eml")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mail: writing message: %w", err)
	}
	t.logger.InfoContext(ctx, "mail written", "to", to, "subject", subject, "path", path)
	return nil
}

// describe reads the subject, a file-name timestamp and a file-name id from
// the message's header, falling back to safe placeholders: a header this
// package did not build must still be written, not lost.
func describe(msg []byte) (subject, stamp, id string) {
	stamp, id = "undated", storage.NewID()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return "", stamp, id
	}
	subject = m.Header.Get("Subject")
	var dec mime.WordDecoder
	if s, err := dec.DecodeHeader(subject); err == nil {
		subject = s
	}
	if d, err := m.Header.Date(); err == nil {
		stamp = d.UTC().Format("20060102T150405Z")
	}
	if mid := safeFileName(strings.Trim(m.Header.Get("Message-ID"), "<> ")); mid != "" {
		if local, _, _ := strings.Cut(mid, "@"); local != "" {
			id = local
		}
	}
	return subject, stamp, id
}

// safeFileName keeps letters, digits, '-', '_', '.' and '@', so that a header
// value can never climb out of the folder.
func safeFileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '@':
			b.WriteRune(r)
		case r == '.':
			if b.Len() > 0 { // no leading dot: no hidden or ".." names
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// compile-time check that both transports satisfy Transport.
var (
	_ Transport = (*FileTransport)(nil)
	_ Transport = (*SMTPTransport)(nil)
)
