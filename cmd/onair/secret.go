package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// secret is a credential: the auth secret, a password, a DSN that may hold
// one. Help, error messages and logs land in terminals, CI logs and support
// tickets, so a secret prints as "(set)" (or "" when empty) whatever the
// verb, in a %+v of a config and as a slog value; reveal is the one way to
// read it, at the call that authenticates.
type secret string

// String is what flag and fmt show: never the value.
func (s secret) String() string {
	if s == "" {
		return ""
	}
	return "(set)"
}

// Format keeps every verb on String: without it, a verb that does not fit
// a string (%d) would make fmt print the raw value in its error.
func (s secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue keeps the value out of logs.
func (s secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Set makes *secret a flag.Value.
func (s *secret) Set(v string) error { *s = secret(v); return nil }

func (s secret) reveal() string { return string(s) }

// secretVar registers a secret flag on fs. ONAIR_<NAME>, when set, is its
// value, and the usage names the variable instead of showing a default;
// c.redact masks the value wherever it might be printed. Every flag that
// holds a credential (a future --postgres-dsn too) is registered here.
func (c *config) secretVar(fs *flag.FlagSet, p *secret, name, usage string) {
	*p = "" // flag takes the default it shows from the value at registration
	if env(name, "") != "" {
		usage += " (from " + envName(name) + ")"
	}
	fs.Var(p, name, usage)
	*p = secret(env(name, ""))
	c.secrets = append(c.secrets, p)
}

// redact masks, in s, the value of every secret flag of c and the password
// of every DSN (see redactDSN): for messages built from what a dependency
// or the operator said, which may quote an address or a credential.
func (c *config) redact(s string) string {
	for _, p := range c.secrets {
		if v := p.reveal(); v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return redactDSN(s)
}

// redactErr is err with c.redact applied to its message; errors.Is and As
// still see err.
func (c *config) redactErr(err error) error {
	if err == nil {
		return nil
	}
	if m := c.redact(err.Error()); m != err.Error() {
		return redactedError{msg: m, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

var (
	// scheme://user:password@host: the password is everything between the
	// user's colon and the last @ of the word (an unescaped @ in a
	// password masks a little more, never less).
	dsnUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):\S*@`)
	// password=... in keyword DSNs (PostgreSQL's "host=h password=p") and
	// query strings (?password=p&...), quoted or not.
	dsnPassword = regexp.MustCompile(`(?i)\b(password|passwd|pwd)=('(?:[^'\\]|\\.)*'|[^\s&;,]*)`)
)

// redactDSN masks the password of every DSN or URL in s:
// "postgres://onair:pw@db/onair" → "postgres://onair:***@db/onair",
// "host=db password=pw" → "host=db password=***".
func redactDSN(s string) string {
	if strings.Contains(s, "://") {
		s = dsnUserinfo.ReplaceAllString(s, "$1:***@")
	}
	if strings.Contains(s, "=") {
		s = dsnPassword.ReplaceAllString(s, "$1=***")
	}
	return s
}

// redactAddrs is addrs joined with commas, each with its password masked
// (one by one: a userinfo may hold a comma): for messages that name where
// a dependency was looked for.
func redactAddrs(addrs ...string) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = redactDSN(a)
	}
	return strings.Join(out, ",")
}

// redactAttr is the loggers' ReplaceAttr: slog has resolved LogValuers
// already, so what is left to mask is text that quotes a secret.
func (c *config) redactAttr(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch a.Value.Kind() {
	case slog.KindString:
		s = a.Value.String()
	case slog.KindAny:
		s = fmt.Sprint(a.Value.Any())
	default:
		return a
	}
	if r := c.redact(s); r != s {
		a.Value = slog.StringValue(r)
	}
	return a
}

// redisLog hands go-redis's own log lines to a node's logger, which masks
// secrets: its connection pool logs every failed dial with the address it
// tried, and an address can quote a password.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// previousSecrets splits --auth-previous-secrets.
func (c *config) previousSecrets() [][]byte {
	var out [][]byte
	for _, s := range split(c.AuthPrevious.reveal()) {
		out = append(out, []byte(s))
	}
	return out
}
