package api

// Defaults shared by server and client.
const (
	// DefaultSocketPath is where apiserver listens.
	DefaultSocketPath = "/run/api.sock"
	// DefaultTransaction is used when a request names no transaction.
	DefaultTransaction = "default"
	// LaunchTransaction collects boot-time settings until settings-committer
	// commits it.
	LaunchTransaction = "petrel-launch"
	// MaxBodyBytes is the largest request body apiserver accepts (413 above).
	MaxBodyBytes = 1 << 20
)

// Route paths.
const (
	PathRoot               = "/"
	PathSettings           = "/settings"
	PathSettingsKeyPair    = "/settings/keypair"
	PathTx                 = "/tx"
	PathTxList             = "/tx/list"
	PathTxCommit           = "/tx/commit"
	PathTxApply            = "/tx/apply"
	PathTxCommitAndApply   = "/tx/commit_and_apply"
	PathAffectedServices   = "/metadata/affected-services"
	PathSettingGenerators  = "/metadata/setting-generators"
	PathTemplates          = "/metadata/templates"
	PathServices           = "/services"
	PathConfigurationFiles = "/configuration-files"
	PathOS                 = "/os"
	PathReboot             = "/actions/reboot"
	PathUpdateStatus       = "/updates/status"
	PathRefreshUpdates     = "/actions/refresh-updates"
	PathPrepareUpdate      = "/actions/prepare-update"
	PathActivateUpdate     = "/actions/activate-update"
	PathDeactivateUpdate   = "/actions/deactivate-update"
)

// Query parameter names.
const (
	QueryTx     = "tx"
	QueryKeys   = "keys"
	QueryPrefix = "prefix"
	QueryNames  = "names"
)

// KeyPairRequest is the body of PATCH /settings/keypair.
type KeyPairRequest struct {
	RequestPayload []string `json:"request_payload"`
}

// OSRelease is the body of GET /os. Field names are snake_case on the wire,
// as upstream serves them.
type OSRelease struct {
	PrettyName string `json:"pretty_name"`
	VariantID  string `json:"variant_id"`
	VersionID  string `json:"version_id"`
	BuildID    string `json:"build_id"`
	Arch       string `json:"arch"`
}
