# SPDX-License-Identifier: Apache-2.0
# POST /v1/public/signup: every row of CONTRACT section 1's signup table,
# against the real database, with the rows and spool files it leaves.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant get_json json json_bytes spool_files
                 signup_post state_snapshot read_mail code_hmac raw_http log_since);

plan tests => 202, have_lwp;
binmode STDOUT, ':encoding(UTF-8)'; # t_cmp prints non-ASCII values

my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my $db = dbh();

reset_db();
my $acme = add_tenant(slug => 'acme', domain => 'sites.acme.test',
    plans => [['starter', '$5/mo', ['1 site']], ['pro', '$15/mo', []],
              ['internal', '$0', [], 9, 0]]);
add_tenant(slug => 'off-co', enabled => 0);
add_tenant(slug => 'globex');

Apache::TestRequest::module('vhost_signup');

sub is_status {
    my ($res, $want, $name) = @_;
    my $ok = t_cmp($res->code, $want, $name);
    print "# body: ", $res->content, "\n" unless $ok;
    return ok $ok;
}
sub body_of { my ($res) = @_; get_json($res) // {} }
sub nfiles { my @f = spool_files($_[0]); return scalar @f }
sub new_files { my @f = spool_files('new'); return @f }
sub clear_spool { unlink spool_files($_) for qw(new tmp cur) }
sub customer { $db->selectrow_hashref(
    "SELECT * FROM customers WHERE id = ?", undef, $_[0]) }
sub code_row { $db->selectrow_hashref(
    "SELECT *, extract(epoch FROM expires_at - now())::int AS ttl
     FROM hydra_signup_codes WHERE customer_id = ?", undef, $_[0]) }
sub used_of { ($db->selectrow_array(
    "SELECT used FROM nodes WHERE id = ?", undef, $_[0]))[0] }
sub nodes_of { @{ $db->selectcol_arrayref(
    "SELECT n.id FROM nodes n JOIN tenants t ON t.id = n.tenant_id
     WHERE t.slug = ? ORDER BY hostname", undef, $_[0]) } }
# the code on a line of its own in a mail body
sub code_in { my @c = $_[0] =~ /^(\d{6})\r?$/mg; return @c }
# a 422's detail as "loc/type" strings
sub errs {
    my ($res) = @_;
    my $d = body_of($res)->{detail};
    return 'not a list' unless ref $d eq 'ARRAY';
    return join ' ', map { join('.', @{ $_->{loc} }) . "/$_->{type}" } @$d;
}

# ---- 201: the happy path ---------------------------------------------------
my ($node) = nodes_of('acme');
my $res = signup_post({ company_name => 'Acme Corp', email => 'alice@example.com',
                        tenant_slug => 'acme' });
is_status($res, 201, '201 Created');
ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json}, 'JSON');
my $b = body_of($res);
ok t_cmp(join(',', sort keys %$b), 'customer_id,message,site_url',
         'exactly the contract members');
ok t_cmp($b->{customer_id}, $UUID, 'customer_id is a v4 uuid');
ok t_cmp($b->{message}, 'Check your email to get started', 'message');
ok t_cmp($b->{site_url}, 'https://acme-corp.sites.acme.test', 'site_url');
my $alice = $b->{customer_id};
my $c = customer($alice) // {};
ok t_cmp($c->{status}, 'pending', 'customer row is pending');
ok t_cmp($c->{node_id}, $node, 'placed on the only node');
ok t_cmp($c->{tenant_id}, $acme, 'of the tenant');
ok t_cmp("$c->{company_name}|$c->{email}|$c->{plan}|$c->{site_url}",
         'Acme Corp|alice@example.com|starter|https://acme-corp.sites.acme.test',
         'stored values (default plan starter)');
ok defined $c->{created_at} && !defined $c->{verified_at};
ok t_cmp(used_of($node), 1, 'node used incremented');
my $k = code_row($alice) // {};
ok t_cmp($k->{code_hmac}, qr/^[0-9a-f]{64}$/, 'code stored as a hex HMAC');
ok t_cmp($k->{attempts}, 0, 'no attempt yet');
ok $k->{ttl} >= 880 && $k->{ttl} <= 900 or print "# ttl $k->{ttl}\n";
ok !$k->{void} && !defined $k->{consumed_at};
ok t_cmp(nfiles('tmp'), 0, 'nothing left in tmp/');
my @new = new_files();
ok t_cmp(scalar @new, 1, 'one message in new/');
my $m = read_mail($new[0] // '/dev/null');
ok $m->{crlf}; # every line ends in CRLF
ok t_cmp($m->{headers}{to}, qr/alice\@example\.com/, 'To');
ok t_cmp($m->{headers}{from}, qr/noreply\@sites\.example\.net/, 'From');
ok t_cmp($m->{headers}{date},
         qr/^\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/, 'Date');
ok t_cmp($m->{headers}{'message-id'}, qr/^<[^<>\s]+\@[^<>\s]+>$/, 'Message-ID');
ok t_cmp($m->{headers}{'mime-version'}, '1.0', 'MIME-Version');
# issue 12: visitor-typed text never in the Subject, in the body once
ok t_cmp($m->{headers}{subject}, 'Your verification code',
         'Subject without the company name');
ok t_cmp(scalar(() = $m->{body} =~ /Acme Corp/g), 1,
         'the company name once in the body');
my @codes = code_in($m->{body});
ok t_cmp(scalar @codes, 1, 'the code on a line of its own');
my $code1 = $codes[0] // '';
ok t_cmp($k->{code_hmac}, code_hmac($alice, $code1),
         'stored HMAC is the HMAC of the mailed code');
ok $k->{code_hmac} !~ /\Q$code1\E/ && $m->{raw} !~ /code_hmac/;
ok t_cmp($m->{body}, qr{https://acme-corp\.sites\.acme\.test}, 'site_url in mail');
my ($logged) = $db->selectrow_array(
    "SELECT count(*) FROM hydra_signup_mail_log WHERE email_lower = ?", undef,
    'alice@example.com');
ok t_cmp($logged, 1, 'the mail is in the mail log');

# a plan named explicitly; site labels clash and get a suffix; charset param
$res = signup_post({ company_name => 'ACME corp!', email => 'bob@example.com',
                     tenant_slug => 'acme', plan => 'pro' },
                   'Content-Type' => 'application/json; charset=utf-8');
is_status($res, 201, 'second signup with a plan');
$b = body_of($res);
ok t_cmp($b->{site_url}, 'https://acme-corp-2.sites.acme.test', 'label -2');
ok t_cmp(customer($b->{customer_id})->{plan}, 'pro', 'plan stored');
ok t_cmp(used_of($node), 2, 'used 2');
my $bob = $b->{customer_id};
# unknown members are ignored; a duplicated member: the last one wins
$res = signup_post('{"company_name":"X","company_name":"Umbrella",'
    . '"email":"carol@example.com","tenant_slug":"acme","extra":[1,{"a":2}]}');
is_status($res, 201, 'unknown members ignored');
ok t_cmp(body_of($res)->{site_url}, 'https://umbrella.sites.acme.test',
         'duplicate member: the last wins');
# non-ASCII company name: UTF-8 stored verbatim, RFC 2047 subject
$res = signup_post({ company_name => "Caf\x{e9} M\x{fc}ller \x{65e5}\x{672c}",
                     email => 'dave@example.com', tenant_slug => 'acme' });
is_status($res, 201, 'non-ASCII company name');
$b = body_of($res);
ok t_cmp($b->{site_url}, 'https://cafe-muller.sites.acme.test', 'folded label');
ok t_cmp(customer($b->{customer_id})->{company_name},
         "Caf\x{e9} M\x{fc}ller \x{65e5}\x{672c}", 'stored verbatim');
@new = new_files();
my ($dave_mail) = grep { read_mail($_)->{raw} =~ /dave\@example\.com/ } @new;
$m = read_mail($dave_mail // '/dev/null');
ok t_cmp($m->{headers}{subject}, 'Your verification code',
         'no company name in the Subject, also when it is not ASCII');
ok t_cmp($m->{raw}, qr/^[\x00-\x7f]*$/, 'the message is 7-bit');
# CR/LF in the company name cannot add a header
$res = signup_post({ company_name => "Evil\r\nBcc: victim\@example.org\r\n",
                     email => 'eve@example.com', tenant_slug => 'acme' });
is_status($res, 201, 'company name with CRLF accepted');
my ($eve_mail) = grep { read_mail($_)->{raw} =~ /eve\@example\.com/ } new_files();
$m = read_mail($eve_mail // '/dev/null');
ok !exists $m->{headers}{bcc}; # no injected Bcc header
ok t_cmp(join(',', grep { !/^(?:From|To|Subject|Date|Message-ID|MIME-Version|Content-Type|Content-Transfer-Encoding|Auto-Submitted)$/i } @{ $m->{header_names} }),
         '', 'only the expected headers');

# ---- 422: validation ---------------------------------------------------------
clear_spool();
my $before = state_snapshot();
my %ok = (company_name => 'Valid Co', email => 'valid@example.com',
          tenant_slug => 'acme');
$res = signup_post({});
is_status($res, 422, 'empty object: 422');
ok t_cmp(errs($res), 'body.company_name/missing body.email/missing '
         . 'body.tenant_slug/missing', 'every missing field at once');
ok t_cmp(body_of($res)->{detail}[0]{msg}, 'Field required', 'missing msg');
ok t_cmp(join(',', sort keys %{ body_of($res)->{detail}[0] }), 'loc,msg,type',
         'error item shape');
for my $field (qw(company_name email tenant_slug plan)) {
    for my $v ([num => 5], [float => 1.5], [null => undef], [object => {}],
               [array => ['x']], [bool => JSON::PP::true()]) {
        $res = signup_post({ %ok, $field => $v->[1] });
        my $d = body_of($res)->{detail};
        ok $res->code == 422 && ref $d eq 'ARRAY' && @$d == 1
           && $d->[0]{type} eq 'string_type'
           && $d->[0]{msg} eq 'Input should be a valid string'
           && join('.', @{ $d->[0]{loc} }) eq "body.$field"
           or print "# $field $v->[0]: " . $res->code . ' ' . $res->content . "\n";
    }
}
$res = signup_post({ %ok, company_name => '' });
ok t_cmp(errs($res), 'body.company_name/string_too_short', 'empty company');
ok t_cmp(body_of($res)->{detail}[0]{msg},
         'String should have at least 1 character', 'too short msg');
$res = signup_post({ %ok, tenant_slug => '' });
ok t_cmp(errs($res), 'body.tenant_slug/string_too_short', 'empty slug');
$res = signup_post({ %ok, company_name => "\x{65e5}" x 201 });
ok t_cmp(errs($res), 'body.company_name/string_too_long', '201 CJK: too long');
ok t_cmp(body_of($res)->{detail}[0]{msg},
         'String should have at most 200 characters', 'too long msg');
$res = signup_post({ %ok, tenant_slug => 'a' x 101 });
ok t_cmp(errs($res), 'body.tenant_slug/string_too_long', '101-char slug');
ok t_cmp(body_of($res)->{detail}[0]{msg},
         'String should have at most 100 characters', 'slug max msg');
$res = signup_post({ %ok, plan => 'p' x 51 });
ok t_cmp(errs($res), 'body.plan/string_too_long', '51-char plan');
for my $bad ('not-an-email', 'a@b', '@example.com', 'a@@example.com',
             'a b@example.com', 'a..b@example.com', ('x' x 65) . '@example.com') {
    $res = signup_post({ %ok, email => $bad });
    my $d = body_of($res)->{detail};
    ok $res->code == 422 && ref $d eq 'ARRAY' && $d->[0]{type} eq 'value_error'
       && $d->[0]{msg} =~ /^value is not a valid email address: \S/
       && join('.', @{ $d->[0]{loc} }) eq 'body.email'
       or print "# [$bad] " . $res->content . "\n";
}
$res = signup_post({ company_name => 7, email => 'nope', tenant_slug => '',
                     plan => undef });
ok t_cmp(errs($res), 'body.company_name/string_type body.email/value_error '
         . 'body.plan/string_type body.tenant_slug/string_too_short',
         'every failing field at once, in field order');
# not JSON: the byte offset of the error, as Python's json module gives it
for my $case (['{"company_name": "x",}', 21], ['hello', 0], ['{"a": 1', 7],
              ['{"a": 1} x', 9], ['{"a" 1}', 5]) {
    $res = signup_post($case->[0]);
    my $d = body_of($res)->{detail};
    ok $res->code == 422 && ref $d eq 'ARRAY' && $d->[0]{type} eq 'json_invalid'
       && $d->[0]{msg} eq 'JSON decode error'
       && json()->encode($d->[0]{loc}) eq qq(["body",$case->[1]])
       or print "# [$case->[0]] " . $res->content . "\n";
}
for my $nonobj ('[1, 2]', '"string"', '42', 'true', '[]') {
    $res = signup_post($nonobj);
    my $d = body_of($res)->{detail};
    ok $res->code == 422 && ref $d eq 'ARRAY'
       && $d->[0]{type} eq 'model_attributes_type'
       && $d->[0]{msg} eq 'Input should be a valid dictionary or object to extract fields from'
       && json()->encode($d->[0]{loc}) eq '["body"]'
       or print "# [$nonobj] " . $res->content . "\n";
}
# plan not offered (unknown, or not public)
for my $plan ('nosuch', 'internal') {
    $res = signup_post({ %ok, plan => $plan });
    is_status($res, 422, "plan $plan: 422");
    my $d = body_of($res)->{detail};
    ok ref $d eq 'ARRAY' && @$d == 1
       && json()->encode($d->[0]{loc}) eq '["body","plan"]'
       or print "# " . $res->content . "\n";
}
ok t_cmp(state_snapshot(), $before, '422s wrote nothing');

# 200 CJK characters pass (length in code points, not bytes)
$res = signup_post({ %ok, company_name => "\x{65e5}" x 200 });
is_status($res, 201, '200 CJK characters: 201');
ok t_cmp(body_of($res)->{site_url}, 'https://site.sites.acme.test',
         'no ASCII left: the label is "site"');
ok t_cmp(length(customer(body_of($res)->{customer_id})->{company_name}), 200,
         'stored in full');

# ---- 415 -----------------------------------------------------------------
clear_spool();
$before = state_snapshot();
my $okjson = json_bytes()->encode({ %ok, email => 'ct@example.com' });
for my $ct ('text/plain', 'application/x-www-form-urlencoded',
            'application/jsonx', 'multipart/form-data; boundary=x') {
    $res = signup_post($okjson, 'Content-Type' => $ct);
    ok t_cmp($res->code . ' ' . (body_of($res)->{detail} // ''),
             qr/^415 \S/, "415 for $ct");
}
$res = Apache::TestRequest::POST('/v1/public/signup', content => $okjson);
is_status($res, 415, 'no Content-Type: 415');
ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json}, 'JSON 415');
ok t_cmp(state_snapshot(), $before, '415s wrote nothing');

# ---- 413 -----------------------------------------------------------------
my $pad = json_bytes()->encode({ %ok, email => 'big@example.com', pad => 'x' x 17000 });
$res = signup_post($pad);
is_status($res, 413, 'over 16 KiB: 413');
ok t_cmp(body_of($res)->{detail}, qr/\S/, '413 detail');
my $hp = Apache::TestRequest::hostport();
sub chunked {
    my ($hostport, $body, $chunk) = @_;
    my $req = "POST /v1/public/signup HTTP/1.1\r\nHost: $hostport\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        . "Connection: close\r\n\r\n";
    for (my $i = 0; $i < length $body; $i += $chunk) {
        my $part = substr($body, $i, $chunk);
        $req .= sprintf("%x\r\n%s\r\n", length $part, $part);
    }
    return raw_http($hostport, $req . "0\r\n\r\n");
}
my ($st, $hd, $bd) = chunked($hp, $pad, 1000);
ok t_cmp($st, 413, 'chunked over 16 KiB: 413');
ok t_cmp($bd, qr/"detail"/, 'chunked 413 is JSON');
ok t_cmp(state_snapshot(), $before, '413s wrote nothing');
# a chunked body under the cap is read whole
($st, $hd, $bd) = chunked($hp, json_bytes()->encode({ %ok, email => 'chunk@example.com',
                                               company_name => 'Chunky' }), 7);
ok t_cmp($st, 201, 'chunked body under the cap: 201');
ok t_cmp($bd, qr/chunky\.sites\.acme\.test/, 'chunked signup answered');
# the small vhost: 512 bytes
{
    Apache::TestRequest::module('vhost_signup_small');
    my $sp = Apache::TestRequest::hostport();
    my $j = json_bytes()->encode({ %ok, email => 'small@example.com', pad => 'y' x 600 });
    ok t_cmp(signup_post($j)->code, 413, 'MaxBody 512: 413');
    ($st) = chunked($sp, $j, 100);
    ok t_cmp($st, 413, 'MaxBody 512 chunked: 413');
    $j = json_bytes()->encode({ %ok, email => 'small@example.com', pad => 'y' x 400 });
    ok t_cmp(signup_post($j)->code, 201, 'under 512 bytes: 201');
    Apache::TestRequest::module('vhost_signup');
}

# ---- 404 -----------------------------------------------------------------
clear_spool();
$before = state_snapshot();
for my $slug ('nosuch', 'off-co') {
    $res = signup_post({ %ok, tenant_slug => $slug });
    ok t_cmp($res->code . ' ' . $res->content, '404 {"detail":"Tenant not found"}',
             "404 for $slug");
}
{
    # the main server serves demo acme tiny off-co fillco, not globex
    Apache::TestRequest::module('default');
    $res = signup_post({ %ok, tenant_slug => 'globex' });
    ok t_cmp($res->code . ' ' . $res->content, '404 {"detail":"Tenant not found"}',
             'not served by this vhost: 404');
    Apache::TestRequest::module('vhost_signup');
}
ok t_cmp(state_snapshot(), $before, '404s wrote nothing');

# ---- 409: an active customer, any case ---------------------------------
$db->do("UPDATE customers SET status = 'active', verified_at = now() WHERE id = ?",
        undef, $alice);
# her verification mail went out more than a resend interval ago
$db->do("UPDATE hydra_signup_mail_log SET sent_at = sent_at - interval '2 minutes'");
clear_spool();
$before = state_snapshot();
for my $addr ('alice@example.com', 'ALICE@EXAMPLE.COM', 'Alice@Example.com') {
    $res = signup_post({ %ok, email => $addr, company_name => 'Other Co' });
    is_status($res, 409, "active $addr: 409");
    ok t_cmp(body_of($res)->{detail}, qr/\S/, '409 detail');
}
ok t_cmp(state_snapshot(), $before, '409 wrote nothing');

# ---- conceal: a 201 like any other, only a mail to the owner -------------
{
    # a label already taken: a real signup would get the next one
    $res = signup_post({ %ok, email => 'taken@example.com', company_name => 'Taken Name' });
    is_status($res, 201, 'label taken-name');
    $db->do("UPDATE hydra_signup_mail_log SET sent_at = sent_at - interval '2 minutes'");
    clear_spool();
    $before = state_snapshot();
    Apache::TestRequest::module('vhost_signup_conceal');
    $res = signup_post({ %ok, email => 'alice@example.com', company_name => 'Taken Name' });
    is_status($res, 201, 'concealed, a taken label');
    ok t_cmp(body_of($res)->{site_url}, 'https://taken-name-2.sites.acme.test',
             'the label a new signup would get, not a taken one');
    $db->do("UPDATE hydra_signup_mail_log SET sent_at = sent_at - interval '2 minutes'");
    $db->do("UPDATE hydra_signup_decoys SET sent_at = sent_at - interval '2 minutes'");
    clear_spool();
    $before = state_snapshot();
    $res = signup_post({ %ok, email => 'ALICE@example.com', company_name => 'Intruder Ltd' });
    is_status($res, 201, 'concealed: 201');
    $b = body_of($res);
    ok t_cmp(join(',', sort keys %$b), 'customer_id,message,site_url', 'same shape');
    ok t_cmp($b->{customer_id}, $UUID, 'a uuid');
    ok $b->{customer_id} ne $alice; # not the real customer id
    ok t_cmp($b->{message}, 'Check your email to get started', 'same message');
    # issue 12: as a pending signup keeps its stored site_url on a re-signup
    # under another company name, so does the concealed answer
    ok t_cmp($b->{site_url}, 'https://taken-name-2.sites.acme.test',
             'site_url of the first concealed answer kept');
    my ($n) = $db->selectrow_array("SELECT count(*) FROM customers WHERE id = ?",
                                   undef, $b->{customer_id});
    ok t_cmp($n, 0, 'no customer row behind the id');
    my $after = state_snapshot();
    # only the mail logs (the per-address budget, the tenant's count), the
    # module's decoy and the spool changed (state_snapshot's parts 0-2:
    # customers, codes, nodes; 5, 6: refresh tokens, tenants; 8: site
    # label counters, the decoy keeps its label)
    my $strip = sub { my @p = split /\n--\n/, $_[0]; join "\n--\n", @p[0..2, 5, 6, 8] };
    ok t_cmp($strip->($after), $strip->($before), 'customers, codes, nodes unchanged');
    @new = new_files();
    ok t_cmp(scalar @new, 1, 'one mail');
    $m = read_mail($new[0] // '/dev/null');
    ok t_cmp($m->{headers}{to}, qr/ALICE\@example\.com/i, 'to the address');
    ok t_cmp($m->{body}, qr/already exists/, 'an "account exists" mail');
    ok t_cmp(scalar(code_in($m->{body})), 0, 'without a code');
    # a pending address on the conceal vhost is a normal re-signup
    # (re-signup itself is tested below); a new address a normal signup
    $res = signup_post({ %ok, email => 'frank@example.com' });
    is_status($res, 201, 'conceal vhost: normal signup');
    ok defined customer(body_of($res)->{customer_id}); # written
    Apache::TestRequest::module('vhost_signup');
}

# ---- a pending address: same customer, new code; resend interval -------
clear_spool();
$before = state_snapshot();
my $old = code_row($bob)->{code_hmac};
$res = signup_post({ %ok, email => 'bob@example.com' });
is_status($res, 429, 'resent within the interval: 429');
ok t_cmp(scalar $res->header('Retry-After'), qr/^\d+$/, 'Retry-After');
ok $res->header('Retry-After') >= 1 && $res->header('Retry-After') <= 60;
ok t_cmp(body_of($res)->{detail}, qr/\S/, '429 detail');
ok t_cmp(state_snapshot(), $before, '429 wrote nothing');
$db->do("UPDATE hydra_signup_codes SET sent_at = sent_at - interval '2 minutes'
         WHERE customer_id = ?", undef, $bob);
$res = signup_post({ %ok, email => 'BOB@example.com', company_name => 'Ignored' });
is_status($res, 201, 'pending re-signup after the interval: 201');
$b = body_of($res);
ok t_cmp($b->{customer_id}, $bob, 'same customer_id');
ok t_cmp($b->{site_url}, 'https://acme-corp-2.sites.acme.test', 'same site_url');
$k = code_row($bob);
ok $k->{code_hmac} ne $old; # the old HMAC is replaced
@new = new_files();
ok t_cmp(scalar @new, 1, 'a new mail');
($code1) = code_in(read_mail($new[0] // '/dev/null')->{body});
ok t_cmp($k->{code_hmac}, code_hmac($bob, $code1 // ''), 'the new code is stored');
ok t_cmp(used_of($node), scalar(@{ $db->selectcol_arrayref(
    "SELECT id FROM customers WHERE node_id = ?", undef, $node) }),
    'no second slot for the same customer');
my ($nbob) = $db->selectrow_array(
    "SELECT count(*) FROM customers WHERE lower(email) = 'bob\@example.com'");
ok t_cmp($nbob, 1, 'one customer row for the address');
# a voided code (too many attempts) gets a fresh one too
$db->do("UPDATE hydra_signup_codes SET void = true, attempts = 6,
         sent_at = sent_at - interval '2 minutes' WHERE customer_id = ?", undef, $bob);
$res = signup_post({ %ok, email => 'bob@example.com' });
is_status($res, 201, 're-signup after a void code');
$k = code_row($bob);
ok !$k->{void} && $k->{attempts} == 0; # code usable again

# mails per hour (the small vhost: 3 per hour, resend 1 s)
{
    Apache::TestRequest::module('vhost_signup_small');
    my $addr = 'budget@example.com';
    my @st;
    for my $i (1 .. 4) {
        $db->do("UPDATE hydra_signup_codes SET sent_at = now() - interval '1 hour'
                 WHERE customer_id IN (SELECT id FROM customers WHERE email = ?)",
                undef, $addr);
        my $r = signup_post({ %ok, email => $addr });
        push @st, $r->code;
        $res = $r;
    }
    ok t_cmp("@st", '201 201 201 429', 'the fourth mail in an hour: 429');
    ok t_cmp(scalar $res->header('Retry-After'), qr/^\d+$/, 'Retry-After');
    ok $res->header('Retry-After') > 1 && $res->header('Retry-After') <= 3600;
    Apache::TestRequest::module('vhost_signup');
}

# ---- 503: no capacity, nothing written ---------------------------------
add_tenant(slug => 'fullco', nodes => [[2, 2], [5, 0, 'dedicated'], [5, 0, 'shared', 0]]);
add_tenant(slug => 'nonodes', nodes => []);
clear_spool();
$before = state_snapshot();
for my $slug ('fullco', 'nonodes') {
    $res = signup_post({ %ok, email => "nocap\@$slug.example", tenant_slug => $slug });
    ok t_cmp($res->code . ' ' . $res->content,
             '503 {"detail":"No shared hosting capacity available"}', "503 for $slug");
    ok t_cmp(scalar $res->header('Retry-After'), qr/^\d+$/, 'Retry-After');
}
ok t_cmp(state_snapshot(), $before, '503: no customer, no code, no mail');

# ---- placement: spread (least loaded by used/capacity) and fill ---------
add_tenant(slug => 'spready', nodes => [[10, 0], [10, 5], [20, 3]]);
my @sn = nodes_of('spready');
my @got;
for my $i (1 .. 3) {
    $res = signup_post({ %ok, email => "s$i\@example.com", tenant_slug => 'spready' });
    push @got, $res->code;
}
ok t_cmp("@got", '201 201 201', 'spread signups');
ok t_cmp(join(',', map { used_of($_) } @sn), '2,5,4', 'least loaded first');
{
    Apache::TestRequest::module('vhost_signup_fill');
    add_tenant(slug => 'filly', nodes => [[2, 0], [2, 0], [3, 2]]);
    my @fn = nodes_of('filly');
    my @u;
    for my $i (1 .. 4) {
        $res = signup_post({ %ok, email => "f$i\@example.com", tenant_slug => 'filly' });
        push @u, $res->code . ':' . join(',', map { used_of($_) } @fn);
    }
    ok t_cmp("@u", '201:0,0,3 201:1,0,3 201:2,0,3 201:2,1,3',
             'fill: the fullest node with room first');
    Apache::TestRequest::module('vhost_signup');
}

# ---- pending TTL: expired pending signups give their slot back ---------
{
    Apache::TestRequest::module('vhost_signup_ttl');
    add_tenant(slug => 'ttlco', nodes => [[3, 0]]);
    my ($tn) = nodes_of('ttlco');
    my %id;
    for my $who (qw(old act fresh)) {
        $res = signup_post({ %ok, email => "$who\@ttl.example", tenant_slug => 'ttlco' });
        $id{$who} = body_of($res)->{customer_id};
    }
    ok t_cmp(used_of($tn), 3, 'node full');
    $db->do("UPDATE customers SET created_at = now() - interval '2 hours'
             WHERE id IN (?, ?)", undef, $id{old}, $id{act});
    $db->do("UPDATE hydra_signup_codes SET sent_at = now() - interval '2 hours'
             WHERE customer_id IN (?, ?)", undef, $id{old}, $id{act});
    $db->do("UPDATE customers SET status = 'active', verified_at = now() WHERE id = ?",
            undef, $id{act});
    clear_spool();
    $res = signup_post({ %ok, email => 'new@ttl.example', tenant_slug => 'ttlco' });
    is_status($res, 201, 'a full node with an expired pending signup: 201');
    my $newid = body_of($res)->{customer_id};
    ok !defined customer($id{old}); # the expired pending signup is deleted
    ok !defined code_row($id{old}); # with its code
    # active and fresh customers stay
    ok defined customer($id{act}) && defined customer($id{fresh});
    ok t_cmp(customer($newid)->{node_id}, $tn, 'the slot is reused');
    ok t_cmp(used_of($tn), 3, 'used = customers on the node');
    ok t_cmp(scalar(new_files()), 1, 'one mail');
    $before = state_snapshot();
    $res = signup_post({ %ok, email => 'late@ttl.example', tenant_slug => 'ttlco' });
    is_status($res, 503, 'nothing more to reclaim: 503');
    ok t_cmp(state_snapshot(), $before, 'nothing written');

    # a re-signup renews an expired pending signup: it keeps its slot
    add_tenant(slug => 'ttl2', nodes => [[2, 0]]);
    my ($t2) = nodes_of('ttl2');
    for my $who (qw(r1 r2)) {
        $res = signup_post({ %ok, email => "$who\@ttl.example", tenant_slug => 'ttl2' });
        $id{$who} = body_of($res)->{customer_id};
    }
    $db->do("UPDATE customers SET created_at = now() - interval '2 hours'
             WHERE id IN (?, ?)", undef, $id{r1}, $id{r2});
    $db->do("UPDATE hydra_signup_codes SET sent_at = now() - interval '2 hours'
             WHERE customer_id IN (?, ?)", undef, $id{r1}, $id{r2});
    $res = signup_post({ %ok, email => 'r1@ttl.example', tenant_slug => 'ttl2' });
    is_status($res, 201, 'expired pending re-signs up');
    ok t_cmp(body_of($res)->{customer_id}, $id{r1}, 'same customer');
    $res = signup_post({ %ok, email => 'r3@ttl.example', tenant_slug => 'ttl2' });
    is_status($res, 201, 'full node, one expired signup: 201');
    ok !defined customer($id{r2}); # the expired one is gone
    ok defined customer($id{r1}); # the renewed one stays
    ok t_cmp(used_of($t2), 2, 'used 2');
    Apache::TestRequest::module('vhost_signup');
}

# ---- the spool cannot be written: 503, nothing committed; new/ cannot be
# written: the signup exists (201), the failure is logged
{
    my $sp = "$ENV{HYDRA_STATE}/spool";
    my $errlog = Apache::Test::vars('t_logs') . '/error_log';
    my $root = $> == 0;
    clear_spool();
    $before = state_snapshot();
    chmod 0550, "$sp/tmp";
    $res = signup_post({ %ok, email => 'nospool@example.com' });
    chmod 0770, "$sp/tmp";
    # root writes into a read-only folder: those checks are skips then
    my $as_root = 'run as root: a read-only folder is writable';
    if ($root) { Apache::Test::skip($as_root, 0) for 1 .. 2 }
    else {
        ok $res->code == 503 or print "# ", $res->code, ' ', $res->content, "\n";
        ok state_snapshot() eq $before; # nothing written
    }
    my $size = -s $errlog;
    chmod 0550, "$sp/new";
    $res = signup_post({ %ok, email => 'nonew@example.com', company_name => 'No New' });
    chmod 0770, "$sp/new";
    is_status($res, 201, 'new/ not writable: still 201 (committed)');
    ok defined customer(body_of($res)->{customer_id} // '00000000-0000-4000-8000-000000000000');
    if ($root) { Apache::Test::skip($as_root, 0) }
    else { ok t_cmp(nfiles('tmp'), 1, 'the message stays in tmp/') }
    my $tail = log_since($errlog, $size);
    if ($root) { Apache::Test::skip($as_root, 0) }
    else { ok t_cmp($tail, qr/HS00501/, 'logged (HS00501)') }
    clear_spool();
}

# ---- invariant 1 over everything above --------------------------------
my $bad = $db->selectall_arrayref(
    "SELECT n.hostname, n.used, count(c.id) FROM nodes n
     JOIN tenants t ON t.id = n.tenant_id AND t.slug IN ('demo', 'acme', 'ttlco')
     LEFT JOIN customers c ON c.node_id = n.id
     GROUP BY n.id HAVING n.used <> count(c.id) OR n.used > n.capacity");
ok t_cmp(scalar @$bad, 0, 'every node: used = its customers, <= capacity');
print "# @$_\n" for @$bad;
my ($orphans) = $db->selectrow_array(
    "SELECT count(*) FROM customers c WHERE c.node_id IS NULL
     OR NOT EXISTS (SELECT 1 FROM hydra_signup_codes k WHERE k.customer_id = c.id)");
ok t_cmp($orphans, 0, 'no customer without a slot or a code');
