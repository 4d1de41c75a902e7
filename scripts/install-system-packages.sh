#!/usr/bin/env bash
# Installs the Debian packages doorward's build and test suite need, when
# they are missing (fast when they are all there):
#   build: libxmlsec1 and libxml2 headers, pkg-config and libclang (samael's
#          XML-DSig bindings), libssl (openssl, which samael links)
#   tests: xmlsec1 (the SAML test IdP signs with it), postgresql (the
#          server binaries: tests/common/postgres.rs starts its own server
#          on loopback; the package's default cluster is not created),
#          chromium and chromium-driver (the browser test drives them),
#          nginx-light (the soak test's upstream; its service is not started)
#   demo and tests: Node.js and npm (the OpenID test IdP), Python 3 with venv
#          (the SAML IdP, the demo app, the verifiers), when not on PATH
# Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(pkg-config libxml2-dev libxmlsec1-dev libxmlsec1-openssl libssl-dev libclang-dev xmlsec1 postgresql
          chromium chromium-driver nginx-light)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Tools that may come from elsewhere than Debian (a Node.js distribution
# bundles npm): asked for by command, installed from Debian when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]} (from Debian, with apt-get)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' | $sudo tee /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf >/dev/null
# Packages with a service (nginx) must not start it: tests start their own.
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  policy_added=1
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
