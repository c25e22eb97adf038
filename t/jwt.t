# SPDX-License-Identifier: Apache-2.0
# Portal tokens (CONTRACT.md section 5) for HS256, RS256, ES256 and EdDSA,
# verified by Crypt::JWT with the key alone and through GET jwks.json:
# every header member and claim, and a changed byte is refused.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET);
use Crypt::JWT qw(decode_jwt);
use Crypt::PK::ECC ();
use Crypt::PK::Ed25519 ();
use Crypt::PK::RSA ();
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url decode_base64url);
use lib 't/lib';
use HydraTest qw(reset_db add_tenant get_json json signup_code verify_code
                 jwt_parts read_file_trimmed);

my $st = $ENV{HYDRA_STATE};
my $hs_secret = read_file_trimmed("$st/jwt-hs256.key");

# module, alg, key file, kid (undef: none; '' : the RFC 7638 thumbprint),
# iss, aud, access TTL, refresh TTL, tenant
my @variants = (
    ['default', 'HS256', 'jwt-hs256.key', undef, 'hydracore',
     'hydracore-portal', 3600, 2592000, 'demo'],
    ['vhost_hskid', 'HS256', 'jwt-hs256.key', 'hs-key-7', 'hydracore',
     'hydracore-portal', 3600, 2592000, 'vfy'],
    ['vhost_rs256', 'RS256', 'jwt-rs256.pem', '', 'hydracore',
     'hydracore-portal', 3600, 2592000, 'vfy'],
    ['vhost_es256', 'ES256', 'jwt-es256.pem', '', 'hydracore',
     'hydracore-portal', 3600, 2592000, 'vfy'],
    ['vhost_eddsa', 'EdDSA', 'jwt-eddsa.pem', '', 'hydracore',
     'hydracore-portal', 3600, 2592000, 'vfy'],
    ['vhost_custom', 'ES256', 'jwt-es256.pem', 'portal-2026',
     'https://id.example.net', 'portal-test', 120, 7200, 'vfy'],
);
my $per_token = 9;                    # checks per token
my $per_variant = 4 + 2 * $per_token + 1;
my $asym = grep { $_->[1] ne 'HS256' } @variants;
my $total = @variants * $per_variant + $asym * 8 + 5;
plan tests => $total, have_lwp;

sub check { my ($c, $name) = @_; ok t_cmp($c ? 1 : 0, 1, $name) }

reset_db();
my %tenant = (demo => dbh_id('demo'), vfy => add_tenant(slug => 'vfy'));
sub dbh_id {
    my ($id) = HydraTest::dbh()->selectrow_array(
        "SELECT id FROM tenants WHERE slug = ?", undef, shift);
    return $id;
}

# the public key (a Crypt::PK object made from the public PEM only) and
# its public JWK members
sub public_key {
    my ($alg, $file) = @_;
    return $hs_secret if $alg eq 'HS256';
    my $class = { RS256 => 'Crypt::PK::RSA', ES256 => 'Crypt::PK::ECC',
                  EdDSA => 'Crypt::PK::Ed25519' }->{$alg};
    my $priv = $class->new("$st/$file");
    my $pem = $priv->export_key_pem('public');
    return $class->new(\$pem);
}
sub thumbprint {
    my ($jwk) = @_;
    my @req = $jwk->{kty} eq 'RSA' ? qw(e kty n)
            : $jwk->{kty} eq 'EC'  ? qw(crv kty x y)
            :                        qw(crv kty x);
    my $canon = '{' . join(',', map { qq("$_":"$jwk->{$_}") } @req) . '}';
    return encode_base64url(sha256($canon));
}

my $uuid = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my %jtis;
my $n = 0;

