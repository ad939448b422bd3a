package mail

import (
	"bytes"
	htmltemplate "html/template"
	"strconv"
	"strings"
)

// A document is what a mail says, once: it is rendered both as the text part
// and as the HTML part, so the two can never tell the agent different things.
type document struct {
	PortalName string
	Subject    string
	Greeting   string
	Blocks     []block
	Footer     string
}

// Block kinds.
const (
	blockParagraph = "paragraph"
	blockHeading   = "heading" // a short lead-in line, bold in HTML
	blockSecret    = "secret"  // the provisional password, alone on its line
	blockSteps     = "steps"   // an ordered list
)

type block struct {
	Kind  string
	Line  line   // paragraph, heading, secret
	Items []line // steps
}

// A line is plain text optionally followed by an address, which the HTML part
// turns into a link.
type line struct {
	Text string
	URL  string
}

func paragraph(text string) block { return block{Kind: blockParagraph, Line: line{Text: text}} }
func heading(text string) block   { return block{Kind: blockHeading, Line: line{Text: text}} }
func secret(text string) block    { return block{Kind: blockSecret, Line: line{Text: text}} }
func steps(items ...line) block   { return block{Kind: blockSteps, Items: items} }

func (l line) plain() string {
	switch {
	case l.URL == "":
		return l.Text
	case l.Text == "":
		return l.URL
	default:
		return l.Text + " " + l.URL
	}
}

// renderText lays the document out as plain text, one paragraph per line
// (quoted-printable soft breaks keep long lines within the RFC limits).
func renderText(d document) string {
	var b strings.Builder
	b.WriteString(d.Greeting)
	b.WriteString("\n")
	for _, bl := range d.Blocks {
		b.WriteString("\n")
		switch bl.Kind {
		case blockSteps:
			for i, it := range bl.Items {
				b.WriteString(strconv.Itoa(i + 1))
				b.WriteString(". ")
				b.WriteString(it.plain())
				b.WriteString("\n")
			}
		default:
			b.WriteString(bl.Line.plain())
			b.WriteString("\n")
		}
	}
	b.WriteString("\n-- \n")
	b.WriteString(d.PortalName)
	b.WriteString("\n")
	b.WriteString(d.Footer)
	b.WriteString("\n")
	return b.String()
}

// htmlLayout is the HTML part: html/template escapes every value (a display
// name with markup comes out as text) and refuses unsafe link schemes.
// Styles are inline because most mail clients drop <style> blocks.
const htmlLayout = `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:0;background-color:#f3f4f6;">
<div style="max-width:600px;margin:0 auto;padding:24px;background-color:#ffffff;color:#1f2328;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;">
<p style="margin:0 0 24px;font-size:20px;font-weight:bold;color:#0b3d91;">{{.PortalName}}</p>
<p style="margin:0 0 16px;">{{.Greeting}}</p>
{{- range .Blocks}}
{{- if eq .Kind "secret"}}
<p style="margin:0 0 16px;"><span style="display:inline-block;padding:12px 16px;background-color:#eef2f8;border:1px solid #b8c4d9;font-family:'Courier New',Courier,monospace;font-size:22px;font-weight:bold;letter-spacing:2px;">{{.Line.Text}}</span></p>
{{- else if eq .Kind "steps"}}
<ol style="margin:0 0 16px;padding-left:24px;">
{{- range .Items}}
<li style="margin:0 0 8px;">{{template "line" .}}</li>
{{- end}}
</ol>
{{- else if eq .Kind "heading"}}
<p style="margin:24px 0 8px;font-weight:bold;">{{template "line" .Line}}</p>
{{- else}}
<p style="margin:0 0 16px;">{{template "line" .Line}}</p>
{{- end}}
{{- end}}
<hr style="margin:24px 0 16px;border:0;border-top:1px solid #d0d7de;">
<p style="margin:0;font-size:13px;color:#57606a;">{{.Footer}}</p>
</div>
</body>
</html>
{{define "line"}}{{.Text}}{{if .URL}}{{if .Text}} {{end}}<a href="{{.URL}}" style="color:#0b3d91;">{{.URL}}</a>{{end}}{{end}}`

// renderHTML lays the document out as HTML. The template is parsed on each
// call rather than kept in a package variable: mails are rare, and a parse
// error is a programming error that the tests catch.
func renderHTML(d document) string {
	t := htmltemplate.Must(htmltemplate.New("mail").Parse(htmlLayout))
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		// Only a template bug can fail here: the data are plain strings.
		panic("mail: rendering HTML: " + err.Error())
	}
	return b.String()
}
