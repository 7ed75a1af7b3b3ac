# Sourced (POSIX sh) by the Dockerfile's RUN steps that download packages: points pip at the
# build secrets that were given. They are mounted at /run/secrets/<id> for that RUN only and
# never become part of a layer; without them pip uses its defaults.
if [ -s /run/secrets/pip-ca ]; then
    export PIP_CERT=/run/secrets/pip-ca
fi
if [ -s /run/secrets/pip-conf ]; then
    export PIP_CONFIG_FILE=/run/secrets/pip-conf
fi
