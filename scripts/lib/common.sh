# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# scripts/lib/common.sh - what the run and test commands share: installing
# the Debian packages, building the tree, making keys and secrets.
#
#   hs_install_deps            apt-get install whatever is missing (root)
#   hs_build DIR [configure args...]   autoreconf/configure/make in DIR
#   hs_make_keys DIR [OWNER]   code secret, HS256 secret, RS256/ES256/EdDSA keys
#   hs_httpd_modules           prints httpd's module directory

HS_PACKAGES=(
    apache2 apache2-dev libjson-c-dev libaprutil1-dbd-pgsql libssl-dev
    libcurl4-openssl-dev libpq-dev postgresql libapache2-mod-perl2
    libwww-perl libjson-perl libcrypt-jwt-perl libdbd-pg-perl autoconf
    automake libtool pkg-config make gcc check openssl python3-aiosmtpd
    libidn2-dev libunistring-dev curl memcached libaprutil1-dbd-sqlite3
    clang-14 libclang-rt-14-dev
    python3-prometheus-client
    build-essential debhelper dpkg-dev lintian
    chromium chromium-driver python3-selenium
)

hs_log() { echo "==> $*" >&2; }
hs_die() { echo "error: $*" >&2; exit 1; }

hs_install_deps() {
    local missing=() p
    for p in "${HS_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || hs_die "missing packages (${missing[*]}); run as root to install them"
    hs_log "installing ${missing[*]}"
    # Debian's postgresql package would create and start a cluster on 5432
    # that nothing here uses.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" \
        >/etc/postgresql-common/createcluster.d/00-hydra-signup.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq || hs_die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        hs_die "apt-get install ${missing[*]} failed"
    # the system apache2 service is not ours: leave it stopped
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now apache2 >/dev/null 2>&1 || true
    fi
    service apache2 stop >/dev/null 2>&1 || true
}

hs_build() {
    local dir=$1
    shift
    (
        cd "$dir"
        if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
            autoreconf -fi >build-autoreconf.log 2>&1 ||
                { cat build-autoreconf.log >&2; hs_die "autoreconf failed"; }
        fi
        ./configure -q "$@" >build-configure.log 2>&1 ||
            { cat build-configure.log >&2; hs_die "configure failed (see above)"; }
        make -s -j"$(nproc)" >build-make.log 2>&1 ||
            { cat build-make.log >&2; hs_die "make failed (see above)"; }
    )
}

hs_make_keys() {
    local dir=$1 owner=${2:-}
    mkdir -p "$dir"
    [ -s "$dir/code.secret" ] || openssl rand -hex 32 >"$dir/code.secret"
    [ -s "$dir/jwt-hs256.key" ] || openssl rand -hex 32 >"$dir/jwt-hs256.key"
    [ -s "$dir/jwt-rs256.pem" ] ||
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/jwt-rs256.pem" 2>/dev/null
    [ -s "$dir/jwt-es256.pem" ] ||
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/jwt-es256.pem" 2>/dev/null
    [ -s "$dir/jwt-eddsa.pem" ] ||
        openssl genpkey -algorithm ED25519 -out "$dir/jwt-eddsa.pem" 2>/dev/null
    chmod 600 "$dir"/code.secret "$dir"/jwt-*
    if [ -n "$owner" ]; then
        chown "$owner" "$dir"/code.secret "$dir"/jwt-*
    fi
}

# The file of hs_make_keys that holds the key of JWT algorithm $1 (HS256,
# RS256, ES256 or EdDSA); fails, printing nothing, for any other name.
hs_jwt_key_name() {
    case "$1" in
        HS256) echo jwt-hs256.key ;;
        RS256) echo jwt-rs256.pem ;;
        ES256) echo jwt-es256.pem ;;
        EdDSA) echo jwt-eddsa.pem ;;
        *) return 1 ;;
    esac
}

hs_httpd_modules() {
    apxs -q LIBEXECDIR
}
