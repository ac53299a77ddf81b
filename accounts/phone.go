package accounts

import (
	"strings"

	"github.com/onair/onair/internal/refusal"
)

// NormalizePhone returns phone in E.164 ("+8613800000000") or a refusal
// naming "phone". Accepted: "+" and 7 to 15 digits, the first not 0
// (spaces and dashes between digits are dropped); and, without "+", an
// 11-digit number starting with 1, which is a mainland China mobile
// number and gets +86 (onair's first market; a number of another country
// must be given with its "+"). Under +86 only 11-digit mobile numbers
// starting with 1 sign in (SMS goes to mobiles).
func NormalizePhone(phone string) (string, *refusal.Error) {
	d := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(phone))
	if d == "" {
		return "", refusal.Invalidf("phone", "phone is required: +<country code><number> (E.164)")
	}
	plus := strings.HasPrefix(d, "+")
	d = strings.TrimPrefix(d, "+")
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", refusal.Invalidf("phone", "phone must be digits, optionally after +")
		}
	}
	if !plus {
		if len(d) != 11 || d[0] != '1' {
			return "", refusal.Invalidf("phone", "phone must be +<country code><number> (E.164), or an 11-digit mainland China mobile number starting with 1")
		}
		d = "86" + d
	}
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", refusal.Invalidf("phone", "phone must be + and 7 to 15 digits, not starting with 0 (E.164)")
	}
	if strings.HasPrefix(d, "86") && (len(d) != 13 || d[2] != '1') {
		return "", refusal.Invalidf("phone", "a +86 phone must be an 11-digit mobile number starting with 1")
	}
	return "+" + d, nil
}

// maskPhone is what a log may say of a phone: its country part and last
// two digits ("+86*********00"), enough to tell a developer which of their
// test phones it was, not enough to name anyone.
func maskPhone(e164 string) string {
	if len(e164) < 6 {
		return "+***"
	}
	return e164[:3] + strings.Repeat("*", len(e164)-5) + e164[len(e164)-2:]
}
