# SPDX-License-Identifier: Apache-2.0
# Hostile and broken signup bodies: each gets a clean 4xx JSON answer and
# leaves the database and the spool exactly as they were; SQL-looking
# strings in otherwise valid signups are stored verbatim.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant get_json json_bytes spool_files
                 signup_post state_snapshot raw_http log_since);

plan tests => 230, have_lwp;
binmode STDOUT, ':encoding(UTF-8)'; # t_cmp prints non-ASCII values

my $db = dbh();
reset_db();
add_tenant(slug => 'acme', domain => 'sites.acme.test');
Apache::TestRequest::module('vhost_signup');
my $hp = Apache::TestRequest::hostport();
my $errlog = Apache::Test::vars('t_logs') . '/error_log';
my $log_size = -s $errlog;

my $valid = '"email":"ok@example.com","tenant_slug":"acme"';
my %ok = (company_name => 'Valid Co', email => 'ok@example.com',
          tenant_slug => 'acme');

# [name, body bytes, expected status, expected first error type (422)]
my @cases = (
    # malformed JSON
    ['lone brace', '{', 422, 'json_invalid'],
    ['missing value', '{"company_name":}', 422, 'json_invalid'],
    ['single quotes', "{'company_name':'x'}", 422, 'json_invalid'],
    ['trailing comma', qq({"company_name":"x",$valid,}), 422, 'json_invalid'],
    ['bad escape', qq({"company_name":"\\x41",$valid}), 422, 'json_invalid'],
    ['bad unicode escape', qq({"company_name":"\\u12G4",$valid}), 422, 'json_invalid'],
    ['unterminated string', '{"company_name":"abc', 422, 'json_invalid'],
    ['two objects', qq({"company_name":"x",$valid}{}), 422, 'json_invalid'],
    ['NaN', qq({"company_name":NaN,$valid}), 422, undef],
    ['comment', qq({/* c */"company_name":"x",$valid}), 422, 'json_invalid'],
    ['whitespace only', "   \r\n\t ", 422, 'json_invalid'],
    ['literal null', 'null', 422, 'missing'],
    ['BOM then garbage', "\xEF\xBB\xBF{x", 422, 'json_invalid'],
    # not an object
    ['array of the object', qq([{"company_name":"x",$valid}]), 422, 'model_attributes_type'],
    ['empty array', '[]', 422, 'model_attributes_type'],
    ['string', '"hello"', 422, 'model_attributes_type'],
    ['number', '12345', 422, 'model_attributes_type'],
    # numbers and null for strings
    ['numbers and null', '{"company_name":1e10,"email":null,"tenant_slug":0}', 422, 'string_type'],
    ['bool plan', qq({"company_name":"x",$valid,"plan":false}), 422, 'string_type'],
    # NUL bytes
    ['raw NUL in a string', qq({"company_name":"a\0b",$valid}), 422, 'json_invalid'],
    ['raw NUL outside', qq({\0"company_name":"x",$valid}), 422, 'json_invalid'],
    ['raw NUL at the end', qq({"company_name":"x",$valid}\0), 422, 'json_invalid'],
    ['\\u0000 in company_name', qq({"company_name":"a\\u0000b",$valid}), 422, undef],
    ['\\u0000 in email', '{"company_name":"x","email":"ok\u0000@example.com","tenant_slug":"acme"}', 422, 'value_error'],
    ['\\u0000 in tenant_slug', '{"company_name":"x","email":"ok@example.com","tenant_slug":"ac\u0000me"}', 422, undef],
    ['\\u0000 in plan', qq({"company_name":"x",$valid,"plan":"starter\\u0000"}), 422, undef],
    # invalid UTF-8
    ['0xFF byte', qq({"company_name":"a\xFFb",$valid}), 422, 'json_invalid'],
    ['overlong /', qq({"company_name":"a\xC0\xAFb",$valid}), 422, 'json_invalid'],
    ['UTF-8 surrogate', qq({"company_name":"a\xED\xA0\x80b",$valid}), 422, 'json_invalid'],
    ['truncated sequence', qq({"company_name":"a\xE6\x97",$valid}), 422, 'json_invalid'],
    ['past U+10FFFF', qq({"company_name":"\xF4\x90\x80\x80",$valid}), 422, 'json_invalid'],
    ['invalid UTF-8 in an unknown member', qq({"company_name":"x",$valid,"zz":"\xFE"}), 422, 'json_invalid'],
    ['Latin-1 email', qq({"company_name":"x","email":"caf\xE9\@example.com","tenant_slug":"acme"}), 422, 'json_invalid'],
    # deep nesting (under the 16 KiB cap)
    ['10,000 open brackets', '[' x 10000, 422, 'json_invalid'],
    ['8,000 deep balanced', ('[' x 8000) . (']' x 8000), 422, undef],
    ['deep objects', ('{"a":' x 2500) . '1' . ('}' x 2500), 422, undef],
    ['deep value of an unknown member',
     qq({"company_name":"x",$valid,"zz":) . ('[' x 5000) . (']' x 5000) . '}', 422, undef],
    # huge numbers for strings
    ['1e999999', qq({"company_name":1e999999,$valid}), 422, 'string_type'],
    ['-1e999999', qq({"company_name":-1e999999,$valid}), 422, 'string_type'],
    ['5000 digits', qq({"company_name":) . ('9' x 5000) . qq(,$valid}), 422, 'string_type'],
    ['huge exponent', qq({"company_name":1e-99999999999999999999,$valid}), 422, 'string_type'],
    # empty body
    ['empty body', '', 422, 'missing'],
    # SQL injection where it cannot be valid
    ['slug injection', '{"company_name":"x","email":"ok@example.com","tenant_slug":"acme\' OR \'1\'=\'1"}', 404, undef],
    ['slug drop', '{"company_name":"x","email":"ok@example.com","tenant_slug":"acme\'; DROP TABLE nodes;--"}', 404, undef],
    ['plan injection', qq({"company_name":"x",$valid,"plan":"starter' OR '1'='1"}), 422, undef],
    ['email injection', '{"company_name":"x","email":"x\'; DROP TABLE tenants;--@example.com","tenant_slug":"acme"}', 422, 'value_error'],
);

sub check_clean {
    my ($name, $status, $ctype, $body, $want, $type, $before) = @_;
    ok t_cmp($status, $want, "$name: status") or print "# body: $body\n";
    ok t_cmp($ctype // '', qr{^application/json}, "$name: JSON");
    my $d = eval { json_bytes()->decode($body) } // {};
    if ($want == 422) {
        my $t = ref $d->{detail} eq 'ARRAY' ? $d->{detail}[0]{type} : undef;
        ok defined $type ? ($t // '') eq $type : defined $t
            or print "# $name: $body\n";
    }
    else {
        ok defined $d->{detail} && !ref $d->{detail} or print "# $name: $body\n";
    }
    ok t_cmp(state_snapshot(), $before, "$name: nothing written");
}

for my $c (@cases) {
    my ($name, $bytes, $want, $type) = @$c;
    my $before = state_snapshot();
    my $res = signup_post($bytes);
    check_clean($name, $res->code, scalar $res->header('Content-Type'),
                $res->content, $want, $type, $before);
}

# 1 MiB, announced and chunked; a Content-Length the server cannot use
my $mib = qq({"company_name":"x",$valid,"pad":") . ('x' x (1 << 20)) . '"}';
{
    my $before = state_snapshot();
    my $res = signup_post($mib);
    ok t_cmp($res->code, 413, '1 MiB: 413');
    ok t_cmp(state_snapshot(), $before, '1 MiB: nothing written');
    my $req = "POST /v1/public/signup HTTP/1.1\r\nHost: $hp\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        . "Connection: close\r\n\r\n";
    for (my $i = 0; $i < length $mib; $i += 65536) {
        my $part = substr($mib, $i, 65536);
        $req .= sprintf("%x\r\n%s\r\n", length $part, $part);
    }
    my ($st, $hd, $bd) = raw_http($hp, $req . "0\r\n\r\n");
    ok t_cmp($st, 413, '1 MiB chunked: 413');
    ok t_cmp($bd, qr/"detail"/, 'JSON');
    ok t_cmp(state_snapshot(), $before, '1 MiB chunked: nothing written');
    for my $cl ('99999999999999999999999', '-1', 'abc') {
        ($st) = raw_http($hp, "POST /v1/public/signup HTTP/1.1\r\nHost: $hp\r\n"
            . "Content-Type: application/json\r\nContent-Length: $cl\r\n"
            . "Connection: close\r\n\r\n{}");
        ok $st >= 400 && $st < 500 or print "# Content-Length $cl: $st\n";
    }
    # a body shorter than announced: the read fails or times out, no row
    ($st) = raw_http($hp, "POST /v1/public/signup HTTP/1.1\r\nHost: $hp\r\n"
        . "Content-Type: application/json\r\nContent-Length: 200\r\n"
        . "Connection: close\r\n\r\n" . qq({"company_name":"x",$valid}));
    ok $st == 0 || ($st >= 400 && $st < 500) or print "# short body: $st\n";
    ok t_cmp(state_snapshot(), $before, 'bad lengths: nothing written');
}

# wrong Content-Type with a valid body
for my $ct ('text/plain', 'application/xml', 'text/json', 'application/json-patch') {
    my $before = state_snapshot();
    my $res = signup_post(json_bytes()->encode(\%ok), 'Content-Type' => $ct);
    check_clean("Content-Type $ct", $res->code,
                scalar $res->header('Content-Type'), $res->content, 415,
                undef, $before);
}

# ---- SQL-looking strings in valid signups: stored verbatim ----------------
my @verbatim = (
    { company_name => "Robert'); DROP TABLE customers;--",
      email => 'bobby@example.com' },
    { company_name => q{1' OR '1'='1}, email => q{o'reilly@example.com} },
    { company_name => q{100% %s %d $1 \\' \\" ;--}, email => q{a'--b@example.com} },
    { company_name => q{"; DELETE FROM nodes; --}, email => 'x+%s@example.com',
      plan => 'starter' },
    { company_name => "\x{2019}; SELECT pg_sleep(10);--",
      email => q{sel'ect@example.com} },
);
for my $v (@verbatim) {
    my %body = (tenant_slug => 'acme', %$v);
    my $res = signup_post(\%body);
    ok t_cmp($res->code, 201, "verbatim: $v->{company_name}")
        or print "# ", $res->content, "\n";
    my $id = (get_json($res) // {})->{customer_id} // '';
    my $row = $db->selectrow_hashref(
        "SELECT company_name, email, plan FROM customers WHERE id = ?",
        undef, $id =~ /^[0-9a-f-]{36}$/ ? $id : '00000000-0000-0000-0000-000000000000') // {};
    ok t_cmp($row->{company_name}, $v->{company_name}, 'company stored verbatim');
    ok t_cmp($row->{email}, $v->{email}, 'email stored verbatim');
}
my ($ncust) = $db->selectrow_array("SELECT count(*) FROM customers");
ok t_cmp($ncust, scalar @verbatim, 'the tables are all there, with the rows');
my ($nnodes) = $db->selectrow_array(
    "SELECT count(*) FROM nodes n JOIN tenants t ON t.id = n.tenant_id
     WHERE t.slug = 'acme'");
ok t_cmp($nnodes, 1, 'nodes intact');
my ($used) = $db->selectrow_array(
    "SELECT used FROM nodes n JOIN tenants t ON t.id = n.tenant_id
     WHERE t.slug = 'acme'");
ok t_cmp($used, scalar @verbatim, 'used counts them');
my @files = spool_files('new');
ok t_cmp(scalar @files, scalar @verbatim, 'one mail each');

# the server survived all of it: no crashed child
my $log = log_since($errlog, $log_size);
ok t_cmp(join("\n", $log =~ /^.*(?:exit signal|Segmentation|AddressSanitizer).*$/mg),
         '', 'no child crashed');
