# SPDX-License-Identifier: Apache-2.0
# CORS and caching (issue 6, "Abuse protection"): the module answers the
# preflight itself; Access-Control-Allow-Origin is echoed only for an
# allowed origin (exact match), always with Vary: Origin; signup and verify
# answers are never stored by a cache (Cache-Control: no-store).
# vhost_limits (t/conf/hydra_abuse.conf.in) allows https://www.example.net
# and https://signup.example.org; the main server allows none.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(reset_db add_tenant post_json check);

plan tests => 39, have_lwp;

reset_db();
add_tenant(slug => 'corsco', nodes => [[100, 0]]);
Apache::TestRequest::module('vhost_limits');
my $SIGNUP = '/v1/public/signup';
my $VERIFY = '/v1/public/signup/verify';
my $OK = 'https://www.example.net';
my $OK2 = 'https://signup.example.org';
my $ip = 0;
sub client { ('X-Forwarded-For' => '192.0.2.' . (++$ip % 250 + 1)) }
sub preflight {
    my ($path, $origin, @h) = @_;
    return Apache::TestRequest::OPTIONS($path, Origin => $origin,
        'Access-Control-Request-Method' => 'POST',
        'Access-Control-Request-Headers' => 'content-type', client(), @h);
}
sub vary_origin { (($_[0]->header('Vary') // '') =~ /\bOrigin\b/i) ? 1 : 0 }
sub body { return { company_name => 'Cors Co', email => $_[0], tenant_slug => 'corsco' } }

# ---- preflight from an allowed origin --------------------------------------
my $res = preflight($SIGNUP, $OK);
ok t_cmp($res->code, 204, 'preflight: 204');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, 'origin echoed');
ok t_cmp($res->header('Access-Control-Allow-Methods') // '', qr/\bPOST\b/, 'POST allowed');
ok t_cmp($res->header('Access-Control-Allow-Headers') // '', qr/\bContent-Type\b/i,
         'Content-Type allowed');
ok t_cmp(vary_origin($res), 1, 'Vary: Origin');
check(($res->header('Access-Control-Max-Age') // '') =~ /^\d+$/, 'Max-Age');
ok t_cmp($res->content, '', 'no body');
check(!defined $res->header('Access-Control-Allow-Credentials'), 'no credentials');
$res = preflight($VERIFY, $OK2);
ok t_cmp($res->code, 204, 'verify preflight: 204');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK2, 'the second origin echoed, not the first');
$res = Apache::TestRequest::OPTIONS('/v1/public/signup/plans/corsco', Origin => $OK,
    'Access-Control-Request-Method' => 'GET', client());
ok t_cmp($res->header('Access-Control-Allow-Methods') // '', qr/\bGET\b/, 'plans preflight: GET');

# ---- preflight from any other origin ---------------------------------------
for my $o ('https://evil.example.com', 'https://www.example.net.evil.com',
           'http://www.example.net', 'https://WWW.EXAMPLE.NET', 'null',
           "$OK/") {
    $res = preflight($SIGNUP, $o);
    check(!defined $res->header('Access-Control-Allow-Origin')
          && !defined $res->header('Access-Control-Allow-Methods')
          && vary_origin($res),
          "preflight from '$o': " . $res->code . ', no Allow-Origin/Methods, Vary: Origin');
}
$res = preflight($SIGNUP, "$OK, https://evil.example.com");
check(!defined $res->header('Access-Control-Allow-Origin'), 'a list of origins is no origin');
$res = Apache::TestRequest::OPTIONS($SIGNUP, client());
ok t_cmp($res->code, 204, 'plain OPTIONS (no Origin): 204');
ok t_cmp($res->header('Allow') // '', qr/POST/, 'with Allow');

# ---- actual requests -------------------------------------------------------
$res = post_json($SIGNUP, body('cors1@example.com'), Origin => $OK, client());
ok t_cmp($res->code, 201, 'signup with an allowed Origin: 201');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, 'origin echoed');
ok t_cmp(vary_origin($res), 1, 'Vary: Origin');
ok t_cmp($res->header('Cache-Control'), 'no-store', 'signup 201: no-store');
$res = post_json($SIGNUP, body('cors2@example.com'), Origin => 'https://evil.example.com', client());
ok t_cmp($res->code, 201, 'other Origin: served (the browser enforces CORS)');
check(!defined $res->header('Access-Control-Allow-Origin'), 'but no Allow-Origin');
$res = post_json($SIGNUP, {}, Origin => $OK, client());
ok t_cmp($res->code . ' ' . ($res->header('Cache-Control') // ''), '422 no-store', 'signup 422: no-store');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, 'errors carry Allow-Origin too');
$res = post_json($VERIFY, { email => 'cors1@example.com', code => '000000',
                            tenant_slug => 'corsco' }, Origin => $OK, client());
ok t_cmp($res->code . ' ' . ($res->header('Cache-Control') // ''), '400 no-store', 'verify 400: no-store');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, 'verify: origin echoed');
$res = post_json($VERIFY, {}, client());
ok t_cmp($res->code . ' ' . ($res->header('Cache-Control') // ''), '422 no-store', 'verify 422: no-store');

# a 429 is readable by the page that caused it, and not cached either
my @h = ('X-Forwarded-For' => '192.0.2.251', Origin => $OK);
post_json($SIGNUP, {}, @h) for 1 .. 3;
$res = post_json($SIGNUP, {}, @h);
ok t_cmp($res->code, 429, 'over the limit: 429');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, '429 carries Allow-Origin');
ok t_cmp($res->header('Cache-Control'), 'no-store', '429: no-store');

# preflights are not counted against the signup limit
@h = ('X-Forwarded-For' => '192.0.2.252');
preflight($SIGNUP, $OK, @h) for 1 .. 6;
ok t_cmp(post_json($SIGNUP, body('cors3@example.com'), @h)->code, 201,
         'six preflights, then a signup from that client: 201');

# plans stay cacheable (no no-store), with Vary: Origin
$res = Apache::TestRequest::GET('/v1/public/signup/plans/corsco', Origin => $OK);
ok t_cmp($res->code, 200, 'plans: 200');
check(($res->header('Cache-Control') // '') !~ /no-store/, 'plans: cacheable');
ok t_cmp($res->header('Access-Control-Allow-Origin'), $OK, 'plans: origin echoed');

# ---- a server without CORSOrigins sends no CORS headers at all -------------
Apache::TestRequest::module('default');
$res = Apache::TestRequest::OPTIONS($SIGNUP, Origin => $OK,
    'Access-Control-Request-Method' => 'POST');
check(!defined $res->header('Access-Control-Allow-Origin')
      && !defined $res->header('Access-Control-Allow-Methods'),
      'main server: no Allow-Origin/Methods');
