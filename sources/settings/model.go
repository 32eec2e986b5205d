package settings

import "math"

// model is the schema of the object under "settings". It is built by a
// function, not kept in a package variable, so it cannot be mutated.
func model() object {
	var (
		text       = str{}
		name       = str{valid: nonEmpty}
		urlS       = str{valid: urlProblem}
		b64        = str{valid: base64Problem}
		boolS      = boolean{}
		u32        = integer{min: 0, max: math.MaxUint32}
		stringList = list{elem: text}
	)
	return object{
		"motd": str{},
		"host-containers": mapOf{key: containerNameProblem, elem: object{
			"enabled":      boolS,
			"superpowered": boolS,
			"source":       str{valid: containerSourceProblem},
			"user-data":    b64,
		}},
		"bootstrap-containers": mapOf{key: containerNameProblem, elem: object{
			"source":    str{valid: containerSourceProblem},
			"mode":      str{valid: oneOf("off", "once", "always")},
			"essential": boolS,
			"user-data": b64,
		}},
		"updates": object{
			"metadata-base-url": urlS,
			"targets-base-url":  urlS,
			"seed":              integer{min: 0, max: 2047},
			"version-lock":      str{valid: versionLockProblem},
			"ignore-waves":      boolS,
		},
		"network": object{
			"hostname":    str{valid: hostnameProblem},
			"https-proxy": str{valid: proxyProblem},
			"no-proxy":    list{elem: str{valid: noProxyProblem}},
			"hosts":       list{elem: hostEntry{}},
		},
		"ntp": object{
			"time-servers": list{elem: str{valid: timeServerProblem}},
		},
		"kernel": object{
			"sysctl":   mapOf{key: sysctlKeyProblem, elem: text},
			"lockdown": str{valid: oneOf("none", "integrity", "confidentiality")},
			"modules":  mapOf{key: moduleNameProblem, elem: object{"allowed": boolS, "autoload": boolS}},
		},
		"boot": object{
			"kernel-parameters":   mapOf{key: paramNameProblem, elem: stringList},
			"init-parameters":     mapOf{key: paramNameProblem, elem: stringList},
			"reboot-to-reconcile": boolS,
		},
		"aws": object{
			"region":      str{valid: regionProblem},
			"profile":     name,
			"config":      b64,
			"credentials": b64,
		},
		"kubernetes":         kubernetesModel(),
		"dns":                dnsModel(),
		"container-registry": containerRegistryModel(),
		"container-runtime":  containerRuntimeModel(),
		"ecs": object{
			"cluster":                       name,
			"instance-attributes":           mapOf{key: paramNameProblem, elem: text},
			"allow-privileged-containers":   boolS,
			"logging-drivers":               list{elem: name},
			"loglevel":                      str{valid: oneOf("debug", "info", "warn", "error", "crit")},
			"enable-spot-instance-draining": boolS,
			"image-pull-behavior":           str{valid: oneOf("default", "always", "once", "prefer-cached")},
			"container-stop-timeout":        str{valid: durationProblem},
			"task-cleanup-wait":             str{valid: durationProblem},
			"metadata-service-rps":          u32,
			"metadata-service-burst":        u32,
			"reserved-memory":               u32,
			"awsvpc-block-imds":             boolS,
			"enable-container-metadata":     boolS,
		},
	}
}
