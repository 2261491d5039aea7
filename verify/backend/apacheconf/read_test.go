package apacheconf

import (
	"strings"
	"testing"
)

// An Include of /dev/zero is refused with a reason instead of read without end.
func TestIncludeIsBounded(t *testing.T) {
	_, err := Parse("/nonexistent/apache2.conf", "Include /dev/zero\n", nil)
	if err == nil || !strings.Contains(err.Error(), "/dev/zero is not a regular file") {
		t.Errorf("Include /dev/zero: %v, want a refusal", err)
	}
}
