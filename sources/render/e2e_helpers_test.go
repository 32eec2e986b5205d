package render_test

import (
	"errors"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
)

func asStatus(err error, se **apiclient.StatusError) bool { return errors.As(err, se) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
