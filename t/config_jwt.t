# SPDX-License-Identifier: Apache-2.0
# `httpd -t` and the JWT keys (CONTRACT.md section 6): keys are loaded when
# the configuration is read, and a key that cannot sign with the configured
# algorithm is refused with HydraSignupJWTKeyFile, the path, the reason and
# the algorithm named; every good pair is accepted.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use lib "t/lib";
use HydraTest ();

my $st = $ENV{HYDRA_STATE};
my $dir = tempdir(CLEANUP => 1);

my ($hs, $rs, $ec, $ed) = map { "$st/$_" }
    qw(jwt-hs256.key jwt-rs256.pem jwt-es256.pem jwt-eddsa.pem);

sub put {
    my ($name, $data, $mode) = @_;
    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!";
    print $fh $data;
    close $fh;
    chmod $mode // 0600, "$dir/$name";
    return "$dir/$name";
}
sub openssl {
    my ($out, @args) = @_;
    system('openssl', @args, '-out', "$dir/$out") == 0
        or die "openssl @args failed";
    return "$dir/$out";
}
open my $saved, '>&', \*STDERR or die;
open STDERR, '>', '/dev/null' or die;
my $rsa1024 = openssl('rsa1024.pem', qw(genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024));
my $p384 = openssl('p384.pem', qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384));
my $k256 = openssl('k256.pem', qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1));
my $ed448 = openssl('ed448.pem', qw(genpkey -algorithm ED448));
my $enc = openssl('enc.pem', 'pkey', '-in', $rs, '-aes256', '-passout', 'pass:secret');
my $pub = openssl('pub.pem', 'pkey', '-in', $rs, '-pubout');
my $trad = openssl('trad.pem', 'pkey', '-in', $ec, '-traditional');
open STDERR, '>&', $saved or die;

my $s31 = put('s31', ('x' x 31) . "\n");
my $s31crlf = put('s31crlf', ('x' x 31) . "\r\n");
my $s32 = put('s32', ('y' x 32) . "\n");
my $s32crlf = put('s32crlf', ('y' x 32) . "\r\n");
my $s32raw = put('s32raw', 'z' x 32);
my $empty = put('empty', '');
my $indented = put('indented', "  \n" . do { local (@ARGV, $/) = $rs; <> });
my $garbage = put('garbage', "this is not a key, just some text\n" x 3);
my $big = put('big', 'A' x (70 * 1024));
my $unreadable = put('unreadable', do { local (@ARGV, $/) = $rs; <> }, 0);

# [algorithm, key file, expected message (undef: accepted)]
my $R = sub { my ($p, $why, $alg) = @_;
              qr{HydraSignupJWTKeyFile \Q$p\E: .*$why.*\($alg\)} };
my @cases = (
    # good pairs
    ['HS256', $hs, undef],
    [undef,   $hs, undef],                       # HS256 is the default
    ['RS256', $rs, undef],
    ['ES256', $ec, undef],
    ['EdDSA', $ed, undef],
    ['ES256', $trad, undef],                     # traditional "EC PRIVATE KEY"
    ['HS256', $s32, undef],
    ['HS256', $s32crlf, undef],
    ['HS256', $s32raw, undef],
    # HS256 secrets
    ['HS256', $s31, $R->($s31, 'secret is 31 bytes; HS256 needs at least 32', 'HS256')],
    ['HS256', $s31crlf, $R->($s31crlf, 'secret is 31 bytes', 'HS256')],
    ['HS256', $empty, $R->($empty, 'secret is 0 bytes', 'HS256')],
    ['HS256', $rs, $R->($rs, 'looks like a PEM key', 'HS256')],
    ['HS256', $ed, $R->($ed, 'looks like a PEM key', 'HS256')],
    ['HS256', $indented, $R->($indented, 'looks like a PEM key', 'HS256')],
    ['HS256', $big, $R->($big, 'too large for a key file', 'HS256')],
    # a key of the wrong type
    ['ES256', $rs, $R->($rs, 'not an EC P-256 key \(found RSA 2048-bit\)', 'ES256')],
    ['RS256', $ec, $R->($ec, 'not an RSA key \(found EC prime256v1\)', 'RS256')],
    ['RS256', $ed, $R->($ed, 'not an RSA key \(found ED25519\)', 'RS256')],
    ['EdDSA', $rs, $R->($rs, 'not an Ed25519 key \(found RSA 2048-bit\)', 'EdDSA')],
    ['EdDSA', $ec, $R->($ec, 'not an Ed25519 key', 'EdDSA')],
    ['ES256', $ed, $R->($ed, 'not an EC P-256 key', 'ES256')],
    ['ES256', $p384, $R->($p384, 'not an EC P-256 key \(found EC secp384r1\)', 'ES256')],
    ['ES256', $k256, $R->($k256, 'not an EC P-256 key \(found EC secp256k1\)', 'ES256')],
    ['EdDSA', $ed448, $R->($ed448, 'not an Ed25519 key \(found ED448\)', 'EdDSA')],
    ['RS256', $rsa1024, $R->($rsa1024, '1024-bit RSA key; RS256 needs at least 2048', 'RS256')],
    # not a usable private key
    ['RS256', $hs, $R->($hs, 'no PEM private key found', 'RS256')],
    ['RS256', $garbage, $R->($garbage, 'no PEM private key found', 'RS256')],
    ['RS256', $pub, $R->($pub, 'no PEM private key found', 'RS256')],
    ['RS256', $enc, $R->($enc, 'encrypted; a key without a passphrase', 'RS256')],
    ['EdDSA', $big, $R->($big, 'too large for a key file', 'EdDSA')],
);

