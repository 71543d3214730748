#!/bin/sh
# Entry point of the ICoT Voice image: `icot serve`, configured by ICOT_* environment variables.
#
#   (no arguments)         icot serve            every setting from ICOT_<FIELD> (server/settings.py)
#   --slots 8 ...          icot serve --slots 8  flags win over variables
#   icot train ...         that command as given (the training example runs `icot train`)
#
# In a container the server must listen on every interface, so ICOT_HOST defaults to 0.0.0.0
# here (the server's own default is loopback). ICOT_API_KEY_FILE names a file holding the API
# key (a Docker or Kubernetes secret); it fills ICOT_API_KEY when that is not set.
set -eu

: "${ICOT_HOST:=0.0.0.0}"
export ICOT_HOST

if [ -n "${ICOT_API_KEY_FILE:-}" ] && [ -z "${ICOT_API_KEY:-}" ]; then
    if [ ! -r "$ICOT_API_KEY_FILE" ]; then
        echo "entrypoint: ICOT_API_KEY_FILE=$ICOT_API_KEY_FILE is not a readable file" >&2
        exit 2
    fi
    ICOT_API_KEY=$(cat "$ICOT_API_KEY_FILE")
    export ICOT_API_KEY
fi

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- icot serve "$@"
fi
exec "$@"