for my $v (@variants) {
    my ($module, $alg, $file, $kid, $iss, $aud, $ttl, $rttl, $slug) = @$v;
    my $name = "$module ($alg)";
    Apache::TestRequest::module($module);
    my $email = 'jwt' . ++$n . '@example.com';
    my ($cust, $code) = signup_code(email => $email, tenant => $slug);
    my $t0 = time;
    my $res = verify_code($email, $code, $slug);
    my $t1 = time;
    ok t_cmp($res->code, 200, "$name: verify 200");
    my $d = get_json($res) // {};
    ok t_cmp($d->{expires_in}, $ttl, "$name: expires_in = access TTL");
    my $key = public_key($alg, $file);

    # JWKS: the public key for asymmetric algorithms, 404 for HS256
    my $jres = GET '/v1/public/signup/jwks.json';
    my ($jwks, $jwk);
    if ($alg eq 'HS256') {
        ok t_cmp($jres->code, 404, "$name: no JWKS for HS256");
        ok t_cmp(scalar $jres->header('Content-Type'), qr{^application/json},
                 "$name: JSON 404");
    }
    else {
        ok t_cmp($jres->code, 200, "$name: JWKS 200");
        ok t_cmp(scalar $jres->header('Content-Type'), qr{^application/json},
                 "$name: JWKS is JSON");
        $jwks = get_json($jres);
        ok t_cmp(ref $jwks->{keys} eq 'ARRAY' ? scalar @{ $jwks->{keys} } : -1,
                 1, "$name: one key");
        $jwk = $jwks->{keys}[0] // {};
        my $want = $key->export_key_jwk('public', 1);
        my @members = $alg eq 'RS256' ? qw(e n) : $alg eq 'ES256'
                    ? qw(crv x y) : qw(crv x);
        ok t_cmp(join(',', sort keys %$jwk),
                 join(',', sort(qw(kty kid alg use), @members)),
                 "$name: JWK members");
        ok t_cmp($jwk->{kty}, { RS256 => 'RSA', ES256 => 'EC',
                                EdDSA => 'OKP' }->{$alg}, "$name: kty");
        ok t_cmp(join(' ', map { $jwk->{$_} // '?' } @members),
                 join(' ', map { $want->{$_} // '!' } @members),
                 "$name: " . join('/', @members) . ' of the key file');
        ok t_cmp("$jwk->{alg} $jwk->{use}", "$alg sig", "$name: alg, use");
        my $tp = thumbprint($jwk);
        ok t_cmp($jwk->{kid}, $kid eq '' ? $tp : $kid,
                 "$name: kid " . ($kid eq '' ? 'is the RFC 7638 thumbprint'
                                             : 'as configured'));
        if ($key->can('export_key_jwk_thumbprint')) {
            ok t_cmp($tp, $key->export_key_jwk_thumbprint('SHA256'),
                     "$name: thumbprint agrees with CryptX");
        }
        else {
            # this CryptX cannot: the RFC 7638 thumbprint of the key file's
            # own public JWK (from the PEM, not from the server)
            ok t_cmp($tp, thumbprint($want),
                     "$name: thumbprint agrees with the key file's JWK");
        }
        ok t_cmp(scalar $jres->header('Cache-Control'), qr/max-age=\d+/,
                 "$name: JWKS is cacheable");
    }

    for my $type (qw(access refresh)) {
        my $tok = $d->{"${type}_token"} // '';
        my $tn = "$name $type";
        my ($h, $c, $input, $sig) = jwt_parts($tok);
        # header
        my $want_kid = !defined $kid ? undef : $kid eq '' ? $jwk->{kid} : $kid;
        ok t_cmp(json->encode($h // {}),
                 json->encode({ alg => $alg, typ => 'JWT',
                                (defined $want_kid ? (kid => $want_kid) : ()) }),
                 "$tn: header alg/typ/kid");
        # the key alone
        my $p = eval {
            decode_jwt(token => $tok, key => $key, accepted_alg => $alg,
                       verify_iss => $iss, verify_aud => $aud,
                       verify_exp => 1, verify_iat => 1, leeway => 2)
        };
        ok t_cmp($@ || 'verified', 'verified', "$tn: Crypt::JWT verifies it with the key alone");
        # through the JWKS
        if ($jwks) {
            my $q = eval { decode_jwt(token => $tok, kid_keys => $jwks,
                                      accepted_alg => $alg) };
            ok t_cmp($@ || ($q && $q->{jti}), $c->{jti},
                     "$tn: verified through jwks.json");
        }
        else {
            ok t_cmp(!defined $h->{kid} || $h->{kid} eq $kid, 1,
                     "$tn: HS256 kid only when configured");
        }
        $p //= {};
        ok t_cmp(join(',', sort keys %$p),
                 'aud,exp,iat,iss,jti,sub,tenant_id,type', "$tn: claim set");
        ok t_cmp("$p->{sub} $p->{tenant_id} $p->{type}",
                 "$cust $tenant{$slug} $type", "$tn: sub, tenant_id, type");
        ok t_cmp("$p->{iss}|$p->{aud}", "$iss|$aud", "$tn: iss, aud");
        my $life = $type eq 'access' ? $ttl : $rttl;
        check $p->{iat} >= $t0 && $p->{iat} <= $t1
              && $p->{exp} == $p->{iat} + $life
              && $c->{iat} =~ /^\d+$/ && $c->{exp} =~ /^\d+$/,
            "$tn: iat now, exp = iat + $life, numbers";
        check $p->{jti} =~ $uuid && !$jtis{ $p->{jti} }++,
            "$tn: jti is a fresh UUID";

        # one byte changed: in the claims (re-encoded), in the signature,
        # or one character of the compact form
        my ($hb, $pb, $sb) = split /\./, $tok;
        my $claims = decode_base64url($pb);
        (my $evil = $claims) =~ s/"sub":"(.)/'"sub":"' . ($1 eq 'a' ? 'b' : 'a')/e;
        my $bad_sig = $sig;
        substr($bad_sig, 5, 1) = chr(ord(substr($bad_sig, 5, 1)) ^ 1);
        my $mid = int(length($sb) / 2);
        my $bad_char = $sb;
        substr($bad_char, $mid, 1) = substr($bad_char, $mid, 1) eq 'A' ? 'B' : 'A';
        my @bad = ("$hb." . encode_base64url($evil) . ".$sb",
                   "$hb.$pb." . encode_base64url($bad_sig),
                   "$hb.$pb.$bad_char");
        my $refused = grep {
            my $t = $_;
            !eval { decode_jwt(token => $t, key => $key, accepted_alg => $alg); 1 }
        } @bad;
        ok t_cmp($refused . ($evil ne $claims ? '' : ' (unchanged)'), 3,
                 "$tn: a changed claim byte, signature byte or character is refused");
    }
    # the access token never validates as another algorithm's key
    my $other = $alg eq 'HS256' ? public_key('EdDSA', 'jwt-eddsa.pem') : $hs_secret;
    check !eval { decode_jwt(token => $d->{access_token}, key => $other); 1 },
        "$name: refused under another key";
}

# JWT settings at vhost level with the main server's <Location>: the
# vhost's EdDSA key signs, and the main server keeps its HS256 secret.
# TODO until src/httpd/config.c resolves the key per merged configuration (it
# stores one key in the <Location>'s config, which every vhost shares).
{
    Apache::TestRequest::module('vhost_vhostjwt');
    my ($c, $code) = signup_code(email => 'vhostjwt@example.com');
    my $d = get_json(verify_code('vhostjwt@example.com', $code)) // {};
    my ($h) = jwt_parts($d->{access_token} // '');
    ok t_cmp($h && $h->{alg}, 'EdDSA', 'vhost-level EdDSA settings sign the tokens');
    my $res = GET '/v1/public/signup/jwks.json';
    ok t_cmp($res->code, 200, 'and publish the Ed25519 key');
    Apache::TestRequest::module('default');
    ($c, $code) = signup_code(email => 'mainjwt@example.com');
    $d = get_json(verify_code('mainjwt@example.com', $code)) // {};
    ($h) = jwt_parts($d->{access_token} // '');
    ok t_cmp($h && $h->{alg}, 'HS256', 'the main server still signs HS256');
}

# the JWKS of one vhost does not verify another's tokens
{
    Apache::TestRequest::module('vhost_rs256');
    my $rs = get_json(GET '/v1/public/signup/jwks.json');
    Apache::TestRequest::module('vhost_eddsa');
    my ($c, $code) = signup_code(email => 'cross@example.com', tenant => 'vfy');
    my $tok = get_json(verify_code('cross@example.com', $code, 'vfy'))->{access_token};
    check !eval { decode_jwt(token => $tok, kid_keys => $rs); 1 },
        'an EdDSA token is not verified by the RS256 JWKS';
    my $res = Apache::TestRequest::POST('/v1/public/signup/jwks.json',
                                        content => '{}');
    ok t_cmp($res->code . ' ' . ($res->header('Allow') // ''),
             qr/^405 GET/, 'POST jwks.json: 405 with Allow');
}
