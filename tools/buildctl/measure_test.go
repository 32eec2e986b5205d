package buildctl

import (
	"testing"
	"time"
)

func TestMedianFigures(t *testing.T) {
	s := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	for _, tc := range []struct {
		name string
		runs []bootFigures
		want bootFigures
	}{
		{"one", []bootFigures{{s(10), s(20)}}, bootFigures{s(10), s(20)}},
		{"each figure on its own", []bootFigures{{s(12), s(40)}, {s(10), s(26)}, {s(11), s(25)}}, bootFigures{s(11), s(26)}},
		{"even count takes the upper median", []bootFigures{{s(1), s(4)}, {s(2), s(3)}}, bootFigures{s(2), s(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianFigures(tc.runs); got != tc.want {
				t.Errorf("medianFigures = %+v, want %+v", got, tc.want)
			}
		})
	}
}
