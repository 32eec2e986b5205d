package waves

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"1 hour", time.Hour, ""},
		{"4 hours", 4 * time.Hour, ""},
		{"in 2 weeks", 14 * 24 * time.Hour, ""},
		{"30 minutes", 30 * time.Minute, ""},
		{"90 seconds", 90 * time.Second, ""},
		{"0 days", 0, ""},
		{"1 fortnight", 0, `unknown unit "fortnight"`},
		{"-1 day", 0, `count "-1" is not a whole number`},
		{"soon", 0, `expected "N unit"`},
		{"in in 1 day", 0, `expected "N unit"`},
		{"99999999999 weeks", 0, `count "99999999999" is not a whole number`},
		{"4000000 weeks", 0, "too long"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParsePlanDefaultFile(t *testing.T) {
	p, err := LoadPlan("testdata/default-waves.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, DefaultPlan()) {
		t.Fatalf("upstream's default-waves.toml = %+v, DefaultPlan = %+v", p, DefaultPlan())
	}
}

func TestParsePlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string
	}{
		{"empty", "", []string{"plan.toml: waves: expected at least one [[waves]] table"}},
		{"syntax", "[[waves]\n", []string{"plan.toml:2:"}},
		{"unknown key", "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 100\nspeed = 3\n",
			[]string{"plan.toml: waves.speed: unknown key"}},
		{"missing fields", "[[waves]]\n", []string{
			"plan.toml: waves[0].start_after: missing", "plan.toml: waves[0].fleet_percentage: missing"}},
		{"bad values", "[[waves]]\nstart_after = 'tomorrow'\nfleet_percentage = 101\n", []string{
			`plan.toml: waves[0].start_after: "tomorrow": expected an RFC 3339 time or a duration`,
			"plan.toml: waves[0].fleet_percentage: expected 1 to 100, got 101"}},
		{"not increasing", "[[waves]]\nstart_after = '2 hours'\nfleet_percentage = 50\n" +
			"[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 50\n", []string{
			"plan.toml: invalid wave plan: waves[1].fleet_percentage: 50 does not exceed the previous wave's 50",
			"waves[1].start_after: 1h0m0s is not after the previous wave's 2h0m0s",
			"waves[1].fleet_percentage: the last wave must reach 100 (every host gets the update), got 50"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan("plan.toml", []byte(tc.toml))
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePlan = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

// TestScheduleDefault checks the seeds and times upstream writes for its
// default plan.
func TestScheduleDefault(t *testing.T) {
	s, err := DefaultPlan().Schedule(t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{
		{0, t0.Add(time.Hour)}, {20, t0.Add(4 * time.Hour)}, {102, t0.Add(day)}, {307, t0.Add(2 * day)},
		{819, t0.Add(4 * day)}, {1228, t0.Add(5 * day)}, {1843, t0.Add(6 * day)},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("schedule = %v\nwant %v", s, want)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"0":"2025-03-01T13:00:00Z","20":"2025-03-01T16:00:00Z","102":"2025-03-02T12:00:00Z",` +
		`"307":"2025-03-03T12:00:00Z","819":"2025-03-05T12:00:00Z","1228":"2025-03-06T12:00:00Z","1843":"2025-03-07T12:00:00Z"}`
	if string(b) != wantJSON {
		t.Fatalf("JSON = %s\nwant %s", b, wantJSON)
	}
	back, err := ParseSchedule(b)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("ParseSchedule(MarshalJSON) = %v, %v", back, err)
	}
}

func TestScheduleAbsoluteStart(t *testing.T) {
	p, err := ParsePlan("p.toml", []byte("[[waves]]\nstart_after = '2025-03-01T00:00:00Z'\nfleet_percentage = 50\n"+
		"[[waves]]\nstart_after = '2 hours'\nfleet_percentage = 100\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Schedule(t0)
	if err != nil || s[0].Time != time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) || s[1] != (Start{1024, t0.Add(2 * time.Hour)}) {
		t.Fatalf("Schedule = %v, %v", s, err)
	}
	if _, err := p.Schedule(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)); err == nil || !strings.Contains(err.Error(), "waves[1] starts at 2025-02-01T02:00:00Z, not after the previous wave") {
		t.Fatalf("Schedule with the relative wave first = %v", err)
	}
}

// TestPositionSpreadsEvenly is the fix of upstream's flaw: within a wave,
// ready times are spread over the whole wave by the seed's position in the
// wave's seed range, not by its absolute value.
func TestPositionSpreadsEvenly(t *testing.T) {
	s, _ := DefaultPlan().Schedule(t0)
	for _, tc := range []struct {
		seed    uint32
		wave    int
		readyAt time.Time
	}{
		{0, 1, t0.Add(time.Hour)},
		{10, 1, t0.Add(time.Hour + 90*time.Minute)}, // half of the 3 hours of wave 1
		{19, 1, t0.Add(time.Hour + 3*time.Hour*19/20)},
		{20, 2, t0.Add(4 * time.Hour)},
		{819, 5, t0.Add(4 * day)},
		{1023, 5, t0.Add(4*day + day*204/409)}, // in the middle of wave 5, not at its end
		{1227, 5, t0.Add(4*day + day*408/409)},
		{1228, 6, t0.Add(5 * day)},
		{1843, 7, t0.Add(6 * day)}, // the last wave has no end: ready when it starts
		{2047, 7, t0.Add(6 * day)},
	} {
		p := s.Position(tc.seed)
		if p.Wave != tc.wave || !p.ReadyAt.Equal(tc.readyAt) {
			t.Errorf("Position(%d) = wave %d ready at %s; want wave %d at %s", tc.seed, p.Wave, p.ReadyAt, tc.wave, tc.readyAt)
		}
		if s.Ready(tc.seed, tc.readyAt.Add(-time.Second)) || !s.Ready(tc.seed, tc.readyAt) {
			t.Errorf("Ready(%d) does not turn true at %s", tc.seed, tc.readyAt)
		}
	}
	// Across wave 5, the ready times rise with the seed and half the
	// wave's hosts are ready by its middle.
	w5 := s.Position(819)
	mid := w5.Start.Add(w5.End.Sub(w5.Start) / 2)
	ready := 0
	for seed := uint32(819); seed < 1228; seed++ {
		if s.Ready(seed, mid) {
			ready++
		}
		if seed > 819 && !s.Position(seed).ReadyAt.After(s.Position(seed-1).ReadyAt) {
			t.Fatalf("seed %d is not ready after seed %d", seed, seed-1)
		}
	}
	if ready < 204 || ready > 206 {
		t.Errorf("%d of wave 5's 409 seeds ready at its middle, want about 205", ready)
	}
}

func TestPositionEdges(t *testing.T) {
	if p := (Schedule{}).Position(5); p != (Position{}) || !(Schedule{}).Ready(5, t0) {
		t.Errorf("empty schedule: Position = %+v", p)
	}
	// A schedule that does not start at seed 0: lower seeds wait for the
	// first wave.
	s := Schedule{{100, t0}, {200, t0.Add(time.Hour)}}
	if p := s.Position(5); p.Wave != 1 || !p.ReadyAt.Equal(t0) {
		t.Errorf("seed below the first wave: %+v", p)
	}
	// A long wave does not overflow the arithmetic.
	long := Schedule{{0, t0}, {2048, t0.Add(200 * 365 * day)}}
	if p := long.Position(2047); !p.ReadyAt.After(t0.Add(199 * 365 * day)) {
		t.Errorf("200-year wave: seed 2047 ready at %s", p.ReadyAt)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[]`, "expected an object"},
		{`{"x":"2025-03-01T00:00:00Z"}`, `["x"]: expected a seed from 0 to 2048`},
		{`{"2049":"2025-03-01T00:00:00Z"}`, `["2049"]: expected a seed`},
		{`{"01":"2025-03-01T00:00:00Z"}`, `["01"]: expected a seed`},
		{`{"0":"2025-03-01T00:00:00Z","0":"2025-03-02T00:00:00Z"}`, `["0"]: seed given twice`},
		{`{"0":5}`, `["0"]: expected an RFC 3339 time, got 5`},
		{`{"0":"2025-03-02T00:00:00Z","20":"2025-03-01T00:00:00Z"}`, "seed 20 starts at 2025-03-01T00:00:00Z, not after seed 0"},
		{`{"0":"2025-03-02T00:00:00Z"`, "invalid wave plan"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseSchedule([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSchedule(%s) = %v, want %q", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte(`{"0":"2025-03-01T13:00:00Z","20":"2025-03-01T16:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"2048":"2025-03-01T13:00:00+02:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchedule(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSchedule(b)
		if err != nil || len(back) != len(s) {
			t.Fatalf("round trip of %s: %v, %v", b, back, err)
		}
		for i := range s {
			if back[i].Seed != s[i].Seed || !back[i].Time.Equal(s[i].Time) {
				t.Fatalf("round trip of %s: %v != %v", b, back, s)
			}
		}
		for _, seed := range []uint32{0, 1, 1000, MaxSeed - 1} {
			s.Position(seed)
		}
	})
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 100\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan("fuzz.toml", data)
		if err != nil {
			return
		}
		if _, err := p.Schedule(t0); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Schedule: %v", err)
		}
	})
}
