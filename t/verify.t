# SPDX-License-Identifier: Apache-2.0
# POST /v1/public/signup/verify: every row of CONTRACT.md section 1 against
# the real database, codes taken from the mails the signups queue.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use Digest::SHA qw(sha256_hex);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json json
                 signup_code verify_code jwt_parts);

plan tests => 96, have_lwp;

# ok() of Test.pm takes an expected value second: name conditions this way
sub check { my ($c, $name) = @_; ok t_cmp($c ? 1 : 0, 1, $name) }

my $INVALID = '{"detail":"Invalid or expired verification code"}';
my $db = dbh();
reset_db();
my ($demo) = $db->selectrow_array("SELECT id FROM tenants WHERE slug = 'demo'");
add_tenant(slug => 'vfy');

my @codes;    # every code seen: none may reach the log
# where this file's share of the error log begins (the codes are its own)
my $errlog_from = -s (Apache::Test::vars('t_logs') . '/error_log') // 0;
my @tokens;

sub code_row {
    my ($customer) = @_;
    return $db->selectrow_hashref(
        "SELECT attempts, void, consumed_at, expires_at > now() AS live,
                extract(epoch FROM expires_at - sent_at)::int AS ttl
         FROM hydra_signup_codes WHERE customer_id = ?", undef, $customer);
}
sub customer_row {
    my ($customer) = @_;
    return $db->selectrow_hashref(
        "SELECT status, verified_at FROM customers WHERE id = ?", undef,
        $customer);
}
sub is_invalid {
    my ($res, $name) = @_;
    ok t_cmp($res->code . ' ' . $res->content, "400 $INVALID", $name);
}
sub signup {
    my (%a) = @_;
    my ($id, $code, $res) = signup_code(%a);
    push @codes, $code if defined $code;
    die "signup of $a{email} failed: " . $res->code . ' ' . $res->content
        unless defined $code;
    return ($id, $code);
}
# a 6-digit code other than $code
sub wrong { my $c = shift; return sprintf '%06d', ($c + 1) % 1000000 }

# ---- validation: FastAPI shapes, every field at once -------------------
{
    my $res = post_json('/v1/public/signup/verify', {});
    ok t_cmp($res->code, 422, 'empty object: 422');
    my $d = get_json($res);
    ok t_cmp(join(',', map { join('.', @{ $_->{loc} }) . ':' . $_->{type} }
                  @{ $d->{detail} }),
             'body.code:missing,body.email:missing,body.tenant_slug:missing',
             'three missing fields, in order');
    ok t_cmp($d->{detail}[0]{msg}, 'Field required', 'missing: msg');

    for my $c (['12345', 'string_too_short', 'String should have at least 6 characters'],
               ['1234567', 'string_too_long', 'String should have at most 6 characters']) {
        $res = verify_code('a@example.com', $c->[0]);
        $d = get_json($res);
        ok t_cmp($res->code, 422, "code '$c->[0]': 422");
        ok t_cmp(json->encode($d->{detail}[0]{loc}), '["body","code"]',
                 "code '$c->[0]': loc");
        ok t_cmp($d->{detail}[0]{type}, $c->[1], "code '$c->[0]': type");
        ok t_cmp($d->{detail}[0]{msg}, $c->[2], "code '$c->[0]': msg");
        ok t_cmp(scalar @{ $d->{detail} }, 1, "code '$c->[0]': one error");
    }
    $res = verify_code('not-an-email', '123456');
    $d = get_json($res);
    ok t_cmp($res->code, 422, 'bad email: 422');
    ok t_cmp(json->encode($d->{detail}[0]{loc}), '["body","email"]',
             'bad email: loc');
    ok t_cmp($d->{detail}[0]{type}, 'value_error', 'bad email: type');
    ok t_cmp($d->{detail}[0]{msg}, qr/^value is not a valid email address: /,
             'bad email: msg');

    $res = post_json('/v1/public/signup/verify',
                     '{"code":123456,"email":"a@example.com","tenant_slug":"demo"}');
    $d = get_json($res);
    ok t_cmp($res->code . ' ' . $d->{detail}[0]{type}, '422 string_type',
             'a number for code: string_type');

    $res = post_json('/v1/public/signup/verify',
                     { code => '', email => 'x', tenant_slug => '' });
    $d = get_json($res);
    ok t_cmp(join(',', map { $_->{type} } @{ $d->{detail} }),
             'string_too_short,value_error,string_too_short',
             'every failing field at once');
    $res = post_json('/v1/public/signup/verify', '[1]');
    ok t_cmp(get_json($res)->{detail}[0]{type}, 'model_attributes_type',
             'an array: model_attributes_type');
}

# ---- the right code: 200, active, consumed, refresh jti hashed ---------
my ($cust, $code) = signup(email => 'alice@example.com');
check $cust && $code =~ /^\d{6}$/, 'signup mailed a 6-digit code';
{
    my $t0 = time;
    my $res = verify_code('alice@example.com', $code);
    my $t1 = time;
    ok t_cmp($res->code, 200, 'right code: 200');
    ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json},
             'JSON');
    ok t_cmp(scalar $res->header('Cache-Control'), qr/no-store/, 'no-store');
    my $d = get_json($res);
    push @tokens, $d->{access_token}, $d->{refresh_token};
    ok t_cmp(join(',', sort keys %$d),
             'access_token,customer_id,expires_in,refresh_token,tenant_id,token_type',
             'exactly the contract fields');
    ok t_cmp($d->{token_type}, 'bearer', 'token_type');
    ok t_cmp($d->{expires_in}, 3600, 'expires_in = access TTL');
    check $d->{expires_in} =~ /^\d+$/ && $res->content =~ /"expires_in":3600[,}]/,
        'expires_in is a JSON number';
    ok t_cmp($d->{customer_id}, $cust, 'customer_id of the signup');
    ok t_cmp($d->{tenant_id}, $demo, 'tenant_id of the tenant');
    my (undef, $ac) = jwt_parts($d->{access_token});
    my (undef, $rc) = jwt_parts($d->{refresh_token});
    ok t_cmp("$ac->{type} $ac->{sub} $ac->{tenant_id}", "access $cust $demo",
             'access token claims');
    ok t_cmp("$rc->{type} $rc->{sub} $rc->{tenant_id}", "refresh $cust $demo",
             'refresh token claims');
    check $ac->{iat} >= $t0 && $ac->{iat} <= $t1 && $ac->{exp} == $ac->{iat} + 3600,
        'access iat/exp';
    check $rc->{exp} == $rc->{iat} + 2592000, 'refresh exp = iat + 30 days';

    my $c = customer_row($cust);
    ok t_cmp($c->{status}, 'active', 'customer is active');
    check defined $c->{verified_at}, 'verified_at is set';
    my $k = code_row($cust);
    check defined $k->{consumed_at}, 'code consumed';
    ok t_cmp($k->{attempts}, 1, 'one attempt counted');

    my $rows = $db->selectall_arrayref(
        "SELECT jti_hash, tenant_id,
                abs(extract(epoch FROM expires_at - now()) - 2592000) < 60,
                revoked_at IS NULL
         FROM hydra_signup_refresh_tokens WHERE customer_id = ?", undef, $cust);
    ok t_cmp(scalar @$rows, 1, 'one refresh token recorded');
    ok t_cmp($rows->[0][0], sha256_hex($rc->{jti}),
             'stored as the SHA-256 hex of the jti');
    ok t_cmp($rows->[0][1], $demo, 'with the tenant');
    check $rows->[0][2] && $rows->[0][3], 'expires with the refresh token, not revoked';
    my ($raw) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_refresh_tokens
         WHERE jti_hash IN (?, ?)", undef, $rc->{jti}, $ac->{jti});
    ok t_cmp($raw, 0, 'no raw jti at rest');
    check !grep({ $_->[0] eq sha256_hex($ac->{jti}) } @$rows),
        'the access jti is not recorded';

    # used code, and the active customer: the one 400
    $res = verify_code('alice@example.com', $code);
    is_invalid($res, 'used code: 400');
    check !defined $res->header('Retry-After'), 'no Retry-After on 400';
    ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json},
             '400 is JSON');
    is_invalid(verify_code('alice@example.com', wrong($code)),
               'active customer, wrong code: 400');
    ($rows) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_refresh_tokens WHERE customer_id = ?",
        undef, $cust);
    ok t_cmp($rows, 1, 'no second refresh token');
}

