# Smaller findings of issue 12: a client's bad input never becomes a 503
# (an overlong or invalid UTF-8 slug in the path is a 404 before any
# database work); HydraSignupRateLimit plans; X-Forwarded-For is only a
# header without mod_remoteip settings; httpd -t refuses a CORS origin
# without a host (it read past the string) and checks <Directory> sections
# as it checks <Location> ones; the new directives are refused when bad.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET);
use File::Temp qw(tempdir);
use lib 't/lib';
use HydraTest qw(reset_db post_json get_json check);

plan tests => 23, have_lwp;

reset_db();
my $st = $ENV{HYDRA_STATE};

# ---- bad bytes in the path: 404, not 503 -------------------------------------
Apache::TestRequest::module('vhost_all');    # serves "*": the slug reaches
                                             # the lookup
for my $path ('%c0%ae%c0%ae%c0%afetc%c0%afpasswd', '%ff%fe', 'a%80b',
              '%ed%a0%80', '%01demo', 'x' x 101) {
    my $res = GET("/v1/public/signup/plans/$path");
    ok t_cmp($res->code . ' ' . $res->content,
             '404 {"detail":"Tenant not found"}', "plans/$path: 404");
}
ok t_cmp(GET('/v1/public/signup/plans/demo')->code, 200,
         'a good slug still answers');
# the same class in JSON bodies: escapes that decode to a lone surrogate or
# a NUL never reach PostgreSQL as bytes it refuses
for my $case (
    ['', '{"company_name":"X","email":"a@example.com","tenant_slug":"\\ud800"}'],
    ['', '{"company_name":"X","email":"a@example.com","tenant_slug":"a\\u0000b"}'],
    ['', '{"company_name":"\\udfff","email":"a@example.com","tenant_slug":"demo"}'],
    ['/verify', '{"code":"12345\\u0000","email":"a@example.com","tenant_slug":"\\udc00"}'],
    ['/verify', '{"code":"123456","email":"a\\u0000@example.com","tenant_slug":"demo"}']) {
    my $res = post_json("/v1/public/signup$case->[0]", $case->[1]);
    check($res->code =~ /^(?:201|400|404|422|429)$/,
          "POST$case->[0] $case->[1]: " . $res->code . ', not 5xx');
}

# ---- HydraSignupRateLimit plans 3 60, and X-Forwarded-For without remoteip --
Apache::TestRequest::module('vhost_noproxy');
{
    my @st = map { GET('/v1/public/signup/plans/demo')->code } 1 .. 4;
    ok t_cmp(join(',', @st), '200,200,200,429', 'plans: 3 per 60 s per client');
    my $res = GET('/v1/public/signup/plans/demo');
    check(($res->header('Retry-After') // '') =~ /^\d+$/,
          'plans 429 with Retry-After');
    # signup 2 60: each request claims another client; all count for one
    my @sg = map {
        post_json('/v1/public/signup', {},
                  'X-Forwarded-For' => "203.0.113.$_")->code
    } 1 .. 3;
    ok t_cmp(join(',', @sg), '422,422,429',
             'X-Forwarded-For is ignored without RemoteIPHeader');
}

# ---- httpd -t ----------------------------------------------------------------
my $dir = tempdir(CLEANUP => 1);
my $good = HydraTest::good_inside();
sub httpd_t { HydraTest::httpd_t(dir => $dir, @_) }

my ($rc, $out) = httpd_t(inside => "$good\nHydraSignupCORSOrigins http://"
                         . "\nHydraSignupMaxAttemptsPerDay 30"
                         . "\nHydraSignupTenantMailsPerHour 50"
                         . "\nHydraSignupRateLimit plans 5 60");
ok $rc != 0 && $out =~ /HydraSignupCORSOrigins: 'http:\/\/' is not an origin: no host/
    or print "# rc=$rc: $out";
($rc, $out) = httpd_t(inside => "$good\nHydraSignupCORSOrigins https://"
                                . " http://a.example");
ok $rc != 0 && $out =~ /'https:\/\/' is not an origin: no host/
    or print "# rc=$rc: $out";
($rc, $out) = httpd_t(inside => "$good\nHydraSignupCORSOrigins http://a.example"
                         . "\nHydraSignupMaxAttemptsPerDay 30"
                         . "\nHydraSignupTenantMailsPerHour 50"
                         . "\nHydraSignupRateLimit plans 5 60");
ok t_cmp($rc, 0, 'the new directives with good values pass') or print "# $out";
for my $case (['HydraSignupMaxAttemptsPerDay 0',
               qr/HydraSignupMaxAttemptsPerDay: '0' is not a positive/],
              ['HydraSignupTenantMailsPerHour lots',
               qr/HydraSignupTenantMailsPerHour: 'lots'/],
              ['HydraSignupRateLimit plans 0 60',
               qr/HydraSignupRateLimit: '0' is not a positive number/]) {
    ($rc, $out) = httpd_t(inside => "$good\n$case->[0]");
    ok $rc != 0 && $out =~ $case->[1] or print "# [$case->[0]] rc=$rc: $out";
}
# the handler in a <Directory> with tenants but no code secret: refused as
# in a <Location> (it escaped the check before)
($rc, $out) = httpd_t(outside => "<Directory $dir>\nSetHandler hydra-signup\n"
                      . "HydraSignupTenants demo\n"
                      . "HydraSignupJWTKeyFile $st/jwt-hs256.key\n"
                      . "</Directory>", inside => '');
ok $rc != 0 && $out =~ /HydraSignupCodeSecretFile is required .*<Directory/
    or print "# rc=$rc: $out";
($rc, $out) = httpd_t(outside => "<Directory $dir>\n<Files x.json>\n"
                      . "SetHandler hydra-signup\nHydraSignupTenants demo\n"
                      . "HydraSignupJWTKeyFile $st/jwt-hs256.key\n"
                      . "</Files>\n</Directory>", inside => '');
ok $rc != 0 && $out =~ /HydraSignupCodeSecretFile is required .*<Files>/
    or print "# rc=$rc: $out";
