package config

import "reflect"

// Entry documents one configuration key.
type Entry struct {
	Key         string // dotted YAML key
	Env         string // environment variable
	Default     string // as it would be written in the file or the environment
	Description string
}

// Reference lists every key in declaration order, with its environment
// variable, default and description: the source of the README's table and of
// `idp config` help.
func Reference() []Entry {
	def := reflect.ValueOf(Default())
	ls := leaves()
	out := make([]Entry, len(ls))
	for i, l := range ls {
		out[i] = Entry{
			Key:         l.key,
			Env:         l.env,
			Default:     format(def.FieldByIndex(l.index)),
			Description: l.desc,
		}
	}
	return out
}
