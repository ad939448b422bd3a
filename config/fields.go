package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// leaf is one configurable value, found by walking Config's type.
type leaf struct {
	key    string // dotted YAML key, e.g. "smtp.addr"
	env    string // IDP_SMTP_ADDR
	desc   string
	secret bool  // never echo the value in messages
	index  []int // for reflect.Value.FieldByIndex
	typ    reflect.Type
}

var durationType = reflect.TypeFor[time.Duration]()

// leaves lists every leaf of Config in declaration order.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("yaml")
			if name == "" || !f.IsExported() {
				continue
			}
			key := prefix + name
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, key+".", idx)
				continue
			}
			out = append(out, leaf{
				key:    key,
				env:    EnvName(key),
				desc:   f.Tag.Get("desc"),
				secret: f.Tag.Get("secret") == "true",
				index:  idx,
				typ:    f.Type,
			})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// EnvName is the environment variable of a dotted key: "smtp.addr" →
// "IDP_SMTP_ADDR".
func EnvName(key string) string {
	return "IDP_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// parseInto sets v (a leaf) from its textual form, the same way for the YAML
// file's scalars and for environment variables. Lists are comma-separated.
func parseInto(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			if _, isInt := strconv.Atoi(strings.TrimSpace(s)); isInt == nil && s != "0" {
				return fmt.Errorf("is not a duration: give a unit, e.g. %q", s+"s")
			}
			return fmt.Errorf("is not a duration (e.g. 30s, 10m, 24h)")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("is not true or false")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("is not an integer")
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		// Only reachable if someone adds a field of a new type: the tests
		// load every leaf, so this shows up there.
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}

// format is the textual form of a leaf's value, as parseInto reads it.
func format(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return formatDuration(time.Duration(v.Int()))
	case v.Kind() == reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = v.Index(i).String()
		}
		return strings.Join(items, ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// formatDuration writes whole hours or minutes the way an operator would
// ("720h", not "720h0m0s"); anything else as time.Duration does ("1m30s").
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return d.String()
	}
}
