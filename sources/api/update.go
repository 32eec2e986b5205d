package api

import "time"

// UpdateState is the state of the update state machine (docs/api.md):
// Idle → Available (refresh found an update) → Staged (prepare wrote it
// to the inactive bank) → Ready (activate made that bank the next to
// boot), and back.
type UpdateState string

// The update states, spelled as upstream serves them.
const (
	UpdateIdle      UpdateState = "Idle"
	UpdateAvailable UpdateState = "Available"
	UpdateStaged    UpdateState = "Staged"
	UpdateReady     UpdateState = "Ready"
)

// UpdateCommand names an update action in most_recent_command.cmd_type.
type UpdateCommand string

// The update commands, each started by POST to its action path.
const (
	UpdateRefresh    UpdateCommand = "refresh"
	UpdatePrepare    UpdateCommand = "prepare"
	UpdateActivate   UpdateCommand = "activate"
	UpdateDeactivate UpdateCommand = "deactivate"
)

// UpdateCommands lists the update commands in the order of the state
// machine.
func UpdateCommands() []UpdateCommand {
	return []UpdateCommand{UpdateRefresh, UpdatePrepare, UpdateActivate, UpdateDeactivate}
}

// Path returns the action path that starts c.
func (c UpdateCommand) Path() string {
	switch c {
	case UpdateRefresh:
		return PathRefreshUpdates
	case UpdatePrepare:
		return PathPrepareUpdate
	case UpdateActivate:
		return PathActivateUpdate
	case UpdateDeactivate:
		return PathDeactivateUpdate
	}
	return ""
}

// CommandStatus is how a finished update command ended.
type CommandStatus string

// The command statuses, as upstream's.
const (
	CommandSuccess CommandStatus = "Success"
	CommandFailed  CommandStatus = "Failed"
)

// UpdateImage names an OS image: a release of a variant for an
// architecture.
type UpdateImage struct {
	Arch    string `json:"arch"`
	Version string `json:"version"`
	Variant string `json:"variant"`
}

// UpdatePartition is one bank as the status document shows it. Bank is
// Petrel's addition ("A" or "B").
type UpdatePartition struct {
	Image      *UpdateImage `json:"image"`
	NextToBoot bool         `json:"next_to_boot"`
	Bank       string       `json:"bank,omitempty"`
}

// CommandResult is the outcome of the most recent update command.
type CommandResult struct {
	CmdType    UpdateCommand `json:"cmd_type"`
	CmdStatus  CommandStatus `json:"cmd_status"`
	Timestamp  time.Time     `json:"timestamp"`
	ExitStatus int           `json:"exit_status"`
	Stderr     string        `json:"stderr"`
}

// RunningCommand is the update command running now (Petrel's addition to
// the status document: upstream answers 423 while a command runs).
type RunningCommand struct {
	CmdType UpdateCommand `json:"cmd_type"`
	Started time.Time     `json:"started"`
}

// UpdateStatus is the body of GET /updates/status. Field names are
// snake_case on the wire, as upstream serves them.
type UpdateStatus struct {
	UpdateState       UpdateState      `json:"update_state"`
	AvailableUpdates  []string         `json:"available_updates"`
	ChosenUpdate      *UpdateImage     `json:"chosen_update"`
	ActivePartition   *UpdatePartition `json:"active_partition"`
	StagingPartition  *UpdatePartition `json:"staging_partition"`
	MostRecentCommand *CommandResult   `json:"most_recent_command"`
	RunningCommand    *RunningCommand  `json:"running_command,omitempty"`
}
