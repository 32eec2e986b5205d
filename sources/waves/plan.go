package waves

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxSeed bounds the seeds: a host's seed is in [0, MaxSeed). Upstream's
// value; hosts and manifests must agree on it.
const MaxSeed = 2048

// ErrInvalid marks a plan or schedule that breaks the rules of the format.
var ErrInvalid = errors.New("invalid wave plan")

// Plan is a wave plan: the steps by which an update reaches the fleet.
type Plan struct {
	Waves []Wave
}

// Wave is one step of a plan: from StartAfter on, hosts up to Percent of
// the fleet may update.
type Wave struct {
	// StartAfter is the wave's start, relative to the release's start
	// time (After) or absolute (At, when not zero).
	After time.Duration
	At    time.Time
	// Percent is the share of the fleet (1..100) that the update reaches
	// with this wave, counting the waves before it.
	Percent int
}

// planFile is the TOML form, in upstream's key names.
type planFile struct {
	Waves []struct {
		StartAfter      *string `toml:"start_after"`
		FleetPercentage *int    `toml:"fleet_percentage"`
	} `toml:"waves"`
}

// DefaultPlan returns upstream's default plan: over six days, 1 % of the
// fleet after an hour, then 5 %, 15 %, 40 %, 60 %, 90 % and 100 %.
func DefaultPlan() *Plan {
	return &Plan{Waves: []Wave{
		{After: time.Hour, Percent: 1},
		{After: 4 * time.Hour, Percent: 5},
		{After: day, Percent: 15},
		{After: 2 * day, Percent: 40},
		{After: 4 * day, Percent: 60},
		{After: 5 * day, Percent: 90},
		{After: 6 * day, Percent: 100},
	}}
}

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// LoadPlan reads and checks the plan in the TOML file path.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read wave plan: %w", err)
	}
	return ParsePlan(path, data)
}

// ParsePlan parses a TOML wave plan. Errors name file and the wave, and
// report every problem at once; they match ErrInvalid.
func ParsePlan(file string, data []byte) (*Plan, error) {
	var f planFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrInvalid, file, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, file, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, file, fmt.Sprintf(format, args...)))
	}
	for _, k := range md.Undecoded() {
		bad("%s: unknown key", k)
	}
	if len(f.Waves) == 0 {
		bad("waves: expected at least one [[waves]] table")
	}
	p := &Plan{}
	for i, w := range f.Waves {
		var wave Wave
		switch {
		case w.StartAfter == nil:
			bad("waves[%d].start_after: missing", i)
		default:
			if at, err := time.Parse(time.RFC3339, *w.StartAfter); err == nil {
				wave.At = at.UTC()
			} else if d, err := ParseDuration(*w.StartAfter); err == nil {
				wave.After = d
			} else {
				bad("waves[%d].start_after: %q: expected an RFC 3339 time or a duration such as \"4 hours\"", i, *w.StartAfter)
			}
		}
		switch {
		case w.FleetPercentage == nil:
			bad("waves[%d].fleet_percentage: missing", i)
		case *w.FleetPercentage < 1 || *w.FleetPercentage > 100:
			bad("waves[%d].fleet_percentage: expected 1 to 100, got %d", i, *w.FleetPercentage)
		default:
			wave.Percent = *w.FleetPercentage
		}
		p.Waves = append(p.Waves, wave)
	}
	if len(errs) == 0 {
		if err := p.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// check reports percentages that do not rise to 100 and relative starts
// that do not increase.
func (p *Plan) check() error {
	var errs []error
	for i, w := range p.Waves {
		if w.Percent < 1 || w.Percent > 100 {
			errs = append(errs, fmt.Errorf("%w: waves[%d].fleet_percentage: expected 1 to 100, got %d", ErrInvalid, i, w.Percent))
		}
		if i == 0 {
			continue
		}
		prev := p.Waves[i-1]
		if w.Percent <= prev.Percent {
			errs = append(errs, fmt.Errorf("%w: waves[%d].fleet_percentage: %d does not exceed the previous wave's %d", ErrInvalid, i, w.Percent, prev.Percent))
		}
		if w.At.IsZero() && prev.At.IsZero() && w.After <= prev.After {
			errs = append(errs, fmt.Errorf("%w: waves[%d].start_after: %s is not after the previous wave's %s", ErrInvalid, i, w.After, prev.After))
		}
	}
	if n := len(p.Waves); n > 0 && p.Waves[n-1].Percent != 100 {
		errs = append(errs, fmt.Errorf("%w: waves[%d].fleet_percentage: the last wave must reach 100 (every host gets the update), got %d", ErrInvalid, n-1, p.Waves[n-1].Percent))
	}
	return errors.Join(errs...)
}

// FirstSeed returns the first seed after the share percent of the fleet:
// percent * MaxSeed / 100, rounded down (upstream's arithmetic).
func FirstSeed(percent int) uint32 { return uint32(percent * MaxSeed / 100) }

// Schedule turns the plan into absolute start times for a release that
// starts at start: wave i begins at seed FirstSeed of wave i-1's
// percentage (0 for the first wave).
func (p *Plan) Schedule(start time.Time) (Schedule, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var s Schedule
	seed := uint32(0)
	for i, w := range p.Waves {
		at := w.At
		if at.IsZero() {
			at = start.Add(w.After)
		}
		at = at.UTC().Truncate(time.Second)
		if i > 0 && !at.After(s[i-1].Time) {
			return nil, fmt.Errorf("%w: waves[%d] starts at %s, not after the previous wave (%s)", ErrInvalid, i, at.Format(time.RFC3339), s[i-1].Time.Format(time.RFC3339))
		}
		s = append(s, Start{Seed: seed, Time: at})
		seed = FirstSeed(w.Percent)
	}
	return s, nil
}

// ParseDuration parses the durations of wave plans and expiry policies:
// "[in] N unit", unit one of second, minute, hour, day, week, singular or
// plural ("1 hour", "in 2 weeks", "30 minutes").
func ParseDuration(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 3 && f[0] == "in" {
		f = f[1:]
	}
	if len(f) != 2 {
		return 0, fmt.Errorf("duration %q: expected \"N unit\" such as \"2 weeks\"", s)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("duration %q: count %q is not a whole number", s, f[0])
	}
	units := map[string]time.Duration{
		"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": day, "week": week,
	}
	unit, ok := units[strings.TrimSuffix(f[1], "s")]
	if !ok {
		return 0, fmt.Errorf("duration %q: unknown unit %q (expected seconds, minutes, hours, days or weeks)", s, f[1])
	}
	if n > uint64((1<<63-1)/unit) {
		return 0, fmt.Errorf("duration %q: too long", s)
	}
	return time.Duration(n) * unit, nil
}
