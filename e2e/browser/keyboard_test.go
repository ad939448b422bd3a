package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// maxTabs bounds the Tab presses to reach an element: more means it cannot
// be reached from the keyboard in any sensible way.
const maxTabs = 25

// tabTo presses Tab until the element with this role and accessible name
// has the focus, and fails, listing where the focus went, if it never does.
func (a *agent) tabTo(role, name string) {
	a.t.Helper()
	var stops []string
	for range maxTabs {
		a.do("press Tab", chromedp.KeyEvent(kb.Tab))
		r, n := a.focused()
		if r == role && n == name {
			return
		}
		stops = append(stops, r+" « "+n+" »")
	}
	a.fatalf("%s never got the focus after %d Tab presses; the focus went to: %s",
		label(role, name), maxTabs, strings.Join(stops, ", "))
}

// typeText types into the focused element.
func (a *agent) typeText(s string) {
	a.t.Helper()
	a.do("type", chromedp.KeyEvent(s))
}

// enterKey presses Enter as a physical keyboard does: a raw key down, the
// character, the key up. chromedp.KeyEvent sends a "keyDown" instead of a
// raw one, and Chromium then does not drop the character after a key down
// that did something: Enter on a link to a field would move the focus into
// the field, then submit its form with the character. A keyboard never does.
func enterKey() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		enter := input.DispatchKeyEventParams{Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		down, char, up := enter, enter, enter
		down.Type, up.Type = input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp
		char.Type, char.Text, char.UnmodifiedText = input.DispatchKeyEventTypeChar, "\r", "\r"
		for _, e := range []input.DispatchKeyEventParams{down, char, up} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// enter presses Enter, which follows the focused link or submits the form
// of the focused field, and waits for the next page.
func (a *agent) enter() {
	a.t.Helper()
	a.navigates("press Enter", enterKey())
}

// Journey 2 again, with the keyboard only: Tab, typing and Enter, no click.
// Each Tab lands on a field the agent identifies by its label.
func journeyKeyboardOnly(t *testing.T, s *stack) {
	email := "nadia.roux@mairie-lyon.fr"
	s.addAgent(t, email, "Nadia Roux", "ancien2024")
	a := newAgent(t, s)

	a.open(s.app1.URL + "/")
	a.tabTo(roleLink, appLogin)
	a.enter()
	a.onProvider("/login", headingLogin, titleLogin, "")

	a.tabTo(roleLink, linkForgot)
	a.enter()
	a.onProvider("/login/forgot", headingForgot, titleForgot, "")
	a.tabTo(roleTextbox, fieldEmail)
	a.typeText(email)
	a.tabTo(roleTextbox, fieldCaptcha)
	a.typeText("mauvais")
	a.enter()
	a.onProvider("/login/forgot", headingForgot, errorPrefix+titleForgot, "")
	a.fieldError(fieldCaptcha, captchaFailed)

	// The error summary's link takes the focus to the field at fault.
	a.tabTo(roleLink, captchaFailed)
	a.samePage("follow the error link", enterKey())
	if r, n := a.focused(); r != roleTextbox || n != fieldCaptcha {
		a.fatalf("the error link left the focus on %s « %s », want the field « %s »", r, n, fieldCaptcha)
	}
	a.typeText(captchaAnswer)
	a.enter()
	a.onProvider("/login/forgot/sent", headingSent, titleSent, "")
	provisional := provisionalPassword(t, s.mail.waitFor(t, email, mailSubject, 1))

	a.tabTo(roleLink, linkBackToLogin)
	a.enter()
	a.onProvider("/login", headingLogin, titleLogin, "")
	a.tabTo(roleTextbox, fieldEmail)
	a.typeText(email)
	a.tabTo(roleTextbox, fieldPassword)
	a.typeText(provisional)
	a.enter()
	a.onProvider("/login/change", headingChange, titleChange, "")

	// A refusal (too short), then the valid password.
	for _, pw := range []string{"abc12", "personnel2026"} {
		a.tabTo(roleTextbox, fieldCurrent)
		a.typeText(provisional)
		a.tabTo(roleTextbox, fieldNew)
		a.typeText(pw)
		a.tabTo(roleTextbox, fieldConfirm)
		a.typeText(pw)
		a.enter()
		if pw == "abc12" {
			a.onProvider("/login/change", headingChange, errorPrefix+titleChange, "")
			a.fieldError(fieldNew, "Le nouveau mot de passe doit contenir au moins 6 caractères.")
		}
	}
	a.inApp(s.app1, email)
}