# ---- the address is case-insensitive ------------------------------------
{
    my ($id, $c) = signup(email => 'Mixed.Case@Example.com');
    my $res = verify_code('mixed.case@EXAMPLE.COM', $c);
    ok t_cmp($res->code, 200, 'address compared case-insensitively');
}

# ---- an active customer whose code is still unconsumed ----------------
{
    my ($id, $c) = signup(email => 'active@example.com');
    $db->do("UPDATE customers SET status = 'active', verified_at = now()
             WHERE id = ?", undef, $id);
    is_invalid(verify_code('active@example.com', $c),
               'already active customer, right code: 400');
    my ($n) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_refresh_tokens WHERE customer_id = ?",
        undef, $id);
    ok t_cmp($n, 0, 'no token for an active customer');
}

# ---- unknown email, unknown tenant, other tenant ------------------------
is_invalid(verify_code('nobody@example.com', '123456'), 'unknown email: 400');
is_invalid(verify_code('alice@example.com', $code, 'acme'),
           'a served tenant without that customer: 400');
{
    Apache::TestRequest::module('vhost_all');
    is_invalid(verify_code('alice@example.com', $code, 'no-such-tenant'),
               'unknown tenant: 400');
    Apache::TestRequest::module('default');
}

# ---- wrong, then right; expired -----------------------------------------
{
    my ($id, $c) = signup(email => 'bob@example.com');
    is_invalid(verify_code('bob@example.com', wrong($c)), 'wrong code: 400');
    my $k = code_row($id);
    ok t_cmp("$k->{attempts} $k->{void}", '1 0', 'the failure is counted');
    is_invalid(verify_code('bob@example.com', 'abcdef'), 'non-digits: 400');
    ok t_cmp(code_row($id)->{attempts}, 2, 'counted too');
    ok t_cmp(customer_row($id)->{status}, 'pending', 'still pending');
    ok t_cmp(verify_code('bob@example.com', $c)->code, 200,
             'the right code after failures: 200');
}
{
    my ($id, $c) = signup(email => 'carol@example.com');
    $db->do("UPDATE hydra_signup_codes SET expires_at = now() - interval '1 second'
             WHERE customer_id = ?", undef, $id);
    is_invalid(verify_code('carol@example.com', $c), 'expired code: 400');
    my $k = code_row($id);
    ok t_cmp($k->{attempts}, 1, 'the expired try is counted');
    check !defined $k->{consumed_at}, 'not consumed';
    ok t_cmp(customer_row($id)->{status}, 'pending', 'still pending');
}
# default code lifetime 900 s
{
    my ($id) = signup(email => 'ttl@example.com');
    ok t_cmp(code_row($id)->{ttl}, 900, 'code expires 900 s after sending');
}

# ---- the attempt limit (default 5) --------------------------------------
{
    # four failures, then the right code on the fifth (last) attempt
    my ($id, $c) = signup(email => 'dave@example.com');
    is_invalid(verify_code('dave@example.com', wrong($c)), "dave wrong $_")
        for 1 .. 4;
    ok t_cmp(verify_code('dave@example.com', $c)->code, 200,
             'the fifth attempt is still compared');
}
{
    my ($id, $c) = signup(email => 'eve@example.com');
    is_invalid(verify_code('eve@example.com', wrong($c)), "eve wrong $_")
        for 1 .. 5;
    my $k = code_row($id);
    ok t_cmp("$k->{attempts} $k->{void}", '5 0', 'five failures counted');
    my $res = verify_code('eve@example.com', wrong($c));
    ok t_cmp($res->code, 429, 'the sixth failure: 429');
    ok t_cmp(scalar $res->header('Retry-After'), qr/^[1-9]\d*$/, 'Retry-After');
    ok t_cmp(get_json($res)->{detail}, qr/./, '429 has a detail');
    ok t_cmp(code_row($id)->{void}, 1, 'the code is void');
    $res = verify_code('eve@example.com', $c);
    ok t_cmp($res->code, 429, 'the right code no longer works: 429');
    ok t_cmp(customer_row($id)->{status}, 'pending', 'still pending');

    # a new signup request mails a new code (past the resend interval)
    $db->do("UPDATE hydra_signup_codes SET sent_at = now() - interval '2 minutes'
             WHERE customer_id = ?", undef, $id);
    my ($id2, $c2) = signup(email => 'eve@example.com');
    ok t_cmp($id2, $id, 'the same pending customer');
    $k = code_row($id);
    ok t_cmp("$k->{attempts} $k->{void}", '0 0', 'a fresh code, no attempts');
    ok t_cmp(verify_code('eve@example.com', $c)->code,
             $c eq $c2 ? 200 : 400, 'the old code is gone');
    ok t_cmp(verify_code('eve@example.com', $c2)->code, 200,
             'the new code works');
}

# ---- a vhost with every knob: attempts 2, resend 1 s, TTLs ------------
{
    Apache::TestRequest::module('vhost_custom');
    my ($id, $c) = signup(email => 'frank@example.com', tenant => 'vfy');
    ok t_cmp(code_row($id)->{ttl}, 300, 'HydraSignupCodeTTL 300');
    is_invalid(verify_code('frank@example.com', wrong($c), 'vfy'),
               "frank wrong $_") for 1 .. 2;
    my $res = verify_code('frank@example.com', $c, 'vfy');
    ok t_cmp($res->code, 429, 'MaxAttempts 2: the third try is 429');
    ok t_cmp(scalar $res->header('Retry-After'), qr/^\d+$/, 'Retry-After');
    sleep 2;    # HydraSignupResendInterval 1
    my ($id2, $c2) = signup(email => 'frank@example.com', tenant => 'vfy');
    ok t_cmp($id2, $id, 'same customer, new code');
    $res = verify_code('frank@example.com', $c2, 'vfy');
    ok t_cmp($res->code, 200, 'the new code works');
    my $d = get_json($res);
    push @tokens, $d->{access_token}, $d->{refresh_token};
    ok t_cmp($d->{expires_in}, 120, 'expires_in = HydraSignupAccessTTL');
    Apache::TestRequest::module('default');
}

# ---- nothing secret in the log ------------------------------------------
{
    my $log = Apache::Test::vars('t_logs') . '/error_log';
    my $text = HydraTest::log_since($log, 0);    # tokens, secrets: all of it
    # A code as a number of its own, in this file's share of the log. First
    # out go the numbers a log line carries anyway: timestamps (6-digit
    # microseconds), pids and tids, message numbers (AH010033), UUIDs and
    # hex pointers, whose digit runs matched a random code in one CI run
    # ('...c-e62f368052f1'); the phase times of HS00909 (microseconds, the
    # suite logs at trace8), and process ids in the reaper's lines.
    my $plain = HydraTest::log_since($log, $errlog_from);
    $plain =~ s/^.*HS00909: signup phases \(us\):.*$//mg;
    $plain =~ s/\bprocess \d+//g;
    $plain =~ s/^\[[^\]]*\]//mg;                              # timestamp
    $plain =~ s/\b(?:pid|tid) \d+//g;
    $plain =~ s/\b(?:AH|HS)\d+//g;
    $plain =~ s/\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b//gi;
    $plain =~ s/\b(?:0x)?(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b//gi;
    my @hits = (grep({ $plain =~ /(?<![\d.])$_(?!\d)/ } @codes),
                grep({ index($text, $_) >= 0 }
                     (grep { defined } @tokens),
                     HydraTest::read_file_trimmed("$ENV{HYDRA_STATE}/code.secret"),
                     HydraTest::read_file_trimmed("$ENV{HYDRA_STATE}/jwt-hs256.key")));
    ok t_cmp(scalar @hits, 0, 'no code, token or secret in the error log');
}
