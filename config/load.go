package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvConfigFile names the configuration file when no path is given (no
// --config): a service's environment can then point every command, serve
// and the administrative ones alike, at the same file. It is not a key, so
// it is never reported as an unknown variable.
const EnvConfigFile = "IDP_CONFIG"

// envTestPrefix marks variables read by tests, not by the provider.
const envTestPrefix = "IDP_TEST_"

// Load builds the configuration: Default, then the YAML file at
// FilePath(path, environ) if any, then the IDP_* variables of environ (pass
// os.Environ()), then Validate. Every problem found on the way is returned
// together in one *Error; the Config returned with an error is the best
// effort and must not be used to start.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	var ps problems
	if file := FilePath(path, environ); file != "" {
		what := "the configuration file"
		if path == "" {
			// An operator may not know the variable is set in this shell.
			what += " named by " + EnvConfigFile
		}
		loadFile(file, what, &cfg, &ps)
	}
	loadEnv(environ, &cfg, &ps)
	if err := cfg.Validate(); err != nil {
		var verr *Error
		if errors.As(err, &verr) {
			ps = append(ps, verr.Problems...)
		}
	}
	return cfg, ps.err()
}

// FilePath is the configuration file Load reads: path when given, else the
// one IDP_CONFIG names in environ, else none (""). Reading IDP_CONFIG here
// rather than in each command means no command can forget it and start on
// the defaults while the operator believes it runs on the file.
func FilePath(path string, environ []string) string {
	if path != "" {
		return path
	}
	file := ""
	for _, kv := range environ { // the last one wins, as with the IDP_* keys
		if v, ok := strings.CutPrefix(kv, EnvConfigFile+"="); ok {
			file = v
		}
	}
	return file
}

func loadFile(path, what string, cfg *Config, ps *problems) {
	data, err := os.ReadFile(path)
	if err != nil {
		ps.add("", fmt.Sprintf("reading %s: %v", what, err))
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // empty file: nothing overridden
		}
		ps.add("", fmt.Sprintf("%s: %v", path, err))
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		ps.add("", fmt.Sprintf("%s: only one YAML document is allowed (second one at line %d)", path, extra.Line))
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = deref(root.Content[0])
	}
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		ps.add("", fmt.Sprintf("%s: line %d: expected a mapping of keys", path, root.Line))
		return
	}
	// Unknown keys are errors, as with the YAML decoder's KnownFields(true),
	// but found by walking the document so that every one is reported, with
	// its full dotted key and line, rather than the decoder's first.
	walkMapping(path, root, reflect.ValueOf(cfg).Elem(), "", ps)
}

// walkMapping applies a YAML mapping to the struct v.
func walkMapping(path string, node *yaml.Node, v reflect.Value, prefix string, ps *problems) {
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("yaml"); name != "" && t.Field(i).IsExported() {
			fields[name] = i
			names = append(names, name)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := deref(node.Content[i]), deref(node.Content[i+1])
		key := prefix + k.Value
		if k.Kind != yaml.ScalarNode {
			ps.add(prefix+"?", fmt.Sprintf("line %d: keys must be plain names", k.Line))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			ps.add(key, fmt.Sprintf("set twice (%s lines %d and %d)", path, first, k.Line))
			continue
		}
		seen[k.Value] = k.Line
		fi, known := fields[k.Value]
		if !known {
			msg := fmt.Sprintf("unknown key (%s line %d)", path, k.Line)
			if guess := closest(k.Value, names); guess != "" {
				msg += "; did you mean " + prefix + guess + "?"
			}
			ps.add(key, msg)
			continue
		}
		f := t.Field(fi)
		fv := v.Field(fi)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			switch {
			case isNull(val):
				// "smtp:" with nothing under it: keep the defaults.
			case val.Kind != yaml.MappingNode:
				ps.add(key, fmt.Sprintf("line %d: expected keys under %s, not a value", val.Line, key))
			default:
				walkMapping(path, val, fv, key+".", ps)
			}
			continue
		}
		setLeaf(val, fv, key, f.Tag.Get("secret") == "true", ps)
	}
}

// setLeaf sets a leaf from its YAML node, parsing scalars like environment
// variables so that both sources accept exactly the same values.
func setLeaf(val *yaml.Node, fv reflect.Value, key string, secret bool, ps *problems) {
	isList := fv.Kind() == reflect.Slice
	switch {
	case isNull(val):
		if fv.Kind() == reflect.String || isList {
			fv.Set(reflect.Zero(fv.Type())) // "key:" with no value: empty
			return
		}
		ps.add(key, fmt.Sprintf("line %d: no value", val.Line))
	case isList:
		if val.Kind != yaml.SequenceNode {
			ps.add(key, fmt.Sprintf("line %d: expected a list", val.Line))
			return
		}
		var items []string
		for _, item := range val.Content {
			item = deref(item)
			if item.Kind != yaml.ScalarNode || strings.Contains(item.Value, ",") {
				ps.add(key, fmt.Sprintf("line %d: expected a list of single values", item.Line))
				return
			}
			if s := strings.TrimSpace(item.Value); s != "" {
				items = append(items, s)
			}
		}
		fv.Set(reflect.ValueOf(items))
	case val.Kind != yaml.ScalarNode:
		ps.add(key, fmt.Sprintf("line %d: expected a single value", val.Line))
	default:
		if err := parseInto(fv, val.Value); err != nil {
			ps.add(key, fmt.Sprintf("line %d: %s %v", val.Line, quote(val.Value, secret), err))
		}
	}
}

func loadEnv(environ []string, cfg *Config, ps *problems) {
	byEnv := make(map[string]leaf)
	var names []string
	for _, l := range leaves() {
		byEnv[l.env] = l
		names = append(names, l.env)
	}
	v := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "IDP_") || strings.HasPrefix(name, envTestPrefix) || name == EnvConfigFile {
			continue
		}
		l, known := byEnv[name]
		if !known {
			msg := "unknown environment variable"
			if guess := closest(name, names); guess != "" {
				msg += "; did you mean " + guess + "?"
			}
			ps.add(name, msg)
			continue
		}
		if err := parseInto(v.FieldByIndex(l.index), value); err != nil {
			ps.add(l.key, fmt.Sprintf("%s=%s %v", name, quote(value, l.secret), err))
		}
	}
}

// quote shows a value in a message, except a secret one.
func quote(s string, secret bool) string {
	if secret {
		return "(value hidden)"
	}
	return fmt.Sprintf("%q", s)
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// closest returns the candidate within two edits of s, if any: the likely
// intended name behind a typo.
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance between two short ASCII names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
