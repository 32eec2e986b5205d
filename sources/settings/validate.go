package settings

// Validator checks settings patches against the model. The zero value is
// ready to use and safe for concurrent use. It satisfies apiserver's
// Validator interface.
type Validator struct{}

// Validate checks settings, the nested object under "settings" (for
// example {"motd": "hi", "network": {"hostname": "x"}}). It returns nil or
// a *ValidationError listing every problem, each with its key path
// ("settings.network.hostname: expected a string, got number").
func (Validator) Validate(settings map[string]any) error {
	return Validate(settings)
}

// Validate is Validator.Validate as a function.
func Validate(settings map[string]any) error {
	var ps problems
	model().check(&ps, []string{"settings"}, settings)
	return ps.err()
}
