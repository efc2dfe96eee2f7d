// Package shape checks the shapes of AWS identifiers (role names, regions,
// instance and image IDs, ARNs) without regular expressions.
//
// They were regular expressions: compiled, each stays on the heap for the
// life of the process, where every garbage collection marks it again, and
// compiling them on each use left about 140 KiB of garbage at start, all
// of it resident in an idle imdsd. shape_test.go checks every function
// against the expression it replaces, on a table and by fuzzing.
package shape

import "strings"

// RoleName: ^[\w+=,.@-]+$ (IAM role name characters; the caller checks
// the length).
func RoleName(s string) bool { return s != "" && all(s, isNameByte) }

// Plain: ^[A-Za-z0-9._-]+$.
func Plain(s string) bool {
	return s != "" && all(s, func(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' })
}

// Region: ^[a-z]{2}(-[a-z]+)+-[0-9]+$, such as us-east-1 or us-gov-west-1.
func Region(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts[0]) != 2 || !all(parts[0], isLower) {
		return false
	}
	for _, p := range parts[1 : len(parts)-1] {
		if p == "" || !all(p, isLower) {
			return false
		}
	}
	last := parts[len(parts)-1]
	return last != "" && all(last, isDigit)
}

// AccountID: ^[0-9]{12}$.
func AccountID(s string) bool { return len(s) == 12 && all(s, isDigit) }

// InstanceID: ^i-([0-9a-f]{8}|[0-9a-f]{17})$.
func InstanceID(s string) bool {
	rest, ok := strings.CutPrefix(s, "i-")
	return ok && (len(rest) == 8 || len(rest) == 17) && all(rest, isLowerHex)
}

// ImageID: ^ami-[0-9a-f]{8,17}$.
func ImageID(s string) bool {
	rest, ok := strings.CutPrefix(s, "ami-")
	return ok && len(rest) >= 8 && len(rest) <= 17 && all(rest, isLowerHex)
}

// AvailabilityZoneID: ^[a-z0-9]+-az[0-9]+$, such as use1-az4.
func AvailabilityZoneID(s string) bool {
	head, tail, ok := strings.Cut(s, "-az")
	return ok && head != "" && all(head, func(c byte) bool { return isLower(c) || isDigit(c) }) &&
		tail != "" && all(tail, isDigit)
}

// MAC: ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$.
func MAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := range len(s) {
		if i%3 == 2 {
			if s[i] != ':' {
				return false
			}
		} else if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

// IAMARN checks s against
//
//	^arn:aws(?:-[a-z]+)*:iam::\d{12}:TYPE/(?:[\x21-\x7e]+/)?([\w+=,.@-]+)$
//
// for TYPE role (withPath), or without the path part for TYPE
// saml-provider, and returns the name (the last group).
func IAMARN(s, typ string, withPath bool) (name string, ok bool) {
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return "", false
	}
	partition, rest, ok := strings.Cut(rest, ":")
	if !ok || !awsPartition(partition) {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, "iam::")
	if !ok || len(rest) < 13 || !AccountID(rest[:12]) || rest[12] != ':' {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest[13:], typ+"/")
	if !ok {
		return "", false
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		path := rest[:i]
		if !withPath || path == "" || !all(path, func(c byte) bool { return c >= 0x21 && c <= 0x7e }) {
			return "", false
		}
		rest = rest[i+1:]
	}
	if !RoleName(rest) {
		return "", false
	}
	return rest, true
}

// awsPartition: aws(?:-[a-z]+)*.
func awsPartition(s string) bool {
	rest, ok := strings.CutPrefix(s, "aws")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	if rest, ok = strings.CutPrefix(rest, "-"); !ok {
		return false
	}
	for p := range strings.SplitSeq(rest, "-") {
		if p == "" || !all(p, isLower) {
			return false
		}
	}
	return true
}

func all(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isLower(c byte) bool    { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool    { return isLower(c) || c >= 'A' && c <= 'Z' || isDigit(c) }
func isLowerHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' }

// isNameByte is \w or one of +=,.@-.
func isNameByte(c byte) bool {
	return isAlnum(c) || c == '_' || strings.IndexByte("+=,.@-", c) >= 0
}
