package rotator

import "testing"

func TestIdentity(t *testing.T) {
	tests := []struct{ principal, account, role string }{
		{"arn:aws:sts::123456789012:assumed-role/app/imdsd-alice@host", "123456789012", "arn:aws:iam::123456789012:role/app"},
		{"arn:aws-us-gov:sts::123456789012:assumed-role/app/s", "123456789012", "arn:aws-us-gov:iam::123456789012:role/app"},
		{"arn:aws:sts::123456789012:federated-user/build", "123456789012", "arn:aws:sts::123456789012:federated-user/build"},
		{"arn:aws:iam::123456789012:user/alice", "123456789012", "arn:aws:iam::123456789012:user/alice"},
		{"arn:aws:iam::123456789012:assumed-role/app/s", "123456789012", "arn:aws:iam::123456789012:assumed-role/app/s"},
		{"not-an-arn", "", "not-an-arn"},
		{"", "", ""},
	}
	for _, tc := range tests {
		account, role := identity(tc.principal)
		if account != tc.account || role != tc.role {
			t.Errorf("identity(%q) = %q, %q, want %q, %q", tc.principal, account, role, tc.account, tc.role)
		}
	}
}
