package main

import (
	"net/url"
	"strings"
)

// redacted stands in for a secret in anything printed.
const redacted = "REDACTED"

// redactURL is a store URL or DSN fit for a log line or an error
// message: the password of its user info and the value of every query
// parameter whose name looks secret (secretParam) are replaced by
// REDACTED; the scheme, user, host, path and other parameters stay, so
// the reader still sees which store is meant. A string that is not a
// URL, or whose '@' are not just the one ending the user info (an
// unescaped '@' in a password, say), shows only its scheme: when unsure
// what is secret, print nothing.
//
// Every place that prints --blob, --index or --public-url goes through
// it (the start-up log, errors, the usage text of flags).
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(s, "://")
	u, err := url.Parse(s)
	if !ok || err != nil || strings.Count(rest, "@") > boolInt(u.User != nil) {
		if !ok {
			return redacted
		}
		return scheme + "://" + redacted
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	u.RawQuery = redactQuery(u.RawQuery)
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	return u.String()
}

// secretsOf lists the secret values in s as redactURL sees them, raw and
// decoded, for scrubSecrets. When redactURL would print nothing of s,
// the whole of it after the scheme counts as secret.
func secretsOf(s string) []string {
	scheme, rest, ok := strings.Cut(s, "://")
	u, err := url.Parse(s)
	if !ok || err != nil || strings.Count(rest, "@") > boolInt(u.User != nil) {
		if !ok {
			return []string{s}
		}
		return []string{rest, scheme + "://" + rest}
	}
	var out []string
	add := func(raw string) {
		if raw == "" {
			return
		}
		out = append(out, raw)
		if dec, err := url.QueryUnescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
		if dec, err := url.PathUnescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
	}
	if pw, ok := u.User.Password(); ok {
		add(pw)
		add(url.QueryEscape(pw))
	}
	for kv := range strings.SplitSeq(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if secretParam(k) {
			add(v)
		}
	}
	if u.Fragment != "" {
		add(u.Fragment)
	}
	return out
}

// redactQuery keeps the order and spelling of a raw query and replaces
// the values of secret parameters.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, kv := range parts {
		if k, _, ok := strings.Cut(kv, "="); ok && secretParam(k) {
			parts[i] = k + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// secretParam reports a query parameter name that may carry a secret:
// password, sslpassword, secret, sse_c_key, sse_kms_key_id, token,
// X-Amz-Credential, X-Amz-Signature, api_key, auth…
func secretParam(rawName string) bool {
	name, err := url.QueryUnescape(rawName)
	if err != nil {
		return true
	}
	name = strings.ToLower(name)
	for _, w := range []string{"pass", "pwd", "secret", "key", "token", "credential", "signature", "auth"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scrubSecrets returns err with every secret of rawURL (secretsOf)
// replaced in its message: a backend's error may quote the URL or a part
// of it. errors.Is and errors.As still see err.
func scrubSecrets(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secretsOf(rawURL) {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// secretURL is a flag.Value for a URL flag whose default (from the
// environment) may hold a secret: the usage text prints it redacted.
type secretURL struct{ p *string }

func (v secretURL) String() string {
	if v.p == nil {
		return ""
	}
	return redactURL(*v.p)
}

func (v secretURL) Set(s string) error {
	*v.p = s
	return nil
}
