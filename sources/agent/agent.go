// Package agent runs Petrel's host agents from one binary. The image ships
// a single program, /usr/bin/petrel, and links named after each agent
// (/usr/bin/apiserver → petrel, ...): the agents share almost all of their
// code, so one binary keeps the root filesystem small and is read from the
// verity device once per boot instead of once per agent.
//
// Main picks the agent by the name the program was invoked as, or, when
// invoked as "petrel", by its first argument ("petrel apiclient get").
package agent

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/generator"
	"github.com/petrel-os/petrel/sources/hostctr"
	"github.com/petrel-os/petrel/sources/migration"
	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/partflip"
	"github.com/petrel-os/petrel/sources/pluto"
	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/sources/render"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/updater"
	"github.com/petrel-os/petrel/sources/userdata"
)

// Program is the name of the multi-call binary.
const Program = "petrel"

// MainFunc is the entry point of one agent: it gets the arguments after
// the program name and returns the exit code.
type MainFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Agents maps each agent's command name to its entry point. The image
// build links /usr/bin/<name> to the multi-call binary for every name.
func Agents() map[string]MainFunc {
	agents := map[string]MainFunc{
		"apiclient":          apiclient.Main,
		"apiserver":          apiserver.Main,
		"early-boot-config":  userdata.Main,
		"host-ctr":           hostctr.Main,
		"migrator":           migration.Main,
		"partflip":           partflip.Main,
		"petrel-ready":       ready.Main,
		"pluto":              pluto.Main,
		"settings-committer": settings.CommitterMain,
		"storewolf":          settings.StorewolfMain,
		"updater":            updater.Main,
	}
	// settings-applier runs the restart commands that name an agent of
	// this binary (its own subcommands, host-ctr configure) in its process;
	// sundog runs the setting generators that name one (sundog
	// generate-seed) in its process too.
	programs := multicall.Programs(func(name string) (multicall.Program, bool) {
		run, ok := agents[name]
		return multicall.Program(run), ok
	})
	agents["settings-applier"] = MainFunc(render.MainIn(programs))
	agents["sundog"] = MainFunc(generator.MainIn(programs))
	return agents
}

// Names returns the agents' command names, sorted.
func Names() []string {
	var names []string
	for n := range Agents() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Main runs the agent named by filepath.Base(args[0]), or by args[1] when
// args[0] names the multi-call binary itself. It returns the agent's exit
// code; 2 for an unknown name or missing arguments.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: no program name in the arguments\n", Program)
		return 2
	}
	name, rest := filepath.Base(args[0]), args[1:]
	if name == Program {
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help" {
			fmt.Fprintf(stderr, "usage: %s AGENT [ARGS...], or invoke it through a link named after the agent\nagents: %s\n",
				Program, strings.Join(Names(), ", "))
			if len(rest) == 0 {
				return 2
			}
			return 0
		}
		name, rest = rest[0], rest[1:]
	}
	run, ok := Agents()[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown agent %q; agents: %s\n", Program, name, strings.Join(Names(), ", "))
		return 2
	}
	return run(ctx, rest, stdout, stderr)
}