plan tests => 2 * @cases + 11;

sub httpd_t {
    my ($loc, $outside) = @_;
    return HydraTest::httpd_t(dir => $dir, inside => "HydraSignupTenants demo\n$loc",
        outside => "HydraSignupCodeSecretFile $st/code.secret\n"
        . "HydraSignupSpoolDir $st/spool\n"
        . "HydraSignupMailFrom \"Demo <noreply\@example.net>\"\n"
        . ($outside // ''));
}
sub key_lines {
    my ($alg, $file) = @_;
    return join "\n", (defined $alg ? "HydraSignupJWTAlgorithm $alg" : ()),
                      "HydraSignupJWTKeyFile $file";
}

for my $case (@cases) {
    my ($alg, $file, $want) = @$case;
    my $name = ($alg // 'default') . ' with ' . ($file =~ s{.*/}{}r);
    my ($rc, $out) = httpd_t(key_lines($alg, $file));
    if (!defined $want) {
        ok t_cmp($rc, 0, "$name: accepted") or print "# $out";
        ok t_cmp($out, qr/Syntax OK/, "$name: Syntax OK");
        next;
    }
    ok t_cmp($rc, 1, "$name: refused") or print "# $out";
    ok t_cmp($out, $want, "$name: the message names directive, path, reason, algorithm");
}

# an unreadable file (the suite runs unprivileged; root reads anything)
{
    my ($rc, $out) = httpd_t(key_lines('RS256', $unreadable));
    if ($> == 0) {
        # root reads anything: not a pass, a skip (and scripts/test.sh
        # fails on a skip that tests/expected-skips does not list)
        Apache::Test::skip('run as root: an unreadable file is readable', 0) for 1 .. 2;
    }
    else {
        ok t_cmp($rc, 1, 'unreadable key: refused');
        ok t_cmp($out, qr{HydraSignupJWTKeyFile: cannot read \Q$unreadable\E: Permission denied},
                 'unreadable key: the message');
    }
}

# the key file may come before the algorithm; kid is accepted
{
    my ($rc, $out) = httpd_t("HydraSignupJWTKeyFile $ed\nHydraSignupJWTAlgorithm EdDSA\nHydraSignupJWTKeyID k1");
    ok t_cmp($rc, 0, 'key file before algorithm: accepted') or print "# $out";
}

# inherited settings: the server's key with a Location's algorithm
{
    my ($rc, $out) = httpd_t('', "HydraSignupJWTAlgorithm ES256\nHydraSignupJWTKeyFile $ec");
    ok t_cmp($rc, 0, 'algorithm and key from the server: accepted') or print "# $out";
    ($rc, $out) = httpd_t('HydraSignupJWTAlgorithm RS256',
                          "HydraSignupJWTAlgorithm ES256\nHydraSignupJWTKeyFile $ec");
    ok t_cmp($rc, 1, "a Location's RS256 with the server's EC key: refused");
    ok t_cmp($out, $R->($ec, 'not an RSA key', 'RS256'), 'the message');
    ok t_cmp($out, qr{<Location /v1/public/signup>}, 'and where');
}

# a wrong key in a virtual host names the virtual host
{
    my ($rc, $out) = httpd_t("HydraSignupJWTKeyFile $hs", <<"EOT");
<VirtualHost 127.0.0.1:1>
ServerName broken.example.net
<Location /v1/public/signup>
SetHandler hydra-signup
HydraSignupTenants demo
HydraSignupJWTAlgorithm ES256
HydraSignupJWTKeyFile $rs
</Location>
</VirtualHost>
EOT
    ok t_cmp($rc, 1, 'a vhost with a wrong key: refused');
    ok t_cmp($out, $R->($rs, 'not an EC P-256 key', 'ES256'), 'the message');
    ok t_cmp($out, qr/broken\.example\.net/, 'names the vhost');
}

# no key file where tenants are served
{
    my ($rc, $out) = httpd_t('HydraSignupJWTAlgorithm RS256');
    ok t_cmp($out, qr/HydraSignupJWTKeyFile is required/, 'a missing key file is named');
}
