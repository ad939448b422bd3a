package loginui

import (
	"fmt"
	"html/template"
)

// catalog is the text of the pages in one language. Templates and handlers
// refer to texts by key; an unknown key is an error, so that a typo fails the
// page's tests instead of showing an empty label.
type catalog struct {
	lang string
	text map[string]string
	// rich holds the few texts with markup (the legal notice's bold parts).
	// They are written in the catalog file, never built from input.
	rich map[string]template.HTML
}

// get returns the text of key.
func (c catalog) get(key string) (string, error) {
	s, ok := c.text[key]
	if !ok {
		return "", fmt.Errorf("loginui: no text for %q", key)
	}
	return s, nil
}

// format returns the text of key with its %-verbs filled with args.
func (c catalog) format(key string, args ...any) (string, error) {
	s, err := c.get(key)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(s, args...), nil
}

// html returns the rich text of key.
func (c catalog) html(key string) (template.HTML, error) {
	s, ok := c.rich[key]
	if !ok {
		return "", fmt.Errorf("loginui: no rich text for %q", key)
	}
	return s, nil
}

// message is a text chosen by a handler: resolved when the page is rendered,
// so that an unknown key fails the render (and the tests) like a template's.
type message struct {
	Key  string
	Args []any
}

func msg(key string, args ...any) message { return message{Key: key, Args: args} }

// resolve returns the text of m. Arguments that are messages themselves (the
// number words of the CAPTCHA question) are resolved first.
func (c catalog) resolve(m message) (string, error) {
	args := make([]any, len(m.Args))
	for i, a := range m.Args {
		if inner, ok := a.(message); ok {
			s, err := c.resolve(inner)
			if err != nil {
				return "", err
			}
			a = s
		}
		args[i] = a
	}
	return c.format(m.Key, args...)
}

// funcs are the template functions: t (text), tf (formatted text), th (rich
// text), msg (a handler's message).
func (c catalog) funcs() template.FuncMap {
	return template.FuncMap{
		"t":   c.get,
		"tf":  c.format,
		"th":  c.html,
		"msg": c.resolve,
	}
}
