// Package settings is Petrel's typed settings model: the core namespaces
// (motd, host-containers, bootstrap-containers, updates, network, ntp,
// kernel, boot, aws, kubernetes, ecs) with kebab-case keys, a Validator that
// reports every unknown key, wrong type and bad value at once with the key's
// path, the variant defaults (layered TOML files) and storewolf, which loads
// those defaults into a datastore at boot. It also holds settings-committer.
//
// Every field is optional, as in upstream's model (each field is an Option),
// so a partial patch such as {"motd": "hi"} is valid on its own.
package settings
