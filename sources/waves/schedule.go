package waves

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Schedule is the waves of one update: the start of each wave, in
// increasing order of seed and of time. In manifest.json it is an object
// from the first seed (a decimal string) to the start time (RFC 3339).
type Schedule []Start

// Start is the first seed of a wave and the time the wave starts.
type Start struct {
	Seed uint32
	Time time.Time
}

// Check reports seeds above MaxSeed and seeds or times that do not
// increase; errors match ErrInvalid.
func (s Schedule) Check() error {
	var errs []error
	for i, w := range s {
		if w.Seed > MaxSeed {
			errs = append(errs, fmt.Errorf("%w: seed %d exceeds %d", ErrInvalid, w.Seed, MaxSeed))
		}
		if i == 0 {
			continue
		}
		if w.Seed <= s[i-1].Seed {
			errs = append(errs, fmt.Errorf("%w: seed %d follows seed %d", ErrInvalid, w.Seed, s[i-1].Seed))
		} else if !w.Time.After(s[i-1].Time) {
			errs = append(errs, fmt.Errorf("%w: seed %d starts at %s, not after seed %d (%s)", ErrInvalid,
				w.Seed, w.Time.Format(time.RFC3339), s[i-1].Seed, s[i-1].Time.Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}

// Position is where a seed falls in a schedule.
type Position struct {
	// Wave is the 1-based index of the wave the seed belongs to; 0 when
	// the schedule is empty (the update is ready for everyone).
	Wave int
	// Start and End are the times the wave starts and ends; End is zero
	// for the last wave, which has no end.
	Start, End time.Time
	// ReadyAt is when the update becomes ready for the seed; zero when
	// the schedule is empty.
	ReadyAt time.Time
}

// Position returns the wave of seed and when the update is ready for it.
// A seed below the first wave's first seed belongs to the first wave and
// is ready when it starts; in the last wave it is ready when the wave
// starts. In any other wave the ready times of its seeds are spread evenly
// from the wave's start to the next wave's start.
func (s Schedule) Position(seed uint32) Position {
	if len(s) == 0 {
		return Position{}
	}
	i, found := slices.BinarySearchFunc(s, seed, func(w Start, seed uint32) int {
		switch {
		case w.Seed < seed:
			return -1
		case w.Seed > seed:
			return 1
		}
		return 0
	})
	if !found {
		i-- // the last wave whose first seed is below seed
	}
	if i < 0 {
		return Position{Wave: 1, Start: s[0].Time, End: end(s, 0), ReadyAt: s[0].Time}
	}
	w := s[i]
	p := Position{Wave: i + 1, Start: w.Time, End: end(s, i), ReadyAt: w.Time}
	if i+1 < len(s) {
		next := s[i+1]
		p.ReadyAt = w.Time.Add(scale(next.Time.Sub(w.Time), int64(seed-w.Seed), int64(next.Seed-w.Seed)))
	}
	return p
}

func end(s Schedule, i int) time.Time {
	if i+1 < len(s) {
		return s[i+1].Time
	}
	return time.Time{}
}

// scale returns d*num/den without overflow for num < den.
func scale(d time.Duration, num, den int64) time.Duration {
	q, r := int64(d)/den, int64(d)%den
	return time.Duration(q*num + r*num/den)
}

// Ready reports whether the update is ready at now for the host with
// seed; always when the schedule is empty.
func (s Schedule) Ready(seed uint32, now time.Time) bool {
	p := s.Position(seed)
	return p.ReadyAt.IsZero() || !now.Before(p.ReadyAt)
}

// MarshalJSON writes the schedule as upstream does: {"0": "2024-…Z", …}.
func (s Schedule) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, w := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", strconv.FormatUint(uint64(w.Seed), 10), w.Time.UTC().Format(time.RFC3339Nano))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ParseSchedule parses the JSON object of a schedule strictly: keys are
// decimal seeds up to MaxSeed, each once; values are RFC 3339 times that
// increase with the seed. The result is sorted by seed. Errors name the key
// and match ErrInvalid.
func ParseSchedule(data []byte) (Schedule, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%w: expected an object of seed to start time", ErrInvalid)
	}
	var s Schedule
	var errs []error
	seen := map[uint32]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		key, _ := t.(string)
		var value any
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("%w: [%q]: %w", ErrInvalid, key, err)
		}
		seed, err := strconv.ParseUint(key, 10, 32)
		if err != nil || seed > MaxSeed || (len(key) > 1 && key[0] == '0') {
			errs = append(errs, fmt.Errorf("%w: [%q]: expected a seed from 0 to %d", ErrInvalid, key, MaxSeed))
			continue
		}
		if seen[uint32(seed)] {
			errs = append(errs, fmt.Errorf("%w: [%q]: seed given twice", ErrInvalid, key))
			continue
		}
		seen[uint32(seed)] = true
		str, ok := value.(string)
		at, err := time.Parse(time.RFC3339, str)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("%w: [%q]: expected an RFC 3339 time, got %s", ErrInvalid, key, brief(value)))
			continue
		}
		s = append(s, Start{Seed: uint32(seed), Time: at.UTC()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(s, func(a, b Start) int { return int(a.Seed) - int(b.Seed) })
	if err := s.Check(); err != nil {
		return nil, err
	}
	return s, nil
}

// UnmarshalJSON is ParseSchedule.
func (s *Schedule) UnmarshalJSON(data []byte) error {
	v, err := ParseSchedule(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// brief renders a JSON value for an error message, cut short.
func brief(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
