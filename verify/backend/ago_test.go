package backend

import (
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{776050 * time.Microsecond, "less than a second ago"},
		{0, "less than a second ago"},
		{1500 * time.Millisecond, "2s ago"},
		{4*time.Minute + 3*time.Second + 400*time.Millisecond, "4m3s ago"},
	} {
		if got := ago(tt.d); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
